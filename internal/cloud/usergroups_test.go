package cloud

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
)

// apiStep is one admin API call of an ordered scenario and its expected
// answer: the status, and for a refusal its code and words of its message.
type apiStep struct {
	name, method, path, token string
	body                      any
	status                    int
	code                      string
	say                       []string
}

// runSteps runs the steps in order (later ones depend on earlier ones).
func runSteps(t *testing.T, s *Server, steps []apiStep) {
	t.Helper()
	for _, st := range steps {
		rec, eb := call(t, s, st.method, st.path, st.token, st.body)
		if rec.Code != st.status || eb.Error.Code != st.code {
			t.Errorf("%s: %s %s = %d %q (%s), want %d %q", st.name, st.method, st.path, rec.Code, eb.Error.Code, eb.Error.Message, st.status, st.code)
			continue
		}
		if rec.Code >= 400 && !strings.Contains(eb.Error.Message, eb.Error.Step) {
			t.Errorf("%s: message %q does not carry the step %q", st.name, eb.Error.Message, eb.Error.Step)
		}
		for _, w := range st.say {
			if !strings.Contains(eb.Error.Message, w) {
				t.Errorf("%s: message %q does not say %q", st.name, eb.Error.Message, w)
			}
		}
	}
}

// directoryServer is a test cloud with contoso's Global Administrator,
// an Application Administrator (ops), a User (bob) and ann, and
// fabrikam's administrator with its user eve; it returns their tokens.
func directoryServer(t *testing.T) (s *Server, admin, ops, bob, fabrikam string) {
	t.Helper()
	s = newTestServer(t)
	admin = login(t, s, "admin@contoso.com", testPassword)
	fabrikam = login(t, s, "admin@fabrikam.com", testPassword)
	for _, u := range []struct{ tok, name, role string }{
		{admin, "ops@contoso.com", "app-admin"}, {admin, "bob@contoso.com", "user"}, {admin, "ann@contoso.com", "user"},
		{fabrikam, "eve@fabrikam.com", "user"},
	} {
		if rec, eb := call(t, s, "POST", "/users", u.tok, api.CreateUserRequest{Name: u.name, Role: u.role, Password: testPassword}); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", u.name, rec.Code, eb.Error.Message)
		}
	}
	return s, admin, login(t, s, "ops@contoso.com", testPassword), login(t, s, "bob@contoso.com", testPassword), fabrikam
}

// getUserGroup reads GET /user-groups/{name} as tok.
func getUserGroup(t *testing.T, s *Server, tok, name string) api.UserGroup {
	t.Helper()
	return getJSON[api.UserGroup](t, s, tok, "/user-groups/"+name)
}

