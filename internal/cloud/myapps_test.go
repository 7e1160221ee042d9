package cloud

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/store"
)

const cloudURL = "https://sallyport.localhost"

// startMyApps is the pre-authentication environment (web assigned to
// alice, wiki to nobody) with more applications around alice: hr,
// assigned to a user group she is in; pub, passthrough, assigned to her;
// and fab, an application of fabrikam.com assigned to its administrator.
func startMyApps(t *testing.T) *preauthEnv {
	t.Helper()
	env := startPreauth(t)
	ctx := t.Context()
	st := env.srv.store
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	desc := "The team's intranet: news & <forms>"
	if rec, eb := call(t, env.srv, "PATCH", "/apps/web", tok, api.UpdateAppRequest{Description: &desc}); rec.Code != 200 {
		t.Fatalf("describe web: %d %s", rec.Code, eb.Error.Message)
	}
	for _, a := range []api.CreateAppRequest{{Name: "hr", InternalURL: "http://hr.corp/", Description: "Leave and payslips"},
		{Name: "pub", InternalURL: "http://pub.corp/", PreAuth: PreAuthPassthrough, Description: "Public"}} {
		if rec, eb := call(t, env.srv, "POST", "/apps", tok, a); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", a.Name, rec.Code, eb.Error.Message)
		}
	}
	hr, _ := st.AppByName(ctx, env.tenant.ID, "hr")
	pub, _ := st.AppByName(ctx, env.tenant.ID, "pub")
	g := store.UserGroup{ID: "ug_staff", TenantID: env.tenant.ID, Name: "Staff", CreatedAt: time.Now()}
	for _, err := range []error{
		st.CreateUserGroup(ctx, g),
		st.AddUserGroupMember(ctx, env.tenant.ID, g.ID, env.alice.ID, time.Now()),
		st.Assign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: hr.ID, UserGroupID: g.ID, CreatedAt: time.Now()}),
		st.Assign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: pub.ID, UserID: env.alice.ID, CreatedAt: time.Now()}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := datadir.AddTenant(ctx, st, "fabrikam.com", "", "admin@fabrikam.com", testPassword); err != nil {
		t.Fatal(err)
	}
	ftok := login(t, env.srv, "admin@fabrikam.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/apps", ftok, api.CreateAppRequest{Name: "fab", InternalURL: "http://fab.corp/"}); rec.Code != 201 {
		t.Fatalf("create fab: %d %s", rec.Code, eb.Error.Message)
	}
	if rec, eb := call(t, env.srv, "POST", "/apps/fab/assignments", ftok, map[string]string{"user": "admin@fabrikam.com"}); rec.Code != 201 && rec.Code != 200 {
		t.Fatalf("assign fab: %d %s", rec.Code, eb.Error.Message)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return env
}

// discover opens the start page and sends user to its first form,
// returning the answer.
func (b *browser) discover(user string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.do("GET", cloudURL+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `action="/"`) {
		b.t.Fatalf("GET /: %s, not the user name form:\n%s", resp.Status, page)
	}
	return b.do("POST", cloudURL+"/", url.Values{"csrf": {csrfOf(b.t, page)}, "user": {user}})
}

