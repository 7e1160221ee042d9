package cloud

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
)

// newPostgresServer makes a cloud (tenant contoso.com) on a new database
// of cluster c.
func newPostgresServer(t *testing.T, c *pgtest.Cluster, cfg Config) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	if _, err := datadir.Init(t.Context(), datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com",
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
// user's sessions ended) reaches the other's routing table and session
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
