package cloud

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/store"
)

// TestPreAuthAPI: new applications use pre-authentication at the cloud
// unless told passthrough, which the answer says makes them public; an
// update keeps the pre-authentication unless it names one.
func TestPreAuthAPI(t *testing.T) {
	s, admin, ops, bob, _ := directoryServer(t)
	create := func(in api.CreateAppRequest) (api.App, int, string) {
		t.Helper()
		rec, eb := call(t, s, "POST", "/apps", ops, in)
		var a api.App
		json.Unmarshal(rec.Body.Bytes(), &a)
		return a, rec.Code, eb.Error.Code
	}
	a, code, _ := create(api.CreateAppRequest{Name: "web", InternalURL: "http://intranet:8080/"})
	if code != 201 || a.PreAuth != "sallyport" || a.PublicNote != "" {
		t.Errorf("default create = %d %+v, want 201 sallyport without a public note", code, a)
	}
	a, code, _ = create(api.CreateAppRequest{Name: "api", InternalURL: "http://api:9000/", PreAuth: "passthrough"})
	if code != 201 || a.PreAuth != "passthrough" || a.PublicNote != "pre-authentication is passthrough: anyone who knows "+a.ExternalURL+" reaches the backend" {
		t.Errorf("passthrough create = %d %+v, want 201 passthrough with the public note", code, a)
	}
	for _, bad := range []string{"open", "Sallyport", "none"} {
		if _, code, ec := create(api.CreateAppRequest{Name: "bad", InternalURL: "http://x/", PreAuth: bad}); code != 400 || ec != "bad_preauth" {
			t.Errorf("preauth %q = %d %q, want 400 bad_preauth", bad, code, ec)
		}
	}

	patch := func(name string, in api.UpdateAppRequest) (api.App, int, string) {
		t.Helper()
		rec, eb := call(t, s, "PATCH", "/apps/"+name, admin, in)
		var a api.App
		json.Unmarshal(rec.Body.Bytes(), &a)
		return a, rec.Code, eb.Error.Code
	}
	str := func(v string) *string { return &v }
	for _, tc := range []struct {
		name, app    string
		in           api.UpdateAppRequest
		status       int
		code, want   string
		publicNoteOn bool
	}{
		{"another field keeps sallyport", "web", api.UpdateAppRequest{Timeout: str("long")}, 200, "", "sallyport", false},
		{"another field keeps passthrough", "api", api.UpdateAppRequest{Timeout: str("long")}, 200, "", "passthrough", false},
		{"to passthrough says it is public", "web", api.UpdateAppRequest{PreAuth: str("passthrough")}, 200, "", "passthrough", true},
		{"passthrough again says nothing new", "web", api.UpdateAppRequest{PreAuth: str("passthrough")}, 200, "", "passthrough", false},
		{"back to sallyport", "web", api.UpdateAppRequest{PreAuth: str("sallyport")}, 200, "", "sallyport", false},
		{"empty", "web", api.UpdateAppRequest{PreAuth: str("")}, 400, "bad_preauth", "", false},
		{"unknown", "web", api.UpdateAppRequest{PreAuth: str("basic")}, 400, "bad_preauth", "", false},
	} {
		a, code, ec := patch(tc.app, tc.in)
		if code != tc.status || ec != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, code, ec, tc.status, tc.code)
			continue
		}
		if code == 200 && (a.PreAuth != tc.want || (a.PublicNote != "") != tc.publicNoteOn) {
			t.Errorf("%s: preauth %q, public note %q; want %q, note %t", tc.name, a.PreAuth, a.PublicNote, tc.want, tc.publicNoteOn)
		}
	}
	// The edge's route table follows at once.
	if e, ok := s.Lookup("web-contoso.sallyport.test"); !ok || !e.PreAuth {
		t.Errorf("route of web after going back to sallyport: %+v %t, want PreAuth", e, ok)
	}
	if e, ok := s.Lookup("api-contoso.sallyport.test"); !ok || e.PreAuth {
		t.Errorf("route of api: %+v %t, want passthrough", e, ok)
	}
	runSteps(t, s, []apiStep{{name: "a user cannot change it", method: "PATCH", path: "/apps/web", token: bob, body: api.UpdateAppRequest{PreAuth: str("passthrough")}, status: 403, code: "forbidden"}})
}

