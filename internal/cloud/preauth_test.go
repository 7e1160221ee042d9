package cloud

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// preauthEnv is a cloud with one connector and two pre-authenticated
// applications (web, wiki) of contoso.com in front of one backend that
// echoes the headers it got, and a second tenant's user.
type preauthEnv struct {
	*inProcess
	reached atomic.Int64 // requests that reached the backend
	tenant  store.Tenant
	web     store.Application
	wiki    store.Application
	webURL  string
	wikiURL string
	alice   store.User // assigned to web (directly)
	bob     store.User // assigned to nothing
}

func startPreauth(t *testing.T) *preauthEnv {
	t.Helper()
	env := &preauthEnv{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.reached.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(backend.Close)
	env.inProcess = startInProcess(t, backend.URL)
	ctx := t.Context()
	st := env.srv.store
	var err error
	if env.tenant, err = st.TenantByDomain(ctx, "contoso.com"); err != nil {
		t.Fatal(err)
	}
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/apps", tok, map[string]any{"name": "wiki", "internal_url": backend.URL}); rec.Code != 201 {
		t.Fatalf("create wiki: %d %s", rec.Code, eb.Error.Message)
	}
	for _, name := range []string{"web", "wiki"} {
		a, err := st.AppByName(ctx, env.tenant.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		a.PreAuth = PreAuthSallyport
		if err := st.UpdateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
		if name == "web" {
			env.web = a
		} else {
			env.wiki = a
		}
	}
	env.webURL = env.appURL
	env.wikiURL = strings.Replace(env.appURL, "web-contoso", "wiki-contoso", 1)
	for _, u := range []*store.User{&env.alice, &env.bob} {
		name := "alice@contoso.com"
		if u == &env.bob {
			name = "bob@contoso.com"
		}
		hash, _ := tenancy.HashPassword(ctx, testPassword)
		*u = store.User{ID: "u_" + strings.Split(name, "@")[0], TenantID: env.tenant.ID, Name: name, Role: store.RoleUser, PasswordHash: hash,
			Email: name, DisplayName: strings.ToUpper(name[:1]) + name[1:strings.Index(name, "@")], CreatedAt: time.Now()}
		if err := st.CreateUser(ctx, *u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Assign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: env.web.ID, UserID: env.alice.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return env
}

// browser is a client with its own cookie jar that does not follow
// redirects by itself, so that each hop is checked.
type browser struct {
	t   *testing.T
	c   *http.Client
	jar *cookiejar.Jar
}

func (env *preauthEnv) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, c: &http.Client{Transport: env.client.Transport, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request as a browser navigation and returns the response and
// its body.
func (b *browser) do(method, u string, form url.Values, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// follow GETs u and follows redirects, returning the last response.
func (b *browser) follow(u string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	for range 10 {
		resp, body := b.do("GET", u, nil, hdr...)
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return resp, body
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatal(err)
		}
		u = loc.String()
	}
	b.t.Fatal("too many redirects")
	return nil, ""
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// signIn goes to appURL, signs in with the password and returns the
// response after the last redirect (the application's page, or the second
// factor's).
func (b *browser) signIn(appURL, user, password string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.follow(appURL)
	if resp.StatusCode != 200 || !strings.Contains(page, `action="/signin"`) {
		b.t.Fatalf("GET %s: %s, not the sign-in page:\n%s", appURL, resp.Status, page)
	}
	form := url.Values{"csrf": {csrfOf(b.t, page)}, "user": {user}, "password": {password}, "rd": {resp.Request.URL.Query().Get("rd")}}
	resp, page = b.do("POST", resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+"/signin", form)
	if resp.StatusCode != http.StatusSeeOther {
		return resp, page
	}
	loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	return b.follow(loc.String())
}

// backendSaw decodes the echoing backend's answer.
func backendSaw(t *testing.T, resp *http.Response, body string) http.Header {
	t.Helper()
	var h http.Header
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &h) != nil {
		t.Fatalf("not the backend's answer: %s\n%s", resp.Status, body)
	}
	return h
}

// TestPreAuthAnonymous: not one request of an anonymous client reaches
// the backend: a browser is sent to sign in, other clients get 401 with
// WWW-Authenticate, a WebSocket upgrade too, and a forged or foreign
// cookie or token changes nothing.
func TestPreAuthAnonymous(t *testing.T) {
	env := startPreauth(t)
	tests := []struct {
		name       string
		method     string
		hdr        []string
		wantStatus int
		wantLoc    string
	}{
		{"browser", "GET", []string{"Accept", "text/html"}, http.StatusFound, "https://sallyport.localhost/signin?rd="},
		{"API client", "GET", []string{"Accept", "application/json"}, http.StatusUnauthorized, ""},
		{"XHR", "GET", []string{"Accept", "text/html", "X-Requested-With", "XMLHttpRequest"}, http.StatusUnauthorized, ""},
		{"POST", "POST", []string{"Accept", "text/html"}, http.StatusUnauthorized, ""},
		{"WebSocket", "GET", []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, http.StatusUnauthorized, ""},
		{"forged cookie", "GET", []string{"Accept", "application/json", "Cookie", "__Host-sallyport=spc_" + strings.Repeat("A", 43)}, http.StatusUnauthorized, ""},
		{"garbage cookie", "GET", []string{"Accept", "application/json", "Cookie", "__Host-sallyport=x"}, http.StatusUnauthorized, ""},
		{"forged bearer", "GET", []string{"Accept", "application/json", "Authorization", "Bearer spa_" + strings.Repeat("B", 43)}, http.StatusUnauthorized, ""},
		{"spoofed identity headers", "GET", []string{"Accept", "application/json", "X-Sallyport-User", "admin@contoso.com"}, http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, env.webURL+"secret?x=1", nil)
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			c := &http.Client{Transport: env.client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantLoc != "" && !strings.HasPrefix(resp.Header.Get("Location"), tt.wantLoc) {
				t.Fatalf("Location %q, want %q...", resp.Header.Get("Location"), tt.wantLoc)
			}
			if tt.wantStatus == http.StatusUnauthorized && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `Bearer realm="sallyport"`) {
				t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if n := env.reached.Load(); n != 0 {
		t.Fatalf("%d anonymous requests reached the backend", n)
	}
}

// TestPreAuthBrowserFlow: sign in with a password, reach the backend with
// the identity headers and the assertion (and none of the client's copies,
// nor Sallyport's cookie); the cookie of one application is worth nothing
// on another; an unassigned user gets the 403 page; sign-out ends every
// session; a deleted user is refused from the next request on.
func TestPreAuthBrowserFlow(t *testing.T) {
	env := startPreauth(t)
	b := env.browser(t)
	resp, body := b.signIn(env.webURL+"page?q=1", "alice@contoso.com", testPassword)
	if resp.Request.URL.Path != "/page" || resp.Request.URL.RawQuery != "q=1" {
		t.Fatalf("landed on %s, want /page?q=1", resp.Request.URL)
	}
	h := backendSaw(t, resp, body)
	for k, want := range map[string]string{"X-Sallyport-User": "alice@contoso.com", "X-Sallyport-Email": "alice@contoso.com"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	verifyAssertion(t, env, h.Get("Sallyport-Assertion"), "https://web-contoso.sallyport.localhost", env.alice)
	if c := h.Get("Cookie"); strings.Contains(c, "sallyport") {
		t.Errorf("the backend got Sallyport's cookie: %q", c)
	}

	// Spoofed identity headers are replaced.
	resp, body = b.do("GET", env.webURL, nil, "X-Sallyport-User", "admin@contoso.com", "X_Sallyport_Groups", "Admins")
	h = backendSaw(t, resp, body)
	if got := h.Get("X-Sallyport-User"); got != "alice@contoso.com" {
		t.Errorf("X-Sallyport-User = %q after spoofing", got)
	}
	if _, ok := h["X_sallyport_groups"]; ok || h.Get("X-Sallyport-Groups") != "" {
		t.Errorf("spoofed groups reached the backend: %v", h)
	}

	// The cookie of web replayed on wiki's host is refused.
	webURL, _ := url.Parse(env.webURL)
	var appCk *http.Cookie
	for _, c := range b.jar.Cookies(webURL) {
		if c.Name == appCookie {
			appCk = c
		}
	}
	if appCk == nil {
		t.Fatal("no session cookie on web's host")
	}
	req, _ := http.NewRequest("GET", env.wikiURL, nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(appCk)
	r2, err := env.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("web's cookie on wiki: %s, want 401", r2.Status)
	}

	// Alice is not assigned to wiki: with her sign-in at the cloud she
	// goes there without a password, and gets the 403 page.
	before := env.reached.Load()
	resp, body = b.follow(env.wikiURL)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "alice@contoso.com") || !strings.Contains(body, "not assigned") ||
		!strings.Contains(body, resp.Header.Get("Sallyport-Request-Id")) || !strings.Contains(body, "/.sallyport/signout") ||
		!strings.Contains(body, "ask admin@contoso.com") {
		t.Fatalf("wiki for an unassigned user: %s\n%s", resp.Status, body)
	}
	if env.reached.Load() != before {
		t.Fatal("an unassigned user's request reached the backend")
	}

	// Sign-out ends every session: web's cookie is worth nothing after.
	resp, _ = b.follow(env.webURL + ".sallyport/signout")
	if resp.StatusCode != 200 || resp.Request.URL.Host != "sallyport.localhost" {
		t.Fatalf("sign-out ended at %s %s", resp.Status, resp.Request.URL)
	}
	req, _ = http.NewRequest("GET", env.webURL, nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(appCk)
	if r3, err := env.client.Do(req); err != nil || r3.StatusCode != http.StatusUnauthorized {
		t.Fatalf("web's cookie after sign-out: %v %v", r3, err)
	} else {
		r3.Body.Close()
	}

	// An unassigned user is refused from the next request on, and let in
	// again when assigned again.
	b2 := env.browser(t)
	resp, body = b2.signIn(env.webURL, "alice@contoso.com", testPassword)
	backendSaw(t, resp, body)
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, env.srv, "DELETE", "/apps/web/assignments/users/alice@contoso.com", tok, nil); rec.Code != 200 && rec.Code != 204 {
		t.Fatalf("unassign: %d %s", rec.Code, eb.Error.Message)
	}
	if resp, _ = b2.do("GET", env.webURL, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after unassignment: %s, want 403", resp.Status)
	}
	if rec, eb := call(t, env.srv, "POST", "/apps/web/assignments", tok, map[string]string{"user": "alice@contoso.com"}); rec.Code != 201 && rec.Code != 200 {
		t.Fatalf("assign: %d %s", rec.Code, eb.Error.Message)
	}
	resp, body = b2.do("GET", env.webURL, nil)
	backendSaw(t, resp, body)

	// A deleted user is refused from the next request on.
	if err := env.srv.store.DeleteUser(t.Context(), env.tenant.ID, env.alice.ID); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp, _ = b2.do("GET", env.webURL, nil, "Accept", "application/json")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a deleted user's session: %s, want 401", resp.Status)
	}
}

// TestPreAuthSigninChecks: return URLs lead only to a pre-authenticated
// application's host; forms need their CSRF token; a one-time code works
// once; a user of another tenant or a wrong password is refused.
func TestPreAuthSigninChecks(t *testing.T) {
	env := startPreauth(t)
	cloud := "https://sallyport.localhost"
	for _, rd := range []string{"https://evil.example/", "http://web-contoso.sallyport.localhost/", "//evil.example/",
		"https://user@web-contoso.sallyport.localhost/", "https://sallyport.localhost/", "https://web-contoso.sallyport.localhost:8443/",
		"javascript:alert(1)", "https://nothere-contoso.sallyport.localhost/", ""} {
		t.Run("rd="+rd, func(t *testing.T) {
			resp, body := env.browser(t).do("GET", cloud+"/signin?rd="+url.QueryEscape(rd), nil)
			if resp.StatusCode != http.StatusBadRequest || strings.Contains(body, `action="/signin"`) {
				t.Fatalf("%s\n%s", resp.Status, body)
			}
		})
	}
	t.Run("return path stays on the host", func(t *testing.T) {
		for in, want := range map[string]string{
			"https://h//evil.example/x": "/",
			"https://h/%2F%2Fevil":      "/",
			"https://h/\\evil.example":  "/%5Cevil.example",
			"https://h/%09/evil":        "/%09/evil",
			"https://h/a/b?c=//d#frag":  "/a/b?c=//d",
			"https://h":                 "/",
			"javascript:alert(1)":       "/",
			"https://h/ok?x=1":          "/ok?x=1",
		} {
			got := localReturn(in)
			if got != want || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") {
				t.Errorf("localReturn(%q) = %q, want %q", in, got, want)
			}
		}
	})
	t.Run("CSRF", func(t *testing.T) {
		b := env.browser(t)
		resp, page := b.follow(env.webURL)
		rd := resp.Request.URL.Query().Get("rd")
		for name, form := range map[string]url.Values{
			"no token":    {"user": {"alice@contoso.com"}, "password": {testPassword}, "rd": {rd}},
			"wrong token": {"csrf": {strings.Repeat("x", 43)}, "user": {"alice@contoso.com"}, "password": {testPassword}, "rd": {rd}},
		} {
			resp, _ := b.do("POST", cloud+"/signin", form)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s: %s, want 403", name, resp.Status)
			}
		}
		form := url.Values{"csrf": {csrfOf(t, page)}, "user": {"alice@contoso.com"}, "password": {testPassword}, "rd": {rd}}
		resp, _ = b.do("POST", cloud+"/signin", form, "Origin", "https://evil.example")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("foreign Origin: %s, want 403", resp.Status)
		}
	})
	t.Run("one-time code works once", func(t *testing.T) {
		b := env.browser(t)
		resp, page := b.follow(env.webURL)
		form := url.Values{"csrf": {csrfOf(t, page)}, "user": {"alice@contoso.com"}, "password": {testPassword}, "rd": {resp.Request.URL.Query().Get("rd")}}
		resp, _ = b.do("POST", cloud+"/signin", form)
		codeURL := resp.Header.Get("Location")
		if !strings.Contains(codeURL, "/.sallyport/auth?code=spo_") {
			t.Fatalf("after sign-in: %s %s", resp.Status, codeURL)
		}
		if resp, _ := b.do("GET", codeURL, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first use: %s", resp.Status)
		}
		if resp, _ := env.browser(t).do("GET", codeURL, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("second use: %s, want 400", resp.Status)
		}
		// On another application's host it is refused too.
		if resp, _ := env.browser(t).do("GET", strings.Replace(codeURL, "web-contoso", "wiki-contoso", 1), nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("on wiki: %s, want 400", resp.Status)
		}
	})
	for name, creds := range map[string][2]string{
		"wrong password":    {"alice@contoso.com", "wrong password!"},
		"unknown user":      {"carol@contoso.com", testPassword},
		"user of no tenant": {"x@nowhere.example", testPassword},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := env.browser(t).signIn(env.webURL, creds[0], creds[1])
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "wrong") {
				t.Fatalf("%s\n%s", resp.Status, body)
			}
		})
	}
	if n := env.reached.Load(); n != 0 {
		t.Fatalf("%d requests reached the backend", n)
	}
	// Counted: the three failed passwords, and the sign-ins that worked.
	if got := testutil.ToFloat64(env.srv.metrics.signins.WithLabelValues("contoso.com", "password", "failed")); got < 3 {
		t.Errorf("failed password sign-ins counted %v, want at least 3", got)
	}
	if got := testutil.ToFloat64(env.srv.metrics.signins.WithLabelValues("contoso.com", "password", "ok")); got < 1 {
		t.Errorf("password sign-ins counted %v, want at least 1", got)
	}
}

