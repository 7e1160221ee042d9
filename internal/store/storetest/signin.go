package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// newProfileUser builds (without storing) a user of f with every sign-in
// field set.
func newProfileUser(f tenantFixture, name string) store.User {
	return store.User{
		ID: "user-" + f.Tenant.Label + "-" + name, TenantID: f.Tenant.ID, Name: name + "@" + f.Tenant.Domain,
		Role: store.RoleUser, PasswordHash: "$argon2id$" + name, CreatedAt: at(5),
		Email: name + "@mail." + f.Tenant.Domain, DisplayName: "Ms " + name, Disabled: true,
		External: "https://idp." + f.Tenant.Domain + "#" + name, TOTPSecret: []byte("totp secret of " + name),
		MFAEnrolledAt: at(6), RecoveryCodes: []string{"code-1-" + name, "code-2-" + name},
	}
}

// testUserProfile checks the sign-in fields of users: their round-trip
// through every getter, UpdateUser (what it changes and what it keeps),
// UserByExternal, and External unique in a tenant when not "".
func testUserProfile(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	cid := newProfileUser(d.A, "cid")
	must(t, s.CreateUser(ctx, cid))
	must(t, s.AddUserGroupMember(ctx, tid, d.Staff.ID, cid.ID, at(9)))

	equal(t, "UserByName", get(t, func() (store.User, error) { return s.UserByName(ctx, cid.Name) }), cid)
	equal(t, "UserByID", get(t, func() (store.User, error) { return s.UserByID(ctx, tid, cid.ID) }), cid)
	equal(t, "UserByExternal", get(t, func() (store.User, error) { return s.UserByExternal(ctx, tid, cid.External) }), cid)
	equal(t, "ListUsers", get(t, func() ([]store.User, error) { return s.ListUsers(ctx, tid) }), []store.User{d.A.Admin, d.Ann, d.Bob, cid})
	equal(t, "ListUserGroupMembers", get(t, func() ([]store.User, error) { return s.ListUserGroupMembers(ctx, tid, d.Staff.ID) }), []store.User{d.Ann, cid})
	// A user made without the sign-in fields reads back with their zero
	// values (nil, not empty, slices).
	equal(t, "a user without profile", get(t, func() (store.User, error) { return s.UserByID(ctx, tid, d.Ann.ID) }), d.Ann)

	// UpdateUser replaces the role, profile, disabled flag and password
	// hash; the name, external identity, creation time and second factor
	// stay.
	upd := cid
	upd.Role, upd.Email, upd.DisplayName, upd.Disabled, upd.PasswordHash = store.RoleAppAdmin, "", "Dr Cid", false, "$argon2id$new"
	ignored := upd
	ignored.Name, ignored.External, ignored.CreatedAt, ignored.TOTPSecret, ignored.MFAEnrolledAt, ignored.RecoveryCodes = "renamed@alpha.com", "other#x", at(99), nil, time.Time{}, nil
	must(t, s.UpdateUser(ctx, ignored))
	equal(t, "after UpdateUser", get(t, func() (store.User, error) { return s.UserByID(ctx, tid, cid.ID) }), upd)

	// External is unique in a tenant when not "": another tenant may have
	// it, and any number of local accounts have "".
	same := newProfileUser(d.A, "dup")
	same.External = cid.External
	elsewhere := newProfileUser(d.B, "cid")
	elsewhere.External = cid.External
	must(t, s.CreateUser(ctx, elsewhere))
	wantErr(t, "the same External in a tenant", s.CreateUser(ctx, same), store.ErrConflict)
	equal(t, "UserByExternal in the other tenant", get(t, func() (store.User, error) { return s.UserByExternal(ctx, d.B.Tenant.ID, cid.External) }), elsewhere)

	missing := upd
	missing.ID = "nope"
	foreign := upd
	foreign.TenantID = d.B.Tenant.ID
	runErrCases(t, store.ErrNotFound, []errCase{
		{"UpdateUser unknown", func() error { return s.UpdateUser(ctx, missing) }},
		{"UpdateUser through another tenant", func() error { return s.UpdateUser(ctx, foreign) }},
		{"UserByExternal unknown", func() error { return errOf(s.UserByExternal(ctx, tid, "https://idp#nobody")) }},
		{"UserByExternal of a local account", func() error { return errOf(s.UserByExternal(ctx, tid, "")) }},
		{"UserByExternal through another tenant", func() error {
			return errOf(s.UserByExternal(ctx, d.B.Tenant.ID, "https://idp."+d.A.Tenant.Domain+"#nobody"))
		}},
	})
	equal(t, "unchanged by the refused calls", get(t, func() (store.User, error) { return s.UserByID(ctx, tid, cid.ID) }), upd)
}

