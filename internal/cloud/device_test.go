package cloud

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
)

const deviceCloud = "https://sallyport.localhost"

// oauthAnswer is a JSON answer of the device flow's endpoints.
type oauthAnswer struct {
	status int
	body   map[string]any
	header http.Header
}

func (a oauthAnswer) str(k string) string { s, _ := a.body[k].(string); return s }

func (a oauthAnswer) num(k string) int { f, _ := a.body[k].(float64); return int(f) }

// oauthPost posts a form to the cloud's path (as a program, not a
// browser) and decodes the JSON answer.
func (env *preauthEnv) oauthPost(t *testing.T, path string, form url.Values) oauthAnswer {
	t.Helper()
	req, err := http.NewRequest("POST", deviceCloud+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := env.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	a := oauthAnswer{status: resp.StatusCode, header: resp.Header}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("POST %s: %s with Content-Type %q, want JSON", path, resp.Status, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		t.Fatalf("POST %s: the answer is not JSON: %v", path, err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("POST %s: Cache-Control %q, want no-store", path, cc)
	}
	return a
}

// wantOAuthError checks an RFC 6749 error answer: status, code and a
// sentence.
func wantOAuthError(t *testing.T, what string, a oauthAnswer, status int, code string) {
	t.Helper()
	if a.status != status || a.str("error") != code || len(a.str("error_description")) < 20 {
		t.Errorf("%s: %d %v, want %d %s with a description", what, a.status, a.body, status, code)
	}
}

// authorize starts a device authorization for app URL and checks the
// answer's shape.
func (env *preauthEnv) authorize(t *testing.T, resource string) (deviceCode, userCode, complete string) {
	t.Helper()
	a := env.oauthPost(t, "/oauth/device_authorization", url.Values{"client_id": {DeviceClientID}, "resource": {resource}})
	if a.status != 200 {
		t.Fatalf("device authorization: %d %v", a.status, a.body)
	}
	deviceCode, userCode = a.str("device_code"), a.str("user_code")
	if !validSecret(deviceCode, prefixDevice) {
		t.Errorf("device_code %q is not spd_ and 32 random bytes", deviceCode)
	}
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(userCode) {
		t.Errorf("user_code %q is not BCDF-GHJK", userCode)
	}
	complete = a.str("verification_uri_complete")
	if a.str("verification_uri") != deviceCloud+"/device" || complete != deviceCloud+"/device?user_code="+userCode ||
		a.num("expires_in") != 600 || a.num("interval") != 5 {
		t.Errorf("device authorization answer: %v", a.body)
	}
	return deviceCode, userCode, complete
}

// poll asks the token endpoint once with a device code.
func (env *preauthEnv) poll(t *testing.T, deviceCode string) oauthAnswer {
	t.Helper()
	return env.oauthPost(t, "/oauth/token", url.Values{"grant_type": {deviceGrantType}, "device_code": {deviceCode}, "client_id": {DeviceClientID}})
}

// pollNow polls as if the interval had passed since the last poll.
func (env *preauthEnv) pollNow(t *testing.T, deviceCode string) oauthAnswer {
	t.Helper()
	g, err := env.srv.store.GrantByHash(t.Context(), store.GrantDevice, hashToken(deviceCode))
	if err == nil && !g.PolledAt.IsZero() {
		g.PolledAt = g.PolledAt.Add(-time.Hour)
		if err := env.srv.store.UpdateGrant(t.Context(), g); err != nil {
			t.Fatal(err)
		}
	}
	return env.poll(t, deviceCode)
}

// refresh exchanges a refresh token.
func (env *preauthEnv) refresh(t *testing.T, tok string) oauthAnswer {
	t.Helper()
	return env.oauthPost(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}})
}

// signInForDevice opens the verification URL in b, signs in as user when
// asked, and returns the page it lands on (the approval page).
func (b *browser) signInForDevice(complete, user string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.follow(complete)
	if !strings.Contains(page, `action="/signin"`) {
		return resp, page
	}
	form := url.Values{"csrf": {csrfOf(b.t, page)}, "user": {user}, "password": {testPassword}, "device": {resp.Request.URL.Query().Get("device")}}
	resp, page = b.do("POST", deviceCloud+"/signin", form)
	if resp.StatusCode != http.StatusSeeOther {
		return resp, page
	}
	loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	return b.follow(loc.String())
}

