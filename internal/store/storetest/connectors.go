package storetest

import (
	"testing"

	"github.com/sallyport/sallyport/internal/store"
)

// testGroups checks the group round-trips and listing.
func testGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	g := store.Group{ID: "group-branch", TenantID: a.Tenant.ID, Name: "Branch", CreatedAt: at(3)}
	must(t, s.CreateGroup(ctx, g))
	// The same name in another tenant is allowed.
	must(t, s.CreateGroup(ctx, store.Group{ID: "group-branch-b", TenantID: b.Tenant.ID, Name: "Branch", CreatedAt: at(3)}))

	equal(t, "GroupByID", get(t, func() (store.Group, error) { return s.GroupByID(ctx, a.Tenant.ID, g.ID) }), g)
	equal(t, "GroupByName", get(t, func() (store.Group, error) { return s.GroupByName(ctx, a.Tenant.ID, "Branch") }), g)
	equal(t, "ListGroups", get(t, func() ([]store.Group, error) { return s.ListGroups(ctx, a.Tenant.ID) }),
		[]store.Group{g, a.Group})
}

// testConnectors checks the connector round-trips, listing and
// UpdateConnectorSeen.
func testConnectors(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	c1, c2 := newConnector(a, "one"), newConnector(a, "two")
	c2.CreatedAt = at(12)
	must(t, s.CreateConnector(ctx, c2))
	must(t, s.CreateConnector(ctx, c1))

	equal(t, "ConnectorByID", get(t, func() (store.Connector, error) { return s.ConnectorByID(ctx, a.Tenant.ID, c1.ID) }), c1)
	equal(t, "ListConnectors", get(t, func() ([]store.Connector, error) { return s.ListConnectors(ctx, a.Tenant.ID) }),
		[]store.Connector{c1, c2})

	must(t, s.UpdateConnectorSeen(ctx, a.Tenant.ID, c1.ID, at(30), "198.51.100.9:40000", "one-renamed", "1.3.0"))
	c1.LastSeenAt, c1.LastAddress, c1.Hostname, c1.Version = at(30), "198.51.100.9:40000", "one-renamed", "1.3.0"
	equal(t, "after UpdateConnectorSeen", get(t, func() (store.Connector, error) { return s.ConnectorByID(ctx, a.Tenant.ID, c1.ID) }), c1)
	equal(t, "other connector untouched", get(t, func() (store.Connector, error) { return s.ConnectorByID(ctx, a.Tenant.ID, c2.ID) }), c2)
}

// testDeleteConnector checks that deleting a connector records its serial
// as revoked, and that a serial revoked twice keeps its first revocation.
func testDeleteConnector(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	c1, c2 := newConnector(a, "one"), newConnector(a, "two")
	c2.CertSerial = c1.CertSerial
	must(t, s.CreateConnector(ctx, c1))
	must(t, s.CreateConnector(ctx, c2))

	must(t, s.DeleteConnector(ctx, a.Tenant.ID, c1.ID, "deleted by admin", at(40)))
	want := store.Revocation{
		Serial: c1.CertSerial, TenantID: a.Tenant.ID, ConnectorID: c1.ID, Reason: "deleted by admin", RevokedAt: at(40),
	}
	equal(t, "Revocation", get(t, func() (store.Revocation, error) { return s.Revocation(ctx, c1.CertSerial) }), want)
	wantErr(t, "ConnectorByID after delete", errOf(s.ConnectorByID(ctx, a.Tenant.ID, c1.ID)), store.ErrNotFound)
	wantErr(t, "DeleteConnector twice", s.DeleteConnector(ctx, a.Tenant.ID, c1.ID, "again", at(41)), store.ErrNotFound)

	must(t, s.DeleteConnector(ctx, a.Tenant.ID, c2.ID, "same serial", at(42)))
	equal(t, "first revocation kept", get(t, func() (store.Revocation, error) { return s.Revocation(ctx, c1.CertSerial) }), want)
	equal(t, "ListConnectors", get(t, func() ([]store.Connector, error) { return s.ListConnectors(ctx, a.Tenant.ID) }),
		[]store.Connector{})
}
