package cloud

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
)

// TestConsoleEvents: the events page shows the tenant's events only
// (another tenant's and the cloud's own never), the filters of its GET
// form reach the API and a refused filter is shown by the form with the
// value typed; the request page shows one failed request's story with its
// events, and another tenant's request id is not found.
func TestConsoleEvents(t *testing.T) {
	env := startMyApps(t)
	s := env.srv
	eventFixture(t, s)
	appendEvents(t, s, eventlog.Event{ID: eventlog.AppPublished, Level: eventlog.LevelInformation, Time: time.Now().UTC().Add(-time.Minute),
		Message: "c-<b>bold</b>", Fields: map[string]string{"tenant": "contoso.com", "app": "x&y"}})
	fab, err := s.store.TenantByDomain(t.Context(), "fabrikam.com")
	if err != nil {
		t.Fatal(err)
	}
	web := &edge.App{ID: env.web.ID, TenantID: env.tenant.ID, Tenant: "contoso.com", Name: "web", Group: "Default", ExternalHost: "web-contoso.sallyport.localhost", InternalURL: "http://intranet:8080/"}
	s.requests.record(failure(web, "r1", false), time.Now())
	s.requests.record(failure(&edge.App{ID: "a_fab", TenantID: fab.ID, Name: "fab", Group: "Default", InternalURL: "http://fab.corp/"}, "r2", false), time.Now())

	admin := env.browser(t)
	admin.homeSignIn("admin@contoso.com", testPassword)
	fabAdmin := env.browser(t)
	fabAdmin.homeSignIn("admin@fabrikam.com", testPassword)

	tests := []struct {
		name   string
		b      *browser
		path   string
		status int
		want   []string
		not    []string
	}{
		{"all of contoso", admin, "/admin/events", 200,
			[]string{"<h1>Events</h1>", `aria-current="page">Events`, "c-web-fail", "c-hr-published", "c-turn", "c-limit", "c-moved",
				"A request to an application failed", `<a href="/admin/requests?id=r1">r1</a>`, "c-&lt;b&gt;bold&lt;/b&gt;", `href="/admin/events?app=x%26y"`},
			[]string{"f-web-fail", "f-turn", "cloud-start", "mixed", "empty-tenant", "<b>bold", `id="error"`, `id="clear-filter"`}},
		{"errors", admin, "/admin/events?level=error", 200,
			[]string{`<option value="error" selected>`, "c-web-fail", `id="clear-filter"`},
			[]string{"c-hr-published", "c-limit"}},
		{"a level as the API also takes it", admin, "/admin/events?level=WARN", 200,
			[]string{`<option value="warning" selected>`, "c-web-fail", "c-limit"},
			[]string{"c-hr-published"}},
		{"app and connector", admin, "/admin/events?app=web&connector=c_con1&id=", 200,
			[]string{"c-web-fail", `id="app" name="app" value="web"`, `value="c_con1"`},
			[]string{"c-hr-published", "c-turn"}},
		{"nothing passes", admin, "/admin/events?id=2000", 200,
			[]string{`id="no-events"`}, []string{"cloud-start"}},
		{"a refused filter", admin, "/admin/events?since=yesterday", 400,
			[]string{`id="error"`, "The since filter &#34;yesterday&#34; is neither a time in RFC 3339", `id="since" name="since" value="yesterday"`},
			[]string{"c-web-fail"}},
		{"an unknown parameter is not passed on", admin, "/admin/events?tenant=fabrikam.com", 200,
			[]string{"c-web-fail"}, []string{"f-web-fail"}},
		{"all of fabrikam", fabAdmin, "/admin/events", 200,
			[]string{"f-web-fail", "f-turn"}, []string{"c-web-fail", "c-turn", "cloud-start", "mixed"}},
		{"request search", admin, "/admin/requests", 200,
			[]string{`id="request-search"`, `<label for="request-id">`}, []string{`id="story"`}},
		{"a request's story", admin, "/admin/requests?id=r1", 200,
			[]string{`id="story-request-id">r1<`, "The internal application &#39;web&#39; at http://intranet:8080/ refused the connection",
				`id="story-edge">The edge found no connector of group &#39;Default&#39; to send the request to.<`, "c-web-fail", `aria-current="page">Events`},
			[]string{"f-web-fail", `id="error"`}},
		{"another tenant's request", fabAdmin, "/admin/requests?id=r1", 404,
			[]string{`id="error"`, "knows no failed request r1 of fabrikam.com", `id="no-events"`}, []string{"c-web-fail", "intranet"}},
		{"fabrikam's own request", fabAdmin, "/admin/requests?id=r2", 200,
			[]string{`id="story-request-id">r2<`, "f-web-fail"}, nil},
		{"a request id the API refuses", admin, "/admin/requests?id=r1,r2", 400,
			[]string{`id="error"`, `id="events-error"`, "The request_id filter is not a request id"}, []string{"c-web-fail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, page := tt.b.do("GET", cloudURL+tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s: %s, want %d:\n%s", tt.path, resp.Status, tt.status, page)
			}
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("GET %s lacks %q:\n%s", tt.path, w, page)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(page, n) {
					t.Errorf("GET %s shows %q:\n%s", tt.path, n, page)
				}
			}
		})
	}
	// A user of contoso who is no administrator: 403 (the table test
	// covers every route; this one says the events are not leaked).
	alice := env.browser(t)
	alice.homeSignIn("alice@contoso.com", testPassword)
	if resp, page := alice.do("GET", cloudURL+"/admin/events", nil); resp.StatusCode != http.StatusForbidden || strings.Contains(page, "c-web-fail") {
		t.Errorf("alice's events page: %s:\n%s", resp.Status, page)
	}
}
