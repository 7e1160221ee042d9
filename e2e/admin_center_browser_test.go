package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sallyport/sallyport/internal/browsertest"
)

// screenshots regenerates docs/images/ from the admin center scenario:
// go test ./e2e -run TestBrowserAdminCenter -screenshots
var screenshots = flag.Bool("screenshots", false, "write the admin center's screenshots to docs/images/")

// setField sets a form field (an input or a select) by its CSS selector,
// as a user picking a value would, and fires its change event.
func setField(b *browsertest.Browser, sel, value string) {
	browsertest.Eval[bool](b, fmt.Sprintf(`(function(){var e=document.querySelector(%s); if(!e){throw new Error("no "+%s)}; e.value=%s; e.dispatchEvent(new Event("change",{bubbles:true})); return true})()`,
		jsString(sel), jsString(sel), jsString(value)))
}

// click clicks the element sel names.
func click(t *testing.T, b *browsertest.Browser, sel string) {
	t.Helper()
	if err := b.Do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %s at %s: %v\n%s", sel, b.Location(), err, b.Text())
	}
}

// shoot saves the page at 1280 and 375 px as docs/images/NAME-1280.png
// and NAME-375.png when -screenshots is given, and checks in any case
// that nothing scrolls sideways at 375 px.
func shoot(t *testing.T, b *browsertest.Browser, name string) {
	t.Helper()
	if err := b.Do(chromedp.EmulateViewport(375, 800)); err != nil {
		t.Fatal(err)
	}
	if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("%s is %d px wide at a 375 px screen: it scrolls sideways", name, w)
	}
	if *screenshots {
		dir := filepath.Join("..", "docs", "images")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b.Screenshot(filepath.Join(dir, name+"-375.png"), 375, 800)
		b.Screenshot(filepath.Join(dir, name+"-1280.png"), 1280, 800)
	}
	if err := b.Do(chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
}

var tokenRe = regexp.MustCompile(`spr_[A-Za-z0-9_-]{43}`)