// decide posts the approval form of page.
func (b *browser) decide(page, userCode, action string) (*http.Response, string) {
	b.t.Helper()
	return b.do("POST", deviceCloud+"/device", url.Values{"csrf": {csrfOf(b.t, page)}, "user_code": {userCode}, "action": {action}})
}

// bearerGet sends GET url with an access token, as a program.
func (env *preauthEnv) bearerGet(t *testing.T, u, tok string) (*http.Response, string) {
	t.Helper()
	b := env.browser(t)
	return b.do("GET", u, nil, "Accept", "application/json", "Authorization", "Bearer "+tok)
}

// deviceLogin runs the whole flow for user on the app at resource and
// returns the token answer.
func (env *preauthEnv) deviceLogin(t *testing.T, resource, user string) oauthAnswer {
	t.Helper()
	dc, uc, complete := env.authorize(t, resource)
	b := env.browser(t)
	resp, page := b.signInForDevice(complete, user)
	if resp.StatusCode != 200 || !strings.Contains(page, `value="approve"`) {
		t.Fatalf("approval page: %s\n%s", resp.Status, page)
	}
	if resp, page = b.decide(page, uc, "approve"); resp.StatusCode != 200 || !strings.Contains(page, "approved") {
		t.Fatalf("approve: %s\n%s", resp.Status, page)
	}
	a := env.pollNow(t, dc)
	if a.status != 200 {
		t.Fatalf("token after approval: %d %v", a.status, a.body)
	}
	return a
}

// TestDeviceFlow: the whole device flow — code, sign-in in a browser,
// approval, tokens; the access token reaches its application (and no
// other); the device code works once; a refresh replaces both tokens,
// and the replaced refresh token, used again, ends the sign-in.
func TestDeviceFlow(t *testing.T) {
	env := startPreauth(t)
	dc, uc, complete := env.authorize(t, env.webURL)

	wantOAuthError(t, "first poll", env.poll(t, dc), 400, "authorization_pending")
	a := env.poll(t, dc) // at once: faster than the interval
	wantOAuthError(t, "second poll at once", a, 400, "slow_down")
	if !strings.Contains(a.str("error_description"), "10 s") {
		t.Errorf("slow_down does not give the new interval (10 s): %v", a.body)
	}
	wantOAuthError(t, "a poll after the interval", env.pollNow(t, dc), 400, "authorization_pending")

	// The user opens the URL in a browser, signs in and approves.
	b := env.browser(t)
	resp, page := b.signInForDevice(complete, "alice@contoso.com")
	for _, want := range []string{`value="approve"`, `value="deny"`, "web", "contoso.com", "alice@contoso.com", uc} {
		if !strings.Contains(page, want) {
			t.Fatalf("the approval page (%s) does not contain %q:\n%s", resp.Status, want, page)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("approval page CSP %q", csp)
	}
	if resp, page = b.decide(page, uc, "approve"); resp.StatusCode != 200 || !strings.Contains(page, "approved") {
		t.Fatalf("approve: %s\n%s", resp.Status, page)
	}
	// The code is used: opening it again says so.
	if resp, page = b.follow(complete); resp.StatusCode != http.StatusConflict || !strings.Contains(page, "already approved") {
		t.Errorf("the approved code opened again: %s\n%s", resp.Status, page)
	}

	tok := env.pollNow(t, dc)
	if tok.status != 200 || tok.str("token_type") != "Bearer" || !validSecret(tok.str("access_token"), prefixAccess) ||
		!validSecret(tok.str("refresh_token"), prefixRefresh) || tok.str("user") != "alice@contoso.com" || tok.str("app") != "web" {
		t.Fatalf("token answer: %d %v", tok.status, tok.body)
	}
	if n := tok.num("expires_in"); n < 3500 || n > 3600 {
		t.Errorf("expires_in %d, want about an hour", n)
	}
	wantOAuthError(t, "the device code again", env.pollNow(t, dc), 400, "invalid_grant")

	access, refresh := tok.str("access_token"), tok.str("refresh_token")
	resp, body := env.bearerGet(t, env.webURL, access)
	if h := backendSaw(t, resp, body); h.Get("X-Sallyport-User") != "alice@contoso.com" || h.Get("Authorization") != "" {
		t.Errorf("the backend saw %v", h)
	}
	if resp, _ := env.bearerGet(t, env.wikiURL, access); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("web's access token on wiki: %s, want 401", resp.Status)
	}

	// Refresh: both tokens are replaced; the old access token ends.
	r1 := env.refresh(t, refresh)
	if r1.status != 200 || r1.str("access_token") == access || r1.str("refresh_token") == refresh || !validSecret(r1.str("refresh_token"), prefixRefresh) {
		t.Fatalf("refresh: %d %v", r1.status, r1.body)
	}
	if resp, _ := env.bearerGet(t, env.webURL, access); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the replaced access token: %s, want 401", resp.Status)
	}
	resp, body = env.bearerGet(t, env.webURL, r1.str("access_token"))
	backendSaw(t, resp, body)
	r2 := env.refresh(t, r1.str("refresh_token"))
	if r2.status != 200 {
		t.Fatalf("second refresh: %d %v", r2.status, r2.body)
	}

	// The first refresh token again: a copy is in other hands. The
	// sign-in ends: the current refresh and access tokens too.
	wantOAuthError(t, "a replaced refresh token", env.refresh(t, refresh), 400, "invalid_grant")
	wantOAuthError(t, "the current refresh token after a reuse", env.refresh(t, r2.str("refresh_token")), 400, "invalid_grant")
	if resp, _ := env.bearerGet(t, env.webURL, r2.str("access_token")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the current access token after a reuse: %s, want 401", resp.Status)
	}
	wantEvents(t, env.srv, eventlog.DeviceDecided, eventlog.AccessTokenIssued, eventlog.RefreshTokenReused)
}