// testUserMFA checks SetUserMFA (enrol, replace, remove) and
// UseRecoveryCode.
func testUserMFA(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	user := func() store.User { return get(t, func() (store.User, error) { return s.UserByID(ctx, tid, d.Ann.ID) }) }

	want := d.Ann
	want.TOTPSecret, want.MFAEnrolledAt, want.RecoveryCodes = []byte{0, 1, 2, 0xff}, at(30), []string{"h1", "h2", "h3"}
	must(t, s.SetUserMFA(ctx, tid, d.Ann.ID, want.TOTPSecret, want.MFAEnrolledAt, want.RecoveryCodes))
	equal(t, "enrolled", user(), want)
	equal(t, "by name too", get(t, func() (store.User, error) { return s.UserByName(ctx, d.Ann.Name) }), want)

	must(t, s.UseRecoveryCode(ctx, tid, d.Ann.ID, "h2"))
	want.RecoveryCodes = []string{"h1", "h3"}
	equal(t, "a code used", user(), want)
	runErrCases(t, store.ErrNotFound, []errCase{
		{"a code used twice", func() error { return s.UseRecoveryCode(ctx, tid, d.Ann.ID, "h2") }},
		{"a code the user does not have", func() error { return s.UseRecoveryCode(ctx, tid, d.Ann.ID, "h9") }},
		{"another user's code", func() error { return s.UseRecoveryCode(ctx, tid, d.Bob.ID, "h1") }},
		{"the empty code", func() error { return s.UseRecoveryCode(ctx, tid, d.Ann.ID, "") }},
		{"through another tenant", func() error { return s.UseRecoveryCode(ctx, d.B.Tenant.ID, d.Ann.ID, "h1") }},
		{"an unknown user", func() error { return s.UseRecoveryCode(ctx, tid, "nope", "h1") }},
		{"SetUserMFA through another tenant", func() error {
			return s.SetUserMFA(ctx, d.B.Tenant.ID, d.Ann.ID, []byte("evil"), at(31), nil)
		}},
		{"SetUserMFA of an unknown user", func() error { return s.SetUserMFA(ctx, tid, "nope", []byte("x"), at(31), nil) }},
	})
	equal(t, "unchanged by the refused calls", user(), want)

	must(t, s.UseRecoveryCode(ctx, tid, d.Ann.ID, "h1"))
	must(t, s.UseRecoveryCode(ctx, tid, d.Ann.ID, "h3"))
	want.RecoveryCodes = nil
	equal(t, "every code used", user(), want)
	wantErr(t, "no code left", s.UseRecoveryCode(ctx, tid, d.Ann.ID, "h1"), store.ErrNotFound)

	// Enrolling again replaces the secret and the codes.
	want.TOTPSecret, want.MFAEnrolledAt, want.RecoveryCodes = []byte("second"), at(40), []string{"n1"}
	must(t, s.SetUserMFA(ctx, tid, d.Ann.ID, want.TOTPSecret, want.MFAEnrolledAt, want.RecoveryCodes))
	equal(t, "enrolled again", user(), want)

	// Removing (nil secret) clears the time and codes whatever is passed.
	must(t, s.SetUserMFA(ctx, tid, d.Ann.ID, nil, at(50), []string{"ignored"}))
	equal(t, "removed", user(), d.Ann)
	equal(t, "Bob untouched", get(t, func() (store.User, error) { return s.UserByID(ctx, tid, d.Bob.ID) }), d.Bob)
}

// testRecoveryCodeRace: callers using the same recovery code at once:
// exactly one succeeds, the others get ErrNotFound, and the user's other
// codes stay.
func testRecoveryCodeRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	must(t, s.SetUserMFA(ctx, tid, d.Ann.ID, []byte("secret"), at(30), []string{"h1", "h2", "h3"}))
	const racers = 16
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { errs[i] = s.UseRecoveryCode(ctx, tid, d.Ann.ID, "h2") })
	}
	wg.Wait()
	if won := countWinners(t, errs, store.ErrNotFound); won != 1 {
		t.Fatalf("%d callers used the code, want 1", won)
	}
	u := get(t, func() (store.User, error) { return s.UserByID(ctx, tid, d.Ann.ID) })
	equal(t, "codes left", u.RecoveryCodes, []string{"h1", "h3"})

	// Callers using different codes at once all succeed: none undoes
	// another's removal.
	codes := make([]string, racers)
	for i := range codes {
		codes[i] = fmt.Sprintf("c%02d", i)
	}
	must(t, s.SetUserMFA(ctx, tid, d.Ann.ID, []byte("secret"), at(31), codes))
	for i := range racers {
		wg.Go(func() { errs[i] = s.UseRecoveryCode(ctx, tid, d.Ann.ID, codes[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	u = get(t, func() (store.User, error) { return s.UserByID(ctx, tid, d.Ann.ID) })
	equal(t, "no code left", u.RecoveryCodes, nil)
}

// countWinners counts the nil errors, failing the test on any error that
// is not loser.
func countWinners(t *testing.T, errs []error, loser error) int {
	t.Helper()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, loser):
			t.Fatalf("caller %d: %v, want nil or %v", i, err, loser)
		}
	}
	return won
}

// testTenantSettings checks the defaults, setting, replacing, and
// isolation between tenants.
func testTenantSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	settings := func(id string) store.TenantSettings {
		return get(t, func() (store.TenantSettings, error) { return s.TenantSettings(ctx, id) })
	}
	equal(t, "never set", settings(a.Tenant.ID), store.TenantSettings{TenantID: a.Tenant.ID})

	set := store.TenantSettings{TenantID: a.Tenant.ID, RequireMFA: true, SessionLifetime: 8*time.Hour + time.Nanosecond, SessionIdle: 30 * time.Minute, UpdatedAt: at(10)}
	must(t, s.SetTenantSettings(ctx, set))
	equal(t, "set", settings(a.Tenant.ID), set)
	equal(t, "the other tenant keeps the defaults", settings(b.Tenant.ID), store.TenantSettings{TenantID: b.Tenant.ID})

	set = store.TenantSettings{TenantID: a.Tenant.ID, UpdatedAt: at(11)}
	must(t, s.SetTenantSettings(ctx, set))
	equal(t, "replaced by the defaults", settings(a.Tenant.ID), set)

	runErrCases(t, store.ErrNotFound, []errCase{
		{"TenantSettings of an unknown tenant", func() error { return errOf(s.TenantSettings(ctx, "nope")) }},
		{"SetTenantSettings of an unknown tenant", func() error {
			return s.SetTenantSettings(ctx, store.TenantSettings{TenantID: "nope", RequireMFA: true, UpdatedAt: at(1)})
		}},
	})
}

