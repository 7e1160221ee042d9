package storetest

import (
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// testGroupLifecycle checks renaming and deleting groups and moving
// connectors between them.
func testGroupLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	branch := store.Group{ID: "group-branch", TenantID: a.Tenant.ID, Name: "Branch", CreatedAt: at(3)}
	must(t, s.CreateGroup(ctx, branch))

	must(t, s.RenameGroup(ctx, a.Tenant.ID, branch.ID, "Paris"))
	branch.Name = "Paris"
	equal(t, "after RenameGroup", get(t, func() (store.Group, error) { return s.GroupByID(ctx, a.Tenant.ID, branch.ID) }), branch)
	wantErr(t, "RenameGroup to a used name", s.RenameGroup(ctx, a.Tenant.ID, branch.ID, a.Group.Name), store.ErrConflict)
	wantErr(t, "RenameGroup of another tenant", s.RenameGroup(ctx, b.Tenant.ID, branch.ID, "X"), store.ErrNotFound)

	c := newConnector(a, "one")
	must(t, s.CreateConnector(ctx, c))
	must(t, s.MoveConnector(ctx, a.Tenant.ID, c.ID, branch.ID))
	c.GroupID = branch.ID
	equal(t, "after MoveConnector", get(t, func() (store.Connector, error) { return s.ConnectorByID(ctx, a.Tenant.ID, c.ID) }), c)
	wantErr(t, "MoveConnector to another tenant's group", s.MoveConnector(ctx, a.Tenant.ID, c.ID, b.Group.ID), store.ErrNotFound)
	wantErr(t, "MoveConnector of another tenant", s.MoveConnector(ctx, b.Tenant.ID, c.ID, b.Group.ID), store.ErrNotFound)

	wantErr(t, "DeleteGroup in use by a connector", s.DeleteGroup(ctx, a.Tenant.ID, branch.ID), store.ErrConflict)
	must(t, s.MoveConnector(ctx, a.Tenant.ID, c.ID, a.Group.ID))
	app := newApp(a, "web")
	app.GroupID = branch.ID
	must(t, s.CreateApp(ctx, app))
	wantErr(t, "DeleteGroup in use by an app", s.DeleteGroup(ctx, a.Tenant.ID, branch.ID), store.ErrConflict)
	must(t, s.DeleteApp(ctx, a.Tenant.ID, app.Name))
	wantErr(t, "DeleteGroup of another tenant", s.DeleteGroup(ctx, b.Tenant.ID, branch.ID), store.ErrNotFound)
	must(t, s.DeleteGroup(ctx, a.Tenant.ID, branch.ID))
	wantErr(t, "GroupByID after delete", errOf(s.GroupByID(ctx, a.Tenant.ID, branch.ID)), store.ErrNotFound)
	wantErr(t, "DeleteGroup twice", s.DeleteGroup(ctx, a.Tenant.ID, branch.ID), store.ErrNotFound)
}

// testConnectorCert checks UpdateConnectorCert and its tenant isolation.
func testConnectorCert(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	c := newConnector(a, "one")
	must(t, s.CreateConnector(ctx, c))
	must(t, s.UpdateConnectorCert(ctx, a.Tenant.ID, c.ID, "ff01", "THUMB2", at(999), c.CertSerial))
	c.PreviousSerial, c.CertSerial, c.CertThumbprint, c.CertNotAfter = c.CertSerial, "ff01", "THUMB2", at(999)
	equal(t, "after UpdateConnectorCert", get(t, func() (store.Connector, error) { return s.ConnectorByID(ctx, a.Tenant.ID, c.ID) }), c)
	must(t, s.UpdateConnectorCert(ctx, a.Tenant.ID, c.ID, "ff01", "THUMB2", at(999), ""))
	c.PreviousSerial = ""
	equal(t, "previous cleared", get(t, func() (store.Connector, error) { return s.ConnectorByID(ctx, a.Tenant.ID, c.ID) }), c)
	wantErr(t, "UpdateConnectorCert of another tenant", s.UpdateConnectorCert(ctx, b.Tenant.ID, c.ID, "x", "y", at(1), ""), store.ErrNotFound)
}

// testInactiveConnectors checks ListInactiveConnectors across tenants,
// using the registration time for connectors never seen.
func testInactiveConnectors(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	seenEarly := newConnector(a, "early") // created at(10), seen at(11)
	seenLate := newConnector(a, "late")
	seenLate.LastSeenAt = at(100)
	never := newConnector(b, "never")
	never.LastSeenAt = zeroTime()
	never.CreatedAt = at(20)
	for _, c := range []store.Connector{seenEarly, seenLate, never} {
		must(t, s.CreateConnector(ctx, c))
	}
	equal(t, "inactive before at(50)", ids(get(t, func() ([]store.Connector, error) { return s.ListInactiveConnectors(ctx, at(50)) })),
		[]string{seenEarly.ID, never.ID})
	equal(t, "inactive before at(15)", ids(get(t, func() ([]store.Connector, error) { return s.ListInactiveConnectors(ctx, at(15)) })),
		[]string{seenEarly.ID})
	equal(t, "inactive before at(0)", ids(get(t, func() ([]store.Connector, error) { return s.ListInactiveConnectors(ctx, at(0)) })),
		[]string{})
}

func ids(cs []store.Connector) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func zeroTime() (z time.Time) { return z }
