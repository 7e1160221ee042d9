package cloud

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
)

// getAppDetail reads GET /apps/{name} as tok.
func getAppDetail(t *testing.T, s *Server, tok, name string) api.AppDetail {
	t.Helper()
	return getJSON[api.AppDetail](t, s, tok, "/apps/"+name)
}

// assignmentsText is an application's assignments as "kind:name" words.
func assignmentsText(d api.AppDetail) string {
	var out []string
	for _, a := range d.Assignments {
		out = append(out, a.Kind+":"+a.Name)
	}
	return strings.Join(out, " ")
}

// TestAssignmentsAPI: Application and Global Administrators assign users
// and user groups of their tenant to its applications, never another
// tenant's; GET /apps/{name} lists them with a note that they are not
// enforced while the application is passthrough (and none once it is
// sallyport); deleting a user group removes its assignments.
func TestAssignmentsAPI(t *testing.T) {
	s, admin, ops, bob, fabrikam := directoryServer(t)
	for _, tok := range []string{admin, fabrikam} {
		if rec, eb := call(t, s, "POST", "/apps", tok, api.CreateAppRequest{Name: "web", InternalURL: "http://intranet:8080/", PreAuth: "passthrough"}); rec.Code != 201 {
			t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
		}
	}
	runSteps(t, s, []apiStep{
		{name: "user group", method: "POST", path: "/user-groups", token: admin, body: api.CreateUserGroupRequest{Name: "Staff"}, status: 201},
		{name: "fabrikam's user group", method: "POST", path: "/user-groups", token: fabrikam, body: api.CreateUserGroupRequest{Name: "Outsiders"}, status: 201},
		{name: "member", method: "POST", path: "/user-groups/Staff/members", token: admin, body: api.AddMemberRequest{User: "bob@contoso.com"}, status: 200},
	})

	rec, eb := call(t, s, "POST", "/apps/web/assignments", ops, api.AssignRequest{User: "ann@contoso.com"})
	if rec.Code != 201 {
		t.Fatalf("app-admin assigns a user: %d %s", rec.Code, eb.Error.Message)
	}
	var a api.Assignment
	json.Unmarshal(rec.Body.Bytes(), &a)
	if a.Kind != "user" || a.Name != "ann@contoso.com" || !strings.Contains(a.Note, "anyone who can reach it gets through") || !strings.Contains(a.Note, "--pre-auth sallyport") {
		t.Errorf("assignment answer = %+v, want user ann@contoso.com with a note that passthrough lets anyone through", a)
	}

	runSteps(t, s, []apiStep{
		{name: "global admin assigns a user group", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{UserGroup: "staff"}, status: 201},
		{name: "user cannot assign", method: "POST", path: "/apps/web/assignments", token: bob, body: api.AssignRequest{User: "bob@contoso.com"}, status: 403, code: "forbidden"},
		{name: "user cannot unassign", method: "DELETE", path: "/apps/web/assignments/users/ann@contoso.com", token: bob, status: 403, code: "forbidden"},
		{name: "user reads", method: "GET", path: "/apps/web/assignments", token: bob, status: 200},
		{name: "assign a user again", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{User: "ann@contoso.com"}, status: 409, code: "already_assigned",
			say: []string{"ann@contoso.com is already assigned to the application 'web'"}},
		{name: "assign a user group again", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{UserGroup: "Staff"}, status: 409, code: "already_assigned",
			say: []string{"The user group 'Staff' is already assigned"}},
		{name: "neither", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{}, status: 400, code: "bad_assignment"},
		{name: "both", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{User: "ann@contoso.com", UserGroup: "Staff"}, status: 400, code: "bad_assignment"},
		{name: "unknown user", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{User: "nobody@contoso.com"}, status: 404, code: "no_user"},
		{name: "unknown user group", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{UserGroup: "Nope"}, status: 404, code: "no_user_group"},
		{name: "unknown app", method: "POST", path: "/apps/nope/assignments", token: admin, body: api.AssignRequest{User: "ann@contoso.com"}, status: 404, code: "no_app"},
		{name: "another tenant's user", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{User: "eve@fabrikam.com"}, status: 400, code: "bad_user_name"},
		{name: "another tenant's user group", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{UserGroup: "Outsiders"}, status: 404, code: "no_user_group"},
		{name: "fabrikam assigns its user to its own web", method: "POST", path: "/apps/web/assignments", token: fabrikam, body: api.AssignRequest{User: "eve@fabrikam.com"}, status: 201},
		{name: "fabrikam cannot assign contoso's user group", method: "POST", path: "/apps/web/assignments", token: fabrikam, body: api.AssignRequest{UserGroup: "Staff"}, status: 404, code: "no_user_group"},
		{name: "fabrikam cannot unassign contoso's user", method: "DELETE", path: "/apps/web/assignments/users/ann@contoso.com", token: fabrikam, status: 400, code: "bad_user_name"},
		{name: "unassign a user assigned only through a group", method: "DELETE", path: "/apps/web/assignments/users/bob@contoso.com", token: admin, status: 404, code: "not_assigned",
			say: []string{"bob@contoso.com is not assigned to the application 'web' directly, only as a member of an assigned user group", "remove-member"}},
		{name: "unassign a user not assigned", method: "DELETE", path: "/apps/web/assignments/users/ops@contoso.com", token: admin, status: 404, code: "not_assigned",
			say: []string{"ops@contoso.com is not assigned to the application 'web'"}},
	})

	d := getAppDetail(t, s, bob, "web")
	if got := assignmentsText(d); got != "user:ann@contoso.com user-group:Staff" {
		t.Errorf("contoso's web assignments = %q", got)
	}
	if !strings.Contains(d.AssignmentsNote, "'web' uses pre-authentication passthrough, so anyone who can reach it gets through, assigned or not") {
		t.Errorf("assignments_note = %q, want the passthrough warning", d.AssignmentsNote)
	}
	if got := assignmentsText(getAppDetail(t, s, fabrikam, "web")); got != "user:eve@fabrikam.com" {
		t.Errorf("fabrikam's web assignments = %q", got)
	}

	runSteps(t, s, []apiStep{
		{name: "unassign a user", method: "DELETE", path: "/apps/web/assignments/users/ann@contoso.com", token: ops, status: 204},
		{name: "delete the user group", method: "DELETE", path: "/user-groups/Staff", token: admin, status: 204},
	})
	if d := getAppDetail(t, s, admin, "web"); d.Assignments == nil || len(d.Assignments) != 0 {
		t.Errorf("assignments after unassigning ann and deleting Staff = %+v, want []", d.Assignments)
	}
	runSteps(t, s, []apiStep{
		{name: "user group again", method: "POST", path: "/user-groups", token: admin, body: api.CreateUserGroupRequest{Name: "Staff"}, status: 201},
		{name: "assign it", method: "POST", path: "/apps/web/assignments", token: admin, body: api.AssignRequest{UserGroup: "Staff"}, status: 201},
		{name: "unassign it", method: "DELETE", path: "/apps/web/assignments/user-groups/Staff", token: ops, status: 204},
		{name: "unassign it again", method: "DELETE", path: "/apps/web/assignments/user-groups/Staff", token: ops, status: 404, code: "not_assigned",
			say: []string{"The user group 'Staff' is not assigned to the application 'web'"}},
	})

	// Once web uses pre-authentication at the cloud, nothing says the
	// assignments are not enforced.
	sallyport := "sallyport"
	runSteps(t, s, []apiStep{{name: "web to sallyport", method: "PATCH", path: "/apps/web", token: ops, body: api.UpdateAppRequest{PreAuth: &sallyport}, status: 200}})
	rec, eb = call(t, s, "POST", "/apps/web/assignments", ops, api.AssignRequest{User: "ann@contoso.com"})
	a = api.Assignment{}
	json.Unmarshal(rec.Body.Bytes(), &a)
	if rec.Code != 201 || a.Note != "" {
		t.Errorf("assigning to a sallyport app = %d %s, note %q, want 201 and no note", rec.Code, eb.Error.Message, a.Note)
	}
	if d := getAppDetail(t, s, bob, "web"); d.PreAuth != "sallyport" || d.AssignmentsNote != "" {
		t.Errorf("sallyport app: preauth %q, assignments_note %q, want sallyport and none", d.PreAuth, d.AssignmentsNote)
	}
}