// newProvider builds (without storing) an identity provider of f.
func newProvider(f tenantFixture, minute int) store.IdentityProvider {
	return store.IdentityProvider{
		TenantID: f.Tenant.ID, Issuer: "https://idp." + f.Tenant.Domain + "/realms/main", ClientID: "sallyport-" + f.Tenant.Label,
		ClientSecret: []byte("client secret of " + f.Tenant.Label), CAPEM: []byte("-----BEGIN CERTIFICATE-----\n" + f.Tenant.Label),
		GroupsClaim: "groups", EmailClaim: "email", CreatedAt: at(minute), UpdatedAt: at(minute),
	}
}

// testIdentityProviders checks a tenant's provider: none, set, replaced
// (keeping its creation time), listed by tenant, deleted, and isolated.
func testIdentityProviders(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "alpha")
	b := createTenant(t, s, "beta")
	createTenant(t, s, "gamma") // no provider
	provider := func(id string) store.IdentityProvider {
		return get(t, func() (store.IdentityProvider, error) { return s.IdentityProviderOf(ctx, id) })
	}
	list := func() []store.IdentityProvider {
		return get(t, func() ([]store.IdentityProvider, error) { return s.ListIdentityProviders(ctx) })
	}
	wantErr(t, "no provider yet", errOf(s.IdentityProviderOf(ctx, a.Tenant.ID)), store.ErrNotFound)
	equal(t, "none listed", list(), []store.IdentityProvider{})

	pb := newProvider(b, 10)
	pb.CAPEM, pb.GroupsClaim = nil, "" // the system's roots, no group mapping
	must(t, s.SetIdentityProvider(ctx, pb))
	pa := newProvider(a, 11)
	must(t, s.SetIdentityProvider(ctx, pa))
	equal(t, "alpha's", provider(a.Tenant.ID), pa)
	equal(t, "beta's", provider(b.Tenant.ID), pb)
	equal(t, "listed by tenant id", list(), []store.IdentityProvider{pa, pb})

	// Replacing keeps the first creation time.
	repl := store.IdentityProvider{TenantID: a.Tenant.ID, Issuer: "https://other.example", ClientID: "c2", EmailClaim: "mail", CreatedAt: at(20), UpdatedAt: at(20)}
	must(t, s.SetIdentityProvider(ctx, repl))
	repl.CreatedAt = pa.CreatedAt
	equal(t, "replaced", provider(a.Tenant.ID), repl)
	equal(t, "beta's unchanged", provider(b.Tenant.ID), pb)

	must(t, s.DeleteIdentityProvider(ctx, a.Tenant.ID))
	runErrCases(t, store.ErrNotFound, []errCase{
		{"after delete", func() error { return errOf(s.IdentityProviderOf(ctx, a.Tenant.ID)) }},
		{"delete twice", func() error { return s.DeleteIdentityProvider(ctx, a.Tenant.ID) }},
		{"delete unknown tenant", func() error { return s.DeleteIdentityProvider(ctx, "nope") }},
		{"set for an unknown tenant", func() error {
			p := newProvider(a, 30)
			p.TenantID = "nope"
			return s.SetIdentityProvider(ctx, p)
		}},
	})
	equal(t, "beta's listed alone", list(), []store.IdentityProvider{pb})
}

// newSession builds (without storing) a session of u, made from parent
// (nil: none), expiring at minute expires.
func newSession(u store.User, id, kind string, parent *store.Session, expires int) store.Session {
	ss := store.Session{
		ID: id, Hash: "sha256-" + id, TenantID: u.TenantID, UserID: u.ID, Kind: kind,
		Method: "password+totp", CreatedAt: at(0), ExpiresAt: at(expires), SeenAt: at(1),
	}
	if kind != store.SessionCloud {
		ss.AppID = "app-" + id
	}
	if parent != nil {
		ss.ParentID, ss.AppID = parent.ID, parent.AppID
		if parent.Kind == store.SessionCloud {
			ss.AppID = "app-" + id
		}
	}
	return ss
}