// wantEvents checks that the server's event log holds each id.
func wantEvents(t *testing.T, s *Server, ids ...eventlog.ID) {
	t.Helper()
	for _, id := range ids {
		evs, err := eventlog.Read(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{id}})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			t.Errorf("no event %d in the log", id)
		}
	}
}

// TestDeviceAuthorizationRefusals: the device authorization endpoint
// says nothing about which hosts exist, and wants its client.
func TestDeviceAuthorizationRefusals(t *testing.T) {
	env := startPreauth(t)
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/apps", tok, map[string]any{"name": "open", "internal_url": "http://x/"}); rec.Code != 201 {
		t.Fatalf("create open: %d %s", rec.Code, eb.Error.Message)
	}
	open, err := env.srv.store.AppByName(t.Context(), env.tenant.ID, "open")
	if err != nil {
		t.Fatal(err)
	}
	if open.PreAuth == PreAuthSallyport {
		open.PreAuth = PreAuthPassthrough
		if err := env.srv.store.UpdateApp(t.Context(), open); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.srv.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	var unknownDesc, openDesc string
	for _, tc := range []struct {
		name     string
		form     url.Values
		status   int
		code     string
		saveDesc *string
	}{
		{"no such host", url.Values{"client_id": {DeviceClientID}, "resource": {"https://nothing-here.sallyport.localhost/"}}, 400, "invalid_target", &unknownDesc},
		{"a passthrough application", url.Values{"client_id": {DeviceClientID}, "resource": {"https://" + open.ExternalHost + "/"}}, 400, "invalid_target", &openDesc},
		{"not https", url.Values{"client_id": {DeviceClientID}, "resource": {strings.Replace(env.webURL, "https:", "http:", 1)}}, 400, "invalid_target", nil},
		{"no resource", url.Values{"client_id": {DeviceClientID}}, 400, "invalid_request", nil},
		{"unknown client", url.Values{"client_id": {"curl"}, "resource": {env.webURL}}, 401, "invalid_client", nil},
		{"no client", url.Values{"resource": {env.webURL}}, 401, "invalid_client", nil},
	} {
		a := env.oauthPost(t, "/oauth/device_authorization", tc.form)
		wantOAuthError(t, tc.name, a, tc.status, tc.code)
		if tc.saveDesc != nil {
			*tc.saveDesc = a.str("error_description")
		}
	}
	if unknownDesc != openDesc || !strings.Contains(unknownDesc, "No application at this URL uses sign-in") {
		t.Errorf("an unknown host and a passthrough application are told apart: %q / %q", unknownDesc, openDesc)
	}
}

