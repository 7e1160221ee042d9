package cloud

import (
	"net/http"
	"strings"
	"testing"
)

// TestConsoleUpdates: the updates page shows the releases, which of the
// tenant's connectors runs what, its turns and halts, and nothing of
// another tenant's.
func TestConsoleUpdates(t *testing.T) {
	env := startMyApps(t)
	updatesFixture(t, env.srv)
	admin := env.browser(t)
	admin.homeSignIn("admin@contoso.com", testPassword)
	fabAdmin := env.browser(t)
	fabAdmin.homeSignIn("admin@fabrikam.com", testPassword)
	tests := []struct {
		name string
		b    *browser
		want []string
		not  []string
	}{
		{"contoso", admin, []string{
			"<h1>Updates</h1>", `aria-current="page">Updates`,
			`id="release-1.1.0-linux-amd64"><td>1.1.0</td><td>linux/amd64</td><td>major (automatic)</td>`,
			`<span class="bad">halted</span> in Branch`, "Fixes &lt;the&gt; tunnel", `<td>minor (on request)</td>`,
			`id="connector-c_a"`, `>updating (1.1.0)</td>`,
			`id="connector-c_b"`, `>up to date</td>`,
			`id="connector-c_c"`, `>update halted (1.1.0)</td>`,
			`id="connector-c_d"`, `>unknown version</td>`,
			`<tr class="turn"><td>Default</td><td>alpha <span class="help">c_a</span></td><td>1.1.0</td>`,
			`<tr class="halt"><td>Branch</td><td class="bad">1.1.0 halted</td><td>c_c</td>`,
		}, []string{"foxtrot", `id="connector-c_f"`}},
		{"fabrikam", fabAdmin, []string{
			`id="connector-c_f"`, `>update available (1.1.0)</td>`, "the next connector may take the turn", `id="no-halts"`, `<span class="ok">not halted</span>`,
		}, []string{"alpha", "charlie", `id="connector-c_a"`, "Branch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, page := tt.b.do("GET", cloudURL+"/admin/updates", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /admin/updates: %s:\n%s", resp.Status, page)
			}
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("the page lacks %q:\n%s", w, page)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(page, n) {
					t.Errorf("the page shows %q:\n%s", n, page)
				}
			}
		})
	}
}