// createSessions stores ss.
func createSessions(t *testing.T, s store.Store, ss ...store.Session) {
	t.Helper()
	for _, x := range ss {
		must(t, s.CreateSession(t.Context(), x))
	}
}

// sessionIDs is the ids of ss.
func sessionIDs(ss ...store.Session) []string {
	ids := []string{}
	for _, x := range ss {
		ids = append(ids, x.ID)
	}
	return ids
}

// testSessions checks the session round-trip, the conflicts, a session
// for a user of another tenant, and TouchSession.
func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	cloud := newSession(d.Ann, "s-cloud", store.SessionCloud, nil, 60)
	app := newSession(d.Ann, "s-app", store.SessionApp, &cloud, 60)
	eve := newSession(d.Eve, "s-eve", store.SessionCloud, nil, 60)
	createSessions(t, s, cloud, app, eve)
	byHash := func(hash string) store.Session {
		return get(t, func() (store.Session, error) { return s.SessionByHash(ctx, hash) })
	}
	equal(t, "cloud", byHash(cloud.Hash), cloud)
	equal(t, "app", byHash(app.Hash), app)
	equal(t, "another tenant's", byHash(eve.Hash), eve)

	expired := newSession(d.Bob, "s-expired", store.SessionAccess, nil, -10)
	expired.SeenAt = time.Time{} // never used
	createSessions(t, s, expired)
	equal(t, "expired sessions are found", byHash(expired.Hash), expired)
	must(t, s.TouchSession(ctx, tid, expired.ID, at(-20)))
	expired.SeenAt = at(-20)
	equal(t, "touched from never", byHash(expired.Hash), expired)
	listed := get(t, func() ([]store.Session, error) { return s.ListSessions(ctx, tid) })
	if got := sessionIDs(listed...); !slices.Equal(got, []string{cloud.ID, expired.ID, app.ID}) && !slices.Equal(got, []string{expired.ID, cloud.ID, app.ID}) {
		t.Errorf("ListSessions = %v, want the tenant's %s and %s (expired too), then the child %s", got, cloud.ID, expired.ID, app.ID)
	}
	for _, x := range listed {
		if x.ID == app.ID {
			equal(t, "a listed session", x, app)
		}
	}

	dupHash := newSession(d.Bob, "s-other", store.SessionCloud, nil, 60)
	dupHash.Hash = cloud.Hash
	dupID := newSession(d.Bob, cloud.ID, store.SessionCloud, nil, 60)
	dupID.Hash = "sha256-fresh"
	runErrCases(t, store.ErrConflict, []errCase{
		{"a hash stored", func() error { return s.CreateSession(ctx, dupHash) }},
		{"an id stored", func() error { return s.CreateSession(ctx, dupID) }},
	})
	foreignUser := newSession(d.Eve, "s-foreign", store.SessionCloud, nil, 60)
	foreignUser.TenantID = tid // Eve is of B
	unknownUser := newSession(d.Ann, "s-unknown", store.SessionCloud, nil, 60)
	unknownUser.UserID = "nope"
	unknownTenant := newSession(d.Ann, "s-unknown-tenant", store.SessionCloud, nil, 60)
	unknownTenant.TenantID = "nope"
	runErrCases(t, store.ErrNotFound, []errCase{
		{"a user of another tenant", func() error { return s.CreateSession(ctx, foreignUser) }},
		{"an unknown user", func() error { return s.CreateSession(ctx, unknownUser) }},
		{"an unknown tenant", func() error { return s.CreateSession(ctx, unknownTenant) }},
		{"SessionByHash unknown", func() error { return errOf(s.SessionByHash(ctx, "sha256-nope")) }},
		{"TouchSession unknown", func() error { return s.TouchSession(ctx, tid, "nope", at(5)) }},
		{"TouchSession through another tenant", func() error { return s.TouchSession(ctx, d.B.Tenant.ID, cloud.ID, at(5)) }},
	})
	equal(t, "not touched through another tenant", byHash(cloud.Hash), cloud)

	// TouchSession only ever moves SeenAt later.
	must(t, s.TouchSession(ctx, tid, cloud.ID, at(5)))
	cloud.SeenAt = at(5)
	equal(t, "touched", byHash(cloud.Hash), cloud)
	must(t, s.TouchSession(ctx, tid, cloud.ID, at(3)))
	equal(t, "not moved back", byHash(cloud.Hash), cloud)
	equal(t, "its child untouched", byHash(app.Hash), app)
}

