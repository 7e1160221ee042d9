package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
)

// newPostgresServer makes a cloud (tenant contoso.com) on a new database
// of cluster c.
func newPostgresServer(t *testing.T, c *pgtest.Cluster, cfg Config) *Server {
	return newPostgresServerNamed(t, c, "sallyport.test", cfg)
}

// newPostgresServerNamed is newPostgresServer for a cloud named name.
func newPostgresServerNamed(t *testing.T, c *pgtest.Cluster, name string, cfg Config) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	if _, err := datadir.Init(t.Context(), datadir.InitOptions{DataDir: dir, Name: name, Tenant: "contoso.com",
		Admin: "admin@contoso.com", AdminPassword: testPassword, Store: c.DSN(t)}); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTwoInstancesOnPostgres: two instances on one PostgreSQL database.
// A change made through one (an application published, then deleted; a
// user created, then disabled; a user's sessions ended) reaches the other's routing table and session
// cache without waiting for the periodic reload (an hour here). When
// PostgreSQL stops, both say so once and keep serving what they cached;
// when it is back they say so, follow changes again, and a change made
// after the restart reaches the other.
func TestTwoInstancesOnPostgres(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	cfg := Config{InstanceBeat: 100 * time.Millisecond, RefreshInterval: time.Hour, KeyCheckInterval: time.Hour}
	a := newPostgresServer(t, cluster, cfg)
	b := peerOf(t, a, cfg)
	serveStoppable(t, a)
	serveStoppable(t, b)
	ctx := t.Context()

	both := []string{a.InstanceID(), b.InstanceID()}
	slices.Sort(both)
	testnet.WaitUntil(t, "each instance lists both", func() bool {
		return slices.Equal(liveIDs(a), both) && slices.Equal(liveIDs(b), both)
	})
	testnet.WaitUntil(t, "b follows the change feed", func() bool { return b.feed.connects.Load() >= 1 })

	admin := login(t, a, "admin@contoso.com", testPassword)
	publish := func(s *Server, name string) string {
		t.Helper()
		rec, eb := call(t, s, "POST", "/apps", admin, api.CreateAppRequest{Name: name, InternalURL: "http://intranet:8080/"})
		if rec.Code != 201 {
			t.Fatalf("publish %s: %d %s", name, rec.Code, eb.Error.Message)
		}
		var app api.App
		json.Unmarshal(rec.Body.Bytes(), &app)
		return app.ExternalHost
	}
	host := publish(a, "web")
	testnet.WaitUntil(t, "b routes the application published on a", func() bool { _, ok := b.Lookup(host); return ok })
	host2 := publish(a, "wiki")
	if rec, eb := call(t, a, "DELETE", "/apps/wiki", admin, nil); rec.Code != 204 {
		t.Fatalf("delete wiki: %d %s", rec.Code, eb.Error.Message)
	}
	testnet.WaitUntil(t, "b no longer routes the application deleted on a", func() bool { _, ok := b.Lookup(host2); return !ok })

	// A user created, then disabled, on a: b's directory snapshot follows.
	if rec, eb := call(t, a, "POST", "/users", admin, api.CreateUserRequest{Name: "bob@contoso.com", Role: "user", Password: testPassword}); rec.Code != 201 {
		t.Fatalf("create bob: %d %s", rec.Code, eb.Error.Message)
	}
	bobIn := func(s *Server) *dirUser {
		for _, u := range s.routesNow().users {
			if u.Name == "bob@contoso.com" {
				return u
			}
		}
		return nil
	}
	testnet.WaitUntil(t, "b knows the user created on a", func() bool { return bobIn(b) != nil })
	if rec, eb := call(t, a, "POST", "/users/bob@contoso.com/disable", admin, nil); rec.Code >= 300 {
		t.Fatalf("disable bob: %d %s", rec.Code, eb.Error.Message)
	}
	testnet.WaitUntil(t, "b knows the user disabled on a", func() bool { u := bobIn(b); return u != nil && u.Disabled })

	// A session b has cached ends on a.
	u, err := a.store.UserByName(ctx, "admin@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := a.newSession(ctx, u, store.SessionCloud, "", "", "password")
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := b.sessionOf(ctx, "192.0.2.1", secret, prefixCookie, store.SessionCloud, ""); err != nil || cs == nil {
		t.Fatalf("b reads the session: %v, %v", cs, err)
	}
	if _, err := a.endUserSessions(ctx, u.TenantID, u.ID, u.Name, ""); err != nil {
		t.Fatal(err)
	}
	testnet.WaitUntil(t, "b drops the session ended on a", func() bool { return b.sessions.get(hashToken(secret)) == nil })

	// Another session cached on b, then PostgreSQL stops.
	secret, _, err = a.newSession(ctx, u, store.SessionCloud, "", "", "password")
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := b.sessionOf(ctx, "192.0.2.1", secret, prefixCookie, store.SessionCloud, ""); err != nil || cs == nil {
		t.Fatalf("b reads the second session: %v, %v", cs, err)
	}
	connects := b.feed.connects.Load()
	cluster.Stop(t)
	for _, s := range []*Server{a, b} {
		testnet.WaitUntil(t, "the instance says the store is unreachable (2974)", func() bool { return len(eventsOf(t, s, eventlog.StoreUnreachable)) == 1 })
	}
	if _, ok := b.Lookup(host); !ok {
		t.Errorf("b stopped routing %s while the store is down", host)
	}
	if cs, err := b.sessionOf(ctx, "192.0.2.1", secret, prefixCookie, store.SessionCloud, ""); err != nil || cs == nil {
		t.Errorf("b lost its cached session while the store is down: %v, %v", cs, err)
	}
	if err := b.Refresh(ctx); err == nil {
		t.Errorf("b reloaded its routing table from a stopped store")
	}
	if _, ok := b.Lookup(host); !ok {
		t.Errorf("a failed reload emptied b's routing table")
	}

	cluster.Start(t)
	for _, s := range []*Server{a, b} {
		testnet.WaitUntil(t, "the instance says the store is back (2975)", func() bool { return len(eventsOf(t, s, eventlog.StoreBack)) == 1 })
	}
	if n := len(eventsOf(t, a, eventlog.StoreUnreachable)); n != 1 {
		t.Errorf("a wrote %d events 2974 for one outage", n)
	}
	testnet.WaitUntil(t, "b follows the change feed again", func() bool { return b.feed.connects.Load() > connects })
	host3 := publish(a, "docs")
	testnet.WaitUntil(t, "b routes an application published on a after the restart", func() bool { _, ok := b.Lookup(host3); return ok })
	testnet.WaitUntil(t, "each instance lists both after the restart", func() bool {
		return slices.Equal(liveIDs(a), both) && slices.Equal(liveIDs(b), both)
	})
}

// TestStoreWaitAtStart: a store that cannot be reached at start stops New
// at once by default, and with StoreWait is tried again until it comes
// (event 2976 once, then 2975) or the wait ends; a store that refuses
// (here: no such database) is not tried again.
func TestStoreWaitAtStart(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	dir := filepath.Join(t.TempDir(), "cloud")
	dsn := cluster.DSN(t)
	if _, err := datadir.Init(t.Context(), datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com",
		Admin: "admin@contoso.com", AdminPassword: testPassword, Store: dsn}); err != nil {
		t.Fatal(err)
	}
	events := func(id eventlog.ID) int {
		evs, err := eventlog.Read(filepath.Join(dir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{id}})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	cluster.Stop(t)

	if _, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0"}); !errors.Is(err, datadir.ErrStoreUnreachable) || !strings.Contains(err.Error(), "cannot be opened") {
		t.Fatalf("New without a wait on a stopped store = %v, want store_unreachable", err)
	}
	if _, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", StoreWait: 1500 * time.Millisecond}); !errors.Is(err, datadir.ErrStoreUnreachable) {
		t.Fatalf("New after a short wait on a stopped store = %v, want store_unreachable", err)
	}
	if n := events(eventlog.StoreWaiting); n != 1 {
		t.Fatalf("events 2976 after one wait = %d, want 1", n)
	}

	type result struct {
		s   *Server
		err error
	}
	got := make(chan result, 1)
	go func() {
		s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", StoreWait: 5 * time.Minute})
		got <- result{s, err}
	}()
	testnet.WaitUntil(t, "New says it waits for the store (2976)", func() bool { return events(eventlog.StoreWaiting) == 2 })
	cluster.Start(t)
	r := testnet.RecvWithin(t, "New once the store is back", got)
	if r.err != nil {
		t.Fatalf("New once the store is back = %v", r.err)
	}
	r.s.Close()
	if n := events(eventlog.StoreBack); n != 1 {
		t.Errorf("events 2975 = %d, want 1", n)
	}

	// A database that does not exist is an answer, not an absence.
	st, err := datadir.LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Store = strings.Replace(dsn, "/t1_", "/missing_", 1)
	if st.Store == dsn {
		t.Fatalf("cannot name a missing database after %s", dsn)
	}
	if err := datadir.WriteSettings(dir, st); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", StoreWait: 5 * time.Minute}); err == nil || errors.Is(err, datadir.ErrStoreUnreachable) {
		t.Fatalf("New on a missing database = %v, want a failure not worth a retry", err)
	}
	if n := events(eventlog.StoreWaiting); n != 2 {
		t.Errorf("events 2976 = %d after a missing database, want still 2", n)
	}
}

