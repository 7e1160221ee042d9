package cloud

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/console"
)

// consolePath turns a route pattern ("GET /admin/apps/{name}") into a
// method and a path to request.
func consolePath(pattern string) (string, string) {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{$}", "")
	for strings.Contains(path, "{") {
		i := strings.Index(path, "{")
		j := strings.Index(path[i:], "}")
		path = path[:i] + "x" + path[i+j+1:]
	}
	return method, path
}

// TestConsoleRefusesNonAdmins: every page and every form of the admin
// center (the console's own list of its routes) answers 403 to a user
// who is no administrator, sends a signed-out browser to the sign-in (a
// GET) or refuses it (a POST), and refuses an administrator's form posted
// without its CSRF token.
func TestConsoleRefusesNonAdmins(t *testing.T) {
	env := startMyApps(t)
	routes := env.srv.newConsole(http.NotFoundHandler()).Patterns()
	if len(routes) == 0 {
		t.Fatal("the console lists no routes")
	}
	alice := env.browser(t)
	if resp, page := alice.homeSignIn("alice@contoso.com", testPassword); resp.StatusCode != 200 || strings.Contains(page, `id="admin-center"`) {
		t.Fatalf("alice's My Apps: %s, and it links the admin center (she is no administrator):\n%s", resp.Status, page)
	}
	admin := env.browser(t)
	resp, page := admin.homeSignIn("admin@contoso.com", testPassword)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="admin-center"`) {
		t.Fatalf("the administrator's My Apps: %s, without the admin center's link:\n%s", resp.Status, page)
	}
	_, home := alice.do("GET", cloudURL+"/", nil)
	aliceCSRF := csrfOf(t, home)
	anon := env.browser(t)
	for _, pattern := range routes {
		method, path := consolePath(pattern)
		t.Run(pattern, func(t *testing.T) {
			form := url.Values{"csrf": {aliceCSRF}}
			resp, page := alice.do(method, cloudURL+path, form)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Global and Application Administrators") {
				t.Errorf("%s %s as a user: %s, want 403 naming the roles:\n%.400s", method, path, resp.Status, page)
			}
			resp, _ = anon.do(method, cloudURL+path, url.Values{})
			want := http.StatusSeeOther
			if method == http.MethodPost {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				t.Errorf("%s %s signed out: %s, want %d", method, path, resp.Status, want)
			}
			if method != http.MethodPost {
				return
			}
			resp, page = admin.do(method, cloudURL+path, url.Values{"csrf": {"spc_wrong"}})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "security token") {
				t.Errorf("%s %s by an administrator without the CSRF token: %s, want 403:\n%.400s", method, path, resp.Status, page)
			}
		})
	}
	resp, page = admin.do("GET", cloudURL+console.Prefix+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "<h1>Overview</h1>") {
		t.Fatalf("the administrator's overview: %s:\n%s", resp.Status, page)
	}
	for k, want := range map[string]string{"Content-Security-Policy": console.CSP, "X-Frame-Options": "DENY"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("overview %s = %q, want %q", k, got, want)
		}
	}
}
