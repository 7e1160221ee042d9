package e2e

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/testnet"
)

// jsonCase is one command run with --json: what it must print.
type jsonCase struct {
	name    string // the command's path, as 'sallyport PATH --help' takes it
	stdin   string
	args    []string // after the path; --json is added
	anyCode bool     // the command may exit non-zero (the doctor's verdict)
	array   bool     // an array (of objects with fields, when not empty), else one object
	fields  []string // keys the object (or each element) must hold
	then    func(t *testing.T, v any)
}

// TestJSONOutput: every command that accepts --json (found in the
// binary's own help, so a new one cannot be missed) prints JSON of the
// shape docs/cli.md and docs/api.md give, among them 'admin login' (which
// printed a sentence) and 'cloud init' and 'connector register', which
// gained --json (issue 20, defect 6). On failure, as docs/cli.md says,
// standard output stays empty and the one sentence goes to standard
// error: no half-written JSON.
func TestJSONOutput(t *testing.T) {
	t.Parallel()
	fresh := newRunner(t, "json-init")
	pwFile := filepath.Join(fresh.dir, "admin-password")
	writeFile(t, pwFile, contosoPW+"\n", 0o600)

	z := dnstest.Start(t)
	c := startCloud(t, "--dns-resolver", z.Addr())
	r := c.admin
	dir := filepath.Join(r.dir, "json-connector")
	web := c.publish(t, r, "web", "http://127.0.0.1:9/")
	st := c.mustRegister(t, r, filepath.Join(r.dir, "first-connector"), contosoAdmin, contosoPW)
	// No connector runs: the edge answers with an error page and keeps
	// the request's story for 'admin request show'.
	resp, _ := c.get(t, web.ExternalHost, "/")
	requestID := resp.Header.Get("Sallyport-Request-Id")
	if requestID == "" {
		t.Fatalf("the edge's error page (%s) has no Sallyport-Request-Id", resp.Status)
	}
	upd := []string{"--dir", st.dir, "--updater-dir", filepath.Join(r.dir, "json-updater"), "--binary", binary,
		"--restart", "signal", "--release-key", filepath.Join(c.dataDir, "release.pub")}
	const domain = "apps.contoso.com"
	// An OpenID provider's discovery document (over TLS with a private
	// CA) is all 'admin idp set' reads.
	idpCA := testnet.NewCA(t)
	idp := httptest.NewUnstartedServer(nil)
	idp.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"issuer": idp.URL, "authorization_endpoint": idp.URL + "/auth", "token_endpoint": idp.URL + "/token",
			"jwks_uri": idp.URL + "/jwks", "response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"}})
	})
	idp.TLS = &tls.Config{Certificates: []tls.Certificate{idpCA.Cert(t, "127.0.0.1")}}
	idp.StartTLS()
	t.Cleanup(idp.Close)
	idpDir := t.TempDir()
	writeFile(t, filepath.Join(idpDir, "secret"), "not-the-real-secret\n", 0o600)
	writeFile(t, filepath.Join(idpDir, "ca.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idpCA.Root.Raw})), 0o644)

	tests := []jsonCase{
		{name: "version", fields: []string{"version", "commit", "build_date", "go", "os", "arch"}},
		{name: "cloud init", args: []string{"--data-dir", filepath.Join(fresh.dir, "cloud"), "--name", cloudName, "--tenant", contoso, "--admin", contosoAdmin, "--admin-password-file", pwFile},
			fields: []string{"name", "data_dir", "tenant", "admin", "ca_file", "ca_fingerprint", "release_key_id", "kek_file"}},
		{name: "cloud events", args: []string{"--data-dir", c.dataDir}, array: true, fields: []string{"id", "level", "message"}},
		{name: "cloud release list", args: []string{"--data-dir", c.dataDir}, array: true},
		{name: "cloud instance list", args: []string{"--data-dir", c.dataDir}, array: true, fields: []string{"id", "alive"}},
		{name: "cloud doctor", args: []string{"--data-dir", c.dataDir}, anyCode: true, fields: []string{"cloud", "data_dir", "steps", "verdict"}},
		{name: "cloud tenant domain list", args: []string{"--data-dir", c.dataDir, "--tenant", contoso}, array: true, fields: []string{"domain", "status"}},
		{name: "admin login", stdin: contosoPW + "\n", args: []string{"--cloud", c.url, "--user", contosoAdmin, "--password-stdin"},
			fields: []string{"cloud", "user", "tenant", "expires_at", "profile"}},
		{name: "connector register", stdin: contosoPW + "\n", args: []string{"--cloud", c.url, "--dir", dir, "--user", contosoAdmin, "--password-stdin", "--ca-file", c.caFile},
			fields: []string{"connector_id", "tenant", "group", "thumbprint", "expires_at", "dir"}},
		{name: "connector status", args: []string{"--dir", st.dir}, anyCode: true, fields: []string{"format_version", "connector_id", "tenant", "cloud_url", "thumbprint", "serial", "expires_at"}},
		{name: "connector events", args: []string{"--dir", st.dir}, array: true, fields: []string{"id", "level", "message"}},
		{name: "connector doctor", args: []string{"--dir", st.dir}, anyCode: true, fields: []string{"steps", "verdict"}},
		{name: "connector update", args: append([]string{"--check"}, upd...), fields: []string{"installed", "os", "arch", "available", "key_id"}},
		{name: "connector update", args: append([]string{"--apply"}, upd...), fields: []string{"outcome", "from", "message"}},
		{name: "connector update events", args: []string{"--dir", st.dir, "--updater-dir", filepath.Join(r.dir, "json-updater")}, array: true, fields: []string{"id", "level", "message"}},
		{name: "admin user create", stdin: "a-long-enough-password\n", args: []string{"ann@contoso.com", "--role", "app-admin", "--password-stdin"}, fields: []string{"id", "name", "role"}},
		{name: "admin user list", array: true, fields: []string{"id", "name", "role"}},
		{name: "admin group create", args: []string{"Branch"}, fields: []string{"id", "name"}},
		{name: "admin group rename", args: []string{"Branch", "Branch2"}, fields: []string{"id", "name"}},
		{name: "admin group list", array: true, fields: []string{"id", "name", "connectors", "apps"}},
		{name: "admin user-group create", args: []string{"Staff"}, fields: []string{"id", "name", "member_count", "created_at"}},
		{name: "admin user-group add-member", args: []string{"Staff", "ann@contoso.com"}, fields: []string{"id", "name", "member_count", "members"}},
		{name: "admin user-group list", array: true, fields: []string{"id", "name", "member_count", "created_at"}},
		{name: "admin user-group show", args: []string{"Staff"}, fields: []string{"id", "name", "member_count", "members"}},
		{name: "admin user show", args: []string{"ann@contoso.com"}, fields: []string{"id", "name", "role", "email", "display_name", "disabled", "mfa_enrolled", "external", "user_groups", "created_at"},
			then: func(t *testing.T, v any) {
				m, _ := v.(map[string]any)
				if gs, _ := m["user_groups"].([]any); len(gs) != 1 || gs[0] != "Staff" {
					t.Errorf("admin user show --json: user_groups = %v, want [Staff]", m["user_groups"])
				}
			}},
		{name: "admin user disable", args: []string{"ann@contoso.com"}, fields: []string{"id", "name", "disabled", "sessions_ended", "note"}},
		{name: "admin user enable", args: []string{"ann@contoso.com"}, fields: []string{"id", "name", "disabled", "sessions_ended", "note"}},
		{name: "admin user reset-mfa", args: []string{"ann@contoso.com"}, fields: []string{"id", "name", "mfa_enrolled", "sessions_ended", "note"}},
		{name: "admin idp set", args: []string{"--issuer", idp.URL, "--client-id", "sallyport", "--client-secret-file", filepath.Join(idpDir, "secret"), "--ca-file", filepath.Join(idpDir, "ca.pem")},
			fields: []string{"issuer", "client_id", "groups_claim", "email_claim", "redirect_uri", "created_at"}},
		{name: "admin idp show", fields: []string{"issuer", "client_id", "redirect_uri", "ca_subjects"}},
		{name: "admin idp delete", fields: []string{"deleted"}},
		{name: "admin tenant show", fields: []string{"tenant", "require_mfa", "session_lifetime", "session_lifetime_seconds", "session_lifetime_default", "session_idle", "session_idle_seconds", "session_idle_default"}},
		{name: "admin tenant set", args: []string{"--session-lifetime", "8h"}, fields: []string{"tenant", "require_mfa", "session_lifetime", "session_idle", "updated_at"}},
		{name: "admin app create", args: []string{"erp", "--internal-url", "http://127.0.0.1:9/erp/"}, fields: []string{"id", "name", "group", "external_host", "external_url", "internal_url", "timeout", "preauth"}},
		{name: "admin app create", args: []string{"open", "--internal-url", "http://127.0.0.1:9/open/", "--pre-auth", "passthrough"}, fields: []string{"id", "name", "preauth", "public_note"}},
		{name: "admin app update", args: []string{"erp", "--timeout", "long"}, fields: []string{"id", "name", "timeout"}},
		{name: "admin app update", args: []string{"erp", "--pre-auth", "passthrough"}, fields: []string{"id", "name", "preauth", "public_note"}},
		{name: "admin app assign", args: []string{"web", "--user-group", "Staff"}, fields: []string{"kind", "name", "created_at", "note"}},
		{name: "admin app show", args: []string{"web"}, fields: []string{"id", "name", "group", "external_host", "internal_url", "preauth", "assignments", "assignments_note"},
			then: func(t *testing.T, v any) {
				m, _ := v.(map[string]any)
				as, _ := m["assignments"].([]any)
				if len(as) != 1 {
					t.Errorf("admin app show --json: assignments = %v, want the one of Staff", m["assignments"])
				}
			}},
		{name: "admin app unassign", args: []string{"web", "--user-group", "Staff"}, fields: []string{"app", "unassigned", "kind"}},
		{name: "admin app list", array: true, fields: []string{"id", "name", "external_host"}},
		{name: "admin app diagnose", args: []string{"web"}, fields: []string{"app", "connectors", "probes", "recent_errors", "findings"}},
		{name: "admin request show", args: []string{requestID}, fields: []string{"request_id", "time", "app", "group"}},
		{name: "admin overview", fields: []string{"time", "attention", "groups", "apps"}},
		{name: "admin events", args: []string{"--request-id", requestID}, fields: []string{"events", "more", "capped"},
			then: func(t *testing.T, v any) {
				m, _ := v.(map[string]any)
				if evs, _ := m["events"].([]any); len(evs) != 1 {
					t.Errorf("admin events --request-id %s --json: events = %v, want the edge's one event 2700", requestID, m["events"])
				}
			}},
		{name: "admin updates", fields: []string{"releases", "connectors", "turns", "halts"}},
		{name: "admin connector list", array: true, fields: []string{"id", "group", "status"}},
		{name: "admin connector show", args: []string{st.id}, fields: []string{"id", "group", "status"}},
		{name: "admin connector move", args: []string{st.id, "--group", "Branch2"}, fields: []string{"id", "group"}},
		{name: "admin token create", fields: []string{"id", "group", "expires_at", "token"}},
		{name: "admin token list", array: true, fields: []string{"id", "group", "expires_at"}},
		{name: "admin domain add", args: []string{domain}, fields: []string{"domain", "status", "txt_name", "txt_value"},
			then: func(t *testing.T, v any) {
				m, _ := v.(map[string]any)
				name, _ := m["txt_name"].(string)
				value, _ := m["txt_value"].(string)
				z.SetTXT(name, value)
			}},
		{name: "admin domain verify", args: []string{domain}, fields: []string{"domain", "status", "verified_by"}},
		{name: "admin domain list", array: true, fields: []string{"domain", "status"}},
		{name: "admin domain delete", args: []string{domain}, fields: []string{"deleted"}},
		{name: "admin app delete", args: []string{"erp"}, fields: []string{"deleted"}},
		{name: "admin app delete", args: []string{"open"}, fields: []string{"deleted"}},
		{name: "admin connector delete", args: []string{st.id}, fields: []string{"deleted"}},
		{name: "admin group delete", args: []string{"Branch2"}, fields: []string{"deleted"}},
		{name: "admin user-group remove-member", args: []string{"Staff", "ann@contoso.com"}, fields: []string{"id", "name", "member_count", "members"}},
		{name: "admin user-group delete", args: []string{"Staff"}, fields: []string{"deleted"}},
		{name: "admin user delete", args: []string{"ann@contoso.com"}, fields: []string{"deleted"}},
	}
	// token revoke needs the id token create printed.
	var tokenID string
	for i := range tests {
		if tests[i].name == "admin token create" {
			tests[i].then = func(t *testing.T, v any) {
				m, _ := v.(map[string]any)
				tokenID, _ = m["id"].(string)
			}
		}
	}

	covered := map[string]bool{}
	for _, tt := range tests {
		// In order: later commands use what earlier ones made.
		args := append(strings.Fields(tt.name), tt.args...)
		res := r.run(t, tt.stdin, append(args, "--json")...)
		covered[tt.name] = true
		if res.code != 0 && !tt.anyCode {
			t.Errorf("%s --json exited %d:\n%s", tt.name, res.code, res)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(res.stdout), &v); err != nil {
			t.Errorf("%s --json printed no JSON (%v):\n%s", tt.name, err, res)
			continue
		}
		checkJSONShape(t, tt, v, res)
		if tt.then != nil {
			tt.then(t, v)
		}
		if tt.name == "admin token create" {
			res := r.run(t, "", "admin", "token", "revoke", tokenID, "--json")
			covered["admin token revoke"] = true
			var v any
			if err := json.Unmarshal([]byte(res.stdout), &v); res.code != 0 || err != nil {
				t.Errorf("admin token revoke --json: exit %d, JSON error %v:\n%s", res.code, err, res)
			} else {
				checkJSONShape(t, jsonCase{name: "admin token revoke", fields: []string{"id", "group", "state", "revoked_at"}}, v, res)
			}
		}
	}

	// Every command that accepts --json is covered above.
	withJSON := commandsWithJSON(t, r, nil)
	if len(withJSON) < 35 {
		t.Errorf("the binary's help shows only %d commands with --json: %v; the help walk is broken", len(withJSON), withJSON)
	}
	for _, path := range withJSON {
		if !covered[strings.Join(path, " ")] {
			t.Errorf("'sallyport %s' accepts --json but TestJSONOutput does not run it: add a case", strings.Join(path, " "))
		}
	}

	// Failures: the sentence on standard error, nothing on standard output.
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"cloud init into a cloud", "", []string{"cloud", "init", "--data-dir", c.dataDir, "--name", cloudName, "--tenant", contoso, "--admin", contosoAdmin}, "init never overwrites an existing cloud"},
		{"cloud events without a directory", "", []string{"cloud", "events"}, "No cloud service directory was given"},
		{"connector status of nothing", "", []string{"connector", "status", "--dir", filepath.Join(r.dir, "nowhere")}, "no usable connector registration"},
		{"connector register with a wrong password", "wrong-password-123\n", []string{"connector", "register", "--cloud", c.url, "--dir", filepath.Join(r.dir, "json-bad"), "--user", contosoAdmin, "--password-stdin", "--ca-file", c.caFile}, "user name or password is wrong"},
		{"admin login with a wrong password", "wrong-password-123\n", []string{"admin", "login", "--cloud", c.url, "--user", contosoAdmin, "--password-stdin"}, "user name or password is wrong"},
		{"admin app show of an unknown app", "", []string{"admin", "app", "show", "nosuch"}, "nosuch"},
		{"admin request show of an unknown id", "", []string{"admin", "request", "show", "0123456789abcdef01234567"}, "knows no failed request"},
		{"a usage error", "", []string{"admin", "app", "show"}, "The command line is not valid"},
	} {
		res := r.run(t, tt.stdin, append(tt.args, "--json")...)
		if res.code != 1 || strings.TrimSpace(res.stdout) != "" || !strings.HasPrefix(res.stderr, "sallyport: ") || !strings.Contains(res.stderr, tt.want) {
			t.Errorf("%s --json: want exit 1, nothing on standard output and one sentence with %q on standard error:\n%s", tt.name, tt.want, res)
		}
	}
}

