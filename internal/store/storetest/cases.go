package storetest

import (
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/store"
)

// world is tenant A with one of each object, beside an empty tenant B.
type world struct {
	A, B  tenantFixture
	User  store.User
	Token store.APIToken
	Group store.Group
	Conn  store.Connector
	App   store.Application
}

// newWorld stores the world fixture.
func newWorld(t *testing.T, s store.Store) world {
	t.Helper()
	ctx := t.Context()
	w := world{A: createTenant(t, s, "alpha"), B: createTenant(t, s, "beta")}
	w.User = store.User{ID: "user-bob", TenantID: w.A.Tenant.ID, Name: "bob@alpha.com", Role: store.RoleUser, CreatedAt: at(5)}
	w.Token = newToken(w.A, "tok-1", 60)
	w.Group = store.Group{ID: "group-branch", TenantID: w.A.Tenant.ID, Name: "Branch", CreatedAt: at(3)}
	w.Conn = newConnector(w.A, "one")
	w.App = newApp(w.A, "wiki")
	must(t, s.CreateUser(ctx, w.User))
	must(t, s.CreateAPIToken(ctx, w.Token))
	must(t, s.CreateGroup(ctx, w.Group))
	must(t, s.CreateConnector(ctx, w.Conn))
	must(t, s.CreateApp(ctx, w.App))
	return w
}

// testConflicts checks every uniqueness rule is reported as ErrConflict.
func testConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWorld(t, s)
	dupDomain := newTenant("gamma")
	dupDomain.Tenant.Domain = w.A.Tenant.Domain
	dupUser := w.User
	dupUser.ID, dupUser.TenantID = "user-bob-2", w.B.Tenant.ID
	dupToken := w.Token
	dupToken.ID = "tok-2"
	dupGroup := w.Group
	dupGroup.ID = "group-branch-2"
	caseGroup := w.Group // the same name in another case (store.GroupKey)
	caseGroup.ID, caseGroup.Name = "group-branch-3", strings.ToUpper(w.Group.Name)
	zurich := store.Group{ID: "group-zurich", TenantID: w.Group.TenantID, Name: "Zürich", CreatedAt: w.Group.CreatedAt}
	must(t, s.CreateGroup(ctx, zurich))
	if g, err := s.GroupByName(ctx, zurich.TenantID, "zu\u0308rich"); err != nil || g.ID != zurich.ID {
		t.Errorf("GroupByName in another case and Unicode form = %+v, %v; want %s", g, err, zurich.ID)
	}
	zurichNFD := zurich
	zurichNFD.ID, zurichNFD.Name = "group-zurich-2", "ZU\u0308RICH"
	dupAppName := newApp(w.A, "wiki")
	dupAppName.ID, dupAppName.ExternalHost = "app-wiki-2", "other.sallyport.example"
	dupHost := newApp(w.B, "intranet")
	dupHost.ExternalHost = w.App.ExternalHost
	hostTaken := newApp(w.B, "portal")
	must(t, s.CreateApp(ctx, hostTaken))
	hostTaken.ExternalHost = w.App.ExternalHost

	runErrCases(t, store.ErrConflict, []errCase{
		{"tenant domain", func() error {
			return s.CreateTenant(ctx, dupDomain.Tenant, dupDomain.CA, dupDomain.Group, dupDomain.Admin)
		}},
		{"user name across tenants", func() error { return s.CreateUser(ctx, dupUser) }},
		{"user id", func() error {
			return s.CreateUser(ctx, store.User{ID: w.User.ID, TenantID: w.A.Tenant.ID, Name: "x@alpha.com"})
		}},
		{"token hash", func() error { return s.CreateAPIToken(ctx, dupToken) }},
		{"group name in tenant", func() error { return s.CreateGroup(ctx, dupGroup) }},
		{"group name in tenant in another case", func() error { return s.CreateGroup(ctx, caseGroup) }},
		{"group name in another case and Unicode form", func() error { return s.CreateGroup(ctx, zurichNFD) }},
		{"RenameGroup to another group's name in another case", func() error {
			return s.RenameGroup(ctx, zurich.TenantID, zurich.ID, strings.ToLower(w.Group.Name))
		}},
		{"connector id", func() error { return s.CreateConnector(ctx, w.Conn) }},
		{"app name in tenant", func() error { return s.CreateApp(ctx, dupAppName) }},
		{"external host across tenants", func() error { return s.CreateApp(ctx, dupHost) }},
		{"UpdateApp to a taken external host", func() error { return s.UpdateApp(ctx, hostTaken) }},
	})
}

