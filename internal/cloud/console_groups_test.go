package cloud

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
)

// TestConsoleGroups: the groups page lists the API's groups with their
// connectors and applications; the forms create, rename and delete a
// group; the API's refusals (a name that is taken or not valid, a group
// still in use, the Default group) are shown with its sentence and
// status.
func TestConsoleGroups(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	st := env.srv.store
	admin := env.adminBrowser(t)

	resp, page := admin.do("GET", cloudURL+"/admin/groups", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("groups page: %s:\n%s", resp.Status, page)
	}
	// Default has the in-process connector and the applications of contoso.
	mustContain(t, "the groups page", page, `id="group-Default"`, `<a href="/admin/groups/Default">Default</a></td><td>1</td><td>1</td><td>4: `,
		"hr", "pub", "web", "wiki", `action="/admin/groups"`, `<label for="name">`)
	if strings.Contains(page, "fab") {
		t.Errorf("the groups page shows fabrikam's application:\n%s", page)
	}

	// Create: a refusal keeps what was typed; then a group is created.
	want := apiRefusal(t, env.srv, "POST", "/groups", api.CreateGroupRequest{Name: "Bad/Name"}, 400)
	resp, bad := admin.postFrom("/admin/groups", page, url.Values{"name": {"Bad/Name"}})
	if resp.StatusCode != 400 {
		t.Fatalf("create a bad name: %s, want 400:\n%s", resp.Status, bad)
	}
	mustContain(t, "the refused create", bad, `id="error"`, want, `value="Bad/Name"`)
	resp, _ = admin.postFrom("/admin/groups", page, url.Values{"name": {"Berlin DC"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/groups/Berlin%20DC" {
		t.Fatalf("create Berlin DC: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, page = admin.do("GET", cloudURL+"/admin/groups/Berlin%20DC", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("Berlin DC's page: %s:\n%s", resp.Status, page)
	}
	mustContain(t, "Berlin DC's page", page, `id="flash"`, "Created connector group &#39;Berlin DC&#39;.", "No connector is in this group",
		"No application uses this group", `action="/admin/groups/Berlin%20DC/rename"`, `href="/admin/groups/Berlin%20DC/delete"`,
		`<section id="group-Berlin%20DC">`) // an element id holds no space
	_, list := admin.do("GET", cloudURL+"/admin/groups", nil)
	mustContain(t, "the groups page", list, `<tr id="group-Berlin%20DC">`)
	if _, err := st.GroupByName(ctx, env.tenant.ID, "Berlin DC"); err != nil {
		t.Fatalf("Berlin DC in the store: %v", err)
	}
	// Creating it again: the API's 409.
	want = apiRefusal(t, env.srv, "POST", "/groups", api.CreateGroupRequest{Name: "Berlin DC"}, 409)
	resp, bad = admin.postFrom("/admin/groups", page, url.Values{"name": {"Berlin DC"}})
	if resp.StatusCode != 409 {
		t.Fatalf("create Berlin DC again: %s, want 409", resp.Status)
	}
	mustContain(t, "the second create", bad, want)

	// Rename: refused for Default, then done.
	_, defPage := admin.do("GET", cloudURL+"/admin/groups/Default", nil)
	mustContain(t, "Default's page", defPage, `id="connector-`, `<a href="/admin/apps/web">web</a>`)
	want = apiRefusal(t, env.srv, "PATCH", "/groups/Default", api.UpdateGroupRequest{Name: "Main"}, 409)
	resp, bad = admin.postFrom("/admin/groups/Default/rename", defPage, url.Values{"name": {"Main"}})
	if resp.StatusCode != 409 {
		t.Fatalf("rename Default: %s, want 409:\n%s", resp.Status, bad)
	}
	mustContain(t, "the refused rename", bad, `id="error"`, want, `value="Main"`)
	resp, _ = admin.postFrom("/admin/groups/Berlin%20DC/rename", page, url.Values{"name": {"Berlin-DC"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/groups/Berlin-DC" {
		t.Fatalf("rename to Berlin-DC: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	_, page = admin.do("GET", cloudURL+"/admin/groups/Berlin-DC", nil)
	mustContain(t, "Berlin-DC's page", page, "Renamed connector group &#39;Berlin DC&#39; to &#39;Berlin-DC&#39;.")
	if _, err := st.GroupByName(ctx, env.tenant.ID, "Berlin-DC"); err != nil {
		t.Fatalf("Berlin-DC in the store: %v", err)
	}

	// Delete: a group with a connector is refused, on the confirmation
	// page, with the API's sentence naming the connector.
	cs, _ := st.ListConnectors(ctx, env.tenant.ID)
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/connectors/"+cs[0].ID+"/move", tok, api.MoveConnectorRequest{Group: "Berlin-DC"}); rec.Code != 200 {
		t.Fatalf("move: %d %s", rec.Code, eb.Error.Message)
	}
	resp, confirm := admin.do("GET", cloudURL+"/admin/groups/Berlin-DC/delete", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("delete confirmation: %s:\n%s", resp.Status, confirm)
	}
	mustContain(t, "the delete confirmation", confirm, "It has 1 connectors", `action="/admin/groups/Berlin-DC/delete"`)
	want = apiRefusal(t, env.srv, "DELETE", "/groups/Berlin-DC", nil, 409)
	resp, bad = admin.postFrom("/admin/groups/Berlin-DC/delete", confirm, url.Values{})
	if resp.StatusCode != 409 {
		t.Fatalf("delete a group with a connector: %s, want 409:\n%s", resp.Status, bad)
	}
	mustContain(t, "the refused delete", bad, `id="error"`, want, cs[0].ID, "sallyport admin connector move")
	// A group that only an application uses: refused too, naming it.
	if rec, eb := call(t, env.srv, "POST", "/groups", tok, api.CreateGroupRequest{Name: "Apps-only"}); rec.Code != 201 {
		t.Fatalf("create Apps-only: %d %s", rec.Code, eb.Error.Message)
	}
	appsOnly := "Apps-only"
	if rec, eb := call(t, env.srv, "PATCH", "/apps/hr", tok, api.UpdateAppRequest{Group: &appsOnly}); rec.Code != 200 {
		t.Fatalf("move hr: %d %s", rec.Code, eb.Error.Message)
	}
	_, appsConfirm := admin.do("GET", cloudURL+"/admin/groups/Apps-only/delete", nil)
	mustContain(t, "Apps-only's delete confirmation", appsConfirm, "It has 0 connectors and 1 applications (hr)")
	want = apiRefusal(t, env.srv, "DELETE", "/groups/Apps-only", nil, 409)
	resp, bad = admin.postFrom("/admin/groups/Apps-only/delete", appsConfirm, url.Values{})
	if resp.StatusCode != 409 {
		t.Fatalf("delete a group with an application: %s, want 409:\n%s", resp.Status, bad)
	}
	mustContain(t, "the refused delete of Apps-only", bad, `id="error"`, want, "application &#39;hr&#39;", "sallyport admin app update")
	// Moved back, the group is deleted.
	if rec, eb := call(t, env.srv, "POST", "/connectors/"+cs[0].ID+"/move", tok, api.MoveConnectorRequest{Group: "Default"}); rec.Code != 200 {
		t.Fatalf("move back: %d %s", rec.Code, eb.Error.Message)
	}
	resp, _ = admin.postFrom("/admin/groups/Berlin-DC/delete", confirm, url.Values{})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/groups" {
		t.Fatalf("delete Berlin-DC: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	_, page = admin.do("GET", cloudURL+"/admin/groups", nil)
	mustContain(t, "the groups page after the deletion", page, "Deleted connector group &#39;Berlin-DC&#39;.")
	if strings.Contains(page, `id="group-Berlin-DC"`) {
		t.Errorf("the deleted group is still listed:\n%s", page)
	}
	if _, err := st.GroupByName(ctx, env.tenant.ID, "Berlin-DC"); err == nil {
		t.Error("Berlin-DC is still in the store")
	}
	// A group that does not exist: 404 on its page.
	resp, page = admin.do("GET", cloudURL+"/admin/groups/Berlin-DC", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("a deleted group's page: %s, want 404", resp.Status)
	}
	mustContain(t, "a deleted group's page", page, `id="error"`, "There is no connector group &#39;Berlin-DC&#39; in contoso.com")
}
