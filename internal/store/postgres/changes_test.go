package postgres

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
)

// feedRecorder records what FollowChanges reports.
type feedRecorder struct {
	mu       sync.Mutex
	changes  []store.Change
	connects int
	losses   int
}

func (r *feedRecorder) handler() store.ChangeHandler {
	return store.ChangeHandler{
		Change:    func(c store.Change) { r.mu.Lock(); r.changes = append(r.changes, c); r.mu.Unlock() },
		Connected: func() { r.mu.Lock(); r.connects++; r.mu.Unlock() },
		Lost:      func(error) { r.mu.Lock(); r.losses++; r.mu.Unlock() },
	}
}

func (r *feedRecorder) saw(f func(store.Change) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.changes, f)
}

func (r *feedRecorder) counts() (connects, losses int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connects, r.losses
}

// TestFollowChanges: a change to a cached table is notified by its
// table's trigger, whoever makes it; sessions ended before their expiry
// come with their ids, swept expired ones not at all; a connection cut
// (the backend terminated) is reported and made again.
func TestFollowChanges(t *testing.T) {
	s, _ := openT(t)
	ctx := t.Context()
	var r feedRecorder
	fctx, stop := contextWithCancel(t)
	done := make(chan struct{})
	go func() { defer close(done); s.FollowChanges(fctx, r.handler()) }()
	t.Cleanup(func() { stop(); <-done })
	testnet.WaitUntil(t, "the feed follows", func() bool { c, _ := r.counts(); return c == 1 })

	now := time.Now().UTC()
	ten := store.Tenant{ID: "t1", Domain: "alpha.com", Label: "alpha", CreatedAt: now}
	ca := store.TenantCA{TenantID: "t1", CertPEM: []byte("c"), KeyPEM: []byte("k")}
	g := store.Group{ID: "g1", TenantID: "t1", Name: "Default", CreatedAt: now}
	u := store.User{ID: "u1", TenantID: "t1", Name: "bob@alpha.com", Role: store.RoleUser, CreatedAt: now}
	if err := s.CreateTenant(ctx, ten, ca, g, u); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"tenants", "connector_groups", "users"} {
		testnet.WaitUntil(t, "a change of "+table+" is notified", func() bool {
			return r.saw(func(c store.Change) bool { return c.Table == table })
		})
	}
	live := store.Session{ID: "s-live", Hash: "h1", TenantID: "t1", UserID: "u1", Kind: store.SessionCloud, Method: "password", CreatedAt: now, ExpiresAt: now.Add(time.Hour), SeenAt: now}
	old := store.Session{ID: "s-old", Hash: "h2", TenantID: "t1", UserID: "u1", Kind: store.SessionCloud, Method: "password", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), SeenAt: now}
	for _, ss := range []store.Session{live, old} {
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d, %v", n, err)
	}
	if _, err := s.DeleteUserSessions(ctx, "t1", "u1"); err != nil {
		t.Fatal(err)
	}
	testnet.WaitUntil(t, "the live session's end is notified with its id", func() bool {
		return r.saw(func(c store.Change) bool {
			return c.Table == "sessions" && slices.Equal(c.SessionIDs, []string{"s-live"})
		})
	})
	if r.saw(func(c store.Change) bool { return c.Table == "sessions" && slices.Contains(c.SessionIDs, "s-old") }) {
		t.Errorf("a session swept after its expiry was notified")
	}

	// Cut the listening connection from the server's side.
	if _, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	testnet.WaitUntil(t, "the loss is reported and the feed follows again", func() bool { c, l := r.counts(); return l >= 1 && c >= 2 })
	if err := s.SetTenantSettings(ctx, store.TenantSettings{TenantID: "t1", RequireMFA: true, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	testnet.WaitUntil(t, "a change after the reconnection is notified", func() bool {
		return r.saw(func(c store.Change) bool { return c.Table == "tenant_settings" })
	})
}

func TestParseChange(t *testing.T) {
	tests := []struct {
		in   string
		want store.Change
	}{
		{"applications", store.Change{Table: "applications"}},
		{"sessions:a,b", store.Change{Table: "sessions", SessionIDs: []string{"a", "b"}}},
		{"sessions:*", store.Change{Table: "sessions", AllSessions: true}},
		{"sessions:", store.Change{Table: "sessions"}},
	}
	for _, tc := range tests {
		got := parseChange(tc.in)
		if got.Table != tc.want.Table || got.AllSessions != tc.want.AllSessions || !slices.Equal(got.SessionIDs, tc.want.SessionIDs) {
			t.Errorf("parseChange(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
