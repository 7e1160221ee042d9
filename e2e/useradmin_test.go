package e2e

import (
	"strings"
	"testing"
)

// TestUserAndTenantAdmin runs the administration of pre-authentication
// through the real binary: --pre-auth on app create and update (and the
// one line saying a passthrough application is public), user show,
// disable, enable, reset-mfa and delete with their refusals (your own
// account, other roles, another tenant), and the tenant's sign-in
// settings.
func TestUserAndTenantAdmin(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	admin := c.admin
	const userPW = "a-long-enough-password"

	t.Run("pre-authentication", func(t *testing.T) {
		out := admin.ok(t, "", "admin", "app", "create", "wiki", "--internal-url", "http://wiki.corp/").stdout
		if strings.Contains(out, "passthrough") {
			t.Errorf("app create without --pre-auth says passthrough:\n%s", out)
		}
		if !lineHas(admin.ok(t, "", "admin", "app", "show", "wiki").stdout, "Pre-authentication:", "sallyport") {
			t.Errorf("a new application is not sallyport")
		}
		publicNote := func(app string) string {
			return "Note: pre-authentication is passthrough: anyone who knows https://" + app + "-contoso.sallyport.localhost:" + c.port + "/ reaches the backend.\n"
		}
		out = admin.ok(t, "", "admin", "app", "create", "api", "--internal-url", "http://api.corp/", "--pre-auth", "passthrough").stdout
		mustContain(t, "app create --pre-auth passthrough", out, publicNote("api"))
		if strings.Count(out, "passthrough") != 1 {
			t.Errorf("app create --pre-auth passthrough says it more than once:\n%s", out)
		}
		if out := admin.ok(t, "", "admin", "app", "update", "api", "--timeout", "long").stdout; strings.Contains(out, "passthrough") {
			t.Errorf("app update of another field repeats the passthrough note:\n%s", out)
		}
		mustContain(t, "app update --pre-auth passthrough", admin.ok(t, "", "admin", "app", "update", "wiki", "--pre-auth", "passthrough").stdout, publicNote("wiki"))
		if out := admin.ok(t, "", "admin", "app", "update", "wiki", "--pre-auth", "sallyport").stdout; strings.Contains(out, "passthrough") {
			t.Errorf("app update --pre-auth sallyport:\n%s", out)
		}
		admin.refused(t, "", []string{"admin", "app", "create", "bad", "--internal-url", "http://bad.corp/", "--pre-auth", "open"},
			`"open" is not a pre-authentication`, "use 'sallyport'")
	})

	t.Run("users", func(t *testing.T) {
		mustContain(t, "user create", admin.ok(t, userPW+"\n", "admin", "user", "create", "ann@contoso.com", "--email", "ann@mail.contoso.com",
			"--display-name", "Ann Lee", "--password-stdin").stdout, "Created user ann@contoso.com with role user.")
		admin.ok(t, userPW+"\n", "admin", "user", "create", "ops@contoso.com", "--role", "app-admin", "--password-stdin")
		admin.refused(t, userPW+"\n", []string{"admin", "user", "create", "bee@contoso.com", "--email", "bee at contoso", "--password-stdin"}, `"bee at contoso" is not an email address`)
		admin.ok(t, "", "admin", "user-group", "create", "Finance")
		admin.ok(t, "", "admin", "user-group", "add-member", "Finance", "ann@contoso.com")

		show := admin.ok(t, "", "admin", "user", "show", "Ann@Contoso.com").stdout
		for _, row := range [][]string{{"User:", "ann@contoso.com"}, {"Role:", "user"}, {"Email:", "ann@mail.contoso.com"}, {"Display", "name:", "Ann", "Lee"},
			{"Disabled:", "no"}, {"MFA", "enrolled:", "no"}, {"External", "identity:", "none", "(a", "local", "account)"}, {"User", "groups", "(1):", "Finance"}, {"Created:"}} {
			if !lineHas(show, row...) {
				t.Errorf("user show has no line %q:\n%s", strings.Join(row, " "), show)
			}
		}

		ann := newRunner(t, "contoso-ann")
		c.login(t, ann, "ann@contoso.com", userPW)
		ops := newRunner(t, "contoso-ops")
		c.login(t, ops, "ops@contoso.com", userPW)
		for _, args := range [][]string{{"show"}, {"disable"}, {"enable"}, {"reset-mfa"}, {"delete"}} {
			ops.refused(t, "", append([]string{"admin", "user"}, append(args, "ann@contoso.com")...),
				"ops@contoso.com is an Application Administrator, and only a Global Administrator manages users; ask a Global Administrator of contoso.com")
		}
		admin.refused(t, "", []string{"admin", "user", "delete", contosoAdmin}, "You cannot delete your own account ("+contosoAdmin+")", "ask another Global Administrator of contoso.com")
		admin.refused(t, "", []string{"admin", "user", "disable", contosoAdmin}, "You cannot disable your own account")
		admin.refused(t, "", []string{"admin", "user", "show", "nobody@contoso.com"}, "There is no user nobody@contoso.com in contoso.com")

		out := admin.ok(t, "", "admin", "user", "disable", "ann@contoso.com").stdout
		mustContain(t, "user disable", out, "Disabled user ann@contoso.com (0 sessions ended).\n",
			"The user ann@contoso.com is signed out everywhere and cannot sign in, to applications or to the admin API, until enabled again with 'sallyport admin user enable ann@contoso.com'.")
		ann.refused(t, "", []string{"admin", "app", "list"}, "The user ann@contoso.com is disabled", "sallyport admin user enable ann@contoso.com")
		ann.refused(t, userPW+"\n", []string{"admin", "login", "--cloud", c.url, "--user", "ann@contoso.com", "--password-stdin"}, "is disabled")
		if !lineHas(admin.ok(t, "", "admin", "user", "show", "ann@contoso.com").stdout, "Disabled:", "yes") {
			t.Errorf("user show after disable does not say Disabled: yes")
		}
		mustContain(t, "user enable", admin.ok(t, "", "admin", "user", "enable", "ann@contoso.com").stdout, "Enabled user ann@contoso.com.\nThe user ann@contoso.com can sign in again.")
		ann.ok(t, "", "admin", "app", "list")

		mustContain(t, "user reset-mfa", admin.ok(t, "", "admin", "user", "reset-mfa", "ann@contoso.com").stdout,
			"Reset the second factor of user ann@contoso.com (0 sessions ended).\n",
			"The user ann@contoso.com is signed out everywhere; the old authenticator app and recovery codes no longer work, and the password alone signs in, since contoso.com does not require a second factor")

		fab := c.addFabrikam(t)
		for _, args := range [][]string{{"show"}, {"disable"}, {"delete"}, {"reset-mfa"}} {
			fab.refused(t, "", append([]string{"admin", "user"}, append(args, "ann@contoso.com")...), `"ann@contoso.com" is not a user name of the domain fabrikam.com`)
		}

		mustContain(t, "user delete", admin.ok(t, "", "admin", "user", "delete", "ann@contoso.com").stdout,
			"Deleted user ann@contoso.com with its sessions, memberships of user groups and assignments.")
		ann.refused(t, "", []string{"admin", "app", "list"}, "Your sign-in to "+c.url+" is no longer valid")
		mustContain(t, "Finance after the delete", admin.ok(t, "", "admin", "user-group", "show", "Finance").stdout, "Members (0):")
	})

	t.Run("tenant settings", func(t *testing.T) {
		show := admin.ok(t, "", "admin", "tenant", "show").stdout
		for _, row := range [][]string{{"Tenant:", "contoso.com"}, {"MFA", "required:", "no"}, {"Session", "lifetime:", "12h", "(default)"}, {"Session", "idle", "timeout:", "1h", "(default)"}} {
			if !lineHas(show, row...) {
				t.Errorf("tenant show has no line %q:\n%s", strings.Join(row, " "), show)
			}
		}
		out := admin.ok(t, "", "admin", "tenant", "set", "--require-mfa", "--session-lifetime", "8h", "--session-idle", "90m").stdout
		mustContain(t, "tenant set", out, "Updated the sign-in settings of contoso.com.\n")
		for _, row := range [][]string{{"MFA", "required:", "yes"}, {"Session", "lifetime:", "8h"}, {"Session", "idle", "timeout:", "1h30m"}} {
			if !lineHas(out, row...) {
				t.Errorf("tenant set has no line %q:\n%s", strings.Join(row, " "), out)
			}
		}
		if !lineHas(admin.ok(t, "", "admin", "tenant", "set", "--session-idle", "default").stdout, "Session", "idle", "timeout:", "1h", "(default)") {
			t.Errorf("tenant set --session-idle default does not show the default")
		}
		admin.refused(t, "", []string{"admin", "tenant", "set"}, "No setting was given to change", "give --require-mfa, --session-lifetime or --session-idle")
		admin.refused(t, "", []string{"admin", "tenant", "set", "--session-lifetime", "7d"}, `The session lifetime "7d" is not a duration`, "a week is 168h")
		admin.refused(t, "", []string{"admin", "tenant", "set", "--session-lifetime", "31d"}, "is not a duration")
		admin.refused(t, "", []string{"admin", "tenant", "set", "--session-lifetime", "1000h"}, "The session lifetime 1000h0m0s is out of range", "from 5m to 720h")
		admin.refused(t, "", []string{"admin", "tenant", "set", "--session-idle", "9h"}, "The session idle timeout 9h0m0s is out of range", "to the session lifetime (8h0m0s)")
		ops := newRunner(t, "contoso-ops-tenant")
		c.login(t, ops, "ops@contoso.com", userPW)
		ops.refused(t, "", []string{"admin", "tenant", "show"}, "only a Global Administrator manages the tenant's settings")
		ops.refused(t, "", []string{"admin", "tenant", "set", "--require-mfa=false"}, "only a Global Administrator manages the tenant's settings")
	})
}
