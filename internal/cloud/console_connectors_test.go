package cloud

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/store"
)

// adminBrowser is a browser signed in at the start page as contoso's
// Global Administrator.
func (env *preauthEnv) adminBrowser(t *testing.T) *browser {
	t.Helper()
	b := env.browser(t)
	if resp, page := b.homeSignIn("admin@contoso.com", testPassword); resp.StatusCode != 200 {
		t.Fatalf("the administrator's sign-in: %s:\n%s", resp.Status, page)
	}
	return b
}

// post sends a form of the admin center at path (with the CSRF token of
// the page it was on) and returns the answer, not following a redirect.
func (b *browser) postFrom(path, onPage string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	form.Set("csrf", csrfOf(b.t, onPage))
	return b.do("POST", cloudURL+path, form)
}

// mustContain fails unless page contains every one of want.
func mustContain(t *testing.T, what, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, page)
		}
	}
}

// apiRefusal is the sentence the admin API answers to method path with
// body, HTML-escaped as a page shows it, after checking its status.
func apiRefusal(t *testing.T, s *Server, method, path string, body any, status int) string {
	t.Helper()
	tok := login(t, s, "admin@contoso.com", testPassword)
	rec, eb := call(t, s, method, path, tok, body)
	if rec.Code != status || eb.Error.Message == "" {
		t.Fatalf("%s %s: %d %q, want %d with a sentence", method, path, rec.Code, eb.Error.Message, status)
	}
	return html.EscapeString(eb.Error.Message)
}

