package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/pgtest"
)

// pgPassword is the store password of the tests' password file. The test
// server trusts its loopback clients, so it is not checked there; the test
// is that it travels from the file and is written nowhere in the data
// directory.
const pgPassword = "pg-store-password-e2e-1"

// initPostgresCloud inits a cloud on a new PostgreSQL database, its
// password in a file of mode 0600.
func initPostgresCloud(t *testing.T) (*cloud, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	pwFile := filepath.Join(t.TempDir(), "pg-password")
	writeFile(t, pwFile, pgPassword+"\n", 0o600)
	c := initCloudArgs(t, "--store", dsn, "--store-password-file", pwFile)
	mustContain(t, "cloud init output", c.initOut, "Store: "+dsn)
	return c, dsn
}

// TestCloudOnPostgres: a cloud made with 'cloud init --store postgres://…'
// serves from PostgreSQL: a connector registers, an application is
// published and answers through the edge, and after 'cloud serve' restarts
// the same state serves again. The settings name the store and the
// password file, never the password.
func TestCloudOnPostgres(t *testing.T) {
	t.Parallel()
	c, dsn := initPostgresCloud(t)
	settings, err := os.ReadFile(filepath.Join(c.dataDir, "cloud.json"))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "cloud.json", string(settings), dsn, "store_password_file")
	noSecretIn(t, c.dataDir, pgPassword, "the store password")
	if _, err := os.Stat(filepath.Join(c.dataDir, "store.db")); err == nil {
		t.Errorf("a cloud on PostgreSQL made a SQLite store.db too")
	}

	c.startServe(t)
	c.login(t, c.admin, contosoAdmin, contosoPW)
	b := newBackend(t)
	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", b.url)
	p := c.runConnector(t, c.admin, st)
	if resp, body := c.get(t, web.ExternalHost, "/page"); resp.StatusCode != http.StatusOK || !strings.Contains(body, backendPage) {
		t.Fatalf("web on PostgreSQL: %d %s", resp.StatusCode, body)
	}

	c.serve.stop()
	restarted := c.admin.start(t, "cloud serve (restarted)", "cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:"+c.port)
	if up := c.waitServing(restarted); !up || restarted.exited() {
		t.Fatalf("cloud serve did not come up again on port %s:\n%s", c.port, tail(restarted.out.String(), 40))
	}
	c.serve = restarted
	c.waitConnector(t, c.admin, st.id, p, func(x *apiConnector) bool { return x != nil && x.Status == "active" && x.Tunnels == 2 })
	if resp, body := c.get(t, web.ExternalHost, "/page"); resp.StatusCode != http.StatusOK || !strings.Contains(body, backendPage) {
		t.Fatalf("web after cloud serve restarted on PostgreSQL: %d %s", resp.StatusCode, body)
	}
	mustContain(t, "admin app list after the restart", c.admin.ok(t, "", "admin", "app", "list").stdout, "web")
}

// TestCloudOnPostgresRefusals: a password in the store URL and a password
// file others may read are refused by init, each with one sentence; a
// store that cannot be reached stops 'cloud serve' with a sentence and a
// non-zero exit.
func TestCloudOnPostgresRefusals(t *testing.T) {
	t.Parallel()
	r := newRunner(t, "admin")
	dsn := pgtest.DSN(t)
	base := []string{"cloud", "init", "--name", cloudName, "--tenant", contoso, "--admin", contosoAdmin}
	withPW := strings.Replace(dsn, "sallyport@", "sallyport:secret@", 1)
	r.refused(t, "", append(base, "--data-dir", filepath.Join(r.dir, "d1"), "--store", withPW), "The store URL carries a password")
	open := filepath.Join(r.dir, "open-password")
	writeFile(t, open, "x\n", 0o644)
	r.refused(t, "", append(base, "--data-dir", filepath.Join(r.dir, "d2"), "--store", dsn, "--store-password-file", open), "may be read by others", "chmod 600")

	c, dsn := initPostgresCloud(t)
	settings := filepath.Join(c.dataDir, "cloud.json")
	raw, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on: the store is unreachable.
	dead := "postgres://sallyport@127.0.0.1:" + freePort(t) + "/none?sslmode=disable&connect_timeout=2"
	writeFile(t, settings, strings.Replace(string(raw), dsn, dead, 1), 0o600)
	// It waits for the store (--store-wait, here 1 s), then gives up.
	res := c.admin.run(t, "", "cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:"+freePort(t), "--store-wait", "1s")
	if res.code == 0 {
		t.Fatalf("cloud serve with its store unreachable exited 0:\n%s", res)
	}
	mustContain(t, "cloud serve with the store unreachable", res.stderr, "The PostgreSQL store cannot be opened")
	mustContain(t, "cloud serve waiting for the store", res.stderr, "trying again")
}

