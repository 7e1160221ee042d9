package cloud

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestNetworkAppValidation: a network application (tcp, udp) needs
// internal addresses and takes none of a web application's fields; a web
// application takes no internal addresses; each refusal is one sentence.
func TestNetworkAppValidation(t *testing.T) {
	s := newTestServer(t)
	admin := login(t, s, "admin@contoso.com", testPassword)
	db := []string{"db.corp:5432"}
	for _, tc := range []struct {
		name  string
		in    api.CreateAppRequest
		code  string
		words string
	}{
		{"unknown type", api.CreateAppRequest{Name: "x", Type: "sctp", InternalAddresses: db}, "bad_app_type", `"sctp" is not an application type`},
		{"no address", api.CreateAppRequest{Name: "x", Type: "tcp"}, "no_internal_address", "A tcp application needs at least one internal address"},
		{"no address udp", api.CreateAppRequest{Name: "x", Type: "udp", InternalAddresses: []string{}}, "no_internal_address", "A udp application needs at least one"},
		{"bad address", api.CreateAppRequest{Name: "x", Type: "tcp", InternalAddresses: []string{"db.corp:5432", "db.corp"}}, "bad_internal_address", `internal address "db.corp" has no port`},
		{"bad prefix", api.CreateAppRequest{Name: "x", Type: "tcp", InternalAddresses: []string{"10.1.0.5/24:22"}}, "bad_internal_address", "write 10.1.0.0/24"},
		{"too many", api.CreateAppRequest{Name: "x", Type: "tcp", InternalAddresses: slices.Repeat([]string{"a.corp:1"}, 65)}, "bad_internal_address", "at most 64"},
		{"internal URL", api.CreateAppRequest{Name: "x", Type: "tcp", InternalAddresses: db, InternalURL: "http://db.corp/"}, "not_for_network_app", "A tcp application takes no internal URL"},
		{"external host", api.CreateAppRequest{Name: "x", Type: "tcp", InternalAddresses: db, ExternalHost: "db-contoso.sallyport.test"}, "not_for_network_app", "takes no external host"},
		{"passthrough", api.CreateAppRequest{Name: "x", Type: "udp", InternalAddresses: db, PreAuth: "passthrough"}, "not_for_network_app", "A udp application takes no passthrough pre-authentication"},
		{"backend proxy", api.CreateAppRequest{Name: "x", Type: "tcp", InternalAddresses: db, BackendProxy: "http://proxy:3128"}, "not_for_network_app", "takes no backend proxy"},
		{"certificate", api.CreateAppRequest{Name: "x", Type: "tcp", InternalAddresses: db, CertPEM: "x", KeyPEM: "y"}, "not_for_network_app", "takes no certificate"},
		{"http with addresses", api.CreateAppRequest{Name: "x", InternalURL: "http://i.corp/", InternalAddresses: db}, "bad_internal_address", "A web (http) application takes no internal addresses"},
		{"http typed with addresses", api.CreateAppRequest{Name: "x", Type: "http", InternalURL: "http://i.corp/", InternalAddresses: db}, "bad_internal_address", "takes no internal addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, eb := call(t, s, "POST", "/apps", admin, tc.in)
			if rec.Code != 400 || eb.Error.Code != tc.code || !strings.Contains(eb.Error.Message, tc.words) {
				t.Fatalf("create: %d %s %q, want 400 %s with %q", rec.Code, eb.Error.Code, eb.Error.Message, tc.code, tc.words)
			}
			if strings.Contains(strings.ReplaceAll(eb.Error.Message, "e.g. ", ""), ". ") {
				t.Errorf("message %q is more than one sentence", eb.Error.Message)
			}
		})
	}
	if apps := getJSON[[]api.App](t, s, admin, "/apps"); len(apps) != 0 {
		t.Errorf("refused creates left %d applications", len(apps))
	}
}

