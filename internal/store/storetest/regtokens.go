package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// newRegToken builds a registration token of f's Default group, created at
// at(30) and expiring 24 h later, allowing maxUses registrations.
func newRegToken(f tenantFixture, id string, maxUses int) store.RegistrationToken {
	return store.RegistrationToken{
		ID: id, TenantID: f.Tenant.ID, GroupID: f.Group.ID, Hash: "regtokenhash-" + id,
		CreatedBy: f.Admin.Name, CreatedAt: at(30), ExpiresAt: at(30 + 24*60), MaxUses: maxUses,
	}
}

// testRegistrationTokens checks round-trips, listing order, the hash
// lookup, ErrConflict and ErrNotFound, and tenant isolation of listing.
func testRegistrationTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	branch := store.Group{ID: "group-branch", TenantID: a.Tenant.ID, Name: "Branch", CreatedAt: at(3)}
	must(t, s.CreateGroup(ctx, branch))

	t1 := newRegToken(a, "rt-1", 1)
	t2 := newRegToken(a, "rt-2", 0)
	t2.GroupID, t2.CreatedAt, t2.Uses = branch.ID, at(31), 4
	t2.RevokedAt, t2.RevokedBy = at(32), "ops@alpha.com"
	tb := newRegToken(b, "rt-b", 3)
	for _, tok := range []store.RegistrationToken{t1, t2, tb} {
		must(t, s.CreateRegistrationToken(ctx, tok))
	}

	equal(t, "ListRegistrationTokens (newest first)",
		get(t, func() ([]store.RegistrationToken, error) { return s.ListRegistrationTokens(ctx, a.Tenant.ID) }),
		[]store.RegistrationToken{t2, t1})
	equal(t, "ListRegistrationTokens of the other tenant",
		get(t, func() ([]store.RegistrationToken, error) { return s.ListRegistrationTokens(ctx, b.Tenant.ID) }),
		[]store.RegistrationToken{tb})
	equal(t, "ListRegistrationTokens of nobody",
		get(t, func() ([]store.RegistrationToken, error) { return s.ListRegistrationTokens(ctx, "nope") }),
		[]store.RegistrationToken{})
	equal(t, "RegistrationTokenByHash", get(t, func() (store.RegistrationToken, error) { return s.RegistrationTokenByHash(ctx, t2.Hash) }), t2)

	dupHash := newRegToken(b, "rt-dup", 1)
	dupHash.Hash = t1.Hash
	dupID := newRegToken(b, "rt-1", 1)
	dupID.Hash = "another"
	runErrCases(t, store.ErrConflict, []errCase{
		{"hash", func() error { return s.CreateRegistrationToken(ctx, dupHash) }},
		{"id", func() error { return s.CreateRegistrationToken(ctx, dupID) }},
	})
	foreign := newRegToken(a, "rt-foreign", 1)
	foreign.GroupID, foreign.Hash = b.Group.ID, "foreign"
	missing := newRegToken(a, "rt-missing", 1)
	missing.GroupID, missing.Hash = "nope", "missing"
	runErrCases(t, store.ErrNotFound, []errCase{
		{"CreateRegistrationToken in another tenant's group", func() error { return s.CreateRegistrationToken(ctx, foreign) }},
		{"CreateRegistrationToken in a missing group", func() error { return s.CreateRegistrationToken(ctx, missing) }},
		{"RegistrationTokenByHash", func() error { return errOf(s.RegistrationTokenByHash(ctx, "nope")) }},
		{"UseRegistrationToken", func() error { return errOf(s.UseRegistrationToken(ctx, "nope", at(40))) }},
		{"RevokeRegistrationToken", func() error { return errOf(s.RevokeRegistrationToken(ctx, a.Tenant.ID, "nope", "x", at(40))) }},
	})
}

// testUseRegistrationToken checks the use count, the limit, expiry (the
// token is unusable from ExpiresAt on), unlimited tokens, and that a
// refused use counts nothing and returns the token as found.
func testUseRegistrationToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	two := newRegToken(a, "rt-two", 2)
	unlimited := newRegToken(a, "rt-unlimited", 0)
	unlimited.Hash = "unlimited"
	must(t, s.CreateRegistrationToken(ctx, two))
	must(t, s.CreateRegistrationToken(ctx, unlimited))

	for i := 1; i <= 2; i++ {
		got := get(t, func() (store.RegistrationToken, error) { return s.UseRegistrationToken(ctx, two.Hash, at(31)) })
		want := two
		want.Uses = i
		equal(t, "use", got, want)
	}
	got, err := s.UseRegistrationToken(ctx, two.Hash, at(32))
	wantErr(t, "third use of a 2-use token", err, store.ErrTokenUsedUp)
	two.Uses = 2
	equal(t, "token returned with ErrTokenUsedUp", got, two)
	equal(t, "stored after the refusal", get(t, func() (store.RegistrationToken, error) { return s.RegistrationTokenByHash(ctx, two.Hash) }), two)

	for i := range 5 {
		if _, err := s.UseRegistrationToken(ctx, unlimited.Hash, at(40+i)); err != nil {
			t.Fatalf("use %d of an unlimited token: %v", i+1, err)
		}
	}
	last := unlimited.ExpiresAt.Add(-time.Nanosecond)
	got = get(t, func() (store.RegistrationToken, error) { return s.UseRegistrationToken(ctx, unlimited.Hash, last) })
	if got.Uses != 6 {
		t.Fatalf("unlimited token: Uses = %d, want 6", got.Uses)
	}
	got, err = s.UseRegistrationToken(ctx, unlimited.Hash, unlimited.ExpiresAt)
	wantErr(t, "use at ExpiresAt", err, store.ErrTokenExpired)
	if got.ID != unlimited.ID || got.Uses != 6 {
		t.Fatalf("token returned with ErrTokenExpired = %+v", got)
	}
	_, err = s.UseRegistrationToken(ctx, unlimited.Hash, unlimited.ExpiresAt.Add(time.Hour))
	wantErr(t, "use after ExpiresAt", err, store.ErrTokenExpired)
	if errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired token is reported as not found: %v", err)
	}
}

