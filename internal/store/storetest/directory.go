package storetest

import (
	"fmt"
	"testing"

	"github.com/sallyport/sallyport/internal/store"
)

// directory is tenant A's users, user groups and applications, beside
// tenant B with the same kinds of objects, for the directory tests.
type directory struct {
	A, B       tenantFixture
	Ann, Bob   store.User      // users of A
	Eve        store.User      // a user of B
	Staff      store.UserGroup // user group of A; Ann is a member
	Finance    store.UserGroup // user group of A; Bob is a member
	Outsiders  store.UserGroup // user group of B; Eve is a member
	Wiki, Mail store.Application
	Payroll    store.Application // of B
}

// newDirectory stores the directory fixture in tenants alpha and beta.
func newDirectory(t *testing.T, s store.Store) directory {
	t.Helper()
	return newDirectoryIn(t, s, "alpha", "beta")
}

// newDirectoryIn stores the directory fixture in tenants a and b; B's
// user group Outsiders is assigned to Payroll.
func newDirectoryIn(t *testing.T, s store.Store, a, b string) directory {
	t.Helper()
	ctx := t.Context()
	d := directory{A: createTenant(t, s, a), B: createTenant(t, s, b)}
	user := func(f tenantFixture, name string) store.User {
		u := store.User{ID: "user-" + f.Tenant.Label + "-" + name, TenantID: f.Tenant.ID, Name: name + "@" + f.Tenant.Domain, Role: store.RoleUser, PasswordHash: "h", CreatedAt: at(5)}
		must(t, s.CreateUser(ctx, u))
		return u
	}
	group := func(f tenantFixture, id, name string, members ...store.User) store.UserGroup {
		g := store.UserGroup{ID: id + "-" + f.Tenant.Label, TenantID: f.Tenant.ID, Name: name, CreatedAt: at(6)}
		must(t, s.CreateUserGroup(ctx, g))
		for _, u := range members {
			must(t, s.AddUserGroupMember(ctx, f.Tenant.ID, g.ID, u.ID, at(7)))
		}
		g.Members = len(members)
		return g
	}
	app := func(f tenantFixture, name string) store.Application {
		a := newApp(f, name)
		must(t, s.CreateApp(ctx, a))
		return a
	}
	d.Ann, d.Bob, d.Eve = user(d.A, "ann"), user(d.A, "bob"), user(d.B, "eve")
	d.Staff = group(d.A, "ug-staff", "Staff", d.Ann)
	d.Finance = group(d.A, "ug-finance", "Finance", d.Bob)
	d.Outsiders = group(d.B, "ug-outsiders", "Outsiders", d.Eve)
	d.Wiki, d.Mail, d.Payroll = app(d.A, "wiki"), app(d.A, "mail"), app(d.B, "payroll")
	must(t, s.Assign(ctx, store.Assignment{TenantID: d.B.Tenant.ID, AppID: d.Payroll.ID, UserGroupID: d.Outsiders.ID, CreatedAt: at(8)}))
	return d
}

// assigned reads IsAssigned, failing the test on error.
func assigned(t *testing.T, s store.Store, tenantID, appID, userID string) bool {
	t.Helper()
	ok, err := s.IsAssigned(t.Context(), tenantID, appID, userID)
	must(t, err)
	return ok
}