// userDetailOf reads GET /users/{name} as the Global Administrator.
func userDetailOf(t *testing.T, s *Server, tok, name string) api.UserDetail {
	t.Helper()
	return getJSON[api.UserDetail](t, s, tok, "/users/"+name)
}

// TestUserAdminAPI: only a Global Administrator shows, deletes, disables,
// enables and resets the second factor of users, and only of their own
// tenant; not their own account; disabling and deleting end the user's
// sessions and take effect at the edge at once.
func TestUserAdminAPI(t *testing.T) {
	s, admin, ops, bob, fabrikam := directoryServer(t)
	ctx := context.Background()

	runSteps(t, s, []apiStep{
		{name: "with email and display name", method: "POST", path: "/users", token: admin, body: api.CreateUserRequest{Name: "cy@contoso.com", Role: "user", Password: testPassword, Email: "cy@mail.contoso.com", DisplayName: "Cy Jones"}, status: 201},
		{name: "bad email", method: "POST", path: "/users", token: admin, body: api.CreateUserRequest{Name: "dee@contoso.com", Role: "user", Password: testPassword, Email: "Dee <dee@contoso.com>"}, status: 400, code: "bad_email"},
		{name: "not an email", method: "POST", path: "/users", token: admin, body: api.CreateUserRequest{Name: "dee@contoso.com", Role: "user", Password: testPassword, Email: "dee"}, status: 400, code: "bad_email"},
		{name: "display name on two lines", method: "POST", path: "/users", token: admin, body: api.CreateUserRequest{Name: "dee@contoso.com", Role: "user", Password: testPassword, DisplayName: "Dee\nX"}, status: 400, code: "bad_display_name"},
		{name: "display name too long", method: "POST", path: "/users", token: admin, body: api.CreateUserRequest{Name: "dee@contoso.com", Role: "user", Password: testPassword, DisplayName: strings.Repeat("é", 101)}, status: 400, code: "bad_display_name"},
		{name: "user group", method: "POST", path: "/user-groups", token: admin, body: api.CreateUserGroupRequest{Name: "Staff"}, status: 201},
		{name: "member", method: "POST", path: "/user-groups/Staff/members", token: admin, body: api.AddMemberRequest{User: "cy@contoso.com"}, status: 200},
	})
	d := userDetailOf(t, s, admin, "CY@contoso.com")
	if d.Name != "cy@contoso.com" || d.Email != "cy@mail.contoso.com" || d.DisplayName != "Cy Jones" || d.Disabled || d.MFAEnrolled || d.External != "" ||
		strings.Join(d.UserGroups, ",") != "Staff" || d.Role != "user" || d.Tenant != "contoso.com" {
		t.Errorf("user show cy = %+v", d)
	}

	// Roles and tenants: every route, by everyone who may not.
	var steps []apiStep
	for _, r := range []struct{ method, suffix string }{{"GET", ""}, {"DELETE", ""}, {"POST", "/disable"}, {"POST", "/enable"}, {"POST", "/reset-mfa"}} {
		path := "/users/cy@contoso.com" + r.suffix
		steps = append(steps,
			apiStep{name: "app-admin " + r.method + r.suffix, method: r.method, path: path, token: ops, status: 403, code: "forbidden", say: []string{"only a Global Administrator manages users"}},
			apiStep{name: "user " + r.method + r.suffix, method: r.method, path: path, token: bob, status: 403, code: "forbidden"},
			apiStep{name: "no token " + r.method + r.suffix, method: r.method, path: path, status: 401, code: "unauthenticated"},
			apiStep{name: "fabrikam's admin " + r.method + r.suffix, method: r.method, path: path, token: fabrikam, status: 400, code: "bad_user_name", say: []string{"fabrikam.com"}},
			apiStep{name: "unknown user " + r.method + r.suffix, method: r.method, path: "/users/nobody@contoso.com" + r.suffix, token: admin, status: 404, code: "no_user"},
		)
	}
	steps = append(steps,
		apiStep{name: "delete yourself", method: "DELETE", path: "/users/admin@contoso.com", token: admin, status: 409, code: "own_account"},
		apiStep{name: "disable yourself", method: "POST", path: "/users/admin@contoso.com/disable", token: admin, status: 409, code: "own_account"},
	)
	runSteps(t, s, steps)
	if d := userDetailOf(t, s, admin, "cy@contoso.com"); d.Disabled {
		t.Errorf("a refused action changed cy: %+v", d)
	}

	// Disabling ends the user's sessions, refuses its admin token and its
	// sign-in, and reaches the gate's directory at once.
	cy := login(t, s, "cy@contoso.com", testPassword)
	cyUser, err := s.store.UserByName(ctx, "cy@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{store.SessionCloud, store.SessionApp} {
		if _, _, err := s.newSession(ctx, cyUser, kind, "", "", "password"); err != nil {
			t.Fatal(err)
		}
	}
	rec, eb := call(t, s, "POST", "/users/cy@contoso.com/disable", admin, nil)
	var got api.UserDetail
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || !got.Disabled || got.SessionsEnded != 2 || !strings.Contains(got.Note, "signed out everywhere") {
		t.Errorf("disable cy = %d %s %+v, want disabled with 2 sessions ended", rec.Code, eb.Error.Message, got)
	}
	if u := s.routesNow().users[cyUser.ID]; u == nil || !u.Disabled {
		t.Errorf("the directory snapshot after disabling: %+v, want cy disabled", u)
	}
	runSteps(t, s, []apiStep{
		{name: "a disabled user's token", method: "GET", path: "/me", token: cy, status: 403, code: "user_disabled"},
		{name: "a disabled user's sign-in", method: "POST", path: "/login", body: api.LoginRequest{User: "cy@contoso.com", Password: testPassword}, status: 403, code: "user_disabled"},
		{name: "a disabled user's wrong password says nothing more", method: "POST", path: "/login", body: api.LoginRequest{User: "cy@contoso.com", Password: "wrong-password-123"}, status: 401, code: "bad_credentials"},
		{name: "enable", method: "POST", path: "/users/cy@contoso.com/enable", token: admin, status: 200},
		{name: "the token works again", method: "GET", path: "/me", token: cy, status: 200},
	})

	// Resetting the second factor removes it and ends the sessions.
	if err := s.store.SetUserMFA(ctx, cyUser.TenantID, cyUser.ID, []byte("0123456789abcdef0123"), time.Now().UTC(), []string{"aa", "bb"}); err != nil {
		t.Fatal(err)
	}
	if d := userDetailOf(t, s, admin, "cy@contoso.com"); !d.MFAEnrolled || d.MFAEnrolledAt.IsZero() {
		t.Errorf("enrolled cy = %+v, want MFA enrolled", d)
	}
	s.newSession(ctx, cyUser, store.SessionCloud, "", "", "password+totp")
	rec, _ = call(t, s, "POST", "/users/cy@contoso.com/reset-mfa", admin, nil)
	got = api.UserDetail{}
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || got.MFAEnrolled || got.SessionsEnded != 1 || !strings.Contains(got.Note, "enrol") {
		t.Errorf("reset-mfa = %d %+v, want not enrolled, 1 session ended, a note on enrolling", rec.Code, got)
	}
	if u, err := s.store.UserByID(ctx, cyUser.TenantID, cyUser.ID); err != nil || u.TOTPSecret != nil || len(u.RecoveryCodes) != 0 || !u.MFAEnrolledAt.IsZero() {
		t.Errorf("cy after reset-mfa: %v, secret %v, codes %v", err, u.TOTPSecret != nil, u.RecoveryCodes)
	}

	// Deleting ends everything.
	secret, _, err := s.newSession(ctx, cyUser, store.SessionApp, "", "", "password")
	if err != nil {
		t.Fatal(err)
	}
	runSteps(t, s, []apiStep{
		{name: "delete", method: "DELETE", path: "/users/cy@contoso.com", token: admin, status: 204},
		{name: "show the deleted user", method: "GET", path: "/users/cy@contoso.com", token: admin, status: 404, code: "no_user"},
		{name: "delete it again", method: "DELETE", path: "/users/cy@contoso.com", token: admin, status: 404, code: "no_user"},
		{name: "its token", method: "GET", path: "/me", token: cy, status: 401, code: "unauthenticated"},
	})
	if _, err := s.store.SessionByHash(ctx, hashToken(secret)); err == nil {
		t.Errorf("the deleted user's session is still stored")
	}
	if _, ok := s.routesNow().users[cyUser.ID]; ok {
		t.Errorf("the deleted user is still in the directory snapshot")
	}
	if g := getUserGroup(t, s, admin, "Staff"); g.MemberCount != 0 {
		t.Errorf("Staff after deleting cy = %+v", g)
	}
}