// TestConnectorChangesReachOtherInstance: a connector connected to
// instance b is moved to another group, then deleted, through instance a:
// b serves the new group with it, then closes its tunnels.
func TestConnectorChangesReachOtherInstance(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	cfg := Config{RefreshInterval: time.Hour, KeyCheckInterval: time.Hour, TunnelCheckInterval: time.Hour}
	a := newPostgresServerNamed(t, cluster, "sallyport.localhost", cfg)
	b := peerOf(t, a, cfg)
	serveLive(t, a)
	lnB := serveLive(t, b)
	testnet.WaitUntil(t, "b follows the change feed", func() bool { return b.feed.connects.Load() >= 1 })

	ctx := context.Background()
	cdir := filepath.Join(t.TempDir(), "connector")
	cloudURL := "https://sallyport.localhost:" + itoa(lnB.Addr().(*net.TCPAddr).Port)
	if _, err := connector.Register(ctx, connector.RegisterOptions{CloudURL: cloudURL, Dir: cdir, User: "admin@contoso.com",
		Password: testPassword, CAFile: filepath.Join(a.cfg.DataDir, datadir.CACertFile), Hostname: "host1", Version: "test"}); err != nil {
		t.Fatal(err)
	}
	c, err := connector.New(connector.Config{Dir: cdir})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConnector := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- c.Run(cctx) }()
	t.Cleanup(func() {
		stopConnector()
		<-ran // refused once deleted: its error is not this test's
		c.Close()
	})
	id := c.State().Trust.ConnectorID
	testnet.WaitUntil(t, "the connector serves through b", func() bool { return b.registry.pickable(id) })

	admin := login(t, a, "admin@contoso.com", testPassword)
	if rec, eb := call(t, a, "POST", "/groups", admin, api.CreateGroupRequest{Name: "Paris"}); rec.Code != 201 {
		t.Fatalf("create group: %d %s", rec.Code, eb.Error.Message)
	}
	paris, err := a.store.GroupByName(ctx, c.State().Trust.TenantID, "Paris")
	if err != nil {
		t.Fatal(err)
	}
	if rec, eb := call(t, a, "POST", "/connectors/"+id+"/move", admin, api.MoveConnectorRequest{Group: "Paris"}); rec.Code >= 300 {
		t.Fatalf("move: %d %s", rec.Code, eb.Error.Message)
	}
	groupOnB := func() string {
		for _, cand := range b.registry.liveTunnels() {
			if cand.lc.ID == id {
				return *cand.lc.groupID.Load()
			}
		}
		return ""
	}
	testnet.WaitUntil(t, "b serves the group the connector was moved to on a", func() bool { return groupOnB() == paris.ID })

	if rec, eb := call(t, a, "DELETE", "/connectors/"+id, admin, nil); rec.Code >= 300 {
		t.Fatalf("delete: %d %s", rec.Code, eb.Error.Message)
	}
	testnet.WaitUntil(t, "b closes the tunnels of the connector deleted on a", func() bool { _, live := b.registry.info(id); return !live })
}