// testUserGroups checks user groups: round-trip with member counts, names
// compared by GroupKey in their own namespace, deletion.
func testUserGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID

	equal(t, "UserGroupByName", get(t, func() (store.UserGroup, error) { return s.UserGroupByName(ctx, tid, "Staff") }), d.Staff)
	equal(t, "UserGroupByName in another case", get(t, func() (store.UserGroup, error) { return s.UserGroupByName(ctx, tid, "STAFF") }), d.Staff)
	equal(t, "ListUserGroups", get(t, func() ([]store.UserGroup, error) { return s.ListUserGroups(ctx, tid) }),
		[]store.UserGroup{d.Finance, d.Staff})

	// A connector group's name is free for a user group, and the reverse:
	// the namespaces are apart.
	def := store.UserGroup{ID: "ug-default", TenantID: tid, Name: "Default", CreatedAt: at(8)}
	must(t, s.CreateUserGroup(ctx, def))
	must(t, s.CreateGroup(ctx, store.Group{ID: "g-staff", TenantID: tid, Name: "Staff", CreatedAt: at(8)}))
	// The same name in another tenant is another group.
	must(t, s.CreateUserGroup(ctx, store.UserGroup{ID: "ug-staff-beta", TenantID: d.B.Tenant.ID, Name: "Staff", CreatedAt: at(8)}))

	runErrCases(t, store.ErrConflict, []errCase{
		{"same name", func() error {
			return s.CreateUserGroup(ctx, store.UserGroup{ID: "ug-2", TenantID: tid, Name: "Staff", CreatedAt: at(9)})
		}},
		{"same name in another case", func() error {
			return s.CreateUserGroup(ctx, store.UserGroup{ID: "ug-3", TenantID: tid, Name: "sTaFf", CreatedAt: at(9)})
		}},
		{"same id", func() error {
			return s.CreateUserGroup(ctx, store.UserGroup{ID: d.Staff.ID, TenantID: tid, Name: "Other", CreatedAt: at(9)})
		}},
	})

	must(t, s.DeleteUserGroup(ctx, tid, d.Staff.ID))
	wantErr(t, "UserGroupByName after delete", errOf(s.UserGroupByName(ctx, tid, "Staff")), store.ErrNotFound)
	wantErr(t, "DeleteUserGroup twice", s.DeleteUserGroup(ctx, tid, d.Staff.ID), store.ErrNotFound)
	equal(t, "the user stays", get(t, func() (store.User, error) { return s.UserByID(ctx, tid, d.Ann.ID) }), d.Ann)
}

// testMemberships checks adding, listing and removing members, and
// UserGroupsOf.
func testMemberships(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	must(t, s.AddUserGroupMember(ctx, tid, d.Finance.ID, d.Ann.ID, at(10)))

	equal(t, "ListUserGroupMembers", get(t, func() ([]store.User, error) { return s.ListUserGroupMembers(ctx, tid, d.Finance.ID) }),
		[]store.User{d.Ann, d.Bob})
	d.Finance.Members, d.Staff.Members = 2, 1
	equal(t, "UserGroupsOf", get(t, func() ([]store.UserGroup, error) { return s.UserGroupsOf(ctx, tid, d.Ann.ID) }),
		[]store.UserGroup{d.Finance, d.Staff})
	equal(t, "UserGroupsOf a user of no group", get(t, func() ([]store.UserGroup, error) { return s.UserGroupsOf(ctx, tid, d.A.Admin.ID) }),
		[]store.UserGroup{})

	wantErr(t, "AddUserGroupMember twice", s.AddUserGroupMember(ctx, tid, d.Finance.ID, d.Ann.ID, at(11)), store.ErrConflict)
	runErrCases(t, store.ErrNotFound, []errCase{
		{"add a missing user", func() error { return s.AddUserGroupMember(ctx, tid, d.Finance.ID, "nope", at(11)) }},
		{"add to a missing group", func() error { return s.AddUserGroupMember(ctx, tid, "nope", d.Ann.ID, at(11)) }},
		{"remove a non-member", func() error { return s.RemoveUserGroupMember(ctx, tid, d.Staff.ID, d.Bob.ID) }},
	})

	must(t, s.RemoveUserGroupMember(ctx, tid, d.Finance.ID, d.Ann.ID))
	equal(t, "members after removal", get(t, func() ([]store.User, error) { return s.ListUserGroupMembers(ctx, tid, d.Finance.ID) }),
		[]store.User{d.Bob})
	wantErr(t, "RemoveUserGroupMember twice", s.RemoveUserGroupMember(ctx, tid, d.Finance.ID, d.Ann.ID), store.ErrNotFound)
}

