package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestUserGroupsAndAssignments runs the directory commands through the
// real binary: user groups (Global Administrators only, names by the
// group rules in their own namespace), members, assignments of users and
// user groups to an application (Application Administrators too), the
// note that assignments are not enforced while the app is passthrough
// (and an anonymous request to an assigned app indeed gets through),
// deletion of a user group taking its assignments, and another tenant
// that can neither see nor use contoso's users, user groups or apps.
func TestUserGroupsAndAssignments(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	admin := c.admin
	const userPW = "a-long-enough-password"
	for _, u := range []struct{ name, role string }{{"ann@contoso.com", "user"}, {"ops@contoso.com", "app-admin"}} {
		admin.ok(t, userPW+"\n", "admin", "user", "create", u.name, "--role", u.role, "--password-stdin")
	}
	c.publish(t, admin, "web", "http://127.0.0.1:9/")
	ops := newRunner(t, "contoso-ops")
	c.login(t, ops, "ops@contoso.com", userPW)

	const passthroughNote = "Note: 'web' uses pre-authentication passthrough, so anyone who can reach it gets through, assigned or not; assignments take effect once it uses pre-authentication at the cloud ('sallyport admin app update web --pre-auth sallyport')."

	t.Run("user groups", func(t *testing.T) {
		mustContain(t, "user-group create", admin.ok(t, "", "admin", "user-group", "create", "Finance").stdout, "Created user group 'Finance'.")
		// A connector group's name is free: the namespaces are apart.
		admin.ok(t, "", "admin", "user-group", "create", "Default")
		admin.refused(t, "", []string{"admin", "user-group", "create", "FINANCE"}, "The user group 'FINANCE' already exists in contoso.com as 'Finance'")
		admin.refused(t, "", []string{"admin", "user-group", "create", "a/b"}, `"a/b" is not a valid user group name: it may hold only letters, digits, spaces`, "use 1 to 64")
		ops.refused(t, "", []string{"admin", "user-group", "create", "Ops"},
			"ops@contoso.com is an Application Administrator, and only a Global Administrator manages user groups; ask a Global Administrator of contoso.com")
		ops.refused(t, "", []string{"admin", "user-group", "add-member", "Finance", "ops@contoso.com"}, "only a Global Administrator manages user groups")

		mustContain(t, "add-member", admin.ok(t, "", "admin", "user-group", "add-member", "finance", "Ann@Contoso.com").stdout,
			"Added ann@contoso.com to user group 'Finance' (1 member).")
		admin.refused(t, "", []string{"admin", "user-group", "add-member", "Finance", "ann@contoso.com"}, "ann@contoso.com is already a member of the user group 'Finance'")
		admin.refused(t, "", []string{"admin", "user-group", "add-member", "Finance", "nobody@contoso.com"}, "There is no user nobody@contoso.com in contoso.com")
		admin.refused(t, "", []string{"admin", "user-group", "add-member", "Nope", "ann@contoso.com"}, "There is no user group 'Nope' in contoso.com")
		admin.refused(t, "", []string{"admin", "user-group", "remove-member", "Finance", "ops@contoso.com"}, "ops@contoso.com is not a member of the user group 'Finance'")

		list := ops.ok(t, "", "admin", "user-group", "list").stdout
		mustContain(t, "user-group list", list, "NAME", "MEMBERS")
		if !lineHas(list, "Finance", "1") || !lineHas(list, "Default", "0") {
			t.Errorf("user-group list does not show Finance with 1 member and Default with 0:\n%s", list)
		}
		mustContain(t, "user-group show", ops.ok(t, "", "admin", "user-group", "show", "Finance").stdout, "User group:", "Finance", "Members (1):", "ann@contoso.com")
	})

	t.Run("assignments", func(t *testing.T) {
		out := admin.ok(t, "", "admin", "app", "assign", "web", "--user-group", "Finance").stdout
		mustContain(t, "app assign", out, "Assigned user group 'Finance' to 'web'.", passthroughNote)
		mustContain(t, "app assign by an Application Administrator", ops.ok(t, "", "admin", "app", "assign", "web", "--user", "ops@contoso.com").stdout,
			"Assigned user ops@contoso.com to 'web'.", passthroughNote)
		admin.refused(t, "", []string{"admin", "app", "assign", "web", "--user", "ops@contoso.com"}, "ops@contoso.com is already assigned to the application 'web'")
		admin.refused(t, "", []string{"admin", "app", "assign", "web"}, "The command line is not valid", "user-group")
		admin.refused(t, "", []string{"admin", "app", "assign", "web", "--user", "ann@contoso.com", "--user-group", "Finance"}, "The command line is not valid")
		admin.refused(t, "", []string{"admin", "app", "assign", "nope", "--user", "ann@contoso.com"}, "There is no application 'nope' in contoso.com")
		annR := newRunner(t, "contoso-ann")
		c.login(t, annR, "ann@contoso.com", userPW)
		annR.refused(t, "", []string{"admin", "app", "assign", "web", "--user", "ann@contoso.com"}, "needs at least Application Administrator")

		show := annR.ok(t, "", "admin", "app", "show", "web").stdout
		mustContain(t, "app show", show, "Pre-authentication:", "passthrough", "Assignments (2):", "user group 'Finance'", "user ops@contoso.com", passthroughNote)

		admin.refused(t, "", []string{"admin", "app", "unassign", "web", "--user", "ann@contoso.com"},
			"ann@contoso.com is not assigned to the application 'web' directly, only as a member of an assigned user group",
			"sallyport admin user-group remove-member GROUP ann@contoso.com")
		mustContain(t, "app unassign", ops.ok(t, "", "admin", "app", "unassign", "web", "--user", "ops@contoso.com").stdout, "Unassigned user ops@contoso.com from 'web'.")
		admin.refused(t, "", []string{"admin", "app", "unassign", "web", "--user", "ops@contoso.com"}, "ops@contoso.com is not assigned to the application 'web'")
	})

	// The note says what happens: a passthrough application with
	// assignments is still served to anyone, signed in or not.
	t.Run("the note is true", func(t *testing.T) {
		b := newBackend(t)
		site := newRunner(t, "site")
		st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
		open := c.publish(t, admin, "open", b.url)
		admin.ok(t, "", "admin", "app", "assign", "open", "--user", "ops@contoso.com")
		mustContain(t, "app show open", admin.ok(t, "", "admin", "app", "show", "open").stdout,
			"Note: 'open' uses pre-authentication passthrough, so anyone who can reach it gets through, assigned or not")
		c.runConnector(t, admin, st)
		resp, body := c.get(t, open.ExternalHost, "/page")
		if resp.StatusCode != 200 || !strings.Contains(body, backendPage) {
			t.Errorf("an anonymous request to an application with an assignment: %s, want the backend's page (passthrough):\n%s", resp.Status, body)
		}
	})

	t.Run("another tenant", func(t *testing.T) {
		fab := c.addFabrikam(t)

		fab.refused(t, "", []string{"admin", "user-group", "show", "Finance"}, "There is no user group 'Finance' in fabrikam.com")
		fab.refused(t, "", []string{"admin", "user-group", "delete", "Finance"}, "There is no user group 'Finance' in fabrikam.com")
		fab.refused(t, "", []string{"admin", "user-group", "add-member", "Finance", "admin@fabrikam.com"}, "There is no user group 'Finance' in fabrikam.com")
		fab.refused(t, "", []string{"admin", "app", "show", "web"}, "There is no application 'web' in fabrikam.com")
		fab.refused(t, "", []string{"admin", "app", "assign", "web", "--user", "admin@fabrikam.com"}, "There is no application 'web' in fabrikam.com")
		if list := fab.ok(t, "", "admin", "user-group", "list").stdout; strings.Contains(list, "Finance") {
			t.Errorf("fabrikam's user-group list shows contoso's group:\n%s", list)
		}
		// Its own user group of the same name, and its own application.
		fab.ok(t, "", "admin", "user-group", "create", "Finance")
		fab.refused(t, "", []string{"admin", "user-group", "add-member", "Finance", "ann@contoso.com"}, "is not a user name of the domain fabrikam.com")
		c.publish(t, fab, "web", "http://127.0.0.1:9/")
		fab.refused(t, "", []string{"admin", "app", "assign", "web", "--user", "ann@contoso.com"}, "is not a user name of the domain fabrikam.com")
		fab.ok(t, "", "admin", "app", "assign", "web", "--user-group", "Finance")
		show := fab.ok(t, "", "admin", "app", "show", "web").stdout
		mustContain(t, "fabrikam's web", show, "Assignments (1):", "user group 'Finance'")
		if strings.Contains(show, "contoso") {
			t.Errorf("fabrikam's web shows something of contoso's:\n%s", show)
		}
		// contoso's group and assignment are untouched.
		mustContain(t, "contoso's web", admin.ok(t, "", "admin", "app", "show", "web").stdout, "Assignments (1):", "user group 'Finance'")
		mustContain(t, "contoso's Finance", admin.ok(t, "", "admin", "user-group", "show", "Finance").stdout, "Members (1):", "ann@contoso.com")
	})

	t.Run("deleting a user group removes its assignments", func(t *testing.T) {
		ops.refused(t, "", []string{"admin", "user-group", "delete", "Finance"}, "only a Global Administrator manages user groups")
		mustContain(t, "user-group delete", admin.ok(t, "", "admin", "user-group", "delete", "Finance").stdout, "Deleted user group 'Finance' with its memberships and assignments.")
		mustContain(t, "app show after the delete", admin.ok(t, "", "admin", "app", "show", "web").stdout, "Assignments:", "none", passthroughNote)
		admin.refused(t, "", []string{"admin", "app", "unassign", "web", "--user-group", "Finance"}, "There is no user group 'Finance' in contoso.com")
	})
}

// lineHas reports whether one line of out holds every one of words as
// whitespace-separated fields.
func lineHas(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		all := true
		for _, w := range words {
			found := false
			for _, f := range fields {
				found = found || f == w
			}
			all = all && found
		}
		if all {
			return true
		}
	}
	return false
}