// TestNetworkApps: tcp and udp applications are created, shown, listed,
// updated (the list replaced) and assigned like web applications; they
// are never web hosts (no route, no certificate, not in My Apps), and
// their group's configuration carries their type and segments.
func TestNetworkApps(t *testing.T) {
	s := newTestServer(t)
	admin := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := login(t, s, "admin@fabrikam.com", testPassword)
	_, bob := addOpsAndBob(t, s, admin)

	rec, eb := call(t, s, "POST", "/apps", admin, api.CreateAppRequest{Name: "db", Type: "tcp",
		InternalAddresses: []string{"DB.corp:5432", "10.1.0.0/24:22", "*.corp.contoso.com:443", "db.corp:5432", "[fd00::/64]:1000-2000"}})
	if rec.Code != 201 {
		t.Fatalf("create db: %d %s", rec.Code, eb.Error.Message)
	}
	var created api.App
	json.Unmarshal(rec.Body.Bytes(), &created)
	wantAddrs := []string{"db.corp:5432", "10.1.0.0/24:22", "*.corp.contoso.com:443", "[fd00::/64]:1000-2000"}
	if created.Type != "tcp" || !slices.Equal(created.InternalAddresses, wantAddrs) || created.ExternalHost != "" || created.ExternalURL != "" || created.InternalURL != "" || created.PreAuth != PreAuthSallyport || created.PublicNote != "" {
		t.Errorf("created = %+v", created)
	}
	if rec, eb := call(t, s, "POST", "/apps", admin, api.CreateAppRequest{Name: "dns", Type: "udp", InternalAddresses: []string{"dns.corp:53"}}); rec.Code != 201 {
		t.Fatalf("create dns: %d %s", rec.Code, eb.Error.Message)
	}
	if rec, eb := call(t, s, "POST", "/apps", admin, api.CreateAppRequest{Name: "web", InternalURL: "http://web.corp/"}); rec.Code != 201 {
		t.Fatalf("create web: %d %s", rec.Code, eb.Error.Message)
	}
	// A second network application beside the first: no external host to collide on.
	if rec, eb := call(t, s, "POST", "/apps", admin, api.CreateAppRequest{Name: "ssh", Type: "tcp", InternalAddresses: []string{"10.9.0.0/16:22"}}); rec.Code != 201 {
		t.Fatalf("create ssh: %d %s", rec.Code, eb.Error.Message)
	}
	if rec, eb := call(t, s, "POST", "/apps", admin, api.CreateAppRequest{Name: "db", Type: "tcp", InternalAddresses: []string{"x.corp:1"}}); rec.Code != 409 || !strings.Contains(eb.Error.Message, "'db' already exists") {
		t.Errorf("create db twice: %d %s", rec.Code, eb.Error.Message)
	}

	types := map[string]string{}
	for _, a := range getJSON[[]api.App](t, s, admin, "/apps") {
		types[a.Name] = a.Type + " " + strings.Join(a.InternalAddresses, ",")
	}
	if types["db"] != "tcp "+strings.Join(wantAddrs, ",") || types["dns"] != "udp dns.corp:53" || types["web"] != "http " {
		t.Errorf("list: %q", types)
	}
	if apps := getJSON[[]api.App](t, s, fabrikam, "/apps"); len(apps) != 0 {
		t.Errorf("fabrikam sees %d applications", len(apps))
	}
	if rec, _ := call(t, s, "GET", "/apps/db", fabrikam, nil); rec.Code != 404 {
		t.Errorf("fabrikam GET /apps/db: %d", rec.Code)
	}

	// Assigned like web applications.
	if rec, eb := call(t, s, "POST", "/apps/db/assignments", admin, api.AssignRequest{User: "bob@contoso.com"}); rec.Code != 201 {
		t.Fatalf("assign: %d %s", rec.Code, eb.Error.Message)
	}
	d := getAppDetail(t, s, admin, "db")
	if assignmentsText(d) != "user:bob@contoso.com" || d.AssignmentsNote != "" || d.Type != "tcp" {
		t.Errorf("detail: %+v", d)
	}

	// Updates: the list is replaced; a web application's fields are refused.
	rec, eb = call(t, s, "PATCH", "/apps/db", admin, api.UpdateAppRequest{InternalAddresses: &[]string{"db2.corp:5432"}})
	if rec.Code != 200 {
		t.Fatalf("update: %d %s", rec.Code, eb.Error.Message)
	}
	if d := getAppDetail(t, s, admin, "db"); !slices.Equal(d.InternalAddresses, []string{"db2.corp:5432"}) || d.Type != "tcp" {
		t.Errorf("after update: %+v", d.App)
	}
	url, pass, empty := "http://db.corp/", "passthrough", []string{}
	for _, tc := range []struct {
		name, app string
		in        api.UpdateAppRequest
		code      string
	}{
		{"internal URL on tcp", "db", api.UpdateAppRequest{InternalURL: &url}, "not_for_network_app"},
		{"passthrough on tcp", "db", api.UpdateAppRequest{PreAuth: &pass}, "not_for_network_app"},
		{"no addresses", "db", api.UpdateAppRequest{InternalAddresses: &empty}, "no_internal_address"},
		{"addresses on http", "web", api.UpdateAppRequest{InternalAddresses: &[]string{"db.corp:5432"}}, "bad_internal_address"},
	} {
		if rec, eb := call(t, s, "PATCH", "/apps/"+tc.app, admin, tc.in); rec.Code != 400 || eb.Error.Code != tc.code {
			t.Errorf("%s: %d %s %s, want 400 %s", tc.name, rec.Code, eb.Error.Code, eb.Error.Message, tc.code)
		}
	}
	if rec, eb := call(t, s, "PATCH", "/apps/db", bob, api.UpdateAppRequest{InternalAddresses: &[]string{"evil.corp:22"}}); rec.Code != 403 {
		t.Errorf("bob updates db: %d %s", rec.Code, eb.Error.Message)
	}

	// Never a web host: the routing table (the edge and ACME's on-demand
	// gate read it) has only the web application.
	rt := s.routesNow()
	for host, a := range rt.byHost {
		if a.Name != "web" {
			t.Errorf("the routing table routes %q to %s", host, a.Name)
		}
	}
	for _, host := range []string{"db-contoso.sallyport.test", "dns-contoso.sallyport.test", "", "#" + created.ID} {
		if _, ok := s.Lookup(host); ok {
			t.Errorf("Lookup(%q) found an application", host)
		}
		if err := s.acmeDecision(host); err == nil {
			t.Errorf("acmeDecision(%q) allows a certificate", host)
		}
	}
	if err := s.acmeDecision("web-contoso.sallyport.test"); err != nil {
		t.Errorf("acmeDecision of the web application: %v", err)
	}
	ten := tenantOf(t, s, "contoso.com")
	na, ok := rt.networkApp(ten.ID, "db")
	if !ok || na.Type != "tcp" || !na.Segments.CoversName("db2.corp", 5432) || na.Segments.CoversName("db.corp", 5432) {
		t.Errorf("networkApp(db) = %+v, %v", na, ok)
	}
	if _, ok := rt.networkApp(tenantOf(t, s, "fabrikam.com").ID, "db"); ok {
		t.Error("fabrikam has contoso's network application")
	}

	// The group's configuration carries type and segments, no host or URL.
	var cfgApps []string
	for _, cfg := range rt.configs {
		for _, a := range cfg.Apps {
			cfgApps = append(cfgApps, a.Name+" "+a.Type+" "+strings.Join(a.Segments, ",")+" "+a.ExternalHost+" "+a.InternalURL)
		}
	}
	slices.Sort(cfgApps)
	want := []string{"db tcp db2.corp:5432  ", "dns udp dns.corp:53  ", "ssh tcp 10.9.0.0/16:22  ", "web   web-contoso.sallyport.test http://web.corp/"}
	if !slices.Equal(cfgApps, want) {
		t.Errorf("configs:\n%q\nwant\n%q", cfgApps, want)
	}

	// Deleted like web applications.
	if rec, eb := call(t, s, "DELETE", "/apps/dns", admin, nil); rec.Code != 204 {
		t.Fatalf("delete: %d %s", rec.Code, eb.Error.Message)
	}
	if _, ok := s.routesNow().networkApp(ten.ID, "dns"); ok {
		t.Error("dns still in the routing table")
	}
	a, err := s.store.AppByName(t.Context(), ten.ID, "ssh")
	if err != nil || a.Type != store.AppTCP || a.ExternalHost != "" {
		t.Errorf("stored ssh: %+v, %v", a, err)
	}
}

