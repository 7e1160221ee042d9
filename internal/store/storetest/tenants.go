package storetest

import (
	"testing"

	"github.com/sallyport/sallyport/internal/store"
)

// testTenants checks that CreateTenant stores the tenant, its CA, its
// Default group and its admin, and the tenant getters.
func testTenants(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := createTenant(t, s, "beta")
	a := createTenant(t, s, "alpha")

	equal(t, "TenantByID", get(t, func() (store.Tenant, error) { return s.TenantByID(ctx, a.Tenant.ID) }), a.Tenant)
	equal(t, "TenantByDomain", get(t, func() (store.Tenant, error) { return s.TenantByDomain(ctx, "beta.com") }), b.Tenant)
	equal(t, "TenantCA", get(t, func() (store.TenantCA, error) { return s.TenantCA(ctx, a.Tenant.ID) }), a.CA)
	equal(t, "Default group", get(t, func() (store.Group, error) { return s.GroupByID(ctx, a.Tenant.ID, a.Group.ID) }), a.Group)
	equal(t, "admin", get(t, func() (store.User, error) { return s.UserByID(ctx, a.Tenant.ID, a.Admin.ID) }), a.Admin)
	equal(t, "ListTenants", get(t, func() ([]store.Tenant, error) { return s.ListTenants(ctx) }),
		[]store.Tenant{a.Tenant, b.Tenant})

	// SetTenantCAKey replaces only that tenant's key.
	must(t, s.SetTenantCAKey(ctx, a.Tenant.ID, []byte("wrapped key")))
	wantCA := a.CA
	wantCA.KeyPEM = []byte("wrapped key")
	equal(t, "TenantCA after SetTenantCAKey", get(t, func() (store.TenantCA, error) { return s.TenantCA(ctx, a.Tenant.ID) }), wantCA)
	equal(t, "other tenant's CA", get(t, func() (store.TenantCA, error) { return s.TenantCA(ctx, b.Tenant.ID) }), b.CA)
	wantErr(t, "SetTenantCAKey of no tenant", s.SetTenantCAKey(ctx, "t_none", []byte("x")), store.ErrNotFound)
}

// testTenantAtomicity checks that a CreateTenant failing on its last
// insert leaves nothing behind.
func testTenantAtomicity(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	c := newTenant("gamma")
	c.Admin.Name = a.Admin.Name // taken: the admin insert fails
	wantErr(t, "CreateTenant with a taken admin name", s.CreateTenant(ctx, c.Tenant, c.CA, c.Group, c.Admin), store.ErrConflict)

	runErrCases(t, store.ErrNotFound, []errCase{
		{"tenant", func() error { return errOf(s.TenantByID(ctx, c.Tenant.ID)) }},
		{"CA", func() error { return errOf(s.TenantCA(ctx, c.Tenant.ID)) }},
		{"group", func() error { return errOf(s.GroupByID(ctx, c.Tenant.ID, c.Group.ID)) }},
		{"admin", func() error { return errOf(s.UserByID(ctx, c.Tenant.ID, c.Admin.ID)) }},
	})
	// The fixed tenant can then be created.
	c.Admin.Name = "admin@gamma.com"
	must(t, s.CreateTenant(ctx, c.Tenant, c.CA, c.Group, c.Admin))
}
