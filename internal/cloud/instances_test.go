package cloud

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
)

func TestValidateAdvertise(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"cloud-1.example.com:443", true},
		{"10.0.0.11:18443", true},
		{"[2001:db8::1]:443", true},
		{"cloud-1.example.com", false},
		{"https://cloud-1.example.com:443", false},
		{"cloud-1.example.com:443/x", false},
		{":443", false},
		{"0.0.0.0:443", false},
		{"[::]:443", false},
		{"host:0", false},
		{"host:65536", false},
		{"host:https", false},
		{"user@host:443", false},
		{strings.Repeat("a", 260) + ":443", false},
	}
	for _, tc := range tests {
		err := validateAdvertise(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("validateAdvertise(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

// peerOf makes a second instance of s's cloud: a copy of its data
// directory (the cloud CA, the key-encryption key, the release key, the
// settings) on the same store, with cfg's settings.
func peerOf(t *testing.T, s *Server, cfg Config) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(s.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), datadir.StoreFile) || strings.HasPrefix(e.Name(), "events") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st := s.settings
	if st.Store == "" || st.Store == "sqlite:" {
		st.Store = "sqlite:" + filepath.Join(s.cfg.DataDir, datadir.StoreFile)
	}
	if err := datadir.WriteSettings(dir, st); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// eventsOf reads s's events with these ids.
func eventsOf(t *testing.T, s *Server, ids ...eventlog.ID) []eventlog.Event {
	t.Helper()
	evs, err := eventlog.Read(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func liveIDs(s *Server) []string {
	var ids []string
	for _, in := range s.LiveInstances() {
		ids = append(ids, in.ID)
	}
	return ids
}

// TestInstancesSeeEachOther: two instances on one store list each other
// (with their advertised addresses) within a few beats, log the join, and
// one that stops cleanly is gone from the other's list at its next beat.
func TestInstancesSeeEachOther(t *testing.T) {
	// A beat long enough that a loaded machine (CI runs many packages at
	// once) does not miss three in a row; the losses a slow moment may
	// still cause are counted before the stop, not assumed away.
	const beat = 250 * time.Millisecond
	a := newTestServer(t)
	a.cfg.InstanceBeat, a.cfg.Advertise = beat, "cloud-a.test:443"
	a.inst.self.Advertise = a.cfg.Advertise
	if got := a.LiveInstances(); len(got) != 1 || got[0].ID != a.InstanceID() {
		t.Fatalf("LiveInstances before serving = %+v, want this instance alone", got)
	}
	serveLive(t, a)
	b := peerOf(t, a, Config{InstanceBeat: beat, Advertise: "cloud-b.test:443"})
	stopB := serveStoppable(t, b)

	both := []string{a.InstanceID(), b.InstanceID()}
	slices.Sort(both)
	testnet.WaitUntil(t, "each instance lists both", func() bool {
		return slices.Equal(liveIDs(a), both) && slices.Equal(liveIDs(b), both)
	})
	for _, in := range a.LiveInstances() {
		if in.ID == b.InstanceID() && in.Advertise != "cloud-b.test:443" {
			t.Errorf("a sees b at %q, want cloud-b.test:443", in.Advertise)
		}
	}
	testnet.WaitUntil(t, "a logs b's join (2970)", func() bool { return len(eventsOf(t, a, eventlog.InstanceJoined)) >= 1 })
	if evs := eventsOf(t, b, eventlog.InstanceAnnounced); len(evs) != 1 || evs[0].Fields["others"] != a.InstanceID() {
		t.Errorf("b's 2973 = %+v, want one naming %s among the others", evs, a.InstanceID())
	}

	lostBefore := len(eventsOf(t, a, eventlog.InstanceLost))
	stopB()
	testnet.WaitUntil(t, "a lists itself alone after b stopped", func() bool { return slices.Equal(liveIDs(a), []string{a.InstanceID()}) })
	testnet.WaitUntil(t, "a logs b's clean stop (2971)", func() bool { return len(eventsOf(t, a, eventlog.InstanceStopped)) == 1 })
	if n := len(eventsOf(t, a, eventlog.InstanceLost)) - lostBefore; n != 0 {
		t.Errorf("a logged %d losses (2972) for a clean stop", n)
	}
}

// TestInstanceLost: an instance whose heartbeat stops changing (killed:
// its row stays) is gone after 3 missed beats, and back when it beats
// again; rows silent for an hour are removed.
func TestInstanceLost(t *testing.T) {
	const beat = 300 * time.Millisecond // seen before it is lost, even on a loaded machine
	a := newTestServer(t)
	a.cfg.InstanceBeat = beat
	ctx := t.Context()
	ghost := store.Instance{ID: "ghost-1", Advertise: "ghost.test:443", StartedAt: time.Now().UTC(), HeartbeatAt: time.Now().UTC()}
	old := store.Instance{ID: "old-1", StartedAt: time.Now().Add(-2 * time.Hour).UTC(), HeartbeatAt: time.Now().Add(-2 * time.Hour).UTC()}
	for _, in := range []store.Instance{ghost, old} {
		if err := a.store.Heartbeat(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	serveLive(t, a)
	testnet.WaitUntil(t, "a lists the ghost", func() bool { return slices.Contains(liveIDs(a), ghost.ID) })
	if slices.Contains(liveIDs(a), old.ID) {
		t.Errorf("a lists an instance silent for two hours")
	}
	testnet.WaitUntil(t, "a counts the silent ghost gone (2972)", func() bool {
		return !slices.Contains(liveIDs(a), ghost.ID) && len(eventsOf(t, a, eventlog.InstanceLost)) == 1
	})
	testnet.WaitUntil(t, "the two-hour-old row is removed", func() bool {
		rows, err := a.store.ListInstances(ctx, time.Time{})
		return err == nil && !slices.ContainsFunc(rows, func(in store.Instance) bool { return in.ID == old.ID })
	})
	ghost.HeartbeatAt = time.Now().UTC()
	if err := a.store.Heartbeat(ctx, ghost); err != nil {
		t.Fatal(err)
	}
	testnet.WaitUntil(t, "the ghost is back (2970)", func() bool {
		return slices.Contains(liveIDs(a), ghost.ID) && len(eventsOf(t, a, eventlog.InstanceJoined)) == 1
	})
}

// serveStoppable serves s on its listener and returns a function that
// stops it and checks that Serve ended cleanly (called at the latest by
// the test's cleanup).
func serveStoppable(t *testing.T, s *Server) (stop func()) {
	t.Helper()
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestTOTPCodeUsedOnceAcrossInstances: a second factor code accepted by
// one instance is refused by another on the same store (and by a
// restarted one), the next code is not.
func TestTOTPCodeUsedOnceAcrossInstances(t *testing.T) {
	a := newTestServer(t)
	b := peerOf(t, a, Config{})
	u, err := a.store.UserByName(t.Context(), "admin@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "JBSWY3DPEHPK3PXP"
	u.TOTPSecret = []byte(secret)
	now := time.Now()
	code, _ := totp.GenerateCode(secret, now)
	next, _ := totp.GenerateCode(secret, now.Add(30*time.Second))
	if !a.totp.check(u, code, now) {
		t.Fatal("a refused a fresh code")
	}
	if b.totp.check(u, code, now) {
		t.Error("b accepted a code used on a")
	}
	if !b.totp.check(u, next, now) {
		t.Error("b refused the next code")
	}
	if a.totp.check(u, next, now) {
		t.Error("a accepted the next code used on b")
	}
}

// TestSessionCacheDrop: sessions are dropped by id (as another instance
// notifies them), by user, by expiry and all at once, and the id index
// follows.
func TestSessionCacheDrop(t *testing.T) {
	now := time.Now()
	mk := func(id, user string, exp time.Duration) *cachedSession {
		return &cachedSession{Session: store.Session{ID: id, Hash: "h-" + id, UserID: user, ExpiresAt: now.Add(exp)}}
	}
	var c sessionCache
	for _, cs := range []*cachedSession{mk("a", "u1", time.Hour), mk("b", "u1", time.Hour), mk("c", "u2", time.Hour), mk("d", "u3", -time.Second)} {
		c.put(cs, now)
	}
	ids := func() []string {
		var out []string
		for _, s := range c.all() {
			out = append(out, s.ID)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		do   func()
		want []string
	}{
		{"by id, unknown ids ignored", func() { c.drop([]string{"a", "zz"}, "") }, []string{"b", "c", "d"}},
		{"expired", func() { c.expire(now) }, []string{"b", "c"}},
		{"by user", func() { c.drop(nil, "u1") }, []string{"c"}},
		{"by id again after the user's", func() { c.drop([]string{"b", "c"}, "") }, nil},
	}
	for _, tc := range tests {
		tc.do()
		if got := ids(); !slices.Equal(got, tc.want) {
			t.Fatalf("%s: cached %v, want %v", tc.name, got, tc.want)
		}
		if len(c.byID) != len(c.byHash) {
			t.Fatalf("%s: %d ids indexed for %d sessions", tc.name, len(c.byID), len(c.byHash))
		}
	}
	c.put(mk("e", "u4", time.Hour), now)
	c.clear()
	if c.get("h-e") != nil || len(c.all()) != 0 {
		t.Fatal("clear kept a session")
	}
	c.put(mk("f", "u4", time.Hour), now)
	if c.get("h-f") == nil {
		t.Fatal("put after clear lost the session")
	}
}
