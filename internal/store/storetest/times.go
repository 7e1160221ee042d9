package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// testZeroTimes checks that zero times are stored and returned as zero.
func testZeroTimes(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newTenant("alpha")
	f.Tenant.CreatedAt, f.Group.CreatedAt, f.Admin.CreatedAt = time.Time{}, time.Time{}, time.Time{}
	must(t, s.CreateTenant(ctx, f.Tenant, f.CA, f.Group, f.Admin))
	c := newConnector(f, "one")
	c.CertNotAfter, c.CreatedAt, c.LastSeenAt = time.Time{}, time.Time{}, time.Time{}
	must(t, s.CreateConnector(ctx, c))
	app := newApp(f, "wiki")
	app.CreatedAt, app.UpdatedAt = time.Time{}, time.Time{}
	must(t, s.CreateApp(ctx, app))
	tok := newToken(f, "tok-1", 0)
	tok.CreatedAt = time.Time{}
	must(t, s.CreateAPIToken(ctx, tok))

	equal(t, "tenant", get(t, func() (store.Tenant, error) { return s.TenantByID(ctx, f.Tenant.ID) }), f.Tenant)
	equal(t, "group", get(t, func() (store.Group, error) { return s.GroupByID(ctx, f.Tenant.ID, f.Group.ID) }), f.Group)
	equal(t, "user", get(t, func() (store.User, error) { return s.UserByID(ctx, f.Tenant.ID, f.Admin.ID) }), f.Admin)
	equal(t, "connector", get(t, func() (store.Connector, error) { return s.ConnectorByID(ctx, f.Tenant.ID, c.ID) }), c)
	equal(t, "app", get(t, func() (store.Application, error) { return s.AppByName(ctx, f.Tenant.ID, app.Name) }), app)
	equal(t, "token", get(t, func() (store.APIToken, error) { return s.APITokenByHash(ctx, tok.Hash) }), tok)
}

// testTimesInUTC checks that times given in another zone come back equal,
// in UTC, without a monotonic reading.
func testTimesInUTC(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newTenant("alpha")
	paris := time.FixedZone("CET", 3600)
	f.Tenant.CreatedAt = time.Now().In(paris) // carries a monotonic reading
	must(t, s.CreateTenant(ctx, f.Tenant, f.CA, f.Group, f.Admin))
	got := get(t, func() (store.Tenant, error) { return s.TenantByID(ctx, f.Tenant.ID) })
	if !got.CreatedAt.Equal(f.Tenant.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt = %v, want %v in UTC", got.CreatedAt, f.Tenant.CreatedAt)
	}
	equal(t, "CreatedAt", got.CreatedAt, f.Tenant.CreatedAt.UTC().Round(0))
}

// testEmptyLists checks that lists of nothing are empty, not errors.
func testEmptyLists(t *testing.T, s store.Store) {
	ctx := t.Context()
	if l, err := s.ListTenants(ctx); err != nil || len(l) != 0 {
		t.Fatalf("ListTenants = %v, %v; want empty", l, err)
	}
	if l, err := s.ListAllApps(ctx); err != nil || len(l) != 0 {
		t.Fatalf("ListAllApps = %v, %v; want empty", l, err)
	}
	if l, err := s.ListUsers(ctx, "nope"); err != nil || len(l) != 0 {
		t.Fatalf("ListUsers = %v, %v; want empty", l, err)
	}
	if l, err := s.ListIdentityProviders(ctx); err != nil || len(l) != 0 {
		t.Fatalf("ListIdentityProviders = %v, %v; want empty", l, err)
	}
	if l, err := s.ListMemberships(ctx, "nope"); err != nil || len(l) != 0 {
		t.Fatalf("ListMemberships = %v, %v; want empty", l, err)
	}
	if l, err := s.ListTenantAssignments(ctx, "nope"); err != nil || len(l) != 0 {
		t.Fatalf("ListTenantAssignments = %v, %v; want empty", l, err)
	}
	if n, err := s.DeleteExpiredSessions(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteExpiredGrants(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredGrants = %d, %v; want 0", n, err)
	}
}

// testConcurrent runs writers and readers on one store from several
// goroutines (meaningful under -race); every call must succeed.
func testConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := createTenant(t, s, "alpha")
	const workers, perWorker = 8, 10
	errs := make(chan error, workers*perWorker*3)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				name := string(rune('a'+w)) + string(rune('a'+i))
				g := store.Group{ID: "g-" + name, TenantID: f.Tenant.ID, Name: name, CreatedAt: at(i)}
				errs <- s.CreateGroup(ctx, g)
				_, err := s.GroupByID(ctx, f.Tenant.ID, g.ID)
				errs <- err
				_, err = s.ListGroups(ctx, f.Tenant.ID)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if l := get(t, func() ([]store.Group, error) { return s.ListGroups(ctx, f.Tenant.ID) }); len(l) != workers*perWorker+1 {
		t.Fatalf("ListGroups: %d groups, want %d", len(l), workers*perWorker+1)
	}
}
