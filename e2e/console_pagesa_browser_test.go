package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sallyport/sallyport/internal/browsertest"
)

// TestBrowserAdminTokenAndConnector, in a real Chromium: an administrator signs in at
// the start page, creates a registration token in the admin center, sees
// it once with working copy buttons (the console's script runs under its
// CSP) on a page that fits 375 px; the page's own commands, run as
// shown, register a connector, which the connectors page then lists; a
// new group, the connector moved into it and deleted, all with the
// pages' forms at 375 px.
func TestBrowserAdminTokenAndConnector(t *testing.T) {
	c := startCloud(t)
	b := (&preauthCloud{cloud: c}).startBrowser(t)

	b.Navigate(c.url + "/")
	b.WaitText("Sign in")
	b.Fill("#submit", map[string]string{"user": contosoAdmin})
	b.Fill("#submit", map[string]string{"password": contosoPW})
	b.WaitText("Admin center")

	b.Navigate(c.url + "/admin/tokens")
	b.WaitText("Create a registration token")
	b.Fill("#create", map[string]string{"lifetime": "1h", "uses": "1"})
	b.WaitText("Registration token created")
	token := browsertest.Eval[string](b, `document.getElementById("token").textContent`)
	command := browsertest.Eval[string](b, `document.getElementById("register-command").textContent`)
	fileCommand := browsertest.Eval[string](b, `document.getElementById("token-file-command").textContent`)
	if !strings.HasPrefix(token, "spr_") || !strings.HasPrefix(command, "sallyport connector register --cloud "+c.url+" --ca-fingerprint "+c.fingerprint) {
		t.Fatalf("token %q, command %q", token, command)
	}
	if shown := browsertest.Eval[int](b, `document.querySelectorAll("button[data-copy]:not([hidden])").length`); shown != 3 {
		t.Errorf("%d copy buttons shown, want 3 (the console's script did not run?)", shown)
	}
	if err := b.Do(chromedp.EmulateViewport(375, 800)); err != nil {
		t.Fatal(err)
	}
	fits(t, b, "the token's page")

	// The page's commands, as an administrator at the site runs them.
	site := newRunner(t, "site")
	sh := exec.Command("sh", "-c", fileCommand)
	sh.Dir = site.dir
	sh.Stdin = strings.NewReader(token + "\n")
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", fileCommand, err, out)
	}
	if fi, err := os.Stat(filepath.Join(site.dir, "sallyport-token")); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("the token file has mode %v, want 0600", fi.Mode().Perm())
	}
	args := strings.Fields(command)[1:]
	site.ok(t, "", append(args, "--dir", filepath.Join(site.dir, "connector"))...)

	b.Navigate(c.url + "/admin/connectors")
	b.WaitText("Registered connectors")
	if n := browsertest.Eval[int](b, `document.querySelectorAll("tr[id^=connector-]").length`); n != 1 {
		t.Fatalf("%d connectors listed after the registration, want 1:\n%s", n, b.Text())
	}
	fits(t, b, "the connectors page")
	id := strings.TrimPrefix(browsertest.Eval[string](b, `document.querySelector("tr[id^=connector-]").id`), "connector-")

	// A new group, the connector moved into it, then deleted — each form
	// posted by the browser (its CSRF cookie and Origin).
	b.Navigate(c.url + "/admin/groups")
	b.WaitText("Create a connector group")
	b.Fill("#create", map[string]string{"name": "Branch"})
	b.WaitText("Created connector group 'Branch'.")
	fits(t, b, "a group's page")
	b.Navigate(c.url + "/admin/connectors/" + id)
	b.WaitText("Move to another group")
	fits(t, b, "the connector's page")
	browsertest.Eval[string](b, `document.getElementById("group").value = "Branch"`)
	b.Fill("#move", nil)
	b.WaitText("Moved connector " + id + " to group 'Branch'.")
	b.Fill("#delete", nil)
	b.WaitText("revokes its certificate")
	b.Fill("#confirm-delete", nil)
	b.WaitText("Deleted connector " + id)
	if n := browsertest.Eval[int](b, `document.querySelectorAll("tr[id^=connector-]").length`); n != 0 {
		t.Errorf("%d connectors listed after the deletion, want 0", n)
	}
	b.Navigate(c.url + "/admin/tokens")
	b.WaitText("Registration tokens")
	if strings.Contains(b.Text(), token) {
		t.Error("the tokens page shows the token again")
	}
}

// fits fails the test when the page is wider than the 375 px screen the
// browser emulates (tables scroll inside their section, not the page).
func fits(t *testing.T, b *browsertest.Browser, what string) {
	t.Helper()
	if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("%s is %d px wide at 375 px", what, w)
	}
}
