package storetest

import (
	"testing"

	"github.com/sallyport/sallyport/internal/store"
)

// testUsers checks the user round-trips and listing.
func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	u := store.User{
		ID: "user-bob", TenantID: a.Tenant.ID, Name: "bob@alpha.com", Role: store.RoleAppAdmin,
		PasswordHash: "$argon2id$bob", CreatedAt: at(5),
	}
	must(t, s.CreateUser(ctx, u))
	svc := store.User{ID: "user-svc", TenantID: b.Tenant.ID, Name: "svc@beta.com", Role: store.RoleUser, CreatedAt: at(6)}
	must(t, s.CreateUser(ctx, svc))

	equal(t, "UserByName", get(t, func() (store.User, error) { return s.UserByName(ctx, "bob@alpha.com") }), u)
	equal(t, "UserByName other tenant", get(t, func() (store.User, error) { return s.UserByName(ctx, svc.Name) }), svc)
	equal(t, "UserByID", get(t, func() (store.User, error) { return s.UserByID(ctx, a.Tenant.ID, u.ID) }), u)
	equal(t, "ListUsers", get(t, func() ([]store.User, error) { return s.ListUsers(ctx, a.Tenant.ID) }),
		[]store.User{a.Admin, u})
	equal(t, "ListUsers other tenant", get(t, func() ([]store.User, error) { return s.ListUsers(ctx, b.Tenant.ID) }),
		[]store.User{b.Admin, svc})
}

// newToken builds a token of f's admin expiring at expires.
func newToken(f tenantFixture, id string, expires int) store.APIToken {
	return store.APIToken{
		ID: id, UserID: f.Admin.ID, TenantID: f.Tenant.ID,
		Hash: "sha256-" + id, CreatedAt: at(0), ExpiresAt: at(expires),
	}
}

// testAPITokens checks the token round-trip and deletion.
func testAPITokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	tok := newToken(a, "tok-1", 60)
	must(t, s.CreateAPIToken(ctx, tok))
	equal(t, "APITokenByHash", get(t, func() (store.APIToken, error) { return s.APITokenByHash(ctx, tok.Hash) }), tok)

	b := createTenant(t, s, "beta")
	expired := newToken(a, "tok-0-expired", -60)
	must(t, s.CreateAPIToken(ctx, expired))
	must(t, s.CreateAPIToken(ctx, newToken(b, "tok-b", 60)))
	equal(t, "ListAPITokens: the tenant's, expired too", get(t, func() ([]store.APIToken, error) { return s.ListAPITokens(ctx, a.Tenant.ID) }),
		[]store.APIToken{expired, tok})

	must(t, s.DeleteAPIToken(ctx, tok.ID))
	wantErr(t, "APITokenByHash after delete", errOf(s.APITokenByHash(ctx, tok.Hash)), store.ErrNotFound)
	wantErr(t, "DeleteAPIToken twice", s.DeleteAPIToken(ctx, tok.ID), store.ErrNotFound)
}

// testDeleteExpiredAPITokens checks that only tokens expired strictly
// before now are removed.
func testDeleteExpiredAPITokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	expired, boundary, valid := newToken(a, "tok-old", -1), newToken(a, "tok-now", 0), newToken(a, "tok-new", 1)
	for _, tok := range []store.APIToken{expired, boundary, valid} {
		must(t, s.CreateAPIToken(ctx, tok))
	}
	must(t, s.DeleteExpiredAPITokens(ctx, at(0)))

	wantErr(t, "expired token", errOf(s.APITokenByHash(ctx, expired.Hash)), store.ErrNotFound)
	for _, tok := range []store.APIToken{boundary, valid} {
		equal(t, "kept token "+tok.ID, get(t, func() (store.APIToken, error) { return s.APITokenByHash(ctx, tok.Hash) }), tok)
	}
	must(t, s.DeleteExpiredAPITokens(ctx, at(0))) // nothing left to delete is not an error
}
