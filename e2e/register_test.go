package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestRegister: connector registration with right and wrong credentials,
// roles, domains, pins — and tenant isolation between two tenants.
func TestRegister(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	admin := c.admin
	admin.ok(t, "alice-app-admin-pw\n", "admin", "user", "create", "alice@contoso.com", "--role", "app-admin", "--password-stdin")
	admin.ok(t, "bob-user-password\n", "admin", "user", "create", "bob@contoso.com", "--role", "user", "--password-stdin")
	site := newRunner(t, "site") // the connector's machine: never signed in
	stateDir := func(t *testing.T) string { return filepath.Join(t.TempDir(), "connector") }

	t.Run("right credentials", func(t *testing.T) {
		dir := stateDir(t)
		st, res := c.register(t, site, dir, contosoAdmin, contosoPW)
		if res.code != 0 || st.id == "" || st.tenant != contoso || st.group != "Default" {
			t.Fatalf("registration: %+v\n%s", st, res)
		}
		mustContain(t, "register output", res.stdout, "State in "+dir, "sallyport connector run --dir "+dir)
		checkStateDir(t, dir, contosoPW)

		var trust struct {
			ConnectorID string `json:"connector_id"`
			Tenant      string `json:"tenant"`
			Group       string `json:"group"`
			CloudURL    string `json:"cloud_url"`
			Thumbprint  string `json:"thumbprint"`
		}
		site.okJSON(t, &trust, "connector", "status", "--dir", dir, "--json")
		if trust.ConnectorID != st.id || trust.Tenant != contoso || trust.Group != "Default" || trust.CloudURL != c.url || trust.Thumbprint == "" {
			t.Errorf("connector status --json = %+v", trust)
		}
		var found bool
		for _, x := range c.connectors(t, admin) {
			if x.ID == st.id {
				found = x.Group == "Default" && x.Status == "inactive"
			}
		}
		if !found {
			t.Errorf("connector %s is not listed as an inactive connector of group Default", st.id)
		}
	})

	t.Run("application administrator, CA pinned by fingerprint", func(t *testing.T) {
		dir := stateDir(t)
		st, res := c.register(t, site, dir, "alice@contoso.com", "alice-app-admin-pw", "--ca-fingerprint", c.fingerprint)
		if res.code != 0 || st.tenant != contoso {
			t.Fatalf("registration: %+v\n%s", st, res)
		}
		checkStateDir(t, dir, "alice-app-admin-pw")
	})

	t.Run("into another group", func(t *testing.T) {
		admin.ok(t, "", "admin", "group", "create", "Branch")
		st, res := c.register(t, site, stateDir(t), contosoAdmin, contosoPW, "--ca-file", c.caFile, "--group", "Branch")
		if res.code != 0 || st.group != "Branch" {
			t.Fatalf("registration: %+v\n%s", st, res)
		}
	})

	refusals := []struct {
		name, user, password string
		pin                  []string
		want                 []string
	}{
		{"wrong password", contosoAdmin, "not-the-right-password", nil,
			[]string{"Connector registration failed", "the user name or password is wrong"}},
		{"unknown user of the tenant", "nobody@contoso.com", contosoPW, nil,
			[]string{"the user name or password is wrong"}},
		{"role User", "bob@contoso.com", "bob-user-password", nil,
			[]string{"the registration request was denied", "bob@contoso.com is a User of contoso.com", "at least the Application Administrator role"}},
		{"user of a domain no tenant owns: the same answer as a wrong password", "admin@unknown-domain.example", contosoPW, nil,
			[]string{"Connector registration failed", "the user name or password is wrong"}},
		{"no pinned CA", contosoAdmin, contosoPW, []string{},
			[]string{"does not trust yet", c.fingerprint, "sallyport connector register --ca-fingerprint " + c.fingerprint}},
		{"wrong fingerprint", contosoAdmin, contosoPW, []string{"--ca-fingerprint", "sha256:" + strings.Repeat("0", 64)},
			[]string{"does not present a CA with fingerprint"}},
		{"unknown group", contosoAdmin, contosoPW, []string{"--ca-file", c.caFile, "--group", "Nope"},
			[]string{"There is no connector group 'Nope' in contoso.com"}},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			dir := stateDir(t)
			_, res := c.register(t, site, dir, tc.user, tc.password, tc.pin...)
			checkRefusal(t, res, tc.want...)
			if strings.Contains(res.stdout+res.stderr, tc.password) {
				t.Errorf("the refusal shows the password:\n%s", res)
			}
			if _, err := os.Stat(filepath.Join(dir, "trust.json")); err == nil {
				t.Errorf("a refused registration wrote %s", filepath.Join(dir, "trust.json"))
			}
		})
	}

	t.Run("another tenant is isolated", func(t *testing.T) {
		const fabAdmin, fabPW = "admin@fabrikam.com", "fabrikam-admin-password"
		pwFile := filepath.Join(t.TempDir(), "fabrikam-password")
		writeFile(t, pwFile, fabPW+"\n", 0o600)
		res := admin.ok(t, "", "cloud", "tenant", "add", "--data-dir", c.dataDir, "--tenant", "fabrikam.com", "--admin", fabAdmin, "--admin-password-file", pwFile)
		mustContain(t, "tenant add output", res.stdout, "Added tenant fabrikam.com", "Global Administrator admin@fabrikam.com")
		admin.refused(t, "", []string{"cloud", "tenant", "add", "--data-dir", c.dataDir, "--tenant", "fabrikam.com", "--admin", fabAdmin, "--admin-password-file", pwFile},
			"A tenant for fabrikam.com", "already exists")

		fab := newRunner(t, "fabrikam-admin")
		c.login(t, fab, fabAdmin, fabPW)

		st := c.mustRegister(t, site, filepath.Join(t.TempDir(), "fabrikam-connector"), fabAdmin, fabPW)
		if st.tenant != "fabrikam.com" || st.group != "Default" {
			t.Fatalf("fabrikam's connector registered as %+v", st)
		}
		for _, x := range c.connectors(t, admin) {
			if x.ID == st.id {
				t.Errorf("contoso's administrator sees fabrikam's connector %s", st.id)
			}
		}
		admin.refused(t, "", []string{"admin", "connector", "delete", st.id}, "There is no connector "+st.id+" in contoso.com")

		b := newBackend(t)
		web := c.publish(t, admin, "web", b.url)
		portal := c.publish(t, fab, "portal", b.url)
		if portal.ExternalHost != "portal-fabrikam.sallyport.localhost" {
			t.Errorf("fabrikam's app is published at %s", portal.ExternalHost)
		}
		fab.refused(t, "", []string{"admin", "app", "show", "web"}, "There is no application 'web' in fabrikam.com")

		// Only fabrikam's connector runs: it serves fabrikam's app and
		// never contoso's.
		c.runConnector(t, fab, st)
		resp, body := c.get(t, portal.ExternalHost, "/page")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, backendPage) {
			t.Fatalf("fabrikam's app through fabrikam's connector: %d %s", resp.StatusCode, body)
		}
		resp, body = c.get(t, web.ExternalHost, "/page")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("contoso's app with only fabrikam's connector running: %d %s", resp.StatusCode, body)
		}
		mustContain(t, "502 page", body, "(error no_connector")
		story := c.requestStory(t, c.admin, resp.Header.Get("Sallyport-Request-Id"))
		mustContain(t, "the request's story", story.Message, "No active connector in group 'Default' of contoso.com can serve application 'web'")
	})
}