// TestStoreCopyToPostgres: a SQLite cloud with a connector and an
// application is stopped, 'cloud store copy --switch' moves it to
// PostgreSQL and says what it copied; served again from there, the same
// application answers through the same connector and 'admin app list'
// shows it. A second copy to the now full database is refused.
func TestStoreCopyToPostgres(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	b := newBackend(t)
	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", b.url)
	p := c.runConnector(t, c.admin, st)
	c.serve.stop()

	dsn := pgtest.DSN(t)
	pwFile := filepath.Join(t.TempDir(), "pg-password")
	writeFile(t, pwFile, pgPassword+"\n", 0o600)
	copyArgs := []string{"cloud", "store", "copy", "--from", "sqlite:" + c.dataDir, "--to", dsn, "--to-password-file", pwFile, "--switch"}
	res := c.admin.ok(t, "", copyArgs...)
	mustContain(t, "cloud store copy output", res.stdout, "tenants              1", "connectors           1", "applications         1", "API tokens           1",
		"Not copied", "now uses "+dsn)
	noSecretIn(t, c.dataDir, pgPassword, "the store password")

	restarted := c.admin.start(t, "cloud serve (on PostgreSQL)", "cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:"+c.port)
	if up := c.waitServing(restarted); !up || restarted.exited() {
		t.Fatalf("cloud serve did not come up on PostgreSQL on port %s:\n%s", c.port, tail(restarted.out.String(), 40))
	}
	c.serve = restarted
	// API tokens are copied: the administrator's sign-in still holds.
	c.waitConnector(t, c.admin, st.id, p, func(x *apiConnector) bool { return x != nil && x.Status == "active" && x.Tunnels == 2 })
	if resp, body := c.get(t, web.ExternalHost, "/page"); resp.StatusCode != http.StatusOK || !strings.Contains(body, backendPage) {
		t.Fatalf("web after the copy to PostgreSQL: %d %s", resp.StatusCode, body)
	}
	mustContain(t, "admin app list on PostgreSQL", c.admin.ok(t, "", "admin", "app", "list").stdout, "web", web.ExternalHost)

	// The data directory now names PostgreSQL: the copy refuses it as a source.
	c.admin.refused(t, "", copyArgs, "already uses a PostgreSQL store")
}

// TestServeStoreFromEnvironment: 'cloud serve' takes its store from
// SALLYPORT_STORE (and the password from PGPASSWORD), in place of the one
// cloud.json names, as every instance of a scale-out can be configured by
// its service's environment: what it changes is in PostgreSQL, and the
// data directory's own SQLite store does not have it.
func TestServeStoreFromEnvironment(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	c.publish(t, c.admin, "web", "http://127.0.0.1:9/")
	c.serve.stop()
	dsn := pgtest.DSN(t)
	pwFile := filepath.Join(t.TempDir(), "pg-password")
	writeFile(t, pwFile, pgPassword+"\n", 0o600)
	c.admin.ok(t, "", "cloud", "store", "copy", "--from", "sqlite:"+c.dataDir, "--to", dsn, "--to-password-file", pwFile)

	c.admin.extra = []string{"SALLYPORT_STORE=" + dsn, "PGPASSWORD=" + pgPassword}
	c.startServe(t)
	c.login(t, c.admin, contosoAdmin, contosoPW)
	c.publish(t, c.admin, "pgonly", "http://127.0.0.1:9/")
	mustContain(t, "admin app list on PostgreSQL", c.admin.ok(t, "", "admin", "app", "list").stdout, "web", "pgonly")
	c.serve.stop()

	c.admin.extra = nil
	c.startServe(t)
	c.login(t, c.admin, contosoAdmin, contosoPW)
	if out := c.admin.ok(t, "", "admin", "app", "list").stdout; !strings.Contains(out, "web") || strings.Contains(out, "pgonly") {
		t.Fatalf("the SQLite store after serving from PostgreSQL by the environment:\n%s", out)
	}
	// A password in the variable's URL is refused with the sentence.
	c.serve.stop()
	c.admin.extra = []string{"SALLYPORT_STORE=postgres://sallyport:secret@127.0.0.1:5432/x"}
	res := c.admin.run(t, "", "cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:"+c.port)
	checkRefusal(t, res, "carries a password")
	c.admin.extra = nil
}