// testDeleteSession checks DeleteSession (the session and those made from
// it, at any depth, their ids returned), DeleteUserSessions, and their
// isolation between tenants and users.
func testDeleteSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	cloud := newSession(d.Ann, "s-1-cloud", store.SessionCloud, nil, 60)
	wiki := newSession(d.Ann, "s-2-app", store.SessionApp, &cloud, 60)
	mail := newSession(d.Ann, "s-0-app", store.SessionApp, &cloud, 60)
	refresh := newSession(d.Ann, "s-3-refresh", store.SessionRefresh, nil, 600)
	access := newSession(d.Ann, "s-4-access", store.SessionAccess, &refresh, 60)
	grand := newSession(d.Ann, "s-5-access", store.SessionAccess, &access, 60) // deeper than the product makes
	other := newSession(d.Ann, "s-6-cloud", store.SessionCloud, nil, 60)
	bob := newSession(d.Bob, "s-7-bob", store.SessionCloud, nil, 60)
	eve := newSession(d.Eve, "s-8-eve", store.SessionCloud, nil, 60)
	// A session of B naming A's cloud session as its parent (ids are not
	// secret) is not ended through A.
	eveChild := newSession(d.Eve, "s-9-eve", store.SessionApp, &cloud, 60)
	eveChild.TenantID = d.B.Tenant.ID
	createSessions(t, s, cloud, wiki, mail, refresh, access, grand, other, bob, eve, eveChild)
	gone := func(ss ...store.Session) {
		t.Helper()
		for _, x := range ss {
			wantErr(t, x.ID+" ended", errOf(s.SessionByHash(ctx, x.Hash)), store.ErrNotFound)
		}
	}
	kept := func(ss ...store.Session) {
		t.Helper()
		for _, x := range ss {
			equal(t, x.ID+" kept", get(t, func() (store.Session, error) { return s.SessionByHash(ctx, x.Hash) }), x)
		}
	}

	runErrCases(t, store.ErrNotFound, []errCase{
		{"an unknown session", func() error { return errOf(s.DeleteSession(ctx, tid, "nope")) }},
		{"through another tenant", func() error { return errOf(s.DeleteSession(ctx, d.B.Tenant.ID, cloud.ID)) }},
	})
	kept(cloud, wiki, mail)

	// The session first, then those made from it by id.
	equal(t, "cloud and its app sessions", get(t, func() ([]string, error) { return s.DeleteSession(ctx, tid, cloud.ID) }),
		sessionIDs(cloud, mail, wiki))
	gone(cloud, wiki, mail)
	kept(refresh, access, grand, other, bob, eve, eveChild)
	wantErr(t, "twice", errOf(s.DeleteSession(ctx, tid, cloud.ID)), store.ErrNotFound)

	equal(t, "an access token (and one made from it)", get(t, func() ([]string, error) { return s.DeleteSession(ctx, tid, access.ID) }),
		sessionIDs(access, grand))
	kept(refresh)
	equal(t, "a session without children", get(t, func() ([]string, error) { return s.DeleteSession(ctx, tid, refresh.ID) }),
		sessionIDs(refresh))

	// Parents in a cycle (the store does not check parents exist) still
	// end, once each.
	loopA := newSession(d.Bob, "s-loop-a", store.SessionApp, nil, 60)
	loopB := newSession(d.Bob, "s-loop-b", store.SessionApp, nil, 60)
	loopA.ParentID, loopB.ParentID = loopB.ID, loopA.ID
	createSessions(t, s, loopA, loopB)
	equal(t, "a cycle", get(t, func() ([]string, error) { return s.DeleteSession(ctx, tid, loopB.ID) }), sessionIDs(loopB, loopA))

	// DeleteUserSessions: the user's sessions only, by id; none is no
	// error.
	more := newSession(d.Ann, "s-10-app", store.SessionApp, &other, 60)
	createSessions(t, s, more)
	equal(t, "through another tenant", get(t, func() ([]string, error) { return s.DeleteUserSessions(ctx, d.B.Tenant.ID, d.Ann.ID) }), []string{})
	kept(other, more)
	equal(t, "Ann's", get(t, func() ([]string, error) { return s.DeleteUserSessions(ctx, tid, d.Ann.ID) }), sessionIDs(more, other))
	gone(other, more)
	equal(t, "Ann has none left", get(t, func() ([]string, error) { return s.DeleteUserSessions(ctx, tid, d.Ann.ID) }), []string{})
	equal(t, "an unknown user", get(t, func() ([]string, error) { return s.DeleteUserSessions(ctx, tid, "nope") }), []string{})
	kept(bob, eve, eveChild)
}

// testDeleteExpiredSessions checks that only sessions expired strictly
// before now are removed, and how many are counted.
func testDeleteExpiredSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	old := newSession(d.Ann, "s-old", store.SessionCloud, nil, -1)
	oldEve := newSession(d.Eve, "s-old-eve", store.SessionCloud, nil, -5)
	boundary := newSession(d.Ann, "s-now", store.SessionCloud, nil, 0)
	valid := newSession(d.Bob, "s-new", store.SessionCloud, nil, 1)
	createSessions(t, s, old, oldEve, boundary, valid)
	equal(t, "deleted", get(t, func() (int, error) { return s.DeleteExpiredSessions(ctx, at(0)) }), 2)
	for _, x := range []store.Session{old, oldEve} {
		wantErr(t, x.ID, errOf(s.SessionByHash(ctx, x.Hash)), store.ErrNotFound)
	}
	for _, x := range []store.Session{boundary, valid} {
		equal(t, x.ID+" kept", get(t, func() (store.Session, error) { return s.SessionByHash(ctx, x.Hash) }), x)
	}
	equal(t, "nothing left to delete", get(t, func() (int, error) { return s.DeleteExpiredSessions(ctx, at(0)) }), 0)
}

