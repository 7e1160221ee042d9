package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
)

const testPassword = "correct horse battery"

// newTestServer makes a cloud with tenants contoso.com and fabrikam.com.
func newTestServer(t testing.TB) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := datadir.AddTenant(ctx, s.store, "fabrikam.com", "", "admin@fabrikam.com", testPassword); err != nil {
		t.Fatal(err)
	}
	return s
}

// call makes one admin API call through the server's router.
func call(t testing.TB, s *Server, method, path, token string, body any) (*httptest.ResponseRecorder, api.ErrorBody) {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req := httptest.NewRequest(method, "https://"+s.settings.Name+api.Prefix+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.route(rec, req)
	var eb api.ErrorBody
	if rec.Code >= 300 {
		json.Unmarshal(rec.Body.Bytes(), &eb)
	}
	return rec, eb
}

// serveLive serves s on its listener until the test's cleanup, which
// stops it and checks that Serve ended cleanly; it returns the listener.
func serveLive(t *testing.T, s *Server) net.Listener {
	t.Helper()
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return ln
}

// getJSON reads GET path as tok: a 200 with a T.
func getJSON[T any](t testing.TB, s *Server, tok, path string) T {
	t.Helper()
	rec, eb := call(t, s, "GET", path, tok, nil)
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, eb.Error.Message)
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

func login(t testing.TB, s *Server, user, pw string) string {
	t.Helper()
	rec, eb := call(t, s, "POST", "/login", "", api.LoginRequest{User: user, Password: pw})
	if rec.Code != 200 {
		t.Fatalf("login %s: %d %s", user, rec.Code, eb.Error.Message)
	}
	var lr api.LoginResponse
	json.Unmarshal(rec.Body.Bytes(), &lr)
	return lr.Token
}

// addOpsAndBob has admin (a global admin of contoso.com) add the users
// ops@contoso.com, an app-admin, and bob@contoso.com, a user, and returns
// their sign-in tokens.
func addOpsAndBob(t *testing.T, s *Server, admin string) (ops, bob string) {
	t.Helper()
	for _, u := range []struct{ name, role string }{{"ops@contoso.com", "app-admin"}, {"bob@contoso.com", "user"}} {
		if rec, eb := call(t, s, "POST", "/users", admin, api.CreateUserRequest{Name: u.name, Role: u.role, Password: testPassword}); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", u.name, rec.Code, eb.Error.Message)
		}
	}
	return login(t, s, "ops@contoso.com", testPassword), login(t, s, "bob@contoso.com", testPassword)
}

func TestAPIRolesAndTenantIsolation(t *testing.T) {
	s := newTestServer(t)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := login(t, s, "admin@fabrikam.com", testPassword)

	ops, bob := addOpsAndBob(t, s, contoso)

	rec, eb := call(t, s, "POST", "/apps", ops, api.CreateAppRequest{Name: "web", InternalURL: "http://intranet:8080/"})
	if rec.Code != 201 {
		t.Fatalf("app-admin create app: %d %s", rec.Code, eb.Error.Message)
	}
	var app api.App
	json.Unmarshal(rec.Body.Bytes(), &app)
	if app.ExternalHost != "web-contoso.sallyport.test" {
		t.Errorf("default external host = %q", app.ExternalHost)
	}

	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"user cannot publish", "POST", "/apps", bob, api.CreateAppRequest{Name: "x", InternalURL: "http://x/"}, 403, "forbidden"},
		{"user reads", "GET", "/apps/web", bob, nil, 200, ""},
		{"app-admin cannot create users", "POST", "/users", ops, api.CreateUserRequest{Name: "eve@contoso.com", Role: "global-admin", Password: testPassword}, 403, "forbidden"},
		{"other tenant cannot see the app", "GET", "/apps/web", fabrikam, nil, 404, "no_app"},
		{"other tenant cannot delete the app", "DELETE", "/apps/web", fabrikam, nil, 404, "no_app"},
		{"other tenant cannot use the group", "POST", "/apps", fabrikam, api.CreateAppRequest{Name: "web", InternalURL: "http://x/", Group: "Default"}, 201, ""},
		{"user of another domain", "POST", "/users", contoso, api.CreateUserRequest{Name: "eve@fabrikam.com", Role: "user", Password: testPassword}, 400, "bad_user_name"},
		{"no token", "GET", "/apps", "", nil, 401, "unauthenticated"},
		{"forged token", "GET", "/apps", "spt_forged", nil, 401, "unauthenticated"},
		{"duplicate app", "POST", "/apps", contoso, api.CreateAppRequest{Name: "web", InternalURL: "http://x/"}, 409, "app_exists"},
		{"request loop", "POST", "/apps", contoso, api.CreateAppRequest{Name: "loop", InternalURL: "https://loop-contoso.sallyport.test/"}, 400, "request_loop"},
		{"bad timeout", "POST", "/apps", contoso, api.CreateAppRequest{Name: "t", InternalURL: "http://x/", Timeout: "forever"}, 400, "bad_timeout"},
		{"unknown group", "POST", "/apps", contoso, api.CreateAppRequest{Name: "g", InternalURL: "http://x/", Group: "Nope"}, 404, "no_group"},
		{"unknown field", "POST", "/apps", contoso, []byte(`{"name":"u","internal_url":"http://x/","evil":1}`), 400, "bad_request"},
		{"connector of nobody", "DELETE", "/connectors/c_nope", contoso, nil, 404, "no_connector_id"},
		{"no such route", "GET", "/nope", contoso, nil, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, eb := call(t, s, tt.method, tt.path, tt.token, tt.body)
			if rec.Code != tt.status || eb.Error.Code != tt.code {
				t.Errorf("%s %s = %d %q (%s), want %d %q", tt.method, tt.path, rec.Code, eb.Error.Code, eb.Error.Message, tt.status, tt.code)
			}
			if rec.Code >= 400 && !strings.Contains(eb.Error.Message, eb.Error.Step) {
				t.Errorf("message %q does not carry the step %q", eb.Error.Message, eb.Error.Step)
			}
		})
	}
	// Each tenant lists only its own applications.
	for tok, want := range map[string]string{contoso: "web-contoso.sallyport.test", fabrikam: "web-fabrikam.sallyport.test"} {
		rec, _ := call(t, s, "GET", "/apps", tok, nil)
		var apps []api.App
		json.Unmarshal(rec.Body.Bytes(), &apps)
		if len(apps) != 1 || apps[0].ExternalHost != want {
			t.Errorf("list = %+v, want only %s", apps, want)
		}
	}
}

