package cloud

import (
	"encoding/json"
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/dnstest"
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
	return apiMessageAs(t, env, "admin@contoso.com", method, path, body)
}

// apiMessageAs is apiMessage for user.
func apiMessageAs(t *testing.T, env *preauthEnv, user, method, path string, body any) (int, string) {
	t.Helper()
	tok := login(t, env.srv, user, testPassword)
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
	// The certificate its host gets, from the API's answer.
	wantIn(t, page, `<dd id="cert-source">the cloud CA&#39;s (trusted only where the cloud CA is installed)</dd>`, "intranet-contoso.sallyport.localhost", `id="cert-expiry"`, "days left)")
	a, _ = st.AppByName(ctx, env.tenant.ID, "intranet")
	if a.InternalURL != "http://intranet2.corp/" || a.Timeout != "default" || a.Affinity || !a.KeepAuthorization || a.Description != "Changed" {
		t.Fatalf("the store's intranet after the change: %+v", a)
	}

	// Assignments: a user and a user group; an unknown user is the API's 404.
	status, msg = apiMessage(t, env, "POST", "/apps/intranet/assignments", api.AssignRequest{User: "nobody@contoso.com"})
	page = b.post("/admin/apps/intranet/assignments", csrf, url.Values{"kind": {"user"}, "assignee": {"nobody@contoso.com"}}, status)
	wantIn(t, page, `id="error"`, msg, `id="assignee" name="assignee" value="nobody@contoso.com"`)
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
	wantIn(t, page, "A step failed", `id="failing-step"`, "The backend answers a test request", "A test request to "+down, "Requests reach the backend", "The last failed request")
	i, j, k := strings.Index(page, `id="failing-step"`), strings.Index(page, "The backend answers a test request"), strings.Index(page, "Requests reach the backend")
	if i < j || i > k || strings.Count(page, `id="failing-step"`) != 1 {
		t.Errorf("the failing step marked is not 'The backend answers a test request':\n%s", page)
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

// TestConsoleUsers: the users pages show the API's users with their role,
// status, account and second factor, create one (a refusal keeps what was
// typed, never the password), disable, enable, reset the second factor
// and delete after a confirmation; the API's refusal of an action on the
// administrator's own account is shown on the page.
func TestConsoleUsers(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	st := env.srv.store
	b := adminBrowser(t, env, "admin@contoso.com")

	page, _ := b.page("/admin/users", 200)
	wantIn(t, page, `id="user-alice@contoso.com"`, `href="/admin/users/alice@contoso.com"`, "Global Administrator", "Alice")
	if strings.Contains(page, "fabrikam") {
		t.Errorf("the list shows fabrikam.com's users:\n%s", page)
	}

	page, csrf := b.page("/admin/users/new", 200)
	wantIn(t, page, `type="password"`, `<option value="user" selected>`)
	bad := url.Values{"name": {"carol@contoso.com"}, "password": {"short"}, "role": {"app-admin"}, "email": {"carol@contoso.com"}, "display_name": {"Carol"}}
	status, msg := apiMessage(t, env, "POST", "/users", api.CreateUserRequest{Name: "carol@contoso.com", Role: "app-admin", Password: "short"})
	page = b.post("/admin/users", csrf, bad, status)
	wantIn(t, page, `id="error"`, msg, `value="carol@contoso.com"`, `value="Carol"`, `<option value="app-admin" selected>`)
	if strings.Contains(page, `value="short"`) {
		t.Error("the refused form shows the password typed")
	}
	bad.Set("password", testPassword)
	page = b.post("/admin/users", csrf, bad, http.StatusSeeOther)
	wantIn(t, page, "Created the user carol@contoso.com (Application Administrator)", "<h1>User carol@contoso.com</h1>", `id="user-mfa">none`)
	carol, err := st.UserByName(ctx, "carol@contoso.com")
	if err != nil || carol.Role != "app-admin" || carol.DisplayName != "Carol" || carol.Email != "carol@contoso.com" {
		t.Fatalf("the store's carol: %+v, %v", carol, err)
	}

	page = b.post("/admin/users/carol@contoso.com/disable", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Disabled the user carol@contoso.com (0 sessions ended)", `id="user-status"><span class="bad">disabled`)
	if u, _ := st.UserByName(ctx, "carol@contoso.com"); !u.Disabled {
		t.Fatal("carol is not disabled in the store")
	}
	page = b.post("/admin/users/carol@contoso.com/enable", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Enabled the user carol@contoso.com.", `id="user-status">enabled`)
	page = b.post("/admin/users/carol@contoso.com/reset-mfa", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Reset the second factor of the user carol@contoso.com")

	// The API refuses an action on one's own account: its sentence, its status.
	status, msg = apiMessage(t, env, "POST", "/users/admin@contoso.com/disable", nil)
	page = b.post("/admin/users/admin@contoso.com/disable", csrf, nil, status)
	wantIn(t, page, `id="error"`, msg, "<h1>User admin@contoso.com</h1>")

	page, csrf = b.page("/admin/users/carol@contoso.com/delete", 200)
	wantIn(t, page, `action="/admin/users/carol@contoso.com/delete"`, "cannot be undone")
	page = b.post("/admin/users/carol@contoso.com/delete", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Deleted the user carol@contoso.com")
	if _, err := st.UserByName(ctx, "carol@contoso.com"); err == nil {
		t.Fatal("carol is still in the store")
	}
}

// TestConsoleUserGroups: the user groups pages list, create (a refusal
// keeps the name typed), add and remove members and delete after a
// confirmation; an Application Administrator gets the API's refusal, 403.
func TestConsoleUserGroups(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	st := env.srv.store
	b := adminBrowser(t, env, "admin@contoso.com")

	page, csrf := b.page("/admin/user-groups", 200)
	wantIn(t, page, `id="user-group-Staff"`, `href="/admin/user-groups/Staff"`)
	status, msg := apiMessage(t, env, "POST", "/user-groups", api.CreateUserGroupRequest{Name: "Staff"})
	page = b.post("/admin/user-groups", csrf, url.Values{"name": {"Staff"}}, status)
	wantIn(t, page, `id="error"`, msg, `value="Staff"`)
	page = b.post("/admin/user-groups", csrf, url.Values{"name": {"Finance"}}, http.StatusSeeOther)
	wantIn(t, page, "Created the user group &#39;Finance&#39;", "<h1>User group Finance</h1>", "No member yet")

	status, msg = apiMessage(t, env, "POST", "/user-groups/Finance/members", api.AddMemberRequest{User: "nobody@contoso.com"})
	page = b.post("/admin/user-groups/Finance/members", csrf, url.Values{"user": {"nobody@contoso.com"}}, status)
	wantIn(t, page, `id="error"`, msg, `value="nobody@contoso.com"`)
	page = b.post("/admin/user-groups/Finance/members", csrf, url.Values{"user": {"bob@contoso.com"}}, http.StatusSeeOther)
	wantIn(t, page, "Added bob@contoso.com to the user group &#39;Finance&#39; (1 member)", `id="member-bob@contoso.com"`)
	g, err := st.UserGroupByName(ctx, env.tenant.ID, "Finance")
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := st.ListUserGroupMembers(ctx, env.tenant.ID, g.ID); err != nil || len(ms) != 1 || ms[0].ID != env.bob.ID {
		t.Fatalf("Finance's members in the store: %+v, %v", ms, err)
	}
	page = b.post("/admin/user-groups/Finance/members/bob@contoso.com/remove", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Removed bob@contoso.com from the user group &#39;Finance&#39; (0 members)", "No member yet")

	page, csrf = b.page("/admin/user-groups/Finance/delete", 200)
	wantIn(t, page, `action="/admin/user-groups/Finance/delete"`)
	page = b.post("/admin/user-groups/Finance/delete", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Deleted the user group &#39;Finance&#39;")
	if _, err := st.UserGroupByName(ctx, env.tenant.ID, "Finance"); err == nil {
		t.Fatal("Finance is still in the store")
	}

	// An Application Administrator: the API's 403 sentence, not a crash.
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/users", tok, api.CreateUserRequest{Name: "dan@contoso.com", Role: "app-admin", Password: testPassword}); rec.Code != 201 {
		t.Fatalf("create dan: %d %s", rec.Code, eb.Error.Message)
	}
	dan := adminBrowser(t, env, "dan@contoso.com")
	page, csrf = dan.page("/admin/user-groups", 200)
	wantIn(t, page, `id="user-group-Staff"`, "Only Global Administrators change user groups")
	status, msg = apiMessageAs(t, env, "dan@contoso.com", "POST", "/user-groups", api.CreateUserGroupRequest{Name: "Sales"})
	if status != http.StatusForbidden {
		t.Fatalf("POST /user-groups as an Application Administrator: %d, want 403", status)
	}
	page = dan.post("/admin/user-groups", csrf, url.Values{"name": {"Sales"}}, http.StatusForbidden)
	wantIn(t, page, `id="error"`, msg, `value="Sales"`)
	page = dan.post("/admin/user-groups/Staff/members", csrf, url.Values{"user": {"bob@contoso.com"}}, http.StatusForbidden)
	wantIn(t, page, `id="error"`, msg, `id="member-alice@contoso.com"`)
	page = dan.post("/admin/user-groups/Staff/delete", csrf, nil, http.StatusForbidden)
	wantIn(t, page, msg)
	if _, err := st.UserGroupByName(ctx, env.tenant.ID, "Sales"); err == nil {
		t.Fatal("an Application Administrator created a user group")
	}
	// The users list is open to Application Administrators, a user's page is not.
	page, _ = dan.page("/admin/users", 200)
	wantIn(t, page, `id="user-alice@contoso.com"`, `id="global-only"`)
	if strings.Contains(page, `href="/admin/users/`) {
		t.Errorf("an Application Administrator's users list links pages the API refuses them:\n%s", page)
	}
	page, _ = dan.page("/admin/users/alice@contoso.com", http.StatusForbidden)
	wantIn(t, page, "Global Administrator")
}

// TestConsoleIdentityProvider: the identity provider page shows the
// redirect URI to copy before any provider is set, sets one (a refusal
// keeps what was typed, never the secret), shows it without its secret,
// and removes it after a confirmation; an Application Administrator gets
// the API's 403 sentence.
func TestConsoleIdentityProvider(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	st := env.srv.store
	idp := startFakeIdP(t)
	b := adminBrowser(t, env, "admin@contoso.com")
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/users", tok, api.CreateUserRequest{Name: "dan@contoso.com", Role: "app-admin", Password: testPassword}); rec.Code != 201 {
		t.Fatalf("create dan: %d %s", rec.Code, eb.Error.Message)
	}
	dan := adminBrowser(t, env, "dan@contoso.com") // before the provider: then it signs in there

	page, csrf := b.page("/admin/idp", 200)
	wantIn(t, page, `id="no-idp"`, `<code id="redirect-uri">`+env.srv.redirectURI()+`</code>`, `data-copy="redirect-uri"`, `value="groups"`)

	form := url.Values{"issuer": {strings.TrimSuffix(idp.issuer, "/")}, "client_id": {fakeClientID}, "client_secret": {fakeClientSecret},
		"groups_claim": {"roles"}, "email_claim": {""}, "ca_pem": {string(idp.caPEM)}}
	roles := "roles"
	status, msg := apiMessage(t, env, "PUT", "/idp", api.SetIdentityProviderRequest{Issuer: form.Get("issuer"), ClientID: fakeClientID,
		ClientSecret: fakeClientSecret, CAPEM: string(idp.caPEM), GroupsClaim: &roles})
	page = b.post("/admin/idp", csrf, form, status)
	wantIn(t, page, `id="error"`, msg, `value="`+form.Get("issuer")+`"`, `value="roles"`, `id="no-idp"`)
	if strings.Contains(page, fakeClientSecret) {
		t.Error("the refused form shows the client secret")
	}

	form.Set("issuer", idp.issuer)
	page = b.post("/admin/idp", csrf, form, http.StatusSeeOther)
	wantIn(t, page, "Sign-in for your tenant&#39;s applications now goes to "+idp.issuer, `<dd id="idp-issuer">`+idp.issuer+`</dd>`,
		`<dd id="idp-groups-claim">roles</dd>`, `<dd id="idp-client-id">`+fakeClientID+`</dd>`, env.srv.redirectURI())
	if strings.Contains(page, fakeClientSecret) {
		t.Error("the page shows the client secret")
	}
	p, err := st.IdentityProviderOf(ctx, env.tenant.ID)
	if err != nil || p.Issuer != idp.issuer || p.ClientID != fakeClientID || p.GroupsClaim != "roles" {
		t.Fatalf("the store's provider: %+v, %v", p, err)
	}

	// An Application Administrator: the API's refusal.
	status, msg = apiMessageAs(t, env, "dan@contoso.com", "GET", "/idp", nil)
	page, _ = dan.page("/admin/idp", status)
	wantIn(t, page, `id="error"`, msg)

	page, csrf = b.page("/admin/idp/delete", 200)
	wantIn(t, page, idp.issuer, `action="/admin/idp/delete"`)
	page = b.post("/admin/idp/delete", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Removed the identity provider", `id="no-idp"`)
	if _, err := st.IdentityProviderOf(ctx, env.tenant.ID); err == nil {
		t.Fatal("the provider is still in the store")
	}
}

// TestConsoleDomains: the domains page adds a domain and shows the TXT
// record to create (with copy buttons), shows the API's sentence when
// Verify finds no record, proves it when the record is there, offers it on
// the new-application form, and deletes it after a confirmation (the
// API's refusal while an application is published under it shown).
func TestConsoleDomains(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	st := env.srv.store
	z := dnstest.Start(t)
	env.srv.resolver = txtResolver{addr: z.Addr()}
	if _, err := st.TenantByDomain(ctx, "contoso.com"); err != nil { // orders the write before the handlers' store calls
		t.Fatal(err)
	}
	b := adminBrowser(t, env, "admin@contoso.com")

	page, csrf := b.page("/admin/domains", 200)
	wantIn(t, page, "No domain yet", `id="domain"`)
	page = b.post("/admin/domains", csrf, url.Values{"domain": {"apps.contoso.com"}}, http.StatusSeeOther)
	claim, err := st.DomainOf(ctx, env.tenant.ID, "apps.contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	var ds []api.Domain
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, _ := call(t, env.srv, "GET", "/domains", tok, nil); rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &ds) != nil || len(ds) != 1 {
		t.Fatalf("GET /domains: %d %s", rec.Code, rec.Body)
	}
	d := ds[0]
	wantIn(t, page, "Added apps.contoso.com: create the TXT record _sallyport.apps.contoso.com", `id="domain-apps.contoso.com"`, "pending",
		`<code id="txt-name-0">_sallyport.apps.contoso.com</code>`, `<code id="txt-value-0">`+d.TXTValue+`</code>`,
		`data-copy="txt-name-0"`, `data-copy="txt-value-0"`, `action="/admin/domains/apps.contoso.com/verify"`)
	if claim.Verified() {
		t.Fatal("the claim is verified before any record")
	}

	status, msg := apiMessage(t, env, "POST", "/domains", api.CreateDomainRequest{Domain: "apps.contoso.com"})
	page = b.post("/admin/domains", csrf, url.Values{"domain": {"apps.contoso.com"}}, status)
	wantIn(t, page, `id="error"`, msg, `value="apps.contoso.com"`)

	status, msg = apiMessage(t, env, "POST", "/domains/apps.contoso.com/verify", nil)
	page = b.post("/admin/domains/apps.contoso.com/verify", csrf, nil, status)
	wantIn(t, page, `id="error" data-domain="apps.contoso.com"`, msg, "No TXT record _sallyport.apps.contoso.com was found")

	z.SetTXT("_sallyport.apps.contoso.com", d.TXTValue)
	page = b.post("/admin/domains/apps.contoso.com/verify", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "apps.contoso.com is proven", "proven")
	if claim, _ := st.DomainOf(ctx, env.tenant.ID, "apps.contoso.com"); !claim.Verified() {
		t.Fatal("the claim is not verified in the store")
	}

	// The new-application form offers it; an application published under it.
	page, csrf = b.page("/admin/apps/new", 200)
	wantIn(t, page, `<option value="apps.contoso.com">under apps.contoso.com (proven)</option>`)
	b.post("/admin/apps", csrf, url.Values{"name": {"hr2"}, "internal_url": {"http://hr2.corp/"}, "host_domain": {"apps.contoso.com"}, "host_name": {"hr"},
		"group": {"Default"}, "timeout": {"default"}, "preauth": {"sallyport"}}, http.StatusSeeOther)
	if a, err := st.AppByName(ctx, env.tenant.ID, "hr2"); err != nil || a.ExternalHost != "hr.apps.contoso.com" {
		t.Fatalf("hr2 in the store: %+v, %v", a, err)
	}

	page, csrf = b.page("/admin/domains/apps.contoso.com/delete", 200)
	wantIn(t, page, `action="/admin/domains/apps.contoso.com/delete"`, "no application can be published under it")
	status, msg = apiMessage(t, env, "DELETE", "/domains/apps.contoso.com", nil)
	page = b.post("/admin/domains/apps.contoso.com/delete", csrf, nil, status)
	wantIn(t, page, `id="error"`, msg)
	b.post("/admin/apps/hr2/delete", csrf, nil, http.StatusSeeOther)
	page = b.post("/admin/domains/apps.contoso.com/delete", csrf, nil, http.StatusSeeOther)
	wantIn(t, page, "Deleted the domain apps.contoso.com", "No domain yet")
	if _, err := st.DomainOf(ctx, env.tenant.ID, "apps.contoso.com"); err == nil {
		t.Fatal("the domain is still in the store")
	}
}

// TestConsoleNetworkApps: the admin center creates a network application
// from its type and a textarea of addresses (one a line), shows its type
// and addresses on its page and in the list, saves a new list, and shows
// the API's refusal beside what was typed.
func TestConsoleNetworkApps(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	b := adminBrowser(t, env, "admin@contoso.com")
	page, csrf := b.page("/admin/apps/new", 200)
	wantIn(t, page, `id="type"`, `<option value="tcp">`, `id="internal_addresses"`)

	bad := url.Values{"name": {"db"}, "type": {"tcp"}, "internal_addresses": {"db.corp:5432\r\ndb.corp"}, "group": {"Default"}, "timeout": {"default"}, "preauth": {"sallyport"}}
	status, msg := apiMessage(t, env, "POST", "/apps", api.CreateAppRequest{Name: "db", Type: "tcp", InternalAddresses: []string{"db.corp:5432", "db.corp"}})
	page = b.post("/admin/apps", csrf, bad, status)
	wantIn(t, page, `id="error"`, msg, `<option value="tcp" selected>`, "db.corp:5432\r\ndb.corp</textarea>")

	good := url.Values{"name": {"db"}, "type": {"tcp"}, "internal_addresses": {"db.corp:5432\r\n\r\n 10.1.0.0/24:22 \r\n"}, "group": {"Default"}, "timeout": {"default"}, "preauth": {"sallyport"}}
	page = b.post("/admin/apps", csrf, good, http.StatusSeeOther)
	wantIn(t, page, "Created the tcp application &#39;db&#39; for db.corp:5432, 10.1.0.0/24:22.", `id="app-type">tcp`, "<li>db.corp:5432</li><li>10.1.0.0/24:22</li>",
		`<input type="hidden" name="type" value="tcp">`)
	if strings.Contains(page, `id="external-url"`) || strings.Contains(page, `id="internal_url"`) {
		t.Errorf("the network application's page shows web fields:\n%s", page)
	}
	a, err := env.srv.store.AppByName(ctx, env.tenant.ID, "db")
	if err != nil || a.Type != "tcp" || strings.Join(a.InternalAddresses, " ") != "db.corp:5432 10.1.0.0/24:22" || a.ExternalHost != "" {
		t.Fatalf("the store's db: %+v, %v", a, err)
	}

	page = b.post("/admin/apps/db", csrf, url.Values{"type": {"tcp"}, "internal_addresses": {"db2.corp:5432"}, "group": {"Default"}, "description": {"Postgres"}}, http.StatusSeeOther)
	wantIn(t, page, "Saved &#39;db&#39;: db2.corp:5432.", "<li>db2.corp:5432</li>")
	status, msg = apiMessage(t, env, "PATCH", "/apps/db", api.UpdateAppRequest{InternalAddresses: &[]string{}})
	page = b.post("/admin/apps/db", csrf, url.Values{"type": {"tcp"}, "internal_addresses": {""}, "group": {"Default"}}, status)
	wantIn(t, page, `id="error"`, msg)

	page, _ = b.page("/admin/apps", 200)
	wantIn(t, page, `id="app-db"`, "<td>tcp</td><td>db2.corp:5432</td>", "<td>http</td>")
	// The test probes the application's addresses through the connector
	// (played by rawFake: db2.corp:5432 answers, refused.corp:22 refuses).
	prev := rawOpen
	t.Cleanup(func() { rawOpen = prev })
	rawOpen = rawFake(t)
	b.post("/admin/apps/db", csrf, url.Values{"type": {"tcp"}, "internal_addresses": {"db2.corp:5432\r\nrefused.corp:22\r\n10.1.0.0/24:22"}, "group": {"Default"}}, http.StatusSeeOther)
	page = b.post("/admin/apps/db/test", csrf, nil, 200)
	wantIn(t, page, "tcp application for db2.corp:5432, refused.corp:22, 10.1.0.0/24:22", "The connectors reach the internal addresses", `id="network-probes"`,
		"<td>db2.corp:5432</td><td class=\"ok\">ok</td>", "<td>refused.corp:22</td><td class=\"bad\">failed: refused</td>",
		"The probe of refused.corp:22 through connector", "listens on port 22", "<li>Not probed: 10.1.0.0/24:22: a range</li>")
}