// checkStateDir checks a registered connector's state directory: its
// files, the private key's mode, and that the password was not written.
func checkStateDir(t *testing.T, dir, password string) {
	t.Helper()
	// The certificate and key files are the ones trust.json names.
	var named struct {
		CertFile    string `json:"cert_file"`
		KeyLocation string `json:"key_location"`
	}
	rawTrust, _ := os.ReadFile(filepath.Join(dir, "trust.json"))
	json.Unmarshal(rawTrust, &named)
	keyFile := strings.TrimPrefix(named.KeyLocation, "file:")
	for _, f := range []string{"trust.json", keyFile, named.CertFile, "cloud-ca.pem", "register.log"} {
		if f == "" {
			t.Errorf("trust.json names no certificate or key file: %s", rawTrust)
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("state directory: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, keyFile)); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", keyFile, fi.Mode().Perm())
	}
	noSecretIn(t, dir, password, "the password")
	var trust map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "trust.json"))
	if err := json.Unmarshal(raw, &trust); err != nil {
		t.Errorf("trust.json: %v", err)
	}
	for k, v := range trust {
		if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "token") {
			t.Errorf("trust.json has a field %s = %v", k, v)
		}
	}
}

// TestRegisterChecksLocalStateFirst: a state directory that cannot be
// created is refused before the cloud is asked (issue 20, defect 1: the
// cloud used to register a connector that no machine held).
func TestRegisterChecksLocalStateFirst(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	site := newRunner(t, "site")
	file := filepath.Join(site.dir, "a-file")
	writeFile(t, file, "not a directory\n", 0o644)
	dangling := filepath.Join(site.dir, "dangling")
	if err := os.Symlink(filepath.Join(site.dir, "missing", "connector"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{
		filepath.Join(file, "connector"), // under a regular file
		dangling,                         // a link to a directory that is not there (reading it finds nothing, creating it fails)
	} {
		_, res := c.register(t, site, dir, contosoAdmin, contosoPW)
		checkRefusal(t, res, "Connector registration failed before contacting the cloud: the state directory "+dir+" cannot be created", "--dir")
		if cs := c.connectors(t, c.admin); len(cs) != 0 {
			t.Errorf("the cloud lists connectors after a registration into %s refused on this machine: %+v", dir, cs)
		}
		if ev := c.admin.ok(t, "", "cloud", "events", "--data-dir", c.dataDir).stdout; strings.Contains(ev, "2100") {
			t.Errorf("the cloud recorded event 2100 for a registration into %s refused on this machine:\n%s", dir, ev)
		}
	}
	// The same check sees event 2100 once a registration does succeed.
	c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	if ev := c.admin.ok(t, "", "cloud", "events", "--data-dir", c.dataDir).stdout; !strings.Contains(ev, "2100") {
		t.Errorf("no event 2100 in the cloud's events after a registration:\n%s", ev)
	}
}