// TestPushNetworkAppsOnlyToThoseWhoKeepThem: a connector whose hello says
// network_apps gets its group's network applications; an older one gets
// the web applications only (it would refuse the whole configuration).
func TestPushNetworkAppsOnlyToThoseWhoKeepThem(t *testing.T) {
	testnet.CheckLeaks(t)
	cfg := &tunnel.Config{Version: "v1", Group: "G", Apps: []tunnel.AppConfig{
		{ID: "a_web", Name: "web", ExternalHost: "web.test", InternalURL: "http://web.corp/"},
		{ID: "a_db", Name: "db", Type: "tcp", Segments: []string{"db.corp:5432"}},
	}}
	table := &routeTable{configs: map[string]*tunnel.Config{testGroupID: cfg}}
	reg := newRegistry(slog.New(slog.DiscardHandler), 10, func() *routeTable { return table }, func(context.Context) error { return nil })
	for _, tc := range []struct {
		id    string
		hello tunnel.Hello
		want  string
	}{
		{"c_new", tunnel.Hello{NetworkApps: true}, "web,db"},
		{"c_old", tunnel.Hello{}, "web"},
	} {
		got := make(chan tunnel.Config, 1)
		cconn, sconn := net.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			tunnel.Serve(ctx, cconn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var c tunnel.Config
				json.NewDecoder(r.Body).Decode(&c)
				got <- c
				w.WriteHeader(http.StatusNoContent)
			}), tunnel.ServerConfig{})
		}()
		c, err := tunnel.NewClient(sconn, tunnel.ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		lt := &liveTunnel{c: c}
		reg.add(lt, tc.id, "t_test", testGroupID, "pipe", tc.hello)
		if err := lt.push(t.Context(), cfg); err != nil {
			t.Fatalf("%s: push: %v", tc.id, err)
		}
		pushed := testnet.RecvWithin(t, "the configuration", got)
		var names []string
		for _, a := range pushed.Apps {
			names = append(names, a.Name)
		}
		if strings.Join(names, ",") != tc.want || pushed.ConnectorID != tc.id {
			t.Errorf("%s got %q (connector %s), want %q", tc.id, names, pushed.ConnectorID, tc.want)
		}
		c.Close()
		cancel()
		<-done
	}
	if len(cfg.Apps) != 2 {
		t.Error("pushing changed the route table's configuration")
	}
	reg.wait()
}