// TestConsoleConnectors: the connectors page and a connector's page show
// the API's data (with a warning for a certificate that expires soon);
// the move form moves it, or shows the API's refusal; deleting one goes
// through a confirmation that says what it does, and deletes it.
func TestConsoleConnectors(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	st := env.srv.store
	cs, err := st.ListConnectors(ctx, env.tenant.ID)
	if err != nil || len(cs) != 1 {
		t.Fatalf("connectors: %v %v", cs, err)
	}
	host1 := cs[0]
	def, err := st.GroupByName(ctx, env.tenant.ID, "Default")
	if err != nil {
		t.Fatal(err)
	}
	// A second connector, never connected, whose certificate expires in
	// five days.
	old := store.Connector{ID: "c_oldsite", TenantID: env.tenant.ID, GroupID: def.ID, Hostname: "oldsite", Version: "0.9.0",
		CertSerial: "0a0b0c", CertThumbprint: strings.Repeat("AB", 32), CertNotAfter: time.Now().Add(5*24*time.Hour + time.Hour), CreatedAt: time.Now()}
	if err := st.CreateConnector(ctx, old); err != nil {
		t.Fatal(err)
	}
	admin := env.adminBrowser(t)

	resp, page := admin.do("GET", cloudURL+"/admin/connectors", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("connectors page: %s:\n%s", resp.Status, page)
	}
	mustContain(t, "the connectors page", page, `id="connector-`+host1.ID+`"`, ">"+host1.Hostname+"</a>", `class="status-active">active`,
		`id="connector-c_oldsite"`, ">oldsite</a>", `class="status-inactive">inactive`, "0.9.0", "(in 5 days)", `href="/admin/connectors/c_oldsite"`)

	resp, page = admin.do("GET", cloudURL+"/admin/connectors/"+host1.ID, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("host1's page: %s:\n%s", resp.Status, page)
	}
	mustContain(t, "host1's page", page, "<h1>Connector "+host1.Hostname+"</h1>", `id="connector-version">`+host1.Version+`<`, `id="connector-status">active<`,
		`href="/admin/events?connector=`+host1.ID+`"`, "Events of this connector", `<option value="Default" selected>`,
		`action="/admin/connectors/`+host1.ID+`/move"`, `href="/admin/connectors/`+host1.ID+`/delete"`, "Tunnel protocol</dt><dd>version ")
	if strings.Contains(page, `id="cert-warning"`) {
		t.Errorf("host1's fresh certificate is warned about:\n%s", page)
	}
	_, oldPage := admin.do("GET", cloudURL+"/admin/connectors/c_oldsite", nil)
	mustContain(t, "oldsite's page", oldPage, `id="cert-warning"`, "in 5 days", "not connected", `id="no-events"`)

	// Moving to a group that does not exist: the API's refusal, next to
	// the form, with its status; nothing moved.
	want := apiRefusal(t, env.srv, "POST", "/connectors/"+host1.ID+"/move", api.MoveConnectorRequest{Group: "Nowhere"}, 404)
	resp, moved := admin.postFrom("/admin/connectors/"+host1.ID+"/move", page, url.Values{"group": {"Nowhere"}})
	if resp.StatusCode != 404 {
		t.Fatalf("move to a missing group: %s, want 404:\n%s", resp.Status, moved)
	}
	mustContain(t, "the refused move", moved, `id="error"`, want, `<form method="post" action="/admin/connectors/`+host1.ID+`/move"`)

	// Moving to another group.
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/groups", tok, api.CreateGroupRequest{Name: "Site-B"}); rec.Code != 201 {
		t.Fatalf("create Site-B: %d %s", rec.Code, eb.Error.Message)
	}
	resp, _ = admin.postFrom("/admin/connectors/"+host1.ID+"/move", page, url.Values{"group": {"Site-B"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/connectors/"+host1.ID {
		t.Fatalf("move to Site-B: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	_, page = admin.do("GET", cloudURL+"/admin/connectors/"+host1.ID, nil)
	mustContain(t, "host1's page after the move", page, `id="flash"`, "Moved connector "+host1.ID+" to group &#39;Site-B&#39;.",
		`<option value="Site-B" selected>`)
	// The move is among its events of the last hours, from the cloud's side.
	mustContain(t, "host1's events after the move", page, "<h2 id=\"events-h\">Events of the last 24 hours</h2>", `<tr class="event" data-id="`,
		"Connector "+host1.ID+" was moved to group &#39;Site-B&#39; by admin@contoso.com")
	siteB, _ := st.GroupByName(ctx, env.tenant.ID, "Site-B")
	if c, err := st.ConnectorByID(ctx, env.tenant.ID, host1.ID); err != nil || c.GroupID != siteB.ID {
		t.Errorf("host1 after the move: group %q (%v), want Site-B's %q", c.GroupID, err, siteB.ID)
	}

	// Deleting: a confirmation that says what it does, then the deletion.
	resp, confirm := admin.do("GET", cloudURL+"/admin/connectors/c_oldsite/delete", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("delete confirmation: %s:\n%s", resp.Status, confirm)
	}
	mustContain(t, "the delete confirmation", confirm, "revokes its certificate", "register again", `action="/admin/connectors/c_oldsite/delete"`)
	if _, err := st.ConnectorByID(ctx, env.tenant.ID, "c_oldsite"); err != nil {
		t.Fatalf("the confirmation page deleted the connector: %v", err)
	}
	resp, _ = admin.postFrom("/admin/connectors/c_oldsite/delete", confirm, url.Values{})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/connectors" {
		t.Fatalf("delete: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	_, page = admin.do("GET", cloudURL+"/admin/connectors", nil)
	mustContain(t, "the connectors page after the deletion", page, `id="flash"`, "Deleted connector c_oldsite; its certificate is revoked")
	if strings.Contains(page, `id="connector-c_oldsite"`) {
		t.Errorf("the deleted connector is still listed:\n%s", page)
	}
	if rec, _ := call(t, env.srv, "GET", "/connectors/c_oldsite", tok, nil); rec.Code != 404 {
		t.Errorf("the API after the deletion: %d, want 404", rec.Code)
	}
	// Deleting it again: the API's 404, on the error page.
	want = apiRefusal(t, env.srv, "DELETE", "/connectors/c_oldsite", nil, 404)
	resp, page = admin.postFrom("/admin/connectors/c_oldsite/delete", confirm, url.Values{})
	if resp.StatusCode != 404 {
		t.Fatalf("deleting again: %s, want 404", resp.Status)
	}
	mustContain(t, "deleting again", page, `id="error"`, want)
}