// newGrant builds (without storing) a grant of f expiring at minute
// expires.
func newGrant(f tenantFixture, kind, hash string, expires int) store.Grant {
	g := store.Grant{
		Hash: hash, Kind: kind, TenantID: f.Tenant.ID, AppID: "app-" + hash,
		Data: []byte(`{"return":"https://wiki.example/` + hash + `"}`), CreatedAt: at(0), ExpiresAt: at(expires),
	}
	if kind == store.GrantDevice {
		g.UserCode, g.Status = "BCDF-"+hash, "pending"
	}
	return g
}

// testGrants checks the grant round-trip, the conflicts (hash and kind,
// an unexpired user code), GrantByUserCode, UpdateGrant and isolation.
func testGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	code := newGrant(d.A, store.GrantCode, "h-code", 1)
	code.UserID = d.Ann.ID
	flow := newGrant(d.A, store.GrantFlow, "h-flow", 10)
	flow.AppID, flow.Data = "", nil
	dev := newGrant(d.B, store.GrantDevice, "h-dev", 10)
	sameHash := newGrant(d.A, store.GrantFlow, code.Hash, 10) // another kind: another grant
	for _, g := range []store.Grant{code, flow, dev, sameHash} {
		must(t, s.CreateGrant(ctx, g))
	}
	byHash := func(kind, hash string) store.Grant {
		return get(t, func() (store.Grant, error) { return s.GrantByHash(ctx, kind, hash) })
	}
	equal(t, "code", byHash(store.GrantCode, code.Hash), code)
	equal(t, "flow", byHash(store.GrantFlow, flow.Hash), flow)
	equal(t, "device", byHash(store.GrantDevice, dev.Hash), dev)
	equal(t, "the same hash of another kind", byHash(store.GrantFlow, code.Hash), sameHash)
	equal(t, "by user code", get(t, func() (store.Grant, error) { return s.GrantByUserCode(ctx, dev.UserCode, at(5)) }), dev)
	equal(t, "by user code at its expiry", get(t, func() (store.Grant, error) { return s.GrantByUserCode(ctx, dev.UserCode, at(10)) }), dev)

	dupCode := newGrant(d.A, store.GrantDevice, "h-dev-2", 20)
	dupCode.UserCode, dupCode.CreatedAt = dev.UserCode, at(10) // dev is unexpired at its own expiry
	runErrCases(t, store.ErrConflict, []errCase{
		{"a kind and hash stored", func() error { return s.CreateGrant(ctx, newGrant(d.B, store.GrantCode, code.Hash, 5)) }},
		{"an unexpired user code", func() error { return s.CreateGrant(ctx, dupCode) }},
	})
	// Once dev expired, its user code may be given again; the lookup
	// finds the new grant only.
	dupCode.CreatedAt = at(11)
	must(t, s.CreateGrant(ctx, dupCode))
	equal(t, "the user code's new grant", get(t, func() (store.Grant, error) { return s.GrantByUserCode(ctx, dev.UserCode, at(11)) }), dupCode)
	equal(t, "the expired grant is still found by hash", byHash(store.GrantDevice, dev.Hash), dev)

	foreignUser := newGrant(d.A, store.GrantCode, "h-foreign", 5)
	foreignUser.UserID = d.Eve.ID
	unknownTenant := newGrant(d.A, store.GrantCode, "h-unknown", 5)
	unknownTenant.TenantID = "nope"
	devUpdated := dev
	devUpdated.UserID = d.Ann.ID // Ann is of A, dev of B
	runErrCases(t, store.ErrNotFound, []errCase{
		{"a user of another tenant", func() error { return s.CreateGrant(ctx, foreignUser) }},
		{"an unknown tenant", func() error { return s.CreateGrant(ctx, unknownTenant) }},
		{"GrantByHash unknown", func() error { return errOf(s.GrantByHash(ctx, store.GrantCode, "nope")) }},
		{"GrantByHash of another kind", func() error { return errOf(s.GrantByHash(ctx, store.GrantDevice, flow.Hash)) }},
		{"GrantByUserCode expired", func() error { return errOf(s.GrantByUserCode(ctx, dupCode.UserCode, at(21))) }},
		{"GrantByUserCode unknown", func() error { return errOf(s.GrantByUserCode(ctx, "XXXX-XXXX", at(0))) }},
		{"GrantByUserCode empty", func() error { return errOf(s.GrantByUserCode(ctx, "", at(0))) }},
		{"UpdateGrant unknown", func() error { return s.UpdateGrant(ctx, newGrant(d.A, store.GrantDevice, "nope", 5)) }},
		{"UpdateGrant to a user of another tenant", func() error { return s.UpdateGrant(ctx, devUpdated) }},
	})
	equal(t, "unchanged by the refused update", byHash(store.GrantDevice, dev.Hash), dev)

	// UpdateGrant replaces the user, status, data and poll time only.
	upd := dupCode
	upd.UserID, upd.Status, upd.Data, upd.PolledAt = d.Ann.ID, "approved", []byte(`{"x":1}`), at(12)
	changed := upd
	changed.TenantID, changed.AppID, changed.UserCode, changed.CreatedAt, changed.ExpiresAt = d.B.Tenant.ID, "app-other", "ZZZZ-ZZZZ", at(90), at(99)
	must(t, s.UpdateGrant(ctx, changed))
	equal(t, "updated", byHash(store.GrantDevice, upd.Hash), upd)
	upd.UserID, upd.Status, upd.Data = "", "denied", nil
	must(t, s.UpdateGrant(ctx, upd))
	equal(t, "user cleared", byHash(store.GrantDevice, upd.Hash), upd)
}

