package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestJSONOutput: every command documented with --json prints JSON, among
// them 'admin login' (which printed a sentence) and 'cloud init' and
// 'connector register', which gained --json (issue 20, defect 6).
func TestJSONOutput(t *testing.T) {
	t.Parallel()
	fresh := newRunner(t, "json-init")
	pwFile := filepath.Join(fresh.dir, "admin-password")
	writeFile(t, pwFile, contosoPW+"\n", 0o600)

	c := startCloud(t)
	r := c.admin
	dir := filepath.Join(r.dir, "json-connector")
	c.publish(t, r, "web", "http://127.0.0.1:9/")
	st := c.mustRegister(t, r, filepath.Join(r.dir, "first-connector"), contosoAdmin, contosoPW)

	tests := []struct {
		name    string
		stdin   string
		args    []string
		anyCode bool     // the command may exit non-zero (the doctor's verdict)
		fields  []string // keys the JSON object must hold
	}{
		{"cloud init", "", []string{"cloud", "init", "--data-dir", filepath.Join(fresh.dir, "cloud"), "--name", cloudName, "--tenant", contoso, "--admin", contosoAdmin, "--admin-password-file", pwFile}, false,
			[]string{"name", "data_dir", "ca_file", "ca_fingerprint", "release_key_id", "kek_file"}},
		{"admin login", contosoPW + "\n", []string{"admin", "login", "--cloud", c.url, "--user", contosoAdmin, "--password-stdin"}, false,
			[]string{"cloud", "user", "tenant", "expires_at", "profile"}},
		{"connector register", contosoPW + "\n", []string{"connector", "register", "--cloud", c.url, "--dir", dir, "--user", contosoAdmin, "--password-stdin", "--ca-file", c.caFile}, false,
			[]string{"connector_id", "tenant", "group", "thumbprint", "expires_at", "dir"}},
		{"version", "", []string{"version"}, false, []string{"version"}},
		{"connector status", "", []string{"connector", "status", "--dir", st.dir}, true, nil},
		{"connector events", "", []string{"connector", "events", "--dir", st.dir}, false, nil},
		{"connector doctor", "", []string{"connector", "doctor", "--dir", st.dir}, true, []string{"steps", "verdict"}},
		{"cloud release list", "", []string{"cloud", "release", "list", "--data-dir", c.dataDir}, false, nil},
		{"cloud tenant domain list", "", []string{"cloud", "tenant", "domain", "list", "--data-dir", c.dataDir, "--tenant", contoso}, false, nil},
		{"admin user list", "", []string{"admin", "user", "list"}, false, nil},
		{"admin group create", "", []string{"admin", "group", "create", "Branch"}, false, nil},
		{"admin group list", "", []string{"admin", "group", "list"}, false, nil},
		{"admin app show", "", []string{"admin", "app", "show", "web"}, false, nil},
		{"admin app list", "", []string{"admin", "app", "list"}, false, nil},
		{"admin app diagnose", "", []string{"admin", "app", "diagnose", "web"}, false, nil},
		{"admin connector list", "", []string{"admin", "connector", "list"}, false, nil},
		{"admin connector show", "", []string{"admin", "connector", "show", st.id}, false, nil},
		{"admin token create", "", []string{"admin", "token", "create"}, false, []string{"token"}},
		{"admin token list", "", []string{"admin", "token", "list"}, false, nil},
		{"admin domain list", "", []string{"admin", "domain", "list"}, false, nil},
		{"admin app delete", "", []string{"admin", "app", "delete", "web"}, false, nil},
		{"admin group delete", "", []string{"admin", "group", "delete", "Branch"}, false, nil},
	}
	for _, tt := range tests {
		// In order: later commands use what earlier ones made.
		res := r.run(t, tt.stdin, append(tt.args, "--json")...)
		if res.code != 0 && !tt.anyCode {
			t.Errorf("%s --json exited %d:\n%s", tt.name, res.code, res)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(res.stdout), &v); err != nil {
			t.Errorf("%s --json printed no JSON (%v):\n%s", tt.name, err, res)
			continue
		}
		obj, _ := v.(map[string]any)
		for _, f := range tt.fields {
			if _, ok := obj[f]; !ok {
				t.Errorf("%s --json lacks %q: %s", tt.name, f, strings.TrimSpace(res.stdout))
			}
		}
	}
}
