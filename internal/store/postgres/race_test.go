package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/store"
)

// TestRacesAcrossConnections runs the check-then-write rules of the
// contract from many connections at once, more than storetest's races
// (which share a default pool of max(4, CPUs) connections) reach: a device
// code taken by two grants, or an update turn given to two connectors,
// would show here without the locks that serialise them.
func TestRacesAcrossConnections(t *testing.T) {
	s, err := Open(t.Context(), pgtest.DSN(t)+"&pool_max_conns=32")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	tn := store.Tenant{ID: "t1", Domain: "alpha.com", Label: "alpha", CreatedAt: time.Unix(1, 0)}
	if err := s.CreateTenant(ctx, tn, store.TenantCA{TenantID: "t1", CertPEM: []byte("c"), KeyPEM: []byte("k")},
		store.Group{ID: "g1", TenantID: "t1", Name: "Default"},
		store.User{ID: "u1", TenantID: "t1", Name: "admin@alpha.com", Role: store.RoleGlobalAdmin}); err != nil {
		t.Fatal(err)
	}
	const racers, rounds = 32, 20
	race := func(what string, round int, fn func(i int) error, lost error) {
		t.Helper()
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { <-start; errs[i] = fn(i) })
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, lost):
				t.Fatalf("%s round %d: %v", what, round, err)
			}
		}
		if won != 1 {
			t.Fatalf("%s round %d: %d of %d callers won, want 1", what, round, won, racers)
		}
	}
	now := time.Unix(100, 0)
	for round := range rounds {
		code := fmt.Sprintf("BCDF-%04d", round)
		race("CreateGrant with one user code", round, func(i int) error {
			return s.CreateGrant(ctx, store.Grant{Kind: store.GrantDevice, Hash: fmt.Sprintf("h-%d-%d", round, i), TenantID: "t1",
				AppID: "a", UserCode: code, Status: "pending", CreatedAt: now, ExpiresAt: now.Add(time.Minute)})
		}, store.ErrConflict)
		race("TakeUpdateTurn", round, func(i int) error {
			_, err := s.TakeUpdateTurn(ctx, store.UpdateTurn{TenantID: "t1", GroupID: "g1", ConnectorID: fmt.Sprintf("c-%d-%d", round, i),
				Version: "1.0.0", TakenAt: now, ExpiresAt: now.Add(time.Minute)}, now)
			return err
		}, store.ErrConflict)
		// The next round's turn is free again.
		turn, err := s.UpdateTurnOf(ctx, "t1", "g1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseUpdateTurn(ctx, "t1", "g1", turn.ConnectorID); err != nil {
			t.Fatal(err)
		}
	}
}
