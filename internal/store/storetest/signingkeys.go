package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// newSigningKey builds (without storing) a signing key of f, created at
// minute created and signing from minute from.
func newSigningKey(f tenantFixture, kid string, created, from int) store.SigningKey {
	return store.SigningKey{
		TenantID: f.Tenant.ID, KID: kid, KeyPEM: []byte("wrapped key " + kid + " of " + f.Tenant.Label),
		CreatedAt: at(created), SignFrom: at(from),
	}
}

// testSigningKeys checks the tenant signing keys: the first key, a
// rotation that ends the current key in the same call, the ordering,
// isolation between tenants, the conflicts and deletion.
func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	equal(t, "no keys", get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, a.Tenant.ID) }), []store.SigningKey{})

	k1 := newSigningKey(a, "kid-1", 0, 0)
	must(t, s.AddTenantSigningKey(ctx, k1, ""))
	equal(t, "first key", get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, a.Tenant.ID) }), []store.SigningKey{k1})
	wantErr(t, "a second first key", s.AddTenantSigningKey(ctx, newSigningKey(a, "kid-x", 1, 1), ""), store.ErrConflict)
	wantErr(t, "first key of an unknown tenant", s.AddTenantSigningKey(ctx, store.SigningKey{TenantID: "nope", KID: "k", KeyPEM: []byte("k"), CreatedAt: at(0), SignFrom: at(0)}, ""), store.ErrNotFound)

	// Rotation: the successor is published at minute 100 and signs from
	// minute 160; the first key signs until then.
	k2 := newSigningKey(a, "kid-2", 100, 160)
	must(t, s.AddTenantSigningKey(ctx, k2, "kid-1"))
	k1.SignUntil = at(160)
	equal(t, "after a rotation", get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, a.Tenant.ID) }), []store.SigningKey{k1, k2})
	wantErr(t, "rotating an ended key again", s.AddTenantSigningKey(ctx, newSigningKey(a, "kid-3", 101, 161), "kid-1"), store.ErrConflict)
	wantErr(t, "replacing an unknown key", s.AddTenantSigningKey(ctx, newSigningKey(a, "kid-3", 101, 161), "kid-9"), store.ErrNotFound)
	wantErr(t, "a kid the tenant has", s.AddTenantSigningKey(ctx, newSigningKey(a, "kid-2", 200, 260), "kid-2"), store.ErrConflict)
	// The refused calls changed nothing.
	equal(t, "after refusals", get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, a.Tenant.ID) }), []store.SigningKey{k1, k2})

	// Another tenant: its own keys only; the same kid is no conflict
	// across tenants, and a's key cannot be replaced through b.
	wantErr(t, "replacing another tenant's key", s.AddTenantSigningKey(ctx, newSigningKey(b, "kid-b2", 5, 5), "kid-2"), store.ErrNotFound)
	kb := newSigningKey(b, "kid-1", 3, 3)
	must(t, s.AddTenantSigningKey(ctx, kb, ""))
	equal(t, "beta's keys", get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, b.Tenant.ID) }), []store.SigningKey{kb})
	wantErr(t, "deleting through another tenant", s.DeleteTenantSigningKey(ctx, b.Tenant.ID, "kid-2"), store.ErrNotFound)

	must(t, s.DeleteTenantSigningKey(ctx, a.Tenant.ID, "kid-1"))
	wantErr(t, "deleting twice", s.DeleteTenantSigningKey(ctx, a.Tenant.ID, "kid-1"), store.ErrNotFound)
	equal(t, "after delete", get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, a.Tenant.ID) }), []store.SigningKey{k2})
	equal(t, "beta untouched", get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, b.Tenant.ID) }), []store.SigningKey{kb})

	// A key given in another zone comes back equal, in UTC.
	c := createTenant(t, s, "gamma")
	kc := newSigningKey(c, "kid-c", 0, 0)
	kc.SignFrom = kc.SignFrom.In(time.FixedZone("CET", 3600))
	must(t, s.AddTenantSigningKey(ctx, kc, ""))
	got := get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, c.Tenant.ID) })
	if len(got) != 1 || !got[0].SignFrom.Equal(kc.SignFrom) || got[0].SignFrom.Location() != time.UTC {
		t.Errorf("a key signing from %v came back as %+v", kc.SignFrom, got)
	}
}

// testSigningKeyRace: callers that add a tenant's first key at once, or
// rotate the same key at once (two cloud instances): exactly one succeeds,
// the others get ErrConflict, and the tenant ends with one key, then one
// successor.
func testSigningKeyRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := createTenant(t, s, "alpha")
	replaces := ""
	for round, want := range []int{1, 2} {
		const racers = 8
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				k := newSigningKey(f, fmt.Sprintf("round-%d-racer-%d", round, i), 10*round, 10*round)
				errs[i] = s.AddTenantSigningKey(ctx, k, replaces)
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			if err == nil {
				won++
			} else if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("round %d: racer %d: %v, want ErrConflict", round, i, err)
			}
		}
		keys := get(t, func() ([]store.SigningKey, error) { return s.TenantSigningKeys(ctx, f.Tenant.ID) })
		if won != 1 || len(keys) != want {
			t.Fatalf("round %d: %d racers succeeded and the tenant has %d keys, want 1 and %d", round, won, len(keys), want)
		}
		replaces = keys[len(keys)-1].KID
	}
}