// testAssignments checks assignments and IsAssigned, directly and
// through user groups.
func testAssignments(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	tid := d.A.Tenant.ID
	toAnn := store.Assignment{TenantID: tid, AppID: d.Wiki.ID, UserID: d.Ann.ID, CreatedAt: at(12)}
	toFinance := store.Assignment{TenantID: tid, AppID: d.Wiki.ID, UserGroupID: d.Finance.ID, CreatedAt: at(13)}
	must(t, s.Assign(ctx, toAnn))
	must(t, s.Assign(ctx, toFinance))

	equal(t, "ListAssignments", get(t, func() ([]store.Assignment, error) { return s.ListAssignments(ctx, tid, d.Wiki.ID) }),
		[]store.Assignment{toAnn, toFinance})
	equal(t, "ListAssignments of an app with none", get(t, func() ([]store.Assignment, error) { return s.ListAssignments(ctx, tid, d.Mail.ID) }),
		[]store.Assignment{})

	for _, tt := range []struct {
		name        string
		app, user   string
		wantAllowed bool
	}{
		{"assigned directly", d.Wiki.ID, d.Ann.ID, true},
		{"through a user group", d.Wiki.ID, d.Bob.ID, true},
		{"not assigned", d.Wiki.ID, d.A.Admin.ID, false},
		{"another application", d.Mail.ID, d.Ann.ID, false},
		{"unknown user", d.Wiki.ID, "nope", false},
	} {
		if got := assigned(t, s, tid, tt.app, tt.user); got != tt.wantAllowed {
			t.Errorf("IsAssigned %s = %v, want %v", tt.name, got, tt.wantAllowed)
		}
	}

	wantErr(t, "Assign a user twice", s.Assign(ctx, toAnn), store.ErrConflict)
	wantErr(t, "Assign a user group twice", s.Assign(ctx, toFinance), store.ErrConflict)
	runErrCases(t, store.ErrNotFound, []errCase{
		{"missing application", func() error {
			return s.Assign(ctx, store.Assignment{TenantID: tid, AppID: "nope", UserID: d.Ann.ID, CreatedAt: at(14)})
		}},
		{"missing user", func() error {
			return s.Assign(ctx, store.Assignment{TenantID: tid, AppID: d.Mail.ID, UserID: "nope", CreatedAt: at(14)})
		}},
		{"missing user group", func() error {
			return s.Assign(ctx, store.Assignment{TenantID: tid, AppID: d.Mail.ID, UserGroupID: "nope", CreatedAt: at(14)})
		}},
		{"Unassign a user not assigned", func() error {
			return s.Unassign(ctx, store.Assignment{TenantID: tid, AppID: d.Mail.ID, UserID: d.Ann.ID})
		}},
		{"Unassign a user group not assigned", func() error {
			return s.Unassign(ctx, store.Assignment{TenantID: tid, AppID: d.Wiki.ID, UserGroupID: d.Staff.ID})
		}},
		// Bob reaches the wiki through Finance, but is not assigned himself.
		{"Unassign a user assigned only through a group", func() error {
			return s.Unassign(ctx, store.Assignment{TenantID: tid, AppID: d.Wiki.ID, UserID: d.Bob.ID})
		}},
	})

	must(t, s.Unassign(ctx, store.Assignment{TenantID: tid, AppID: d.Wiki.ID, UserGroupID: d.Finance.ID}))
	if assigned(t, s, tid, d.Wiki.ID, d.Bob.ID) {
		t.Error("Bob is still assigned after his group's assignment was removed")
	}
	if !assigned(t, s, tid, d.Wiki.ID, d.Ann.ID) {
		t.Error("Ann lost her own assignment when Finance's was removed")
	}
	must(t, s.Unassign(ctx, toAnn))
	if assigned(t, s, tid, d.Wiki.ID, d.Ann.ID) {
		t.Error("Ann is still assigned after Unassign")
	}
}