// testRevokeRegistrationToken checks revocation, its tenant isolation, and
// that a second revocation keeps the first.
func testRevokeRegistrationToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	tok := newRegToken(a, "rt-1", 5)
	must(t, s.CreateRegistrationToken(ctx, tok))

	wantErr(t, "revoke from another tenant", errOf(s.RevokeRegistrationToken(ctx, b.Tenant.ID, tok.ID, b.Admin.Name, at(40))), store.ErrNotFound)
	equal(t, "untouched by the other tenant", get(t, func() (store.RegistrationToken, error) { return s.RegistrationTokenByHash(ctx, tok.Hash) }), tok)
	if _, err := s.UseRegistrationToken(ctx, tok.Hash, at(41)); err != nil {
		t.Fatalf("use after another tenant's revocation attempt: %v", err)
	}
	tok.Uses = 1

	got := get(t, func() (store.RegistrationToken, error) {
		return s.RevokeRegistrationToken(ctx, a.Tenant.ID, tok.ID, "ops@alpha.com", at(42))
	})
	tok.RevokedAt, tok.RevokedBy = at(42), "ops@alpha.com"
	equal(t, "RevokeRegistrationToken", got, tok)
	got = get(t, func() (store.RegistrationToken, error) {
		return s.RevokeRegistrationToken(ctx, a.Tenant.ID, tok.ID, a.Admin.Name, at(43))
	})
	equal(t, "second revocation keeps the first", got, tok)

	got, err := s.UseRegistrationToken(ctx, tok.Hash, at(44))
	wantErr(t, "use of a revoked token", err, store.ErrTokenRevoked)
	equal(t, "token returned with ErrTokenRevoked", got, tok)
	equal(t, "listed revoked", get(t, func() ([]store.RegistrationToken, error) { return s.ListRegistrationTokens(ctx, a.Tenant.ID) }),
		[]store.RegistrationToken{tok})
}

// testRegistrationTokenGroupDeleted checks that deleting a group deletes
// its tokens (and is not refused because of them).
func testRegistrationTokenGroupDeleted(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	branch := store.Group{ID: "group-branch", TenantID: a.Tenant.ID, Name: "Branch", CreatedAt: at(3)}
	must(t, s.CreateGroup(ctx, branch))
	inBranch := newRegToken(a, "rt-branch", 1)
	inBranch.GroupID = branch.ID
	inDefault := newRegToken(a, "rt-default", 1)
	inDefault.Hash = "default"
	must(t, s.CreateRegistrationToken(ctx, inBranch))
	must(t, s.CreateRegistrationToken(ctx, inDefault))

	must(t, s.DeleteGroup(ctx, a.Tenant.ID, branch.ID))
	wantErr(t, "token of the deleted group", errOf(s.RegistrationTokenByHash(ctx, inBranch.Hash)), store.ErrNotFound)
	wantErr(t, "use of a token of the deleted group", errOf(s.UseRegistrationToken(ctx, inBranch.Hash, at(40))), store.ErrNotFound)
	equal(t, "tokens left", get(t, func() ([]store.RegistrationToken, error) { return s.ListRegistrationTokens(ctx, a.Tenant.ID) }),
		[]store.RegistrationToken{inDefault})
}

// testRegistrationTokenRace uses tokens from many goroutines at once:
// exactly MaxUses uses succeed, the others get ErrTokenUsedUp.
func testRegistrationTokenRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	for _, tc := range []struct{ maxUses, callers int }{{1, 10}, {3, 12}} {
		tok := newRegToken(a, "rt-race-"+string(rune('0'+tc.maxUses)), tc.maxUses)
		tok.Hash = tok.ID
		must(t, s.CreateRegistrationToken(ctx, tok))
		errs := make([]error, tc.callers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range tc.callers {
			wg.Go(func() {
				<-start
				_, errs[i] = s.UseRegistrationToken(ctx, tok.Hash, at(31))
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrTokenUsedUp):
				t.Fatalf("%d-use token: unexpected error %v", tc.maxUses, err)
			}
		}
		if ok != tc.maxUses {
			t.Fatalf("%d-use token used by %d goroutines: %d succeeded", tc.maxUses, tc.callers, ok)
		}
		if got := get(t, func() (store.RegistrationToken, error) { return s.RegistrationTokenByHash(ctx, tok.Hash) }); got.Uses != tc.maxUses {
			t.Fatalf("%d-use token: Uses = %d after the race", tc.maxUses, got.Uses)
		}
	}
}