// testTakeGrant checks that a grant is taken once, and not once expired.
func testTakeGrant(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	code := newGrant(d.A, store.GrantCode, "h-code", 5)
	code.UserID = d.Ann.ID
	expired := newGrant(d.A, store.GrantCode, "h-expired", 5)
	flow := newGrant(d.A, store.GrantFlow, "h-code", 5) // the same hash of another kind
	for _, g := range []store.Grant{code, expired, flow} {
		must(t, s.CreateGrant(ctx, g))
	}
	runErrCases(t, store.ErrNotFound, []errCase{
		{"unknown", func() error { return errOf(s.TakeGrant(ctx, store.GrantCode, "nope", at(0))) }},
		{"of another kind", func() error { return errOf(s.TakeGrant(ctx, store.GrantDevice, code.Hash, at(0))) }},
		{"expired", func() error {
			return errOf(s.TakeGrant(ctx, store.GrantCode, expired.Hash, at(5).Add(time.Nanosecond)))
		}},
	})
	equal(t, "taken at its expiry", get(t, func() (store.Grant, error) { return s.TakeGrant(ctx, store.GrantCode, code.Hash, at(5)) }), code)
	wantErr(t, "taken twice", errOf(s.TakeGrant(ctx, store.GrantCode, code.Hash, at(0))), store.ErrNotFound)
	wantErr(t, "gone", errOf(s.GrantByHash(ctx, store.GrantCode, code.Hash)), store.ErrNotFound)
	equal(t, "the other kind stays", get(t, func() (store.Grant, error) { return s.GrantByHash(ctx, store.GrantFlow, flow.Hash) }), flow)
	equal(t, "an expired grant is not taken", get(t, func() (store.Grant, error) { return s.GrantByHash(ctx, store.GrantCode, expired.Hash) }), expired)
}

// testTakeGrantRace: callers taking the same grant at once: exactly one
// gets it, the others ErrNotFound.
func testTakeGrantRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := createTenant(t, s, "alpha")
	for round := range 3 {
		g := newGrant(f, store.GrantCode, fmt.Sprintf("h-race-%d", round), 5)
		must(t, s.CreateGrant(ctx, g))
		const racers = 16
		errs := make([]error, racers)
		got := make([]store.Grant, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { got[i], errs[i] = s.TakeGrant(ctx, store.GrantCode, g.Hash, at(0)) })
		}
		wg.Wait()
		if won := countWinners(t, errs, store.ErrNotFound); won != 1 {
			t.Fatalf("round %d: %d callers took the grant, want 1", round, won)
		}
		i := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		equal(t, "the grant taken", got[i], g)
	}
}

// testUserCodeRace: device authorizations made at once with the same user
// code: exactly one is stored, the others get ErrConflict.
func testUserCodeRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := createTenant(t, s, "alpha")
	const racers = 16
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			g := newGrant(f, store.GrantDevice, fmt.Sprintf("h-dev-%02d", i), 10)
			g.UserCode = "BCDF-GHJK"
			errs[i] = s.CreateGrant(ctx, g)
		})
	}
	wg.Wait()
	if won := countWinners(t, errs, store.ErrConflict); won != 1 {
		t.Fatalf("%d grants were stored with one user code, want 1", won)
	}
	i := slices.IndexFunc(errs, func(err error) bool { return err == nil })
	got := get(t, func() (store.Grant, error) { return s.GrantByUserCode(ctx, "BCDF-GHJK", at(0)) })
	equal(t, "the grant stored", got.Hash, fmt.Sprintf("h-dev-%02d", i))
}

// testDeleteExpiredGrants checks that only grants expired strictly before
// now are removed, and how many are counted.
func testDeleteExpiredGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	old := newGrant(d.A, store.GrantCode, "h-old", -1)
	oldDev := newGrant(d.B, store.GrantDevice, "h-old-dev", -3)
	boundary := newGrant(d.A, store.GrantFlow, "h-now", 0)
	valid := newGrant(d.A, store.GrantDevice, "h-new", 1)
	for _, g := range []store.Grant{old, oldDev, boundary, valid} {
		g.CreatedAt = at(-10)
		must(t, s.CreateGrant(ctx, g))
	}
	equal(t, "deleted", get(t, func() (int, error) { return s.DeleteExpiredGrants(ctx, at(0)) }), 2)
	for _, g := range []store.Grant{old, oldDev} {
		wantErr(t, g.Hash, errOf(s.GrantByHash(ctx, g.Kind, g.Hash)), store.ErrNotFound)
	}
	for _, g := range []store.Grant{boundary, valid} {
		g.CreatedAt = at(-10)
		equal(t, g.Hash+" kept", get(t, func() (store.Grant, error) { return s.GrantByHash(ctx, g.Kind, g.Hash) }), g)
	}
	equal(t, "nothing left to delete", get(t, func() (int, error) { return s.DeleteExpiredGrants(ctx, at(0)) }), 0)
}