// TestDeviceTokenErrors: the token endpoint's RFC 6749 / RFC 8628 errors.
func TestDeviceTokenErrors(t *testing.T) {
	env := startPreauth(t)
	ctx := t.Context()
	pending, _, _ := env.authorize(t, env.webURL)

	// An expired code, and a denied one.
	expired, _, _ := env.authorize(t, env.webURL)
	g, err := env.srv.store.GrantByHash(ctx, store.GrantDevice, hashToken(expired))
	if err != nil {
		t.Fatal(err)
	}
	env.srv.store.TakeGrant(ctx, store.GrantDevice, g.Hash, time.Now())
	g.CreatedAt, g.ExpiresAt, g.UserCode = time.Now().Add(-time.Hour), time.Now().Add(-time.Minute), "XXXX-XXXX"
	if err := env.srv.store.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	denied, uc, complete := env.authorize(t, env.webURL)
	b := env.browser(t)
	_, page := b.signInForDevice(complete, "alice@contoso.com")
	if resp, page := b.decide(page, uc, "deny"); resp.StatusCode != 200 || !strings.Contains(page, "denied") {
		t.Fatalf("deny: %s\n%s", resp.Status, page)
	}

	tests := []struct {
		name   string
		form   url.Values
		ctype  string
		status int
		code   string
	}{
		{"pending", url.Values{"grant_type": {deviceGrantType}, "device_code": {pending}}, "", 400, "authorization_pending"},
		{"expired", url.Values{"grant_type": {deviceGrantType}, "device_code": {expired}}, "", 400, "expired_token"},
		{"denied", url.Values{"grant_type": {deviceGrantType}, "device_code": {denied}}, "", 400, "access_denied"},
		{"denied, again: the code is gone", url.Values{"grant_type": {deviceGrantType}, "device_code": {denied}}, "", 400, "invalid_grant"},
		{"unknown device code", url.Values{"grant_type": {deviceGrantType}, "device_code": {newSecret(prefixDevice)}}, "", 400, "invalid_grant"},
		{"no device code", url.Values{"grant_type": {deviceGrantType}}, "", 400, "invalid_request"},
		{"no grant type", url.Values{"device_code": {pending}}, "", 400, "invalid_request"},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"alice@contoso.com"}}, "", 400, "unsupported_grant_type"},
		{"another client", url.Values{"grant_type": {deviceGrantType}, "device_code": {pending}, "client_id": {"other"}}, "", 401, "invalid_client"},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {newSecret(prefixRefresh)}}, "", 400, "invalid_grant"},
		{"no refresh token", url.Values{"grant_type": {"refresh_token"}}, "", 400, "invalid_request"},
		{"JSON body", nil, "application/json", 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ctype != "" {
				req, _ := http.NewRequest("POST", deviceCloud+"/oauth/token", strings.NewReader(`{"grant_type":"refresh_token"}`))
				req.Header.Set("Content-Type", tc.ctype)
				resp, err := env.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				a := oauthAnswer{status: resp.StatusCode}
				json.NewDecoder(resp.Body).Decode(&a.body)
				wantOAuthError(t, tc.name, a, tc.status, tc.code)
				return
			}
			// Each poll as if after the interval, so that slow_down does
			// not hide the answer under test.
			if dc := tc.form.Get("device_code"); dc != "" {
				if g, err := env.srv.store.GrantByHash(ctx, store.GrantDevice, hashToken(dc)); err == nil {
					g.PolledAt = time.Time{}
					env.srv.store.UpdateGrant(ctx, g)
				}
			}
			a := env.oauthPost(t, "/oauth/token", tc.form)
			wantOAuthError(t, tc.name, a, tc.status, tc.code)
			if tc.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("invalid_client without WWW-Authenticate: %v", a.header)
			}
		})
	}
}