// TestNotLastAdmin: the tenant keeps an enabled Global Administrator.
func TestNotLastAdmin(t *testing.T) {
	s, admin, _, _, _ := directoryServer(t)
	ctx := context.Background()
	ten, err := s.store.TenantByDomain(ctx, "contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.store.UserByName(ctx, "admin@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.notLastAdmin(ctx, ten, root, "delete"); err == nil || !strings.Contains(err.Error(), "last Global Administrator of contoso.com") {
		t.Errorf("the only Global Administrator: %v, want last_global_admin", err)
	}
	runSteps(t, s, []apiStep{{name: "a second", method: "POST", path: "/users", token: admin, body: api.CreateUserRequest{Name: "root@contoso.com", Role: "global-admin", Password: testPassword}, status: 201}})
	if err := s.notLastAdmin(ctx, ten, root, "delete"); err != nil {
		t.Errorf("with a second Global Administrator: %v", err)
	}
	runSteps(t, s, []apiStep{{name: "disable the second", method: "POST", path: "/users/root@contoso.com/disable", token: admin, status: 200}})
	if err := s.notLastAdmin(ctx, ten, root, "disable"); err == nil {
		t.Errorf("with the second disabled: no refusal")
	}
}

// TestTenantSettingsAPI: a Global Administrator reads and changes its own
// tenant's sign-in settings, within their limits; defaults are shown as
// such; another tenant's stay as they were.
func TestTenantSettingsAPI(t *testing.T) {
	s, admin, ops, bob, fabrikam := directoryServer(t)
	get := func(tok string) api.TenantSettings {
		t.Helper()
		return getJSON[api.TenantSettings](t, s, tok, "/tenant")
	}
	def := api.TenantSettings{Tenant: "contoso.com", SessionLifetime: "12h0m0s", SessionLifetimeSeconds: 43200, SessionLifetimeDefault: true,
		SessionIdle: "1h0m0s", SessionIdleSeconds: 3600, SessionIdleDefault: true}
	if got := get(admin); got != def {
		t.Errorf("defaults = %+v, want %+v", got, def)
	}
	str := func(v string) *string { return &v }
	yes := true
	steps := []apiStep{
		{name: "app-admin reads", method: "GET", path: "/tenant", token: ops, status: 403, code: "forbidden"},
		{name: "user reads", method: "GET", path: "/tenant", token: bob, status: 403, code: "forbidden"},
		{name: "app-admin changes", method: "PATCH", path: "/tenant", token: ops, body: api.UpdateTenantSettingsRequest{RequireMFA: &yes}, status: 403, code: "forbidden"},
		{name: "unknown field", method: "PATCH", path: "/tenant", token: admin, body: []byte(`{"tenant":"fabrikam.com"}`), status: 400, code: "bad_request"},
	}
	for _, tc := range []struct {
		name, lifetime, idle, code string
	}{
		{"not a duration", "twelve hours", "", "bad_duration"},
		{"days are not Go", "7d", "", "bad_duration"},
		{"negative", "-1h", "", "bad_duration"},
		{"zero", "0s", "", "bad_duration"},
		{"lifetime too short", "4m59s", "", "bad_session_lifetime"},
		{"lifetime too long", "720h1s", "", "bad_session_lifetime"},
		{"idle too short", "", "59s", "bad_session_idle"},
		{"idle over the default lifetime", "", "13h", "bad_session_idle"},
		{"idle over the lifetime", "2h", "3h", "bad_session_idle"},
		{"idle bad", "", "soon", "bad_duration"},
	} {
		in := api.UpdateTenantSettingsRequest{}
		if tc.lifetime != "" {
			in.SessionLifetime = str(tc.lifetime)
		}
		if tc.idle != "" {
			in.SessionIdle = str(tc.idle)
		}
		steps = append(steps, apiStep{name: tc.name, method: "PATCH", path: "/tenant", token: admin, body: in, status: 400, code: tc.code})
	}
	runSteps(t, s, steps)
	if got := get(admin); got != def {
		t.Errorf("after refusals = %+v, want the defaults", got)
	}

	for _, tc := range []struct {
		name string
		in   api.UpdateTenantSettingsRequest
		want func(*api.TenantSettings)
	}{
		{"both limits at their ends", api.UpdateTenantSettingsRequest{SessionLifetime: str("720h"), SessionIdle: str("1m")}, func(w *api.TenantSettings) {
			w.SessionLifetime, w.SessionLifetimeSeconds, w.SessionLifetimeDefault = "720h0m0s", 720*3600, false
			w.SessionIdle, w.SessionIdleSeconds, w.SessionIdleDefault = "1m0s", 60, false
		}},
		{"require MFA keeps the rest", api.UpdateTenantSettingsRequest{RequireMFA: &yes}, func(w *api.TenantSettings) {
			w.RequireMFA = true
			w.SessionLifetime, w.SessionLifetimeSeconds, w.SessionLifetimeDefault = "720h0m0s", 720*3600, false
			w.SessionIdle, w.SessionIdleSeconds, w.SessionIdleDefault = "1m0s", 60, false
		}},
		{"a short lifetime cuts the default idle", api.UpdateTenantSettingsRequest{SessionLifetime: str("5m"), SessionIdle: str("default")}, func(w *api.TenantSettings) {
			w.RequireMFA = true
			w.SessionLifetime, w.SessionLifetimeSeconds, w.SessionLifetimeDefault = "5m0s", 300, false
			w.SessionIdle, w.SessionIdleSeconds, w.SessionIdleDefault = "5m0s", 300, true
		}},
		{"back to the defaults", api.UpdateTenantSettingsRequest{SessionLifetime: str("default"), SessionIdle: str("default")}, func(w *api.TenantSettings) {
			w.RequireMFA = true
		}},
	} {
		rec, eb := call(t, s, "PATCH", "/tenant", admin, tc.in)
		var got api.TenantSettings
		json.Unmarshal(rec.Body.Bytes(), &got)
		want := def
		tc.want(&want)
		want.UpdatedAt = got.UpdatedAt
		if rec.Code != 200 || got != want || got.UpdatedAt.IsZero() {
			t.Errorf("%s: %d %s %+v, want %+v", tc.name, rec.Code, eb.Error.Message, got, want)
		}
		if g := get(admin); g != got {
			t.Errorf("%s: GET = %+v, want the PATCH's answer %+v", tc.name, g, got)
		}
	}
	ten, _ := s.store.TenantByDomain(context.Background(), "contoso.com")
	if st := s.routesNow().settings[ten.ID]; !st.RequireMFA {
		t.Errorf("the directory snapshot's settings: %+v, want MFA required", st)
	}
	fdef := def
	fdef.Tenant = "fabrikam.com"
	if got := get(fabrikam); got != fdef {
		t.Errorf("fabrikam's settings after contoso's changes = %+v, want the defaults", got)
	}
}