// testSignInCascades: deleting a user deletes its sessions (and those made
// from them) and the grants naming it; the rest stays.
func testSignInCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	cloud := newSession(d.Ann, "s-cloud", store.SessionCloud, nil, 60)
	app := newSession(d.Ann, "s-app", store.SessionApp, &cloud, 60)
	bob := newSession(d.Bob, "s-bob", store.SessionCloud, nil, 60)
	createSessions(t, s, cloud, app, bob)
	annCode := newGrant(d.A, store.GrantCode, "h-ann", 5)
	annCode.UserID = d.Ann.ID
	anon := newGrant(d.A, store.GrantFlow, "h-anon", 5)
	for _, g := range []store.Grant{annCode, anon} {
		must(t, s.CreateGrant(ctx, g))
	}
	must(t, s.SetUserMFA(ctx, tid, d.Ann.ID, []byte("secret"), at(3), []string{"h1"}))

	must(t, s.DeleteUser(ctx, tid, d.Ann.ID))
	for _, x := range []store.Session{cloud, app} {
		wantErr(t, x.ID, errOf(s.SessionByHash(ctx, x.Hash)), store.ErrNotFound)
	}
	wantErr(t, "Ann's grant", errOf(s.GrantByHash(ctx, annCode.Kind, annCode.Hash)), store.ErrNotFound)
	equal(t, "Bob's session", get(t, func() (store.Session, error) { return s.SessionByHash(ctx, bob.Hash) }), bob)
	equal(t, "a grant of no user", get(t, func() (store.Grant, error) { return s.GrantByHash(ctx, anon.Kind, anon.Hash) }), anon)
	equal(t, "no session of Ann left", get(t, func() ([]string, error) { return s.DeleteUserSessions(ctx, tid, d.Ann.ID) }), []string{})

	// A user made again with the same id starts without the old second
	// factor or sessions.
	must(t, s.CreateUser(ctx, d.Ann))
	equal(t, "made again", get(t, func() (store.User, error) { return s.UserByID(ctx, tid, d.Ann.ID) }), d.Ann)
}

// testDirectoryListings checks ListMemberships and ListTenantAssignments:
// the whole tenant, in order, nothing of another tenant, and deletions
// reflected.
func testDirectoryListings(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	must(t, s.AddUserGroupMember(ctx, tid, d.Finance.ID, d.Ann.ID, at(10)))
	memberships := func(id string) []store.Membership {
		return get(t, func() ([]store.Membership, error) { return s.ListMemberships(ctx, id) })
	}
	assignments := func(id string) []store.Assignment {
		return get(t, func() ([]store.Assignment, error) { return s.ListTenantAssignments(ctx, id) })
	}
	m := func(g store.UserGroup, u store.User, minute int) store.Membership {
		return store.Membership{TenantID: g.TenantID, UserGroupID: g.ID, UserID: u.ID, AddedAt: at(minute)}
	}
	// By group id (ug-finance-alpha < ug-staff-alpha), then user id.
	equal(t, "alpha's memberships", memberships(tid), []store.Membership{m(d.Finance, d.Ann, 10), m(d.Finance, d.Bob, 7), m(d.Staff, d.Ann, 7)})
	equal(t, "beta's memberships", memberships(d.B.Tenant.ID), []store.Membership{m(d.Outsiders, d.Eve, 7)})
	equal(t, "an unknown tenant's", memberships("nope"), []store.Membership{})

	equal(t, "no assignments", assignments(tid), []store.Assignment{})
	// Wiki's id sorts after Mail's; each application's oldest first.
	as := []store.Assignment{
		{TenantID: tid, AppID: d.Wiki.ID, UserID: d.Bob.ID, CreatedAt: at(12)},
		{TenantID: tid, AppID: d.Mail.ID, UserGroupID: d.Staff.ID, CreatedAt: at(13)},
		{TenantID: tid, AppID: d.Wiki.ID, UserGroupID: d.Finance.ID, CreatedAt: at(11)},
		{TenantID: tid, AppID: d.Mail.ID, UserID: d.Ann.ID, CreatedAt: at(14)},
	}
	for _, a := range as {
		must(t, s.Assign(ctx, a))
	}
	equal(t, "alpha's assignments", assignments(tid), []store.Assignment{as[1], as[3], as[2], as[0]})
	equal(t, "beta's assignments", assignments(d.B.Tenant.ID),
		[]store.Assignment{{TenantID: d.B.Tenant.ID, AppID: d.Payroll.ID, UserGroupID: d.Outsiders.ID, CreatedAt: at(8)}})

	must(t, s.DeleteUser(ctx, tid, d.Ann.ID))
	equal(t, "memberships without Ann", memberships(tid), []store.Membership{m(d.Finance, d.Bob, 7)})
	equal(t, "assignments without Ann", assignments(tid), []store.Assignment{as[1], as[2], as[0]})
	must(t, s.DeleteUserGroup(ctx, tid, d.Finance.ID))
	equal(t, "no memberships left", memberships(tid), []store.Membership{})
	equal(t, "assignments without Finance", assignments(tid), []store.Assignment{as[1], as[0]})
}