// testDirectoryCascades checks that deleting a user, a user group or an
// application deletes the memberships and assignments naming it, and
// nothing else.
func testDirectoryCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		name   string
		delete func(d directory) error
		check  func(t *testing.T, d directory)
	}{
		{"DeleteUser", func(d directory) error { return s.DeleteUser(ctx, d.A.Tenant.ID, d.Ann.ID) }, func(t *testing.T, d directory) {
			tid := d.A.Tenant.ID
			wantErr(t, "UserByID", errOf(s.UserByID(ctx, tid, d.Ann.ID)), store.ErrNotFound)
			equal(t, "Staff's members", get(t, func() ([]store.User, error) { return s.ListUserGroupMembers(ctx, tid, d.Staff.ID) }), []store.User{})
			equal(t, "Wiki's assignments", get(t, func() ([]store.Assignment, error) { return s.ListAssignments(ctx, tid, d.Wiki.ID) }),
				[]store.Assignment{{TenantID: tid, AppID: d.Wiki.ID, UserGroupID: d.Staff.ID, CreatedAt: at(31)}})
			// A user made again with the same id starts with nothing.
			must(t, s.CreateUser(ctx, d.Ann))
			equal(t, "groups of the new user", get(t, func() ([]store.UserGroup, error) { return s.UserGroupsOf(ctx, tid, d.Ann.ID) }), []store.UserGroup{})
			if assigned(t, s, tid, d.Wiki.ID, d.Ann.ID) {
				t.Error("a user made again with a deleted user's id inherits its assignment")
			}
		}},
		{"DeleteUserGroup", func(d directory) error { return s.DeleteUserGroup(ctx, d.A.Tenant.ID, d.Staff.ID) }, func(t *testing.T, d directory) {
			tid := d.A.Tenant.ID
			equal(t, "Ann's groups", get(t, func() ([]store.UserGroup, error) { return s.UserGroupsOf(ctx, tid, d.Ann.ID) }), []store.UserGroup{})
			equal(t, "Wiki's assignments", get(t, func() ([]store.Assignment, error) { return s.ListAssignments(ctx, tid, d.Wiki.ID) }),
				[]store.Assignment{{TenantID: tid, AppID: d.Wiki.ID, UserID: d.Ann.ID, CreatedAt: at(30)}})
			if assigned(t, s, tid, d.Mail.ID, d.Ann.ID) {
				t.Error("Ann still reaches Mail through the deleted group")
			}
			equal(t, "Ann kept", get(t, func() (store.User, error) { return s.UserByID(ctx, tid, d.Ann.ID) }), d.Ann)
		}},
		{"DeleteApp", func(d directory) error { return s.DeleteApp(ctx, d.A.Tenant.ID, d.Wiki.Name) }, func(t *testing.T, d directory) {
			tid := d.A.Tenant.ID
			// The application made again with the same id has no assignment.
			must(t, s.CreateApp(ctx, d.Wiki))
			equal(t, "Wiki's assignments", get(t, func() ([]store.Assignment, error) { return s.ListAssignments(ctx, tid, d.Wiki.ID) }), []store.Assignment{})
			if !assigned(t, s, tid, d.Mail.ID, d.Ann.ID) {
				t.Error("Ann lost her assignment to Mail when Wiki was deleted")
			}
			equal(t, "Staff's members", get(t, func() ([]store.User, error) { return s.ListUserGroupMembers(ctx, tid, d.Staff.ID) }), []store.User{d.Ann})
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case has its own pair of tenants in the store.
			d := newDirectoryIn(t, s, fmt.Sprintf("alpha%d", i), fmt.Sprintf("beta%d", i))
			tid := d.A.Tenant.ID
			must(t, s.Assign(ctx, store.Assignment{TenantID: tid, AppID: d.Wiki.ID, UserID: d.Ann.ID, CreatedAt: at(30)}))
			must(t, s.Assign(ctx, store.Assignment{TenantID: tid, AppID: d.Wiki.ID, UserGroupID: d.Staff.ID, CreatedAt: at(31)}))
			must(t, s.Assign(ctx, store.Assignment{TenantID: tid, AppID: d.Mail.ID, UserGroupID: d.Staff.ID, CreatedAt: at(32)}))
			must(t, tt.delete(d))
			tt.check(t, d)
			// Tenant B is untouched by A's deletions.
			if !assigned(t, s, d.B.Tenant.ID, d.Payroll.ID, d.Eve.ID) {
				t.Error("tenant B's assignment is gone")
			}
		})
	}
}

