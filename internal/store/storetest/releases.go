package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

func newRelease(version, goos, arch string, major bool, digest string, published int) store.Release {
	return store.Release{Version: version, OS: goos, Arch: arch, Major: major, SHA256: digest, Size: 1234,
		Manifest: []byte(`{"version":"` + version + `"}`), Signature: []byte{1, 2, 3}, KeyID: "ed25519:0011", PublishedAt: at(published)}
}

// testReleases checks round trips, filtering, ordering, digest lookup,
// duplicates and withdrawal.
func testReleases(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := newRelease("1.0.0", "linux", "amd64", true, "aa", 1)
	r2 := newRelease("1.1.0", "linux", "amd64", false, "bb", 2)
	r3 := newRelease("1.1.0", "linux", "arm64", false, "cc", 3)
	r4 := newRelease("1.1.0", "windows", "amd64", false, "dd", 4)
	for _, r := range []store.Release{r1, r2, r3, r4} {
		must(t, s.CreateRelease(ctx, r))
	}
	equal(t, "ListReleases(linux, amd64)", get(t, func() ([]store.Release, error) { return s.ListReleases(ctx, "linux", "amd64") }), []store.Release{r2, r1})
	equal(t, "ListReleases(all)", get(t, func() ([]store.Release, error) { return s.ListReleases(ctx, "", "") }), []store.Release{r4, r3, r2, r1})
	equal(t, "ListReleases(darwin)", get(t, func() ([]store.Release, error) { return s.ListReleases(ctx, "darwin", "arm64") }), []store.Release{})
	equal(t, "ReleaseByDigest", get(t, func() (store.Release, error) { return s.ReleaseByDigest(ctx, "cc") }), r3)
	if _, err := s.ReleaseByDigest(ctx, "ee"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReleaseByDigest(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.CreateRelease(ctx, newRelease("1.1.0", "linux", "amd64", true, "ff", 5)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateRelease(duplicate) = %v, want ErrConflict", err)
	}
	must(t, s.DeleteRelease(ctx, "1.1.0", "linux", "amd64"))
	if err := s.DeleteRelease(ctx, "1.1.0", "linux", "amd64"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteRelease twice = %v, want ErrNotFound", err)
	}
	equal(t, "ListReleases after delete", get(t, func() ([]store.Release, error) { return s.ListReleases(ctx, "linux", "amd64") }), []store.Release{r1})
}

// testUpdateTurns checks that a group's turn goes to one connector at a
// time, can be extended by its holder, expires, is released only by its
// holder, and that groups and tenants are separate.
func testUpdateTurns(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	branch := store.Group{ID: "group-branch", TenantID: a.Tenant.ID, Name: "Branch", CreatedAt: at(3)}
	must(t, s.CreateGroup(ctx, branch))
	turn := func(f tenantFixture, group, conn string, from, until int) store.UpdateTurn {
		return store.UpdateTurn{TenantID: f.Tenant.ID, GroupID: group, ConnectorID: conn, Version: "2.0.0", TakenAt: at(from), ExpiresAt: at(until)}
	}
	t1 := turn(a, a.Group.ID, "c1", 10, 20)
	equal(t, "TakeUpdateTurn(free)", get(t, func() (store.UpdateTurn, error) { return s.TakeUpdateTurn(ctx, t1, at(10)) }), t1)
	held, err := s.TakeUpdateTurn(ctx, turn(a, a.Group.ID, "c2", 11, 21), at(11))
	if !errors.Is(err, store.ErrConflict) || held != t1 {
		t.Fatalf("TakeUpdateTurn(held) = %+v, %v; want %+v, ErrConflict", held, err, t1)
	}
	// Other groups and tenants are not affected.
	get(t, func() (store.UpdateTurn, error) {
		return s.TakeUpdateTurn(ctx, turn(a, branch.ID, "c3", 11, 21), at(11))
	})
	get(t, func() (store.UpdateTurn, error) {
		return s.TakeUpdateTurn(ctx, turn(b, b.Group.ID, "c4", 11, 21), at(11))
	})
	// The holder extends its turn.
	t1b := turn(a, a.Group.ID, "c1", 12, 30)
	equal(t, "TakeUpdateTurn(extend)", get(t, func() (store.UpdateTurn, error) { return s.TakeUpdateTurn(ctx, t1b, at(12)) }), t1b)
	equal(t, "UpdateTurnOf(held)", get(t, func() (store.UpdateTurn, error) { return s.UpdateTurnOf(ctx, a.Tenant.ID, a.Group.ID) }), t1b)
	if _, err := s.UpdateTurnOf(ctx, b.Tenant.ID, a.Group.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateTurnOf(other tenant's group) = %v, want ErrNotFound", err)
	}
	// A group of another tenant is not found.
	if _, err := s.TakeUpdateTurn(ctx, turn(a, b.Group.ID, "c1", 12, 30), at(12)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TakeUpdateTurn(other tenant's group) = %v, want ErrNotFound", err)
	}
	// Only the holder releases it.
	if err := s.ReleaseUpdateTurn(ctx, a.Tenant.ID, a.Group.ID, "c2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReleaseUpdateTurn(not holder) = %v, want ErrNotFound", err)
	}
	if err := s.ReleaseUpdateTurn(ctx, b.Tenant.ID, a.Group.ID, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReleaseUpdateTurn(other tenant) = %v, want ErrNotFound", err)
	}
	// After expiry another connector may take it.
	t2 := turn(a, a.Group.ID, "c2", 31, 41)
	equal(t, "TakeUpdateTurn(expired)", get(t, func() (store.UpdateTurn, error) { return s.TakeUpdateTurn(ctx, t2, at(31)) }), t2)
	must(t, s.ReleaseUpdateTurn(ctx, a.Tenant.ID, a.Group.ID, "c2"))
	if _, err := s.UpdateTurnOf(ctx, a.Tenant.ID, a.Group.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateTurnOf(released) = %v, want ErrNotFound", err)
	}
	t3 := turn(a, a.Group.ID, "c1", 32, 42)
	equal(t, "TakeUpdateTurn(released)", get(t, func() (store.UpdateTurn, error) { return s.TakeUpdateTurn(ctx, t3, at(32)) }), t3)
}

// testUpdateTurnRace checks that of many connectors racing for a free
// turn exactly one gets it.
func testUpdateTurnRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	takeOnce(t, "connectors got the turn", func(i int) error {
		_, err := s.TakeUpdateTurn(ctx, store.UpdateTurn{TenantID: a.Tenant.ID, GroupID: a.Group.ID,
			ConnectorID: "c" + string(rune('a'+i)), Version: "2.0.0", TakenAt: at(1), ExpiresAt: at(1).Add(time.Hour)}, at(1))
		return err
	})
}

// takeOnce runs take for 16 racers at once and fails t unless exactly one
// succeeds and every other is refused with ErrConflict.
func takeOnce(t *testing.T, what string, take func(i int) error) {
	t.Helper()
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := take(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrConflict):
				lost++
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || lost != n-1 {
		t.Fatalf("%d %s and %d were refused; want 1 and %d", won, what, lost, n-1)
	}
}

// testUpdateHalts checks that halts are per tenant, group and version,
// that the first one is kept, and that another tenant's group is ignored.
func testUpdateHalts(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	h := store.UpdateHalt{TenantID: a.Tenant.ID, GroupID: a.Group.ID, Version: "3.0.0", ConnectorID: "c1", HaltedAt: at(5)}
	must(t, s.HaltUpdate(ctx, h))
	h2 := h
	h2.ConnectorID, h2.HaltedAt = "c2", at(6)
	must(t, s.HaltUpdate(ctx, h2))
	equal(t, "UpdateHaltOf", get(t, func() (store.UpdateHalt, error) { return s.UpdateHaltOf(ctx, a.Tenant.ID, a.Group.ID, "3.0.0") }), h)
	for _, q := range [][3]string{{a.Tenant.ID, a.Group.ID, "3.0.1"}, {b.Tenant.ID, a.Group.ID, "3.0.0"}, {b.Tenant.ID, b.Group.ID, "3.0.0"}} {
		if _, err := s.UpdateHaltOf(ctx, q[0], q[1], q[2]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UpdateHaltOf(%v) = %v, want ErrNotFound", q, err)
		}
	}
	h3 := store.UpdateHalt{TenantID: a.Tenant.ID, GroupID: a.Group.ID, Version: "2.9.0", ConnectorID: "c3", HaltedAt: at(8)}
	must(t, s.HaltUpdate(ctx, h3))
	must(t, s.HaltUpdate(ctx, store.UpdateHalt{TenantID: b.Tenant.ID, GroupID: b.Group.ID, Version: "3.0.0", ConnectorID: "c4", HaltedAt: at(9)}))
	equal(t, "ListUpdateHalts: the tenant's, by version", get(t, func() ([]store.UpdateHalt, error) { return s.ListUpdateHalts(ctx, a.Tenant.ID) }),
		[]store.UpdateHalt{h3, h})
	// A halt naming another tenant's group is not recorded.
	must(t, s.HaltUpdate(ctx, store.UpdateHalt{TenantID: b.Tenant.ID, GroupID: a.Group.ID, Version: "4.0.0", ConnectorID: "c9", HaltedAt: at(7)}))
	if _, err := s.UpdateHaltOf(ctx, b.Tenant.ID, a.Group.ID, "4.0.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a halt for another tenant's group was recorded: %v", err)
	}
}