// TestDeviceApprovalChecks: only a signed-in user of the application's
// tenant who is assigned to it approves; the form needs its CSRF token;
// a user deleted or disabled after the approval gets no token.
func TestDeviceApprovalChecks(t *testing.T) {
	env := startPreauth(t)
	ctx := t.Context()

	// Bob is not assigned to web: the page says so, and whom to ask.
	_, uc, complete := env.authorize(t, env.webURL)
	b := env.browser(t)
	resp, page := b.signInForDevice(complete, "bob@contoso.com")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not assigned") || !strings.Contains(page, "bob@contoso.com") ||
		!strings.Contains(page, "administrator of contoso.com") || strings.Contains(page, `value="approve"`) {
		t.Fatalf("an unassigned user's approval page: %s\n%s", resp.Status, page)
	}
	// Nor can he post the form (with a valid CSRF token of his own).
	b.follow(deviceCloud + "/device")
	csrf := b.csrfCookie()
	resp, _ = b.do("POST", deviceCloud+"/device", url.Values{"csrf": {csrf}, "user_code": {uc}, "action": {"approve"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an unassigned user's approval: %s, want 403", resp.Status)
	}

	// Alice's approval without the CSRF token is refused.
	dc, uc, complete := env.authorize(t, env.webURL)
	a := env.browser(t)
	if _, page = a.signInForDevice(complete, "alice@contoso.com"); !strings.Contains(page, `value="approve"`) {
		t.Fatalf("no approval page for alice:\n%s", page)
	}
	resp, _ = a.do("POST", deviceCloud+"/device", url.Values{"user_code": {uc}, "action": {"approve"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("approval without CSRF: %s, want 403", resp.Status)
	}
	wantOAuthError(t, "after the refused approvals", env.pollNow(t, dc), 400, "authorization_pending")

	// Tenant isolation: a signed-in user of fabrikam.com cannot approve a
	// code for contoso's application — neither with a cloud session of
	// fabrikam.com nor by signing in with the code.
	if _, err := datadir.AddTenant(ctx, env.srv.store, "fabrikam.com", "", "admin@fabrikam.com", testPassword); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	fabAdmin, err := env.srv.store.UserByName(ctx, "admin@fabrikam.com")
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := env.srv.newSession(ctx, fabAdmin, store.SessionCloud, "", "", "password")
	if err != nil {
		t.Fatal(err)
	}
	f := env.browser(t)
	cloudURL, _ := url.Parse(deviceCloud + "/")
	f.jar.SetCookies(cloudURL, []*http.Cookie{{Name: cloudCookie, Value: secret, Path: "/", Secure: true}})
	resp, _ = f.do("GET", deviceCloud+"/device?user_code="+uc, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin?device=") {
		t.Errorf("another tenant's signed-in user on the approval page: %s %s, want a redirect to sign in", resp.Status, resp.Header.Get("Location"))
	}
	f.follow(deviceCloud + "/device?user_code=" + uc) // the sign-in page: a CSRF cookie
	resp, _ = f.do("POST", deviceCloud+"/device", url.Values{"csrf": {f.csrfCookie()}, "user_code": {uc}, "action": {"approve"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another tenant's user approving: %s, want a redirect to sign in", resp.Status)
	}
	if resp, page = f.signInForDevice(deviceCloud+"/device?user_code="+uc, "admin@fabrikam.com"); resp.StatusCode != http.StatusForbidden || strings.Contains(page, `value="approve"`) {
		t.Errorf("another tenant's user signing in for the code: %s\n%s", resp.Status, page)
	}
	wantOAuthError(t, "after the other tenant's attempts", env.pollNow(t, dc), 400, "authorization_pending")

	// Approved, then alice is disabled: no token. Enabled again, she
	// gets one; disabled, her refresh is refused.
	if resp, page = a.decide(page0(t, a, uc), uc, "approve"); resp.StatusCode != 200 {
		t.Fatalf("alice's approval: %s\n%s", resp.Status, page)
	}
	alice := env.alice
	alice.Disabled = true
	if err := env.srv.store.UpdateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	a2 := env.pollNow(t, dc)
	wantOAuthError(t, "a disabled user's approved code", a2, 400, "invalid_grant")
	if !strings.Contains(a2.str("error_description"), "disabled") {
		t.Errorf("the refusal does not say the user is disabled: %v", a2.body)
	}
	alice.Disabled = false
	if err := env.srv.store.UpdateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	tok := env.deviceLogin(t, env.webURL, "alice@contoso.com")
	if err := env.srv.store.Unassign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: env.web.ID, UserID: env.alice.ID}); err != nil {
		t.Fatal(err)
	}
	r := env.refresh(t, tok.str("refresh_token"))
	wantOAuthError(t, "an unassigned user's refresh", r, 400, "invalid_grant")
	if !strings.Contains(r.str("error_description"), "not assigned") {
		t.Errorf("the refusal does not say the user is not assigned: %v", r.body)
	}
	wantOAuthError(t, "the refresh token after the refusal", env.refresh(t, tok.str("refresh_token")), 400, "invalid_grant")
}

// page0 opens the approval page of user code uc in b (signed in).
func page0(t *testing.T, b *browser, uc string) string {
	t.Helper()
	resp, page := b.follow(deviceCloud + "/device?user_code=" + uc)
	if resp.StatusCode != 200 || !strings.Contains(page, `value="approve"`) {
		t.Fatalf("approval page: %s\n%s", resp.Status, page)
	}
	return page
}

// csrfCookie is the browser's CSRF cookie at the cloud's name.
func (b *browser) csrfCookie() string {
	u, _ := url.Parse(deviceCloud + "/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == csrfCookie {
			return c.Value
		}
	}
	b.t.Fatal("no CSRF cookie")
	return ""
}

// TestDeviceCodePage: the page to type a code takes it in any case, with
// or without the dash, and says when a code is not valid.
func TestDeviceCodePage(t *testing.T) {
	env := startPreauth(t)
	_, uc, _ := env.authorize(t, env.webURL)
	b := env.browser(t)
	resp, page := b.do("GET", deviceCloud+"/device", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="user_code"`) {
		t.Fatalf("the code form: %s\n%s", resp.Status, page)
	}
	for _, typed := range []string{uc, strings.ToLower(uc), strings.ReplaceAll(uc, "-", ""), " " + uc[:4] + " " + uc[5:]} {
		resp, _ := b.do("GET", deviceCloud+"/device?user_code="+url.QueryEscape(typed), nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?device="+uc {
			t.Errorf("code %q: %s %s, want a redirect to /signin?device=%s", typed, resp.Status, resp.Header.Get("Location"), uc)
		}
	}
	for _, typed := range []string{"BCDF-GHJ", "AEIO-UAEI", strings.Repeat("B", 100), "<script>"} {
		resp, page := b.do("GET", deviceCloud+"/device?user_code="+url.QueryEscape(typed), nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "not valid or has expired") || strings.Contains(page, "<script>") {
			t.Errorf("code %q: %s\n%s", typed, resp.Status, page)
		}
	}
	for range 50 {
		c := newUserCode()
		if len(c) != 9 || normalizeUserCode(c) != c || strings.ContainsAny(c, "AEIOUY") {
			t.Fatalf("newUserCode() = %q", c)
		}
	}
}

// TestDeviceRevoke: POST /oauth/revoke (RFC 7009, `access logout`) ends
// a refresh token with its access token; an unknown token is 200 too.
func TestDeviceRevoke(t *testing.T) {
	env := startPreauth(t)
	tok := env.deviceLogin(t, env.webURL, "alice@contoso.com")
	revoke := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", deviceCloud+"/oauth/revoke", strings.NewReader(url.Values{"token": {token}, "client_id": {DeviceClientID}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := env.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, junk := range []string{"", "spc_x", newSecret(prefixRefresh), newSecret(prefixCookie)} {
		if code := revoke(junk); code != 200 {
			t.Errorf("revoking %q: %d, want 200", junk, code)
		}
	}
	resp, body := env.bearerGet(t, env.webURL, tok.str("access_token"))
	backendSaw(t, resp, body)
	if code := revoke(tok.str("refresh_token")); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if resp, _ := env.bearerGet(t, env.webURL, tok.str("access_token")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the access token after revoking its refresh token: %s, want 401", resp.Status)
	}
	wantOAuthError(t, "a revoked refresh token", env.refresh(t, tok.str("refresh_token")), 400, "invalid_grant")
}

// TestDeviceCodeGuessing: looking user codes up is rate-limited per
// address, like sign-in, so that they cannot be enumerated.
func TestDeviceCodeGuessing(t *testing.T) {
	env := startPreauth(t)
	b := env.browser(t)
	limited := false
	for i := range defaultSigninLimits.SourceBurst + 5 {
		resp, page := b.do("GET", deviceCloud+"/device?user_code="+fmt.Sprintf("BCDF-%04d", i), nil)
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "Too many") {
				t.Errorf("429 without Retry-After or a sentence:\n%s", page)
			}
			limited = true
			break
		}
	}
	if !limited {
		t.Fatalf("%d code look-ups from one address were all answered", defaultSigninLimits.SourceBurst+5)
	}
}
