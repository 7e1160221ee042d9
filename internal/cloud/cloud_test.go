package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
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

func TestAPIRolesAndTenantIsolation(t *testing.T) {
	s := newTestServer(t)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := login(t, s, "admin@fabrikam.com", testPassword)

	for _, u := range []struct{ name, role string }{{"ops@contoso.com", "app-admin"}, {"bob@contoso.com", "user"}} {
		if rec, eb := call(t, s, "POST", "/users", contoso, api.CreateUserRequest{Name: u.name, Role: u.role, Password: testPassword}); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", u.name, rec.Code, eb.Error.Message)
		}
	}
	ops := login(t, s, "ops@contoso.com", testPassword)
	bob := login(t, s, "bob@contoso.com", testPassword)

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

func TestCheckInternalURL(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"http://intranet:8080/", true},
		{"https://10.0.0.5/app/", true},
		{"http://[fd00::1]:81/", true},
		{"ftp://intranet/", false},
		{"http://user:pw@intranet/", false},
		{"http:///nohost", false},
		{"http://intranet/?q=1", false},
		{"intranet:8080", false},
		{"http://bad_host/", false},
		{"http://" + strings.Repeat("a", 3000) + "/", false},
		// issue 20 item 4: ports, schemes, empty hosts, credentials
		{"http://intranet:99999/", false},
		{"http://intranet:65536/", false},
		{"http://intranet:0/", false},
		{"http://intranet:65535/", true},
		{"http://intranet:1/", true},
		{"http://intranet:/", false},
		{"http://intranet:8o/", false},
		{"http://[fd00::1]:70000/", false},
		{"http://:8080/", false},
		{"http://@intranet/", false},
		{"http://user@intranet/", false},
		{"gopher://intranet/", false},
		{"HTTP://intranet/", true},
	}
	for _, tt := range tests {
		_, err := CheckInternalURL(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("CheckInternalURL(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

// TestAppHostTaken is issue 20 item 14: a refused app create names the
// application that already has the external host when it is the caller's
// own, and never names another tenant's.
func TestAppHostTaken(t *testing.T) {
	s := newTestServer(t)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := tenantOf(t, s, "fabrikam.com")
	if rec, eb := call(t, s, "POST", "/apps", contoso, api.CreateAppRequest{Name: "payroll", InternalURL: "http://i.corp/", ExternalHost: "pay-contoso.sallyport.test"}); rec.Code != 201 {
		t.Fatalf("create payroll: %d %s", rec.Code, eb.Error.Message)
	}
	// Another tenant's application at a host contoso may publish (as after a domain changed hands).
	g, err := s.store.ListGroups(context.Background(), fabrikam.ID)
	if err != nil || len(g) == 0 {
		t.Fatalf("fabrikam's groups: %v %v", g, err)
	}
	if err := s.store.CreateApp(context.Background(), store.Application{ID: tenancy.NewID("a"), TenantID: fabrikam.ID, Name: "secretapp", GroupID: g[0].ID,
		ExternalHost: "old-contoso.sallyport.test", InternalURL: "http://x/", Timeout: "default", PreAuth: "passthrough"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host, want, notWant string
	}{
		{"payroll", "", "An application named 'payroll' already exists", "pay-contoso"},
		{"wages", "pay-contoso.sallyport.test", "The external host pay-contoso.sallyport.test is already used by the application 'payroll'", "'wages'"},
		{"wages", "old-contoso.sallyport.test", "The external host old-contoso.sallyport.test is already used by another tenant's application", "secretapp"},
	} {
		rec, eb := call(t, s, "POST", "/apps", contoso, api.CreateAppRequest{Name: tc.name, InternalURL: "http://i.corp/", ExternalHost: tc.host})
		if rec.Code != 409 || eb.Error.Code != "app_exists" || !strings.HasPrefix(eb.Error.Message, tc.want) || strings.Contains(eb.Error.Message+eb.Error.Step, tc.notWant) {
			t.Errorf("create %s at %q = %d %s %q (step %q), want 409 app_exists %q without %q", tc.name, tc.host, rec.Code, eb.Error.Code, eb.Error.Message, eb.Error.Step, tc.want, tc.notWant)
		}
	}
}

// TestAppNoteGroupWithoutConnector is issue 20 item 15: publishing to a
// group with no connector, or none active, answers with a note saying
// that requests will fail and how to get a connector into the group.
func TestAppNoteGroupWithoutConnector(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	tok := login(t, s, "admin@contoso.com", testPassword)
	ten := tenantOf(t, s, "contoso.com")
	if rec, eb := call(t, s, "POST", "/groups", tok, api.CreateGroupRequest{Name: "Branch Office"}); rec.Code != 201 {
		t.Fatalf("create group: %d %s", rec.Code, eb.Error.Message)
	}
	branch, err := s.store.GroupByName(ctx, ten.ID, "Branch Office")
	if err != nil {
		t.Fatal(err)
	}
	def, err := s.store.GroupByName(ctx, ten.ID, tenancy.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(name, group string) string {
		t.Helper()
		rec, eb := call(t, s, "POST", "/apps", tok, api.CreateAppRequest{Name: name, InternalURL: "http://i.corp/", Group: group})
		if rec.Code != 201 {
			t.Fatalf("publish %s: %d %s", name, rec.Code, eb.Error.Message)
		}
		var a api.App
		json.Unmarshal(rec.Body.Bytes(), &a)
		return a.Note
	}
	if note := publish("a1", "Branch Office"); !strings.Contains(note, "The group 'Branch Office' has no connector yet, so requests will get an error page") ||
		!strings.Contains(note, "sallyport admin token create --group 'Branch Office'") || !strings.Contains(note, "sallyport connector register") {
		t.Errorf("empty group: note %q", note)
	}
	never := store.Connector{ID: "c_never", TenantID: ten.ID, GroupID: branch.ID, Hostname: "h1", CertSerial: "01", CreatedAt: time.Now()}
	seen := store.Connector{ID: "c_seen", TenantID: ten.ID, GroupID: def.ID, Hostname: "h2", CertSerial: "02", CreatedAt: time.Now(), LastSeenAt: time.Now()}
	for _, c := range []store.Connector{never, seen} {
		if err := s.store.CreateConnector(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if note := publish("a2", "Branch Office"); !strings.Contains(note, "None of the 1 connectors of the group 'Branch Office' is active") ||
		!strings.Contains(note, "sallyport connector run") {
		t.Errorf("group of inactive connectors: note %q", note)
	}
	if note := publish("a3", ""); note != "" {
		t.Errorf("group with an active connector: note %q, want none", note)
	}
	// Moving an application to the empty group says it too.
	g := "Branch Office"
	rec, _ := call(t, s, "PATCH", "/apps/a3", tok, api.UpdateAppRequest{Group: &g})
	if !strings.Contains(rec.Body.String(), "None of the 1 connectors of the group") {
		t.Errorf("update into the group: %s", rec.Body.String())
	}
}

// TestCheckBackendProxy is issue 20 item 4 for --backend-proxy: the same
// port, scheme, host and credential rules as the internal URL.
func TestCheckBackendProxy(t *testing.T) {
	tests := []struct {
		in, want string // want: the stored proxy, or "" for a refusal
	}{
		{"http://proxy.corp:3128", "http://proxy.corp:3128"},
		{"https://proxy.corp:3128/", "https://proxy.corp:3128"},
		{"http://proxy.corp", "http://proxy.corp"},
		{"http://proxy.corp:99999", ""},
		{"http://proxy.corp:0", ""},
		{"http://proxy.corp:", ""},
		{"http://:3128", ""},
		{"socks5://proxy.corp:1080", ""},
		{"http://user:pw@proxy.corp:3128", ""},
		{"http://user@proxy.corp:3128", ""},
		{"http://proxy.corp:3128/path", ""},
	}
	for _, tt := range tests {
		got, err := checkBackendProxy(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("checkBackendProxy(%q) = %q, want a refusal", tt.in, got)
			} else if p, ok := problem.As(err); !ok || p.Code != "bad_backend_proxy" {
				t.Errorf("checkBackendProxy(%q) error = %v, want a bad_backend_proxy problem", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("checkBackendProxy(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// FuzzAPIBodies posts untrusted bodies to the routes that decode JSON:
// the API must answer with a client error or success, never fail inside.
func FuzzAPIBodies(f *testing.F) {
	s := newTestServer(f)
	tok := login(f, s, "admin@contoso.com", testPassword)
	for _, seed := range []string{`{"name":"web","internal_url":"http://x/"}`, `{"name":"G1"}`, `{}`, `[]`, `{"name":`, `null`, `{"internal_url":"http://[::1"}`} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(1))
		f.Add(seed, uint8(2))
	}
	paths := []string{"/apps", "/groups", "/connectors/register"}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		p := paths[int(which)%len(paths)]
		rec, _ := call(t, s, "POST", p, tok, []byte(body))
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q → %d %s", p, body, rec.Code, rec.Body)
		}
	})
}

// TestRegisterHomeTenantOnly: a connector is always registered in the
// registering user's home tenant; asking for another is refused by name.
func TestRegisterHomeTenantOnly(t *testing.T) {
	s := newTestServer(t)
	_, csr, err := pki.NewKeyAndCSR("x")
	if err != nil {
		t.Fatal(err)
	}
	req := api.RegisterRequest{User: "admin@fabrikam.com", Password: testPassword, CSR: string(csr), Tenant: "contoso.com"}
	rec, eb := call(t, s, "POST", "/connectors/register", "", req)
	if rec.Code != 403 || eb.Error.Code != "not_home_tenant" ||
		!strings.Contains(eb.Error.Message, "admin@fabrikam.com belongs to fabrikam.com, not contoso.com") {
		t.Fatalf("got %d %s: %s", rec.Code, eb.Error.Code, eb.Error.Message)
	}
	req.Tenant = "FabriKam.com"
	rec, eb = call(t, s, "POST", "/connectors/register", "", req)
	var out api.RegisterResponse
	json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code != 201 || out.Tenant != "fabrikam.com" {
		t.Fatalf("home tenant: %d %s %+v", rec.Code, eb.Error.Message, out)
	}
}