// homeSignIn signs in at the start page with a password and returns the
// page it ends on.
func (b *browser) homeSignIn(user, password string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.discover(user)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="home" value="1"`) {
		b.t.Fatalf("after the user name: %s, not the password form:\n%s", resp.Status, page)
	}
	resp, page = b.do("POST", cloudURL+"/signin", url.Values{"csrf": {csrfOf(b.t, page)}, "home": {"1"}, "user": {user}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		return resp, page
	}
	if loc := resp.Header.Get("Location"); loc != "/" {
		b.t.Fatalf("after the password: Location %q, want /", loc)
	}
	return b.do("GET", cloudURL+"/", nil)
}

// samePage blanks what a page may differ by (the CSRF token and the
// names typed) so that two pages can be compared byte for byte.
func samePage(page string, names ...string) string {
	for _, m := range csrfRE.FindAllStringSubmatch(page, -1) {
		page = strings.ReplaceAll(page, m[1], "CSRF")
	}
	for _, n := range names {
		page = strings.ReplaceAll(page, n, "NAME")
	}
	return page
}

// TestMyApps: signed in at https://CLOUDNAME/, a user sees exactly the
// tiles of the pre-authenticated applications assigned to them, directly
// or through a user group, with their descriptions — not an unassigned
// one, not a passthrough one, not another tenant's — and a tile's link
// reaches the application without a second sign-in.
func TestMyApps(t *testing.T) {
	env := startMyApps(t)
	b := env.browser(t)
	resp, page := b.homeSignIn("Alice@Contoso.com", testPassword)
	if resp.StatusCode != 200 || !strings.Contains(page, "<h1>My Apps</h1>") || !strings.Contains(page, `id="user">alice@contoso.com<`) {
		t.Fatalf("signed in: %s, not My Apps:\n%s", resp.Status, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(page, "<script") {
		t.Fatalf("CSP %q / script in the page", csp)
	}
	for _, want := range []string{
		`id="app-web"`, `href="https://web-contoso.sallyport.localhost/"`, // the listener's port is 0: no port in URLs "The team&#39;s intranet: news &amp; &lt;forms&gt;",
		`id="app-hr"`, "Leave and payslips",
		`action="/signout"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("My Apps lacks %s:\n%s", want, page)
		}
	}
	for _, not := range []string{`id="app-wiki"`, `id="app-pub"`, `id="app-fab"`, "fabrikam"} {
		if strings.Contains(page, not) {
			t.Errorf("My Apps shows %s", not)
		}
	}
	if strings.Index(page, `id="app-hr"`) > strings.Index(page, `id="app-web"`) {
		t.Error("tiles are not ordered by name")
	}
	// The tile's link (at the test listener's port): no password asked again.
	resp, body := b.follow(env.webURL)
	if h := backendSaw(t, resp, body); h.Get("X-Sallyport-User") != "alice@contoso.com" {
		t.Fatalf("backend saw %q", h.Get("X-Sallyport-User"))
	}

	// bob is assigned nothing: no tile, and whom to ask.
	resp, page = env.browser(t).homeSignIn("bob@contoso.com", testPassword)
	if resp.StatusCode != 200 || strings.Contains(page, `class="tile"`) || !strings.Contains(page, `id="no-apps"`) || !strings.Contains(page, "admin@contoso.com") {
		t.Fatalf("bob's My Apps: %s\n%s", resp.Status, page)
	}
	// fabrikam's administrator sees fab only.
	_, page = env.browser(t).homeSignIn("admin@fabrikam.com", testPassword)
	if !strings.Contains(page, `id="app-fab"`) || strings.Contains(page, `id="app-web"`) || strings.Contains(page, `id="app-hr"`) {
		t.Fatalf("fabrikam's My Apps:\n%s", page)
	}

	// Sign-out from My Apps ends the sign-in (its form needs the CSRF
	// token): / asks for the user name again.
	_, page = b.do("GET", cloudURL+"/", nil)
	if resp, _ = b.do("POST", cloudURL+"/signout", url.Values{"csrf": {strings.Repeat("x", 43)}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out with a wrong token: %s, want 403", resp.Status)
	}
	if _, page := b.do("GET", cloudURL+"/", nil); !strings.Contains(page, "<h1>My Apps</h1>") {
		t.Fatal("a refused sign-out signed out")
	}
	resp, _ = b.do("POST", cloudURL+"/signout", url.Values{"csrf": {csrfOf(t, page)}})
	if resp.StatusCode != 200 {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	if resp, page = b.do("GET", cloudURL+"/", nil); !strings.Contains(page, `action="/"`) || strings.Contains(page, "My Apps") {
		t.Fatalf("after sign-out: %s\n%s", resp.Status, page)
	}
}

// TestHomeRealmDiscovery: the start page's user name decides only by its
// domain: a tenant with an OpenID provider sends the browser there (and
// back to /), any other domain — a tenant's without a provider, or none
// at all — gets the same password form and the same refusal, so that
// neither tenants nor users can be told apart.
func TestHomeRealmDiscovery(t *testing.T) {
	env := startMyApps(t)

	t.Run("signed out", func(t *testing.T) {
		resp, page := env.browser(t).do("GET", cloudURL+"/", nil)
		if resp.StatusCode != 200 || !strings.Contains(page, `action="/"`) || !strings.Contains(page, `<label for="user">`) ||
			strings.Contains(page, `type="password"`) || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%s\n%s", resp.Status, page)
		}
	})

	t.Run("unknown domain looks like a known one", func(t *testing.T) {
		b := env.browser(t)
		known, kpage := b.discover("carol@contoso.com")
		unknown, upage := b.discover("carol@nowhere.example")
		if known.StatusCode != 200 || unknown.StatusCode != 200 || !strings.Contains(kpage, `type="password"`) {
			t.Fatalf("known %s, unknown %s:\n%s", known.Status, unknown.Status, kpage)
		}
		if k, u := samePage(kpage, "carol@contoso.com"), samePage(upage, "carol@nowhere.example"); k != u {
			t.Fatalf("the password forms differ:\n%s\n---\n%s", k, u)
		}
		// The password's refusal too: an unknown domain, an unknown user
		// of a tenant, and a wrong password of a real one.
		var pages []string
		for _, user := range []string{"carol@nowhere.example", "carol@contoso.com", "alice@contoso.com"} {
			resp, page := b.do("POST", cloudURL+"/signin", url.Values{"csrf": {csrfOf(t, upage)}, "home": {"1"}, "user": {user}, "password": {"wrong password"}})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "The user name or password is wrong") {
				t.Fatalf("%s: %s\n%s", user, resp.Status, page)
			}
			pages = append(pages, samePage(page, user))
		}
		if pages[0] != pages[1] || pages[1] != pages[2] {
			t.Fatalf("the refusals differ:\n%s\n---\n%s\n---\n%s", pages[0], pages[1], pages[2])
		}
	})

	t.Run("not a user name", func(t *testing.T) {
		resp, page := env.browser(t).discover("carol")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `action="/"`) || !strings.Contains(page, `role="alert"`) {
			t.Fatalf("%s\n%s", resp.Status, page)
		}
	})

	t.Run("CSRF", func(t *testing.T) {
		b := env.browser(t)
		_, page := b.do("GET", cloudURL+"/", nil)
		token := csrfOf(t, page)
		for name, c := range map[string]struct {
			form url.Values
			hdr  []string
		}{
			"no token":       {url.Values{"user": {"alice@contoso.com"}}, nil},
			"wrong token":    {url.Values{"csrf": {strings.Repeat("x", 43)}, "user": {"alice@contoso.com"}}, nil},
			"foreign Origin": {url.Values{"csrf": {token}, "user": {"alice@contoso.com"}}, []string{"Origin", "https://evil.example"}},
		} {
			resp, page := b.do("POST", cloudURL+"/", c.form, c.hdr...)
			if resp.StatusCode != http.StatusForbidden || strings.Contains(page, `type="password"`) {
				t.Errorf("%s: %s, want 403", name, resp.Status)
			}
		}
		// The password form of the start page needs its token as well.
		resp, _ := b.do("POST", cloudURL+"/signin", url.Values{"home": {"1"}, "user": {"alice@contoso.com"}, "password": {testPassword}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("home password form without token: %s, want 403", resp.Status)
		}
	})
}

