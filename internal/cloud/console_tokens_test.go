package cloud

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/connector"
)

var (
	tokenRE       = regexp.MustCompile(`<pre id="token">(spr_[A-Za-z0-9_-]+)</pre>`)
	fingerprintRE = regexp.MustCompile(`--ca-fingerprint (sha256:[0-9a-f]{64}) `)
)

// TestConsoleTokens: the tokens page lists the API's registration tokens
// (never the tokens); creating one shows it once, on the answer, with the
// ready commands — and a connector registers with exactly those; the
// form's and the API's refusals are shown with their sentences; revoking
// goes through a confirmation.
func TestConsoleTokens(t *testing.T) {
	env := startMyApps(t)
	ctx := t.Context()
	admin := env.adminBrowser(t)

	resp, page := admin.do("GET", cloudURL+"/admin/tokens", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("tokens page: %s:\n%s", resp.Status, page)
	}
	mustContain(t, "the tokens page", page, "No registration token yet.", `action="/admin/tokens"`, `<option value="Default" selected>`,
		`<label for="lifetime">`, `id="lifetime" name="lifetime" value="24h"`, `<label for="uses">`, `value="1"`)

	// Refusals: a lifetime the form cannot read, then what the API refuses.
	resp, bad := admin.postFrom("/admin/tokens", page, url.Values{"group": {"Default"}, "lifetime": {"forever"}, "uses": {"1"}})
	if resp.StatusCode != 400 {
		t.Fatalf("lifetime forever: %s, want 400", resp.Status)
	}
	mustContain(t, "lifetime forever", bad, `id="error"`, "&#34;forever&#34; is not a token lifetime", `value="forever"`)
	long := int64(45 * 86400)
	want := apiRefusal(t, env.srv, "POST", "/tokens", api.CreateRegistrationTokenRequest{ExpiresInSeconds: &long}, 400)
	resp, bad = admin.postFrom("/admin/tokens", page, url.Values{"group": {"Default"}, "lifetime": {"45d"}, "uses": {"1"}})
	if resp.StatusCode != 400 {
		t.Fatalf("lifetime 45d: %s, want 400", resp.Status)
	}
	mustContain(t, "lifetime 45d", bad, want, `value="45d"`)
	many := 99999
	want = apiRefusal(t, env.srv, "POST", "/tokens", api.CreateRegistrationTokenRequest{MaxUses: &many}, 400)
	resp, bad = admin.postFrom("/admin/tokens", page, url.Values{"group": {"Default"}, "lifetime": {"1h"}, "uses": {"99999"}})
	if resp.StatusCode != 400 {
		t.Fatalf("99999 uses: %s, want 400", resp.Status)
	}
	mustContain(t, "99999 uses", bad, want)
	want = apiRefusal(t, env.srv, "POST", "/tokens", api.CreateRegistrationTokenRequest{Group: "Nowhere"}, 404)
	resp, bad = admin.postFrom("/admin/tokens", page, url.Values{"group": {"Nowhere"}, "lifetime": {"1h"}, "uses": {"1"}})
	if resp.StatusCode != 404 {
		t.Fatalf("group Nowhere: %s, want 404", resp.Status)
	}
	mustContain(t, "group Nowhere", bad, want)

	// Created: the token on the answer itself, not stored by the browser.
	resp, created := admin.postFrom("/admin/tokens", page, url.Values{"group": {"Default"}, "lifetime": {"2h"}, "uses": {"2"}})
	if resp.StatusCode != 200 {
		t.Fatalf("create: %s, want 200 (the token on the answer):\n%s", resp.Status, created)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the token's page: Cache-Control %q, want no-store", cc)
	}
	m := tokenRE.FindStringSubmatch(created)
	if m == nil {
		t.Fatalf("no token on the answer:\n%s", created)
	}
	token := m[1]
	fp := env.srv.caFingerprint()
	cloud := env.srv.origin(env.srv.settings.Name)
	mustContain(t, "the token's page", created, "for connector group 'Default'", "(2 hours), for 2 registrations",
		`data-copy="token"`, `<pre id="token-file-command">umask 077; cat &gt; sallyport-token</pre>`, `data-copy="token-file-command"`,
		`<pre id="register-command">sallyport connector register --cloud `+cloud+` --ca-fingerprint `+fp+` --token-file sallyport-token</pre>`,
		`data-copy="register-command"`, "shown only now")

	// The page's command registers a connector: its cloud, fingerprint
	// and token (the cloud is reached on this test's port).
	f := fingerprintRE.FindStringSubmatch(created)
	if f == nil {
		t.Fatal("no fingerprint in the command")
	}
	u, _ := url.Parse(env.appURL)
	tr, err := connector.Register(ctx, connector.RegisterOptions{CloudURL: "https://sallyport.localhost:" + u.Port(), Dir: filepath.Join(t.TempDir(), "site2"),
		Token: token, CAFingerprint: f[1], Hostname: "site2", Version: "test"})
	if err != nil {
		t.Fatalf("register with the page's token: %v", err)
	}

	// The list: the token's id and uses, never the token.
	var ts []api.RegistrationToken
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	rec, _ := call(t, env.srv, "GET", "/tokens", tok, nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("tokens: %v %s", err, rec.Body)
	}
	id := ts[0].ID
	resp, page = admin.do("GET", cloudURL+"/admin/tokens", nil)
	mustContain(t, "the list", page, `id="token-`+id+`"`, "<td>1/2</td>", "admin@contoso.com", `class="ok">active`, `href="/admin/tokens/`+id+`/revoke"`)
	if strings.Contains(page, token) || strings.Contains(page, token[4:]) {
		t.Errorf("the list shows the token itself:\n%s", page)
	}
	if _, cpage := admin.do("GET", cloudURL+"/admin/connectors/"+tr.ConnectorID, nil); !strings.Contains(cpage, "<h1>Connector site2</h1>") {
		t.Errorf("the connector registered with the token has no page:\n%s", cpage)
	}

	// Revoke: a confirmation, then the revocation.
	resp, confirm := admin.do("GET", cloudURL+"/admin/tokens/"+id+"/revoke", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("revoke confirmation: %s:\n%s", resp.Status, confirm)
	}
	mustContain(t, "the revoke confirmation", confirm, "can then no longer register connectors", `action="/admin/tokens/`+id+`/revoke"`)
	resp, _ = admin.postFrom("/admin/tokens/"+id+"/revoke", confirm, url.Values{})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/tokens" {
		t.Fatalf("revoke: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	_, page = admin.do("GET", cloudURL+"/admin/tokens", nil)
	mustContain(t, "the list after revoking", page, `id="flash"`, "Revoked registration token "+id, "revoked by admin@contoso.com")
	if strings.Contains(page, `href="/admin/tokens/`+id+`/revoke"`) {
		t.Errorf("a revoked token can be revoked again:\n%s", page)
	}
	rec, _ = call(t, env.srv, "GET", "/tokens", tok, nil)
	if json.Unmarshal(rec.Body.Bytes(), &ts); len(ts) != 1 || ts[0].State != api.TokenRevoked {
		t.Errorf("the token after revoking: %+v", ts)
	}
	// A token that does not exist: the API's 404.
	want = apiRefusal(t, env.srv, "DELETE", "/tokens/r_nope", nil, 404)
	resp, page = admin.postFrom("/admin/tokens/r_nope/revoke", confirm, url.Values{})
	if resp.StatusCode != 404 {
		t.Fatalf("revoke r_nope: %s, want 404", resp.Status)
	}
	mustContain(t, "revoke r_nope", page, `id="error"`, want)
	if resp, _ := admin.do("GET", cloudURL+"/admin/tokens/r_nope/revoke", nil); resp.StatusCode != 404 {
		t.Errorf("the confirmation of r_nope: %s, want 404", resp.Status)
	}
}
