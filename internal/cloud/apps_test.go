package cloud

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

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
