package storetest

import (
	"sync"
	"testing"

	"github.com/sallyport/sallyport/internal/store"
)

func newDomain(f tenantFixture, domain string, verified int) store.Domain {
	d := store.Domain{TenantID: f.Tenant.ID, Domain: domain, Token: "tok-" + f.Tenant.Label + "-" + domain, CreatedAt: at(30)}
	if verified > 0 {
		d.VerifiedAt, d.VerifiedBy = at(verified), "operator"
	}
	return d
}

// testDomains checks claims: round-trips, listing, isolation, verification
// and deletion, and that pending claims of other tenants never block.
func testDomains(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	pending := newDomain(a, "alpha.example", 0)
	vouched := newDomain(a, "apps.alpha.example", 31)
	squat := newDomain(b, "alpha.example", 0) // another tenant's pending claim of the same domain
	for _, d := range []store.Domain{vouched, pending, squat} {
		must(t, s.CreateDomain(ctx, d))
	}
	wantErr(t, "CreateDomain twice", s.CreateDomain(ctx, pending), store.ErrConflict)
	equal(t, "DomainOf pending", get(t, func() (store.Domain, error) { return s.DomainOf(ctx, a.Tenant.ID, "alpha.example") }), pending)
	equal(t, "DomainOf vouched", get(t, func() (store.Domain, error) { return s.DomainOf(ctx, a.Tenant.ID, "apps.alpha.example") }), vouched)
	equal(t, "ListDomains", get(t, func() ([]store.Domain, error) { return s.ListDomains(ctx, a.Tenant.ID) }), []store.Domain{pending, vouched})
	equal(t, "ListDomains of beta", get(t, func() ([]store.Domain, error) { return s.ListDomains(ctx, b.Tenant.ID) }), []store.Domain{squat})
	equal(t, "VerifiedDomain", get(t, func() (store.Domain, error) { return s.VerifiedDomain(ctx, "apps.alpha.example") }), vouched)
	wantErr(t, "VerifiedDomain of a pending claim", errOf(s.VerifiedDomain(ctx, "alpha.example")), store.ErrNotFound)
	wantErr(t, "DomainOf in another tenant", errOf(s.DomainOf(ctx, b.Tenant.ID, "apps.alpha.example")), store.ErrNotFound)

	got := get(t, func() (store.Domain, error) { return s.VerifyDomain(ctx, a.Tenant.ID, "alpha.example", "dns", at(40)) })
	want := pending
	want.VerifiedAt, want.VerifiedBy = at(40), "dns"
	equal(t, "VerifyDomain", got, want)
	equal(t, "VerifiedDomain after verify", get(t, func() (store.Domain, error) { return s.VerifiedDomain(ctx, "alpha.example") }), want)
	// Verifying again keeps the first verification.
	equal(t, "VerifyDomain again", get(t, func() (store.Domain, error) {
		return s.VerifyDomain(ctx, a.Tenant.ID, "alpha.example", "operator", at(50))
	}), want)
	// The other tenant's pending claim can no longer be verified, nor can
	// it claim the domain verified.
	wantErr(t, "VerifyDomain by another tenant", errOf(s.VerifyDomain(ctx, b.Tenant.ID, "alpha.example", "dns", at(41))), store.ErrConflict)
	c := createTenant(t, s, "gamma")
	wantErr(t, "CreateDomain verified by a third tenant", s.CreateDomain(ctx, newDomain(c, "alpha.example", 42)), store.ErrConflict)
	equal(t, "squat still pending", get(t, func() (store.Domain, error) { return s.DomainOf(ctx, b.Tenant.ID, "alpha.example") }), squat)
	wantErr(t, "VerifyDomain of no claim", errOf(s.VerifyDomain(ctx, c.Tenant.ID, "gamma.example", "dns", at(41))), store.ErrNotFound)

	must(t, s.DeleteDomain(ctx, a.Tenant.ID, "alpha.example"))
	wantErr(t, "DeleteDomain twice", s.DeleteDomain(ctx, a.Tenant.ID, "alpha.example"), store.ErrNotFound)
	wantErr(t, "VerifiedDomain after delete", errOf(s.VerifiedDomain(ctx, "alpha.example")), store.ErrNotFound)
	// Once the owner let it go, the other tenant's claim can be verified.
	got = get(t, func() (store.Domain, error) { return s.VerifyDomain(ctx, b.Tenant.ID, "alpha.example", "dns", at(60)) })
	if got.VerifiedBy != "dns" || !got.VerifiedAt.Equal(at(60)) {
		t.Errorf("VerifyDomain after the owner deleted it = %+v", got)
	}
	equal(t, "ListDomains empty", get(t, func() ([]store.Domain, error) { return s.ListDomains(ctx, c.Tenant.ID) }), []store.Domain{})
}

// testDomainVerifiedOnce races tenants verifying the same domain: exactly
// one wins, the others get ErrConflict.
func testDomainVerifiedOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	var fs []tenantFixture
	for _, l := range []string{"t1", "t2", "t3", "t4"} {
		f := createTenant(t, s, l)
		must(t, s.CreateDomain(ctx, newDomain(f, "contested.example", 0)))
		fs = append(fs, f)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(fs))
	for i, f := range fs {
		wg.Go(func() {
			_, errs[i] = s.VerifyDomain(ctx, f.Tenant.ID, "contested.example", "dns", at(70+i))
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		default:
			wantErr(t, "losing VerifyDomain "+fs[i].Tenant.Label, err, store.ErrConflict)
		}
	}
	if wins != 1 {
		t.Fatalf("%d tenants verified the same domain, want 1", wins)
	}
}
