package cloud

import (
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
)

// adminBrowser signs the contoso.com administrator in at the start page.
func adminBrowser(t *testing.T, env *preauthEnv, user string) *browser {
	t.Helper()
	b := env.browser(t)
	if resp, page := b.homeSignIn(user, testPassword); resp.StatusCode != 200 {
		t.Fatalf("sign-in of %s: %s\n%s", user, resp.Status, page)
	}
	return b
}

// page GETs path of the admin center and wants status, returning the page
// and a form's CSRF token.
func (b *browser) page(path string, status int) (string, string) {
	b.t.Helper()
	resp, page := b.do("GET", cloudURL+path, nil)
	if resp.StatusCode != status {
		b.t.Fatalf("GET %s: %s, want %d:\n%s", path, resp.Status, status, page)
	}
	csrf := ""
	if m := csrfRE.FindStringSubmatch(page); m != nil {
		csrf = m[1]
	}
	return page, csrf
}

// post sends form to path with csrf and wants status; a 303 is followed to
// its page, which is returned.
func (b *browser) post(path, csrf string, form url.Values, status int) string {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", csrf)
	resp, page := b.do("POST", cloudURL+path, form)
	if resp.StatusCode != status {
		b.t.Fatalf("POST %s: %s, want %d:\n%s", path, resp.Status, status, page)
	}
	if status == http.StatusSeeOther {
		loc := resp.Header.Get("Location")
		_, page = b.do("GET", cloudURL+loc, nil)
	}
	return page
}

func wantIn(t *testing.T, page string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks %q:\n%s", w, page)
		}
	}
}

// apiMessage is the sentence the admin API answers to body, as a page
// shows it (HTML-escaped), with the status.
func apiMessage(t *testing.T, env *preauthEnv, method, path string, body any) (int, string) {
	t.Helper()
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	rec, eb := call(t, env.srv, method, path, tok, body)
	if rec.Code < 400 {
		t.Fatalf("%s %s was accepted (%d): the test needs a refusal", method, path, rec.Code)
	}
	return rec.Code, html.EscapeString(eb.Error.Message)
}

