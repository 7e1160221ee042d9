package storetest

import (
	"testing"

	"github.com/sallyport/sallyport/internal/store"
)

// testApps checks the application round-trips, listing and deletion.
func testApps(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	wiki, crm := newApp(a, "wiki"), newApp(a, "crm")
	crm.CertPEM, crm.KeyPEM = nil, nil // no edge certificate
	other := newApp(b, "wiki")         // same name, other tenant: allowed
	for _, app := range []store.Application{wiki, crm, other} {
		must(t, s.CreateApp(ctx, app))
	}

	equal(t, "AppByName", get(t, func() (store.Application, error) { return s.AppByName(ctx, a.Tenant.ID, "wiki") }), wiki)
	equal(t, "AppByName without cert", get(t, func() (store.Application, error) { return s.AppByName(ctx, a.Tenant.ID, "crm") }), crm)
	equal(t, "ListApps", get(t, func() ([]store.Application, error) { return s.ListApps(ctx, a.Tenant.ID) }),
		[]store.Application{crm, wiki})
	all := get(t, func() ([]store.Application, error) { return s.ListAllApps(ctx) })
	if len(all) != 3 {
		t.Fatalf("ListAllApps: %d applications, want 3", len(all))
	}

	must(t, s.DeleteApp(ctx, a.Tenant.ID, "wiki"))
	wantErr(t, "AppByName after delete", errOf(s.AppByName(ctx, a.Tenant.ID, "wiki")), store.ErrNotFound)
	wantErr(t, "DeleteApp twice", s.DeleteApp(ctx, a.Tenant.ID, "wiki"), store.ErrNotFound)
	equal(t, "other tenant's app kept", get(t, func() (store.Application, error) { return s.AppByName(ctx, b.Tenant.ID, "wiki") }), other)
	// The freed external host can be reused.
	reuse := newApp(b, "wiki-new")
	reuse.ExternalHost = wiki.ExternalHost
	must(t, s.CreateApp(ctx, reuse))
}

// testUpdateApp checks that UpdateApp replaces the mutable fields and keeps
// the others.
func testUpdateApp(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	app := newApp(a, "wiki")
	must(t, s.CreateApp(ctx, app))
	dmz := store.Group{ID: "group-dmz", TenantID: a.Tenant.ID, Name: "DMZ", CreatedAt: at(3)}
	must(t, s.CreateGroup(ctx, dmz))

	upd := app
	upd.Name, upd.CreatedAt = "ignored", at(-100) // immutable: not written
	upd.GroupID, upd.ExternalHost, upd.InternalURL = dmz.ID, "wiki.alpha.com", "https://wiki2.corp.local/"
	upd.Timeout, upd.PreAuth, upd.CertPEM, upd.KeyPEM, upd.UpdatedAt, upd.Affinity = "long", "sallyport", []byte("new cert"), []byte("new key"), at(50), !upd.Affinity
	upd.BackendProxy, upd.DetailedErrors, upd.KeepAuthorization = "", !upd.DetailedErrors, !upd.KeepAuthorization
	upd.Description = "A new description"
	must(t, s.UpdateApp(ctx, upd))

	want := upd
	want.Name, want.CreatedAt = app.Name, app.CreatedAt
	equal(t, "after UpdateApp", get(t, func() (store.Application, error) { return s.AppByName(ctx, a.Tenant.ID, "wiki") }), want)

	upd.CertPEM, upd.KeyPEM, upd.Description = nil, nil, "" // removing the edge certificate and the description
	must(t, s.UpdateApp(ctx, upd))
	want.CertPEM, want.KeyPEM, want.Description = nil, nil, ""
	equal(t, "after removing cert", get(t, func() (store.Application, error) { return s.AppByName(ctx, a.Tenant.ID, "wiki") }), want)

	missing := app
	missing.ID = "app-missing"
	wantErr(t, "UpdateApp of a missing app", s.UpdateApp(ctx, missing), store.ErrNotFound)
}

// testNetworkApps checks network applications: their type and internal
// addresses round-trip, any number of them have no external host (the
// column is unique), UpdateApp replaces the addresses and keeps the type,
// and a web application reads back with type http even when written
// without one.
func testNetworkApps(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	db := newNetworkApp(a, "db", store.AppTCP, "db.corp:5432", "10.1.0.0/24:5432")
	dns := newNetworkApp(a, "dns", store.AppUDP, "dns.corp:53")
	ssh := newNetworkApp(b, "ssh", store.AppTCP, "*.lab.corp:22", "[fd00::/64]:22")
	legacy := newApp(a, "wiki")
	legacy.Type = ""
	for _, app := range []store.Application{db, dns, ssh, legacy} {
		must(t, s.CreateApp(ctx, app))
	}
	equal(t, "AppByName tcp", get(t, func() (store.Application, error) { return s.AppByName(ctx, a.Tenant.ID, "db") }), db)
	equal(t, "AppByName udp", get(t, func() (store.Application, error) { return s.AppByName(ctx, a.Tenant.ID, "dns") }), dns)
	equal(t, "AppByName other tenant", get(t, func() (store.Application, error) { return s.AppByName(ctx, b.Tenant.ID, "ssh") }), ssh)
	legacy.Type = store.AppHTTP
	equal(t, "AppByName of a web app written without a type", get(t, func() (store.Application, error) { return s.AppByName(ctx, a.Tenant.ID, "wiki") }), legacy)
	for _, app := range get(t, func() ([]store.Application, error) { return s.ListAllApps(ctx) }) {
		if app.IsNetwork() != (app.ExternalHost == "") {
			t.Errorf("ListAllApps: %s (type %s) has external host %q", app.Name, app.Type, app.ExternalHost)
		}
	}

	upd := db
	upd.InternalAddresses, upd.UpdatedAt = []string{"db2.corp:5432"}, at(60)
	upd.Type = store.AppUDP // immutable: not written
	must(t, s.UpdateApp(ctx, upd))
	want := upd
	want.Type = store.AppTCP
	equal(t, "after UpdateApp", get(t, func() (store.Application, error) { return s.AppByName(ctx, a.Tenant.ID, "db") }), want)

	// A web application's external host stays unique beside them, and a
	// network application deleted frees its name.
	must(t, s.DeleteApp(ctx, a.Tenant.ID, "db"))
	wantErr(t, "AppByName after delete", errOf(s.AppByName(ctx, a.Tenant.ID, "db")), store.ErrNotFound)
	must(t, s.CreateApp(ctx, newNetworkApp(a, "db", store.AppTCP, "db.corp:5432")))
	dupName := newNetworkApp(a, "dns", store.AppTCP, "x.corp:1")
	dupName.ID = "app-alpha-dns-2"
	wantErr(t, "CreateApp network name taken", s.CreateApp(ctx, dupName), store.ErrConflict)
}