// TestHomeRealmDiscoveryProvider: a user name of a tenant with an OpenID
// provider goes straight to the provider — also for a domain the tenant
// verified — and the sign-in ends at My Apps.
func TestHomeRealmDiscoveryProvider(t *testing.T) {
	idp := startFakeIdP(t)
	env, prov := startOIDCEnv(t, api.SetIdentityProviderRequest{Issuer: idp.issuer, ClientID: fakeClientID, ClientSecret: fakeClientSecret, CAPEM: string(idp.caPEM)})
	now := time.Now()
	if err := env.srv.store.CreateDomain(t.Context(), store.Domain{TenantID: env.tenant.ID, Domain: "contoso.net", Token: "t", CreatedAt: now, VerifiedAt: now, VerifiedBy: "operator"}); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"nobody-checks-this@contoso.com", "ada@contoso.net"} {
		b := env.oidcBrowser(t, idp.caPEM)
		resp, page := b.discover(user)
		auth, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil || auth.Path != "/authorize" || auth.Query().Get("client_id") != fakeClientID ||
			auth.Query().Get("login_hint") != user {
			t.Fatalf("%s: %s, Location %q, not the provider\n%s", user, resp.Status, resp.Header.Get("Location"), page)
		}
		if user != "ada@contoso.net" {
			continue
		}
		q := auth.Query()
		claims := map[string]any{"iss": idp.issuer, "sub": "s-2002", "aud": fakeClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"nonce": q.Get("nonce"), "email": "ada@contoso.com", "email_verified": true, "name": "Ada", "groups": []string{"Engineering"}}
		code := "code-" + q.Get("state")[4:14]
		idp.mu.Lock()
		idp.codes[code] = fakeCode{challenge: q.Get("code_challenge"), claims: claims}
		idp.mu.Unlock()
		cb, _ := url.Parse(prov.RedirectURI)
		cb.RawQuery = url.Values{"state": {q.Get("state")}, "code": {code}}.Encode()
		resp, page = b.follow(cb.String())
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/" || !strings.Contains(page, "<h1>My Apps</h1>") || !strings.Contains(page, `id="app-web"`) {
			t.Fatalf("after the provider: %s %s\n%s", resp.Status, resp.Request.URL, page)
		}
	}
}