// TestBrowserAdminCenter, in a real Chromium with the real binary: an
// administrator signs in at https://CLOUDNAME/, opens the admin center,
// creates a connector group, an application and a registration token;
// a connector registered with that token from the command line appears
// as active on the overview without a reload; Test on an application
// whose backend is down shows the failing step; the administrator
// assigns a user, who then sees the tile on My Apps and reaches the
// application; the administrator deletes the connector, and the user's
// next request fails.
func TestBrowserAdminCenter(t *testing.T) {
	c := startCloud(t)
	be := newBackend(t)
	c.admin.ok(t, userPW+"\n", "admin", "user", "create", alice, "--role", "user", "--password-stdin")
	pc := &preauthCloud{cloud: c, backend: be}

	b := pc.startBrowser(t)
	if err := b.Do(chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	b.Navigate(c.url + "/")
	b.WaitText("Sign in")
	b.Fill("#submit", map[string]string{"user": contosoAdmin})
	b.WaitText("Password")
	b.Fill("#submit", map[string]string{"password": contosoPW})
	b.WaitText("My Apps")
	click(t, b, "#admin-center")
	b.WaitText("Overview")

	// A connector group.
	b.Navigate(c.url + "/admin/groups")
	b.WaitText("Connector groups")
	b.Fill("#create", map[string]string{"name": "Branch"})
	b.WaitText("Branch")

	// An application in it.
	b.Navigate(c.url + "/admin/apps/new")
	b.WaitText("Internal URL")
	b.Fill("", map[string]string{"name": "intranet", "internal_url": be.url})
	setField(b, `select[name="group"]`, "Branch")
	click(t, b, "#create-app")
	b.WaitText("intranet")

	// A registration token for it, shown once with the command to run.
	b.Navigate(c.url + "/admin/tokens")
	b.WaitText("Registration tokens")
	setField(b, `select[name="group"]`, "Branch")
	click(t, b, "#create")
	b.WaitText("Registration token created")
	tok := tokenRe.FindString(b.Text())
	if tok == "" {
		t.Fatalf("no registration token on the page:\n%s", b.Text())
	}

	// The overview is open when the connector registers and starts: it
	// shows it active without a reload (the page's marker survives).
	b.Navigate(c.url + "/admin/")
	b.WaitText("Overview")
	browsertest.Eval[bool](b, `(window.notReloaded = true)`)
	tokFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokFile, tok+"\n", 0o600)
	dir := filepath.Join(t.TempDir(), "connector")
	res := c.admin.ok(t, "", "connector", "register", "--cloud", c.url, "--dir", dir, "--token-file", tokFile, "--ca-file", c.caFile)
	m := registeredRe.FindStringSubmatch(res.stdout)
	if m == nil || m[3] != "Branch" {
		t.Fatalf("registration with the page's token:\n%s", res)
	}
	st := connectorState{dir: dir, id: m[1], tenant: m[2], group: m[3]}
	conn := c.admin.start(t, "connector "+st.id, "connector", "run", "--dir", dir)
	t.Cleanup(conn.stop)
	activeJS := fmt.Sprintf(`(function(){var r=document.getElementById(%s); return !!r && r.innerText.includes("active") && !r.innerText.includes("inactive")})()`, jsString("connector-"+st.id))
	if !eventually(readyTimeout, func() bool { return browsertest.Eval[bool](b, activeJS) }) {
		t.Fatalf("the overview does not show connector %s active:\n%s", st.id, b.Text())
	}
	if !browsertest.Eval[bool](b, `window.notReloaded === true`) {
		t.Fatal("the overview was reloaded to show the connector: it must refresh itself")
	}

	// Test on an application whose backend is down: the failing step.
	down := freePort(t) // nothing listens there
	b.Navigate(c.url + "/admin/apps/new")
	b.WaitText("Internal URL")
	b.Fill("", map[string]string{"name": "down", "internal_url": "http://127.0.0.1:" + down + "/"})
	setField(b, `select[name="group"]`, "Branch")
	click(t, b, "#create-app")
	b.WaitText("down")
	b.Navigate(c.url + "/admin/apps/down")
	click(t, b, "#test-app")
	b.WaitText("refused")
	if !browsertest.Eval[bool](b, `document.getElementById("failing-step") !== null`) {
		t.Fatalf("Test on an application whose backend is down marks no failing step:\n%s", b.Text())
	}

	// Assign alice to intranet.
	b.Navigate(c.url + "/admin/apps/intranet")
	b.WaitText("Assignments")
	b.Fill("#assign", map[string]string{"assignee": alice})
	b.WaitText(alice)
	shoot(t, b, "admin-app")

	// Alice, in her own browser, sees the tile and reaches the app.
	ab := pc.startBrowser(t)
	ab.Navigate(c.url + "/")
	ab.WaitText("Sign in")
	ab.Fill("#submit", map[string]string{"user": alice})
	ab.WaitText("Password")
	ab.Fill("#submit", map[string]string{"password": userPW})
	ab.WaitText("My Apps")
	if !strings.Contains(ab.Text(), "intranet") || strings.Contains(ab.Text(), "Admin center") {
		t.Fatalf("alice's My Apps:\n%s", ab.Text())
	}
	shoot(t, ab, "myapps")
	appHost := "intranet-contoso." + cloudName
	for range 5 {
		ab.Navigate(c.appURL(appHost, "/page"))
		ab.WaitText(backendPage)
	}
	// The overview with that traffic, and the application healthy.
	b.Navigate(c.url + "/admin/")
	b.WaitText("Overview")
	mustContain(t, "the overview", b.Text(), "intranet", "OK")
	shoot(t, b, "admin-overview")

	// The administrator deletes the connector; alice's next request fails.
	b.Navigate(c.url + "/admin/connectors/" + st.id)
	b.WaitText(st.id)
	click(t, b, "#delete")
	b.WaitText("Delete")
	click(t, b, "#confirm-delete")
	b.WaitText("Deleted connector")
	if !eventually(readyTimeout, func() bool {
		ab.Navigate(c.appURL(appHost, "/page"))
		return !strings.Contains(ab.Text(), backendPage)
	}) {
		t.Fatalf("alice still reaches intranet after its only connector was deleted:\n%s", ab.Text())
	}
}