// TestPreAuthTOTP: a tenant that requires a second factor makes a user
// enrol (QR code, secret, recovery codes) before the first sign-in
// completes; the next sign-in asks for the code; a recovery code works
// once.
func TestPreAuthTOTP(t *testing.T) {
	env := startPreauth(t)
	ctx := t.Context()
	if err := env.srv.store.SetTenantSettings(ctx, store.TenantSettings{TenantID: env.tenant.ID, RequireMFA: true, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	b := env.browser(t)
	resp, page := b.signIn(env.webURL, "alice@contoso.com", testPassword)
	if resp.Request.URL.Path != "/signin/enroll" || !strings.Contains(page, "data:image/png;base64,") {
		t.Fatalf("first sign-in did not lead to enrolment: %s %s\n%s", resp.Status, resp.Request.URL, page)
	}
	secret := regexp.MustCompile(`id="secret">([A-Z2-7]+)<`).FindStringSubmatch(page)
	codes := regexp.MustCompile(`<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>`).FindAllStringSubmatch(page, -1)
	if secret == nil || len(codes) != recoveryCount {
		t.Fatalf("enrolment page without secret or %d recovery codes:\n%s", recoveryCount, page)
	}
	code, _ := totp.GenerateCode(secret[1], time.Now())
	resp, page = b.do("POST", "https://sallyport.localhost/signin/enroll", url.Values{"csrf": {csrfOf(t, page)}, "code": {code}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("enrol: %s\n%s", resp.Status, page)
	}
	loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	resp, page = b.follow(loc.String())
	backendSaw(t, resp, page)

	// The next sign-in (another browser) asks for the second factor; the
	// code just used is refused (replay), a recovery code works once.
	b2 := env.browser(t)
	resp, page = b2.signIn(env.webURL, "alice@contoso.com", testPassword)
	if resp.Request.URL.Path != "/signin/mfa" {
		t.Fatalf("second sign-in at %s, want /signin/mfa", resp.Request.URL)
	}
	resp, page = b2.do("POST", "https://sallyport.localhost/signin/mfa", url.Values{"csrf": {csrfOf(t, page)}, "code": {code}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed TOTP code: %s, want 401", resp.Status)
	}
	resp, page = b2.do("POST", "https://sallyport.localhost/signin/mfa", url.Values{"csrf": {csrfOf(t, page)}, "code": {strings.ToUpper(codes[0][1])}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("recovery code: %s\n%s", resp.Status, page)
	}
	loc, _ = resp.Request.URL.Parse(resp.Header.Get("Location"))
	resp, page = b2.follow(loc.String())
	backendSaw(t, resp, page)

	b3 := env.browser(t)
	resp, page = b3.signIn(env.webURL, "alice@contoso.com", testPassword)
	resp, _ = b3.do("POST", "https://sallyport.localhost/signin/mfa", url.Values{"csrf": {csrfOf(t, page)}, "code": {codes[0][1]}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("recovery code used twice: %s, want 401", resp.Status)
	}
}

// TestTOTPGuard: codes of the current step and one either side pass,
// once each; others fail.
func TestTOTPGuard(t *testing.T) {
	secret := "JBSWY3DPEHPK3PXP"
	u := store.User{ID: "u1", TOTPSecret: []byte(secret)}
	now := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) string { c, _ := totp.GenerateCode(secret, now.Add(d)); return c }
	var g totpGuard
	tests := []struct {
		name string
		code string
		want bool
	}{
		{"previous step", at(-30 * time.Second), true},
		{"same step again", at(-30 * time.Second), false},
		{"current step", at(0), true},
		{"current step again", at(0), false},
		{"two steps ahead", at(60 * time.Second), false},
		{"next step", at(30 * time.Second), true},
		{"garbage", "12345a", false},
		{"short", "123", false},
	}
	for _, tt := range tests {
		if got := g.check(u, tt.code, now); got != tt.want {
			t.Errorf("%s: check(%q) = %v, want %v", tt.name, tt.code, got, tt.want)
		}
	}
	if g.check(store.User{ID: "u2"}, at(0), now) {
		t.Error("a user without a secret passed")
	}
}

// verifyAssertion checks a Sallyport-Assertion with go-jose against the
// JWKS the cloud publishes for the tenant: issuer, audience, subject,
// e-mail, lifetime.
func verifyAssertion(t *testing.T, env *preauthEnv, tok, aud string, u store.User) {
	t.Helper()
	if tok == "" {
		t.Fatal("no Sallyport-Assertion at the backend")
	}
	issuer := "https://sallyport.localhost/t/contoso"
	resp, err := env.client.Get(issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(parsed.Headers) != 1 {
		t.Fatalf("parse the assertion: %v", err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", parsed.Headers[0].KeyID)
	}
	var claims jwt.Claims
	var extra struct {
		Email  string   `json:"email"`
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
	}
	if err := parsed.Claims(keys[0].Key, &claims, &extra); err != nil {
		t.Fatalf("the assertion does not verify with the published key: %v", err)
	}
	if err := claims.Validate(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{aud}, Subject: u.ID, Time: time.Now()}); err != nil {
		t.Fatalf("assertion claims: %v", err)
	}
	if extra.Email != u.Email || extra.Name != u.DisplayName {
		t.Fatalf("assertion email %q name %q, want %q %q", extra.Email, extra.Name, u.Email, u.DisplayName)
	}
	if claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > 5*time.Minute {
		t.Fatalf("assertion lives %s, more than 5 minutes", claims.Expiry.Time().Sub(claims.IssuedAt.Time()))
	}
}

// TestPreAuthBearer: an access token opens the application it was made
// for, and not another one of the tenant; the edge removes it before the
// backend unless the application keeps it; sign-out ends it.
func TestPreAuthBearer(t *testing.T) {
	env := startPreauth(t)
	ctx := t.Context()
	if err := env.srv.store.Assign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: env.wiki.ID, UserID: env.alice.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := env.srv.IssueAccessToken(ctx, "contoso.com", "alice@contoso.com", "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		resp, err := env.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(env.webURL)
	h := backendSaw(t, resp, body)
	if h.Get("Authorization") != "" || h.Get("X-Sallyport-User") != "alice@contoso.com" {
		t.Fatalf("backend saw Authorization %q, user %q", h.Get("Authorization"), h.Get("X-Sallyport-User"))
	}
	// web's token on wiki (alice is assigned to both): refused.
	if resp, _ := get(env.wikiURL); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("web's token on wiki: %s, want 401", resp.Status)
	}
	// An application that keeps it passes it on.
	a := env.web
	a.KeepAuthorization = true
	if err := env.srv.store.UpdateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	resp, body = get(env.webURL)
	if h := backendSaw(t, resp, body); h.Get("Authorization") != "Bearer "+tok {
		t.Fatalf("kept Authorization = %q", h.Get("Authorization"))
	}
	// Sign-out (all sessions) ends the token at once.
	env.srv.signOut(ctx, env.tenant.ID, env.alice.ID, "test")
	if resp, _ := get(env.webURL); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token after sign-out: %s, want 401", resp.Status)
	}
}
