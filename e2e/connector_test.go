package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConnectorDelete: an administrator deletes a running connector; it
// is refused at once and 'connector run' exits non-zero, while the other
// connector of the group keeps serving. Then SIGTERM stops the other
// connector and the cloud cleanly.
func TestConnectorDelete(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	b := newBackend(t)
	site := newRunner(t, "site")
	st1 := c.mustRegister(t, site, filepath.Join(site.dir, "connector1"), contosoAdmin, contosoPW)
	st2 := c.mustRegister(t, site, filepath.Join(site.dir, "connector2"), contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", b.url)
	p1 := c.runConnector(t, c.admin, st1)
	p2 := c.runConnector(t, c.admin, st2)

	var shown apiConnector
	c.admin.okJSON(t, &shown, "admin", "connector", "show", st1.id, "--json")
	if shown.ID != st1.id || shown.Status != "active" || shown.Tunnels != 2 {
		t.Errorf("connector show %s = %+v", st1.id, shown)
	}
	mustContain(t, "connector show table", c.admin.ok(t, "", "admin", "connector", "show", st1.id).stdout, "ID:", st1.id, "Status:", "active")

	res := c.admin.ok(t, "", "admin", "connector", "delete", st1.id)
	mustContain(t, "connector delete output", res.stdout, "Deleted connector "+st1.id+"; its certificate is revoked and its connections are closed.")

	code, ok := p1.waitExit(30 * time.Second)
	if !ok {
		t.Fatalf("the deleted connector still runs 30s after its deletion:\n%s", tail(p1.out.String(), 20))
	}
	if code == 0 {
		t.Errorf("the deleted connector exited 0, want non-zero")
	}
	refusal := regexp.MustCompile(`revoked|no longer exists`)
	if !refusal.MatchString(p1.out.String()) {
		t.Errorf("the deleted connector does not say it was revoked or no longer exists:\n%s", tail(p1.out.String(), 20))
	}
	// Its status says why it stopped and what to do, with the --dir given
	// (issue 20, defect 12: it used to say "start it with connector run").
	status := site.ok(t, "", "connector", "status", "--dir", st1.dir).stdout
	mustContain(t, "status of the deleted connector", status, "stopped for good, the cloud refused it: This connector's certificate was revoked",
		"register this machine again with 'sallyport connector register --cloud "+c.url+" --dir "+st1.dir+"'")
	if strings.Contains(status, "connector run") {
		t.Errorf("the status of the deleted connector suggests starting it:\n%s", status)
	}

	// The group's other connector keeps serving; the deleted one is gone.
	c.waitConnector(t, c.admin, st1.id, p2, func(x *apiConnector) bool { return x == nil })
	for range 5 {
		if resp, body := c.get(t, web.ExternalHost, "/page"); resp.StatusCode != http.StatusOK || !strings.Contains(body, backendPage) {
			t.Fatalf("web after deleting one of two connectors: %d %s", resp.StatusCode, body)
		}
	}
	c.admin.refused(t, "", []string{"admin", "connector", "delete", st1.id}, "There is no connector "+st1.id+" in contoso.com")

	// Starting the deleted connector again is refused, and it says what to do.
	again := site.start(t, "deleted connector again", "connector", "run", "--dir", st1.dir)
	code, ok = again.waitExit(30 * time.Second)
	if !ok || code == 0 {
		t.Fatalf("the deleted connector started again: exited=%v code=%d\n%s", ok, code, tail(again.out.String(), 20))
	}
	mustContain(t, "output of the deleted connector started again", again.out.String(), "sallyport connector register")
	if !refusal.MatchString(again.out.String()) {
		t.Errorf("the deleted connector started again does not say it was revoked or no longer exists:\n%s", tail(again.out.String(), 20))
	}

	// SIGTERM: the connector stops cleanly and its group has none left.
	p2.signal(syscall.SIGTERM)
	if code, ok := p2.waitExit(20 * time.Second); !ok || code != 0 {
		t.Errorf("connector after SIGTERM: exited=%v code=%d\n%s", ok, code, tail(p2.out.String(), 20))
	}
	c.waitConnector(t, c.admin, st2.id, nil, func(x *apiConnector) bool { return x != nil && x.Tunnels == 0 })
	mustContain(t, "status of the stopped connector", site.ok(t, "", "connector", "status", "--dir", st2.dir).stdout,
		"not running (start it with 'sallyport connector run --dir "+st2.dir+"')")
	resp, body := c.get(t, web.ExternalHost, "/page")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "(error no_connector") {
		t.Errorf("web with no connector running: %d %s", resp.StatusCode, body)
	}

	// SIGTERM: the cloud stops cleanly.
	c.serve.signal(syscall.SIGTERM)
	if code, ok := c.serve.waitExit(20 * time.Second); !ok || code != 0 {
		t.Errorf("cloud serve after SIGTERM: exited=%v code=%d\n%s", ok, code, tail(c.serve.out.String(), 20))
	}
}

// TestOneRunPerStateDir: a second 'connector run' on a state directory in
// use refuses with one sentence naming the first's pid (issue 20, defect
// 3: both used to run, and the cloud counted double tunnels). A pid file
// left by a killed connector blocks nothing: the lock is the truth.
func TestOneRunPerStateDir(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	first := c.runConnector(t, c.admin, st, "--metrics-listen", "")

	site.refused(t, "", []string{"connector", "run", "--dir", st.dir, "--metrics-listen", ""},
		"A connector already runs on the state directory "+st.dir, fmt.Sprintf("(process %d)", first.pid()), "--dir")
	if first.exited() {
		t.Fatalf("the first connector stopped:\n%s", tail(first.out.String(), 20))
	}

	// A renewal by hand stays allowed, and says which process takes it.
	mustContain(t, "renew while the connector runs", site.ok(t, "", "connector", "renew", "--dir", st.dir, "--force").stdout,
		fmt.Sprintf("The connector running on %s (process %d) takes it at its next connection.", st.dir, first.pid()))

	// Killed, it leaves its pid file; the next one starts all the same.
	first.signal(syscall.SIGKILL)
	if _, ok := first.waitExit(20 * time.Second); !ok {
		t.Fatal("the first connector did not die of SIGKILL")
	}
	if _, err := os.Stat(filepath.Join(st.dir, "run.pid")); err != nil {
		t.Fatalf("a killed connector should leave its pid file behind for this test: %v", err)
	}
	second := c.runConnector(t, c.admin, st, "--metrics-listen", "")
	c.waitConnector(t, c.admin, st.id, second, func(x *apiConnector) bool { return x != nil && x.Tunnels == 2 })
}
