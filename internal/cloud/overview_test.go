package cloud

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/store"
)

// overviewEnv is the My Apps environment (contoso.com with its one
// running connector in group Default, fabrikam.com with the application fab and no
// connector) with, in contoso.com: the application ok (passthrough to a
// backend that answers 200) and down (passthrough to a closed port), and
// a group Branch whose one connector never connected and has a
// certificate expiring in 5 days; release 2.0.0, halted in Default.
type overviewEnv struct {
	*preauthEnv
	branch store.Connector
}

func startOverview(t *testing.T) *overviewEnv {
	t.Helper()
	env := &overviewEnv{preauthEnv: startMyApps(t)}
	ctx := t.Context()
	st := env.srv.store
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(ok.Close)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	for _, a := range []api.CreateAppRequest{{Name: "ok", InternalURL: ok.URL, PreAuth: PreAuthPassthrough},
		{Name: "down", InternalURL: closedURL, PreAuth: PreAuthPassthrough}} {
		if rec, eb := call(t, env.srv, "POST", "/apps", tok, a); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", a.Name, rec.Code, eb.Error.Message)
		}
	}
	if rec, eb := call(t, env.srv, "POST", "/groups", tok, map[string]string{"name": "Branch"}); rec.Code != 201 {
		t.Fatalf("create group Branch: %d %s", rec.Code, eb.Error.Message)
	}
	branch, err := st.GroupByName(ctx, env.tenant.ID, "Branch")
	if err != nil {
		t.Fatal(err)
	}
	def, err := st.GroupByName(ctx, env.tenant.ID, "Default")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	env.branch = store.Connector{ID: "c_branch1", TenantID: env.tenant.ID, GroupID: branch.ID, Hostname: "branch1", Version: "1.0.0",
		CertSerial: "0abc", CertThumbprint: "AB", CertNotAfter: now.Add(5 * 24 * time.Hour), CreatedAt: now}
	for _, err := range []error{
		st.CreateConnector(ctx, env.branch),
		st.CreateRelease(ctx, store.Release{Version: "2.0.0", OS: "linux", Arch: "amd64", SHA256: strings.Repeat("a", 64), Size: 1, Manifest: []byte("{}"), Signature: []byte("x"), KeyID: "k", PublishedAt: now}),
		st.HaltUpdate(ctx, store.UpdateHalt{TenantID: env.tenant.ID, GroupID: def.ID, Version: "2.0.0", ConnectorID: "c_gone", HaltedAt: now}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return env
}

// get requests app (an application of contoso.com) through the edge and
// returns the status.
func (env *overviewEnv) get(t *testing.T, app string) int {
	t.Helper()
	u := strings.Replace(env.appURL, "web-contoso", app+"-contoso", 1)
	resp, err := env.client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func overviewOf(t *testing.T, s *Server, tok string) api.Overview {
	t.Helper()
	rec, eb := call(t, s, "GET", "/overview", tok, nil)
	if rec.Code != 200 {
		t.Fatalf("GET /overview: %d %s", rec.Code, eb.Error.Message)
	}
	var ov api.Overview
	if err := json.Unmarshal(rec.Body.Bytes(), &ov); err != nil {
		t.Fatal(err)
	}
	return ov
}

// TestOverviewAPI: the overview shows the tenant's connectors by group
// with their status and last hour, its applications' health from the
// requests the edge served (requests, errors, p95, the last error with
// its request id), and what needs attention — and nothing of another
// tenant, either way.
func TestOverviewAPI(t *testing.T) {
	env := startOverview(t)
	for range 3 {
		if code := env.get(t, "ok"); code != 200 {
			t.Fatalf("GET ok: %d", code)
		}
	}
	if code := env.get(t, "down"); code != http.StatusBadGateway {
		t.Fatalf("GET down: %d, want 502", code)
	}
	ov := overviewOf(t, env.srv, login(t, env.srv, "admin@contoso.com", testPassword))

	groups := map[string]api.OverviewGroup{}
	for _, g := range ov.Groups {
		groups[g.Name] = g
	}
	if len(groups) != 2 || len(groups["Default"].Connectors) != 1 || len(groups["Branch"].Connectors) != 1 {
		t.Fatalf("groups: %+v, want Default with host1 and Branch with branch1", ov.Groups)
	}
	host1 := groups["Default"].Connectors[0]
	if host1.Status != "active" || host1.Tunnels == 0 || groups["Default"].Active != 1 {
		t.Errorf("host1: %+v, want active with tunnels", host1.Connector)
	}
	if len(host1.Minutes) != historyMinutes {
		t.Fatalf("host1 has %d minutes, want %d", len(host1.Minutes), historyMinutes)
	}
	var relayed, failed int
	for _, m := range host1.Minutes {
		relayed += m.Requests
		failed += m.Errors
	}
	if relayed != 4 || failed != 1 {
		t.Errorf("host1 relayed %d requests with %d errors in the hour, want 4 and 1", relayed, failed)
	}
	if last := host1.Minutes[len(host1.Minutes)-1]; last.Requests > 0 && (last.PerSecond <= 0 || last.ErrorRate <= 0) {
		t.Errorf("host1's current minute: %+v, want a rate", last)
	}
	if b := groups["Branch"].Connectors[0]; b.ID != env.branch.ID || b.Status != "inactive" || groups["Branch"].Active != 0 {
		t.Errorf("branch1: %+v, want inactive", b.Connector)
	}

	apps := map[string]api.OverviewApp{}
	for _, a := range ov.Apps {
		apps[a.Name] = a
	}
	if _, ok := apps["fab"]; ok {
		t.Errorf("contoso.com's overview shows fabrikam.com's application fab")
	}
	if a := apps["ok"]; a.Health != api.HealthOK || a.Requests != 3 || a.Errors != 0 || a.P95Millis <= 0 || a.LastError != nil {
		t.Errorf("ok: %+v, want healthy with 3 requests and a p95", a)
	}
	a := apps["down"]
	if a.Health != api.HealthErrors || a.Requests != 1 || a.Errors != 1 || a.ErrorRate != 1 || a.LastError == nil {
		t.Fatalf("down: %+v, want failing with its last error", a)
	}
	if a.LastError.RequestID == "" || a.LastError.Status != http.StatusBadGateway {
		t.Errorf("down's last error: %+v, want a 502 with its request id", a.LastError)
	}
	if a := apps["wiki"]; a.Health != api.HealthIdle || a.Requests != 0 {
		t.Errorf("wiki: %+v, want idle", a)
	}

	kinds := map[string][]api.Attention{}
	for _, at := range ov.Attention {
		kinds[at.Kind] = append(kinds[at.Kind], at)
		if at.Message == "" || !strings.HasPrefix(at.Link, "/admin/") {
			t.Errorf("attention %+v: want a sentence and a link into the admin center", at)
		}
	}
	for kind, want := range map[string]string{
		api.AttentionInactive:     "c_branch1 (branch1) of group 'Branch' is inactive",
		api.AttentionCertExpiring: "c_branch1 (branch1) of group 'Branch' has a certificate that expires",
		api.AttentionHalted:       "Release 2.0.0 was rolled back on connector c_gone of group 'Default'",
	} {
		if len(kinds[kind]) != 1 || !strings.Contains(kinds[kind][0].Message, want) {
			t.Errorf("attention %s: %+v, want one saying %q", kind, kinds[kind], want)
		}
	}
	if len(kinds[api.AttentionNoConnector]) != 0 {
		t.Errorf("no application of contoso.com is in a group without connector, yet: %+v", kinds[api.AttentionNoConnector])
	}
	if ov.Attention[0].Kind != api.AttentionInactive || kinds[api.AttentionInactive][0].Link != "/admin/connectors/c_branch1" {
		t.Errorf("attention starts with %+v, want the inactive connector linking its page", ov.Attention[0])
	}

	// fabrikam.com sees its own application, in a group without any
	// connector, and none of contoso.com's connectors, applications or
	// halts.
	fov := overviewOf(t, env.srv, login(t, env.srv, "admin@fabrikam.com", testPassword))
	js, _ := json.Marshal(fov)
	for _, leak := range []string{host1.ID, "branch1", `"ok"`, "wiki", "2.0.0", env.tenant.ID} {
		if strings.Contains(string(js), leak) {
			t.Errorf("fabrikam.com's overview shows %s of contoso.com:\n%s", leak, js)
		}
	}
	if len(fov.Apps) != 1 || fov.Apps[0].Name != "fab" || fov.Apps[0].Health != api.HealthNoConnector {
		t.Errorf("fabrikam's apps: %+v, want fab without connector", fov.Apps)
	}
	if len(fov.Attention) != 1 || fov.Attention[0].Kind != api.AttentionNoConnector || fov.Attention[0].Link != "/admin/apps/fab" {
		t.Errorf("fabrikam's attention: %+v, want fab's group without connector", fov.Attention)
	}
}

// TestOverviewForgetsDeleted: an application deleted drops out of the
// overview and its series goes from the history: at once when deleted
// through this instance, at the next overview when deleted elsewhere
// (another instance: here, the store directly).
func TestOverviewForgetsDeleted(t *testing.T) {
	env := startOverview(t)
	env.get(t, "ok")
	env.get(t, "down")
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	has := func(name string) bool {
		_, found := env.srv.history.series.Load(historyKey{appSeries, env.tenant.ID, overviewApp(t, env, name).ID})
		return found
	}
	okKey := historyKey{appSeries, env.tenant.ID, overviewApp(t, env, "ok").ID}
	if !has("ok") || !has("down") {
		t.Fatal("the requests to ok and down left no series")
	}
	if rec, eb := call(t, env.srv, "DELETE", "/apps/ok", tok, nil); rec.Code != 204 {
		t.Fatalf("delete ok: %d %s", rec.Code, eb.Error.Message)
	}
	if _, found := env.srv.history.series.Load(okKey); found {
		t.Error("the series of ok, deleted through the API, is still kept")
	}
	downKey := historyKey{appSeries, env.tenant.ID, overviewApp(t, env, "down").ID}
	if err := env.srv.store.DeleteApp(t.Context(), env.tenant.ID, "down"); err != nil {
		t.Fatal(err)
	}
	for _, a := range overviewOf(t, env.srv, tok).Apps {
		if a.Name == "ok" || a.Name == "down" {
			t.Errorf("the overview still shows the deleted application %s", a.Name)
		}
	}
	if _, found := env.srv.history.series.Load(downKey); found {
		t.Error("the series of down, deleted elsewhere, is still kept after the overview")
	}
}

// TestOverviewPage: the admin center's overview renders the API's
// overview — attention first, linking the pages to open; the connectors
// by group with their status in words and server-drawn charts; the
// applications' health with the last error's request id — in live
// sections that the next fetch brings up to date (a connector coming up
// leaves the attention list), with nothing of another tenant and no
// inline style.
func TestOverviewPage(t *testing.T) {
	env := startOverview(t)
	env.get(t, "ok")
	env.get(t, "down")
	host1 := ""
	cs, err := env.srv.store.ListConnectors(t.Context(), env.tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID != env.branch.ID {
			host1 = c.ID
		}
	}
	down := env.srv.appErrors.recent(overviewApp(t, env, "down").ID)
	if len(down) != 1 {
		t.Fatalf("down has %d recent errors, want 1", len(down))
	}
	admin := env.browser(t)
	admin.homeSignIn("admin@contoso.com", testPassword)
	resp, page := admin.do("GET", cloudURL+"/admin/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/: %s\n%s", resp.Status, page)
	}
	section := func(page, id string) string {
		t.Helper()
		i := strings.Index(page, `<section id="`+id+`"`)
		if i < 0 {
			t.Fatalf("the overview has no section %s:\n%s", id, page)
		}
		j := strings.Index(page[i:], "</section>")
		return page[i : i+j]
	}
	attention, connectors, apps := section(page, "attention"), section(page, "connectors"), section(page, "apps")
	if strings.Index(page, `id="attention"`) > strings.Index(page, `id="connectors"`) {
		t.Error("attention does not come first")
	}
	for _, want := range []string{`class="attention"`, "data-live", "c_branch1 (branch1) of group &#39;Branch&#39; is inactive",
		`<a href="/admin/connectors/c_branch1">`, "Release 2.0.0 was rolled back", `<a href="/admin/updates">`} {
		if !strings.Contains(attention, want) {
			t.Errorf("the attention section lacks %q:\n%s", want, attention)
		}
	}
	for _, want := range []string{"data-live", "Group Default", "Group Branch", `id="connector-` + host1 + `"`, `id="connector-c_branch1"`,
		`<a href="/admin/connectors/` + host1 + `">`, `class="status-active">active<`, `class="status-inactive">inactive<`, "connected now",
		`<svg xmlns="http://www.w3.org/2000/svg" class="spark" role="img"`, `aria-label="Requests per second to branch1 over the last hour`,
		"<title>Error rate of branch1"} {
		if !strings.Contains(connectors, want) {
			t.Errorf("the connectors section lacks %q:\n%s", want, connectors)
		}
	}
	if n := strings.Count(connectors, "<svg"); n != 4 {
		t.Errorf("the connectors section has %d charts, want 2 for each of 2 connectors", n)
	}
	for _, want := range []string{"data-live", `id="app-down"`, `<a href="/admin/apps/down">`, "Failing: 1 of 1 requests failed", `<a href="/admin/requests?id=` + down[0].RequestID + `">`,
		`id="app-ok"`, `class="ok">OK<`, "Idle: no request in the last hour"} {
		if !strings.Contains(apps, want) {
			t.Errorf("the applications section lacks %q:\n%s", want, apps)
		}
	}
	for _, leak := range []string{"fabrikam", `/admin/apps/fab"`, "style="} {
		if strings.Contains(page, leak) {
			t.Errorf("the overview holds %q", leak)
		}
	}

	// branch1 comes up: the next fetch of the page (what console.js does
	// every 3 s) shows it active and no longer asks for attention.
	if err := env.srv.store.UpdateConnectorSeen(t.Context(), env.tenant.ID, env.branch.ID, time.Now(), "192.0.2.1:4000", "branch1", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	_, page = admin.do("GET", cloudURL+"/admin/", nil)
	if row := section(page, "connectors"); !strings.Contains(row[strings.Index(row, `id="connector-c_branch1"`):], `class="status-active">active<`) {
		t.Errorf("branch1 is not shown active after its heartbeat:\n%s", row)
	}
	if strings.Contains(section(page, "attention"), "is inactive") {
		t.Errorf("the attention section still lists branch1 as inactive:\n%s", section(page, "attention"))
	}
}

func overviewApp(t *testing.T, env *overviewEnv, name string) store.Application {
	t.Helper()
	a, err := env.srv.store.AppByName(t.Context(), env.tenant.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestHaltAttention: only a halt of the newest published release, in a
// group that still exists, needs attention (a newer release or the
// release's withdrawal ends it).
func TestHaltAttention(t *testing.T) {
	at := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)
	groups := map[string]string{"g1": "Default", "g2": "Paris"}
	rel := func(vs ...string) []store.Release {
		var out []store.Release
		for _, v := range vs {
			out = append(out, store.Release{Version: v})
		}
		return out
	}
	halt := func(group, version string) store.UpdateHalt {
		return store.UpdateHalt{GroupID: group, Version: version, ConnectorID: "c_1", HaltedAt: at}
	}
	for _, tc := range []struct {
		name     string
		halts    []store.UpdateHalt
		releases []store.Release // newest publication first
		want     []string        // groups named, in order
	}{
		{name: "no release", halts: []store.UpdateHalt{halt("g1", "2.0.0")}},
		{name: "the newest release halted", halts: []store.UpdateHalt{halt("g1", "2.0.0"), halt("g2", "2.0.0")}, releases: rel("2.0.0", "1.0.0"),
			want: []string{"Default", "Paris"}},
		{name: "a newer release published since", halts: []store.UpdateHalt{halt("g1", "2.0.0")}, releases: rel("2.0.1", "2.0.0")},
		{name: "the halted release withdrawn", halts: []store.UpdateHalt{halt("g1", "2.0.0")}, releases: rel("1.0.0")},
		{name: "its group deleted", halts: []store.UpdateHalt{halt("g9", "2.0.0")}, releases: rel("2.0.0")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := haltAttention(tc.halts, tc.releases, groups)
			if len(got) != len(tc.want) {
				t.Fatalf("%d attentions, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, g := range tc.want {
				want := "Release 2.0.0 was rolled back on connector c_1 of group '" + g + "' at 2026-12-05 09:30 UTC"
				if got[i].Kind != api.AttentionHalted || got[i].Link != "/admin/updates" || !strings.HasPrefix(got[i].Message, want) {
					t.Errorf("attention %d: %+v, want %q…", i, got[i], want)
				}
			}
		})
	}
}