// checkJSONShape checks v against tt's shape.
func checkJSONShape(t *testing.T, tt jsonCase, v any, res result) {
	t.Helper()
	var objs []any
	if tt.array {
		arr, ok := v.([]any)
		if !ok {
			t.Errorf("%s --json printed %T, want an array:\n%s", tt.name, v, res)
			return
		}
		objs = arr
	} else {
		objs = []any{v}
	}
	for _, o := range objs {
		m, ok := o.(map[string]any)
		if !ok {
			t.Errorf("%s --json: %T where an object belongs:\n%s", tt.name, o, res)
			return
		}
		for _, f := range tt.fields {
			if _, ok := m[f]; !ok {
				t.Errorf("%s --json lacks %q: %s", tt.name, f, strings.TrimSpace(res.stdout))
			}
		}
	}
}

var (
	helpSection = regexp.MustCompile(`(?m)^([A-Z][A-Za-z ]*):\n((?:  .*\n?)*)`)
	helpCommand = regexp.MustCompile(`(?m)^  (\S+)\s`)
)

// commandsWithJSON walks the binary's help from path down and returns
// the paths of the runnable commands whose flags (own or inherited)
// include --json.
func commandsWithJSON(t *testing.T, r *runner, path []string) [][]string {
	t.Helper()
	res := r.run(t, "", append(slices.Clone(path), "--help")...)
	if res.code != 0 {
		t.Fatalf("help of %v:\n%s", path, res)
	}
	var out [][]string
	var subs []string
	json := false
	for _, m := range helpSection.FindAllStringSubmatch(res.stdout, -1) {
		switch m[1] {
		case "Available Commands":
			for _, c := range helpCommand.FindAllStringSubmatch(m[2], -1) {
				if c[1] != "help" && c[1] != "completion" {
					subs = append(subs, c[1])
				}
			}
		case "Flags", "Global Flags":
			json = json || strings.Contains(m[2], "--json ")
		}
	}
	// A group (a command with subcommands) only prints its help, except
	// 'connector update', which is a command too.
	if json && (len(subs) == 0 || strings.Join(path, " ") == "connector update") {
		out = append(out, path)
	}
	for _, s := range subs {
		out = append(out, commandsWithJSON(t, r, append(slices.Clone(path), s))...)
	}
	return out
}