// TestConsoleApps: the applications pages show the API's applications of
// the tenant only, publish one (a refusal keeps what was typed, with the
// API's sentence and status), change it, assign and unassign, test it,
// and delete it after a confirmation.
func TestConsoleApps(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	st := env.srv.store
	b := adminBrowser(t, env, "admin@contoso.com")

	page, _ := b.page("/admin/apps", 200)
	wantIn(t, page, `id="app-web"`, `id="app-hr"`, `id="app-pub"`, `href="/admin/apps/web"`, "passthrough", "ready: 1 active connector")
	if strings.Contains(page, "fab") {
		t.Errorf("the list shows fabrikam.com's application:\n%s", page)
	}

	page, csrf := b.page("/admin/apps/new", 200)
	wantIn(t, page, "NAME-contoso.sallyport.localhost", `<option value="Default" selected>`, `for="internal_url"`)

	// A refusal: the form comes back with what was typed and the API's sentence.
	bad := url.Values{"name": {"intranet"}, "internal_url": {"ftp://intranet.corp/"}, "group": {"Default"}, "timeout": {"long"},
		"preauth": {"passthrough"}, "description": {"Our <intranet>"}}
	status, msg := apiMessage(t, env, "POST", "/apps", api.CreateAppRequest{Name: "intranet", InternalURL: "ftp://intranet.corp/"})
	page = b.post("/admin/apps", csrf, bad, status)
	wantIn(t, page, `id="error"`, msg, `value="intranet"`, `value="ftp://intranet.corp/"`, `value="Our &lt;intranet&gt;"`,
		`<option value="long" selected>`, `<option value="passthrough" selected>`)

	// Published.
	good := url.Values{"name": {"intranet"}, "internal_url": {"http://intranet.corp/"}, "group": {"Default"}, "timeout": {"long"},
		"preauth": {"sallyport"}, "description": {"News"}, "session_affinity": {"on"}}
	page = b.post("/admin/apps", csrf, good, http.StatusSeeOther)
	wantIn(t, page, `id="flash"`, "Published &#39;intranet&#39; at https://intranet-contoso.sallyport.localhost", "<h1>Application intranet</h1>")
	a, err := st.AppByName(ctx, env.tenant.ID, "intranet")
	if err != nil || a.InternalURL != "http://intranet.corp/" || a.Timeout != "long" || !a.Affinity || a.Description != "News" || a.PreAuth != PreAuthSallyport {
		t.Fatalf("the store's intranet: %+v, %v", a, err)
	}

	// Changed; a refusal keeps what was typed.
	edit := url.Values{"internal_url": {"http://intranet2.corp/"}, "group": {"Default"}, "timeout": {"default"}, "preauth": {"sallyport"},
		"backend_proxy": {"socks://proxy"}, "description": {"Changed"}, "keep_authorization": {"on"}}
	status, msg = apiMessage(t, env, "PATCH", "/apps/intranet", map[string]string{"backend_proxy": "socks://proxy"})
	page = b.post("/admin/apps/intranet", csrf, edit, status)
	wantIn(t, page, `id="error"`, msg, `value="http://intranet2.corp/"`, `value="socks://proxy"`, `value="Changed"`)
	edit.Set("backend_proxy", "")
	page = b.post("/admin/apps/intranet", csrf, edit, http.StatusSeeOther)
	wantIn(t, page, "Saved &#39;intranet&#39;", `value="http://intranet2.corp/"`)
	a, _ = st.AppByName(ctx, env.tenant.ID, "intranet")
	if a.InternalURL != "http://intranet2.corp/" || a.Timeout != "default" || a.Affinity || !a.KeepAuthorization || a.Description != "Changed" {
		t.Fatalf("the store's intranet after the change: %+v", a)
	}

	// Assignments: a user and a user group; an unknown user is the API's 404.
	status, msg = apiMessage(t, env, "POST", "/apps/intranet/assignments", api.AssignRequest{User: "nobody@contoso.com"})
	page = b.post("/admin/apps/intranet/assignments", csrf, url.Values{"kind": {"user"}, "assignee": {"nobody@contoso.com"}}, status)
	wantIn(t, page, `id="error"`, msg)
	b.post("/admin/apps/intranet/assignments", csrf, url.Values{"kind": {"user"}, "assignee": {"alice@contoso.com"}}, http.StatusSeeOther)
	page = b.post("/admin/apps/intranet/assignments", csrf, url.Values{"kind": {"user-group"}, "assignee": {"Staff"}}, http.StatusSeeOther)
	wantIn(t, page, "Assigned the user group Staff", `id="assignment-user-alice@contoso.com"`, `id="assignment-user-group-Staff"`)
	as, err := st.ListAssignments(ctx, env.tenant.ID, a.ID)
	if err != nil || len(as) != 2 {
		t.Fatalf("the store's assignments of intranet: %+v, %v", as, err)
	}
	page, csrf = b.page("/admin/apps/intranet/assignments/users/alice@contoso.com/delete", 200)
	wantIn(t, page, "alice@contoso.com will no longer be given", `action="/admin/apps/intranet/assignments/users/alice@contoso.com/delete"`)
	page = b.post("/admin/apps/intranet/assignments/users/alice@contoso.com/delete", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Unassigned the user alice@contoso.com")
	if as, _ := st.ListAssignments(ctx, env.tenant.ID, a.ID); len(as) != 1 || as[0].UserGroupID == "" {
		t.Fatalf("after unassigning alice: %+v", as)
	}

	// Test: healthy, then with its backend down, the failing step marked
	// with the API's sentence.
	page = b.post("/admin/apps/web/test", csrf, nil, 200)
	wantIn(t, page, "No step failed, but one warns", `data-result="passed"`, `data-result="warning"`, "Only one connector")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/"
	ln.Close()
	b.post("/admin/apps", csrf, url.Values{"name": {"down"}, "internal_url": {down}, "group": {"Default"}, "timeout": {"default"}, "preauth": {"passthrough"}}, http.StatusSeeOther)
	if resp, body := b.do("GET", "https://down-contoso.sallyport.localhost/", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("the down application answered %s, want 502:\n%s", resp.Status, body)
	}
	page = b.post("/admin/apps/down/test", csrf, nil, 200)
	wantIn(t, page, "A step failed", `id="failing-step"`, "Requests reach the backend", "The last failed request")
	i, j := strings.Index(page, `id="failing-step"`), strings.Index(page, "Requests reach the backend")
	if i < j || strings.Count(page, `id="failing-step"`) != 1 {
		t.Errorf("the failing step marked is not 'Requests reach the backend':\n%s", page)
	}
	errs := env.srv.appErrors.recent(mustApp(t, env, "down").ID)
	if len(errs) == 0 {
		t.Fatal("no error recorded for down")
	}
	wantIn(t, page, html.EscapeString(errs[len(errs)-1].Message))

	// Deleted after its confirmation.
	page, csrf = b.page("/admin/apps/intranet/delete", 200)
	wantIn(t, page, "https://intranet-contoso.sallyport.localhost", `action="/admin/apps/intranet/delete"`)
	page = b.post("/admin/apps/intranet/delete", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Deleted application &#39;intranet&#39;")
	if _, err := st.AppByName(ctx, env.tenant.ID, "intranet"); err == nil {
		t.Fatal("intranet is still in the store")
	}
	// Another tenant's application is the API's 404.
	page, _ = b.page("/admin/apps/fab", http.StatusNotFound)
	wantIn(t, page, "There is no application &#39;fab&#39; in contoso.com")
}

func mustApp(t *testing.T, env *preauthEnv, name string) struct{ ID string } {
	t.Helper()
	a, err := env.srv.store.AppByName(t.Context(), env.tenant.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return struct{ ID string }{a.ID}
}