// TestLoginFailures: a wrong password, an unknown user and a domain no
// tenant owns get the very same answer (status, headers, body), at sign-in
// and at registration, so that neither users nor tenants can be told
// apart from outside.
func TestLoginFailures(t *testing.T) {
	s := newTestServer(t)
	tests := []struct{ user, pw, code string }{
		{"admin@contoso.com", "wrong password!", "bad_credentials"},
		{"nobody@contoso.com", testPassword, "bad_credentials"},
		{"admin@unknown.example", testPassword, "bad_credentials"},
		{"not-a-user-name", testPassword, "bad_user_name"},
	}
	for _, path := range []string{"/login", "/connectors/register"} {
		answers := map[string]bool{}
		for _, tt := range tests {
			var body any = api.LoginRequest{User: tt.user, Password: tt.pw}
			if path != "/login" {
				body = api.RegisterRequest{User: tt.user, Password: tt.pw, CSR: "x", Tenant: "contoso.com"}
			}
			rec, eb := call(t, s, "POST", path, "", body)
			if eb.Error.Code != tt.code {
				t.Errorf("%s %s: code %q (%s), want %q", path, tt.user, eb.Error.Code, eb.Error.Message, tt.code)
			}
			if tt.code == "bad_credentials" {
				answers[fmt.Sprintf("%d %v %s", rec.Code, rec.Header(), rec.Body.String())] = true
			}
		}
		if len(answers) != 1 {
			t.Errorf("%s: a wrong password, an unknown user and an unknown tenant got %d different answers, want 1:\n%v", path, len(answers), answers)
		}
	}
}

// FuzzAPIBodies posts untrusted bodies to the routes that decode JSON:
// the API must answer with a client error or success, never fail inside.
func FuzzAPIBodies(f *testing.F) {
	s := newTestServer(f)
	tok := login(f, s, "admin@contoso.com", testPassword)
	// A user group and an application for the directory routes to act on.
	for _, c := range []struct {
		path string
		body any
	}{{"/user-groups", api.CreateUserGroupRequest{Name: "Staff"}}, {"/apps", api.CreateAppRequest{Name: "wiki", InternalURL: "http://wiki/"}}} {
		if rec, eb := call(f, s, "POST", c.path, tok, c.body); rec.Code != 201 {
			f.Fatalf("POST %s: %d %s", c.path, rec.Code, eb.Error.Message)
		}
	}
	paths := []string{"/apps", "/groups", "/connectors/register", "/user-groups", "/user-groups/Staff/members", "/apps/wiki/assignments"}
	for _, seed := range []string{`{"name":"web","internal_url":"http://x/"}`, `{"name":"G1"}`, `{}`, `[]`, `{"name":`, `null`, `{"internal_url":"http://[::1"}`,
		`{"user":"admin@contoso.com"}`, `{"user_group":"Staff"}`, `{"user":"x@fabrikam.com","user_group":"Staff"}`} {
		for i := range paths {
			f.Add(seed, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		p := paths[int(which)%len(paths)]
		rec, _ := call(t, s, "POST", p, tok, []byte(body))
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q → %d %s", p, body, rec.Code, rec.Body)
		}
	})
}