// TestMyAppsSecondFactor: at the start page, a tenant that requires a
// second factor makes the user enrol, and the enrolment finishes the
// sign-in at My Apps (a flow with no application is not taken for a
// signed-in user's own enrolment); the next sign-in asks for the code and
// ends at My Apps too.
func TestMyAppsSecondFactor(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	if err := env.srv.store.SetTenantSettings(ctx, store.TenantSettings{TenantID: env.tenant.ID, RequireMFA: true, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	password := func(b *browser) string {
		t.Helper()
		_, page := b.discover("alice@contoso.com")
		resp, _ := b.do("POST", cloudURL+"/signin", url.Values{"csrf": {csrfOf(t, page)}, "home": {"1"}, "user": {"alice@contoso.com"}, "password": {testPassword}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("password: %s", resp.Status)
		}
		return resp.Header.Get("Location")
	}
	finish := func(b *browser, resp *http.Response, page string) {
		t.Helper()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("second factor: %s, Location %q, want / \n%s", resp.Status, resp.Header.Get("Location"), page)
		}
		if _, page := b.do("GET", cloudURL+"/", nil); !strings.Contains(page, `id="app-web"`) {
			t.Fatalf("not My Apps after the second factor:\n%s", page)
		}
	}

	b := env.browser(t)
	if loc := password(b); loc != "/signin/enroll" {
		t.Fatalf("first sign-in: Location %q, want /signin/enroll", loc)
	}
	_, page := b.do("GET", cloudURL+"/signin/enroll", nil)
	secret := regexp.MustCompile(`id="secret">([A-Z2-7]+)<`).FindStringSubmatch(page)
	if secret == nil {
		t.Fatalf("no enrolment page:\n%s", page)
	}
	code, _ := totp.GenerateCode(secret[1], time.Now())
	resp, page := b.do("POST", cloudURL+"/signin/enroll", url.Values{"csrf": {csrfOf(t, page)}, "code": {code}})
	finish(b, resp, page)

	b2 := env.browser(t)
	if loc := password(b2); loc != "/signin/mfa" {
		t.Fatalf("second sign-in: Location %q, want /signin/mfa", loc)
	}
	_, page = b2.do("GET", cloudURL+"/signin/mfa", nil)
	next, _ := totp.GenerateCode(secret[1], time.Now().Add(totpPeriod*time.Second))
	resp, page = b2.do("POST", cloudURL+"/signin/mfa", url.Values{"csrf": {csrfOf(t, page)}, "code": {next}})
	finish(b2, resp, page)
}