// testDirectoryTenantIsolation checks that no directory method reaches
// another tenant's users, user groups or applications, nor joins objects
// of two tenants.
func testDirectoryTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDirectory(t, s)
	a, b := d.A.Tenant.ID, d.B.Tenant.ID
	must(t, s.Assign(ctx, store.Assignment{TenantID: a, AppID: d.Wiki.ID, UserID: d.Ann.ID, CreatedAt: at(20)}))
	runErrCases(t, store.ErrNotFound, []errCase{
		{"UserGroupByName of another tenant", func() error { return errOf(s.UserGroupByName(ctx, b, d.Staff.Name)) }},
		{"DeleteUserGroup of another tenant", func() error { return s.DeleteUserGroup(ctx, b, d.Staff.ID) }},
		{"DeleteUser of another tenant", func() error { return s.DeleteUser(ctx, b, d.Ann.ID) }},
		{"add another tenant's user", func() error { return s.AddUserGroupMember(ctx, a, d.Staff.ID, d.Eve.ID, at(21)) }},
		{"add to another tenant's group", func() error { return s.AddUserGroupMember(ctx, a, d.Outsiders.ID, d.Ann.ID, at(21)) }},
		{"add as the other tenant a member A has", func() error { return s.AddUserGroupMember(ctx, b, d.Staff.ID, d.Ann.ID, at(21)) }},
		{"RemoveUserGroupMember as the other tenant", func() error { return s.RemoveUserGroupMember(ctx, b, d.Staff.ID, d.Ann.ID) }},
		{"assign another tenant's app", func() error {
			return s.Assign(ctx, store.Assignment{TenantID: a, AppID: d.Payroll.ID, UserID: d.Ann.ID, CreatedAt: at(21)})
		}},
		{"assign another tenant's user", func() error {
			return s.Assign(ctx, store.Assignment{TenantID: a, AppID: d.Wiki.ID, UserID: d.Eve.ID, CreatedAt: at(21)})
		}},
		{"assign another tenant's user group", func() error {
			return s.Assign(ctx, store.Assignment{TenantID: a, AppID: d.Wiki.ID, UserGroupID: d.Outsiders.ID, CreatedAt: at(21)})
		}},
		{"assign as the other tenant what A assigned", func() error {
			return s.Assign(ctx, store.Assignment{TenantID: b, AppID: d.Wiki.ID, UserID: d.Ann.ID, CreatedAt: at(21)})
		}},
		{"Unassign as the other tenant", func() error {
			return s.Unassign(ctx, store.Assignment{TenantID: b, AppID: d.Wiki.ID, UserID: d.Ann.ID})
		}},
	})
	equal(t, "ListUserGroups of B", get(t, func() ([]store.UserGroup, error) { return s.ListUserGroups(ctx, b) }), []store.UserGroup{d.Outsiders})
	equal(t, "ListUserGroupMembers of A's group as B", get(t, func() ([]store.User, error) { return s.ListUserGroupMembers(ctx, b, d.Staff.ID) }), []store.User{})
	equal(t, "UserGroupsOf A's user as B", get(t, func() ([]store.UserGroup, error) { return s.UserGroupsOf(ctx, b, d.Ann.ID) }), []store.UserGroup{})
	equal(t, "ListAssignments of A's app as B", get(t, func() ([]store.Assignment, error) { return s.ListAssignments(ctx, b, d.Wiki.ID) }), []store.Assignment{})
	if assigned(t, s, b, d.Wiki.ID, d.Ann.ID) {
		t.Error("IsAssigned as tenant B sees tenant A's assignment")
	}
	if !assigned(t, s, a, d.Wiki.ID, d.Ann.ID) {
		t.Error("A's assignment was changed by B's attempts")
	}
	equal(t, "Staff unchanged", get(t, func() ([]store.User, error) { return s.ListUserGroupMembers(ctx, a, d.Staff.ID) }), []store.User{d.Ann})
}
