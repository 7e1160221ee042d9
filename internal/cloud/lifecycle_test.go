package cloud

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// clock is an injectable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestConnectorLifecycle walks a connector through active → inactive →
// removed (and revoked) with an injected clock.
func TestConnectorLifecycle(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := login(t, s, "admin@contoso.com", testPassword)
	ten, _ := s.store.TenantByDomain(ctx, "contoso.com")
	g, _ := s.store.GroupByName(ctx, ten.ID, tenancy.DefaultGroup)
	seen := store.Connector{ID: "c_seen", TenantID: ten.ID, GroupID: g.ID, Hostname: "h1", CertSerial: "01",
		CreatedAt: clk.Now().Add(-time.Hour), LastSeenAt: clk.Now()}
	never := store.Connector{ID: "c_never", TenantID: ten.ID, GroupID: g.ID, Hostname: "h2", CertSerial: "02",
		CreatedAt: clk.Now().Add(time.Hour)}
	for _, c := range []store.Connector{seen, never} {
		if err := s.store.CreateConnector(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	status := func() map[string]string {
		rec, _ := call(t, s, "GET", "/connectors", tok, nil)
		var cs []api.Connector
		json.Unmarshal(rec.Body.Bytes(), &cs)
		m := map[string]string{}
		for _, c := range cs {
			m[c.ID] = c.Status
		}
		return m
	}
	steps := []struct {
		advance time.Duration
		removed int
		want    map[string]string
	}{
		{0, 0, map[string]string{"c_seen": "active", "c_never": "inactive"}},
		{time.Minute, 0, map[string]string{"c_seen": "active", "c_never": "inactive"}},
		{2 * time.Minute, 0, map[string]string{"c_seen": "inactive", "c_never": "inactive"}},
		{10*24*time.Hour - 4*time.Minute, 0, map[string]string{"c_seen": "inactive", "c_never": "inactive"}},
		{2 * time.Minute, 1, map[string]string{"c_never": "inactive"}},
		{time.Hour, 1, map[string]string{}},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		// Tokens live 12 h: sign in again as the clock moves.
		tok = login(t, s, "admin@contoso.com", testPassword)
		n, err := s.SweepInactive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != st.removed {
			t.Errorf("step %d: SweepInactive removed %d, want %d", i, n, st.removed)
		}
		got := status()
		if len(got) != len(st.want) {
			t.Errorf("step %d: connectors %v, want %v", i, got, st.want)
		}
		for id, want := range st.want {
			if got[id] != want {
				t.Errorf("step %d: %s is %q, want %q", i, id, got[id], want)
			}
		}
	}
	rev, err := s.store.Revocation(ctx, "01")
	if err != nil || rev.Reason != "removed after 10 days of inactivity" {
		t.Errorf("revocation of the removed connector = %+v, %v", rev, err)
	}
}