// TestUserGroupsAPI: only Global Administrators manage user groups; names
// follow the group name rules in their own namespace; members are users of
// the tenant; refusals name the rule or the missing object; another
// tenant can neither see nor change them.
func TestUserGroupsAPI(t *testing.T) {
	s, admin, ops, bob, fabrikam := directoryServer(t)
	steps := []apiStep{
		{name: "create", method: "POST", path: "/user-groups", token: admin, body: api.CreateUserGroupRequest{Name: "Staff"}, status: 201},
		{name: "a connector group's name is free", method: "POST", path: "/user-groups", token: admin, body: api.CreateUserGroupRequest{Name: "Default"}, status: 201},
		{name: "the same name in another case", method: "POST", path: "/user-groups", token: admin, body: api.CreateUserGroupRequest{Name: "STAFF"}, status: 409, code: "user_group_exists",
			say: []string{"already exists in contoso.com as 'Staff'", "compared without regard to case"}},
		{name: "bad name", method: "POST", path: "/user-groups", token: admin, body: api.CreateUserGroupRequest{Name: "a/b"}, status: 400, code: "bad_user_group_name",
			say: []string{`"a/b" is not a valid user group name`, "may hold only letters, digits, spaces", "use 1 to 64"}},
		{name: "empty name", method: "POST", path: "/user-groups", token: admin, body: api.CreateUserGroupRequest{}, status: 400, code: "bad_user_group_name", say: []string{"it is empty"}},
		{name: "app-admin cannot create", method: "POST", path: "/user-groups", token: ops, body: api.CreateUserGroupRequest{Name: "Ops"}, status: 403, code: "forbidden",
			say: []string{"ops@contoso.com is an Application Administrator, and only a Global Administrator manages user groups"}},
		{name: "user cannot create", method: "POST", path: "/user-groups", token: bob, body: api.CreateUserGroupRequest{Name: "Ops"}, status: 403, code: "forbidden",
			say: []string{"bob@contoso.com is a User, and only a Global Administrator manages user groups"}},
		{name: "user cannot delete", method: "DELETE", path: "/user-groups/Nope", token: bob, status: 403, code: "forbidden", say: []string{"only a Global Administrator"}},
		{name: "add a member", method: "POST", path: "/user-groups/staff/members", token: admin, body: api.AddMemberRequest{User: "Ann@Contoso.com"}, status: 200},
		{name: "add again", method: "POST", path: "/user-groups/Staff/members", token: admin, body: api.AddMemberRequest{User: "ann@contoso.com"}, status: 409, code: "already_member",
			say: []string{"ann@contoso.com is already a member of the user group 'Staff'"}},
		{name: "add an unknown user", method: "POST", path: "/user-groups/Staff/members", token: admin, body: api.AddMemberRequest{User: "nobody@contoso.com"}, status: 404, code: "no_user",
			say: []string{"There is no user nobody@contoso.com in contoso.com"}},
		{name: "add another tenant's user", method: "POST", path: "/user-groups/Staff/members", token: admin, body: api.AddMemberRequest{User: "eve@fabrikam.com"}, status: 400, code: "bad_user_name"},
		{name: "add to an unknown group", method: "POST", path: "/user-groups/Nope/members", token: admin, body: api.AddMemberRequest{User: "ann@contoso.com"}, status: 404, code: "no_user_group",
			say: []string{"There is no user group 'Nope' in contoso.com"}},
		{name: "app-admin cannot add", method: "POST", path: "/user-groups/Staff/members", token: ops, body: api.AddMemberRequest{User: "bob@contoso.com"}, status: 403, code: "forbidden"},
		{name: "user reads", method: "GET", path: "/user-groups/Staff", token: bob, status: 200},
		{name: "other tenant cannot see", method: "GET", path: "/user-groups/Staff", token: fabrikam, status: 404, code: "no_user_group", say: []string{"in fabrikam.com"}},
		{name: "other tenant cannot add its user", method: "POST", path: "/user-groups/Staff/members", token: fabrikam, body: api.AddMemberRequest{User: "eve@fabrikam.com"}, status: 404, code: "no_user_group"},
		{name: "other tenant cannot remove", method: "DELETE", path: "/user-groups/Staff/members/ann@contoso.com", token: fabrikam, status: 404, code: "no_user_group"},
		{name: "other tenant cannot delete", method: "DELETE", path: "/user-groups/Staff", token: fabrikam, status: 404, code: "no_user_group"},
		{name: "same name in the other tenant", method: "POST", path: "/user-groups", token: fabrikam, body: api.CreateUserGroupRequest{Name: "Staff"}, status: 201},
		{name: "other tenant adds its own user", method: "POST", path: "/user-groups/Staff/members", token: fabrikam, body: api.AddMemberRequest{User: "eve@fabrikam.com"}, status: 200},
		{name: "remove a non-member", method: "DELETE", path: "/user-groups/Staff/members/bob@contoso.com", token: admin, status: 404, code: "not_member",
			say: []string{"bob@contoso.com is not a member of the user group 'Staff'"}},
	}
	runSteps(t, s, steps)

	g := getUserGroup(t, s, admin, "Staff")
	if g.MemberCount != 1 || !slices.Equal(g.Members, []string{"ann@contoso.com"}) {
		t.Errorf("contoso's Staff = %+v, want ann@contoso.com alone", g)
	}
	if g := getUserGroup(t, s, fabrikam, "staff"); !slices.Equal(g.Members, []string{"eve@fabrikam.com"}) {
		t.Errorf("fabrikam's Staff = %+v, want eve@fabrikam.com alone", g)
	}
	rec, _ := call(t, s, "GET", "/user-groups", bob, nil)
	var list []api.UserGroup
	json.Unmarshal(rec.Body.Bytes(), &list)
	if len(list) != 2 || list[0].Name != "Default" || list[1].Name != "Staff" || list[1].MemberCount != 1 || list[1].Members != nil {
		t.Errorf("GET /user-groups = %+v, want Default and Staff (1 member, no member names)", list)
	}

	runSteps(t, s, []apiStep{
		{name: "remove", method: "DELETE", path: "/user-groups/Staff/members/ann@contoso.com", token: admin, status: 200},
		{name: "delete", method: "DELETE", path: "/user-groups/Staff", token: admin, status: 204},
		{name: "delete again", method: "DELETE", path: "/user-groups/Staff", token: admin, status: 404, code: "no_user_group"},
	})
	if g := getUserGroup(t, s, fabrikam, "Staff"); len(g.Members) != 1 {
		t.Errorf("fabrikam's Staff after contoso deleted its own = %+v", g)
	}

	evs, err := eventlog.Read(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{eventlog.UserGroupCreated, eventlog.UserGroupDeleted, eventlog.UserGroupMemberAdded, eventlog.UserGroupMemberRemoved}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[eventlog.ID]int{}
	for _, e := range evs {
		count[eventlog.ID(e.ID)]++
	}
	want := map[eventlog.ID]int{eventlog.UserGroupCreated: 3, eventlog.UserGroupMemberAdded: 2, eventlog.UserGroupMemberRemoved: 1, eventlog.UserGroupDeleted: 1}
	for id, n := range want {
		if count[id] != n {
			t.Errorf("event %d logged %d times, want %d (events %v)", id, count[id], n, count)
		}
	}
}