// testNotFound checks every getter, updater and deleter reports an unknown
// key as ErrNotFound.
func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWorld(t, s)
	tid := w.A.Tenant.ID
	missingApp := w.App
	missingApp.ID = "nope"
	runErrCases(t, store.ErrNotFound, []errCase{
		{"TenantByID", func() error { return errOf(s.TenantByID(ctx, "nope")) }},
		{"TenantByDomain", func() error { return errOf(s.TenantByDomain(ctx, "nope.com")) }},
		{"TenantCA", func() error { return errOf(s.TenantCA(ctx, "nope")) }},
		{"UserByName", func() error { return errOf(s.UserByName(ctx, "nope@alpha.com")) }},
		{"UserByID", func() error { return errOf(s.UserByID(ctx, tid, "nope")) }},
		{"APITokenByHash", func() error { return errOf(s.APITokenByHash(ctx, "nope")) }},
		{"DeleteAPIToken", func() error { return s.DeleteAPIToken(ctx, "nope") }},
		{"GroupByID", func() error { return errOf(s.GroupByID(ctx, tid, "nope")) }},
		{"GroupByName", func() error { return errOf(s.GroupByName(ctx, tid, "nope")) }},
		{"ConnectorByID", func() error { return errOf(s.ConnectorByID(ctx, tid, "nope")) }},
		{"UpdateConnectorSeen", func() error { return s.UpdateConnectorSeen(ctx, tid, "nope", at(1), "a", "h", "v") }},
		{"DeleteConnector", func() error { return s.DeleteConnector(ctx, tid, "nope", "r", at(1)) }},
		{"Revocation", func() error { return errOf(s.Revocation(ctx, "nope")) }},
		{"AppByName", func() error { return errOf(s.AppByName(ctx, tid, "nope")) }},
		{"UpdateApp", func() error { return s.UpdateApp(ctx, missingApp) }},
		{"DeleteApp", func() error { return s.DeleteApp(ctx, tid, "nope") }},
	})
}

// testTenantIsolation checks that every method taking a tenant id ignores
// the rows of other tenants, and changes nothing when asked to.
func testTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWorld(t, s)
	other := w.B.Tenant.ID
	foreignApp := w.App
	foreignApp.TenantID, foreignApp.InternalURL = other, "http://evil/"
	runErrCases(t, store.ErrNotFound, []errCase{
		{"UserByID", func() error { return errOf(s.UserByID(ctx, other, w.User.ID)) }},
		{"GroupByID", func() error { return errOf(s.GroupByID(ctx, other, w.Group.ID)) }},
		{"GroupByName", func() error { return errOf(s.GroupByName(ctx, other, w.Group.Name)) }},
		{"ConnectorByID", func() error { return errOf(s.ConnectorByID(ctx, other, w.Conn.ID)) }},
		{"UpdateConnectorSeen", func() error { return s.UpdateConnectorSeen(ctx, other, w.Conn.ID, at(99), "x", "x", "x") }},
		{"DeleteConnector", func() error { return s.DeleteConnector(ctx, other, w.Conn.ID, "r", at(99)) }},
		{"AppByName", func() error { return errOf(s.AppByName(ctx, other, w.App.Name)) }},
		{"UpdateApp", func() error { return s.UpdateApp(ctx, foreignApp) }},
		{"DeleteApp", func() error { return s.DeleteApp(ctx, other, w.App.Name) }},
		{"no revocation recorded", func() error { return errOf(s.Revocation(ctx, w.Conn.CertSerial)) }},
	})
	equal(t, "connector unchanged", get(t, func() (store.Connector, error) { return s.ConnectorByID(ctx, w.A.Tenant.ID, w.Conn.ID) }), w.Conn)
	equal(t, "app unchanged", get(t, func() (store.Application, error) { return s.AppByName(ctx, w.A.Tenant.ID, w.App.Name) }), w.App)
	equal(t, "ListUsers", get(t, func() ([]store.User, error) { return s.ListUsers(ctx, other) }), []store.User{w.B.Admin})
	equal(t, "ListGroups", get(t, func() ([]store.Group, error) { return s.ListGroups(ctx, other) }), []store.Group{w.B.Group})
	equal(t, "ListConnectors", get(t, func() ([]store.Connector, error) { return s.ListConnectors(ctx, other) }), []store.Connector{})
	equal(t, "ListApps", get(t, func() ([]store.Application, error) { return s.ListApps(ctx, other) }), []store.Application{})
}

// testForeignGroup checks that a connector or an application cannot be
// placed in another tenant's group (or a missing one): ErrNotFound.
func testForeignGroup(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWorld(t, s)
	conn := newConnector(w.A, "two")
	conn.GroupID = w.B.Group.ID
	app := newApp(w.A, "crm")
	app.GroupID = w.B.Group.ID
	moved := w.App
	moved.GroupID = w.B.Group.ID
	missing := newApp(w.A, "erp")
	missing.GroupID = "nope"
	runErrCases(t, store.ErrNotFound, []errCase{
		{"CreateConnector", func() error { return s.CreateConnector(ctx, conn) }},
		{"CreateApp", func() error { return s.CreateApp(ctx, app) }},
		{"UpdateApp", func() error { return s.UpdateApp(ctx, moved) }},
		{"CreateApp missing group", func() error { return s.CreateApp(ctx, missing) }},
	})
}
