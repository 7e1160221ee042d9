package e2e

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sallyport/sallyport/internal/browsertest"
	"github.com/sallyport/sallyport/internal/pki"
)

// TestBrowserOverview, in a real Chromium: the admin center's overview,
// left open, shows without a reload what happens meanwhile — a connector
// registered from the CLI appears (inactive, asking for attention), and
// once it runs it shows active and connected, and the application of its
// group stops asking for attention and is no longer unreachable. The charts are inline SVG that the
// CSP lets through, and the page fits a 375 px screen.
func TestBrowserOverview(t *testing.T) {
	c := startCloud(t)
	be := newBackend(t)
	c.publish(t, c.admin, "web", be.url)
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCertPEM(pem)
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.Start(t, browsertest.Options{Trust: []*x509.Certificate{ca}})
	b.Navigate(c.url + "/")
	b.WaitText("Sign in")
	b.Fill("#submit", map[string]string{"user": contosoAdmin})
	b.WaitText("Password")
	b.Fill("#submit", map[string]string{"password": contosoPW})
	b.WaitText("My Apps")
	b.Navigate(c.url + "/admin/")
	b.WaitText("Needs attention")
	b.WaitText("Application 'web' cannot be reached: group 'Default' has no active connector")
	// A mark in the page: gone if the page were loaded again.
	browsertest.Eval[bool](b, `(window.sallyportMark = true)`)

	st := c.mustRegister(t, c.admin, filepath.Join(t.TempDir(), "connector"), contosoAdmin, contosoPW)
	b.WaitText(st.id)
	b.WaitText("is inactive (it never connected)")

	c.runConnector(t, c.admin, st)
	b.WaitText("connected now")
	// Both sections come from the same fetch: the attention list is empty
	// now (web's group has an active connector, which is connected).
	b.WaitText("Nothing needs your attention")
	if health := browsertest.Eval[string](b, `document.querySelector("#app-web td.ok, #app-web td.bad").textContent`); !strings.HasPrefix(health, "Idle") {
		t.Fatalf("web's health reads %q, want Idle (its group has an active connector now)", health)
	}
	status := browsertest.Eval[string](b, `document.querySelector("#connector-`+st.id+` td[class^=status-]").textContent`)
	if status != "active" {
		t.Fatalf("the connector's status reads %q, want active", status)
	}
	if !browsertest.Eval[bool](b, `window.sallyportMark === true`) {
		t.Fatal("the page was loaded again: the overview must update in place")
	}

	// The charts: two per connector, drawn (not blocked), with their text.
	charts := browsertest.Eval[int](b, `document.querySelectorAll("#connector-`+st.id+` svg[role=img]").length`)
	if charts != 2 {
		t.Fatalf("%d charts in the connector's row, want 2", charts)
	}
	if w := browsertest.Eval[float64](b, `document.querySelector("#connector-`+st.id+` svg").getBoundingClientRect().width`); w < 100 {
		t.Fatalf("the chart is %v px wide, want 120", w)
	}
	label := browsertest.Eval[string](b, `document.querySelector("#connector-`+st.id+` svg").getAttribute("aria-label")`)
	if !strings.HasPrefix(label, "Requests per second to ") {
		t.Fatalf("the chart's label is %q", label)
	}

	// The CLI prints the same overview.
	out := c.admin.ok(t, "", "admin", "overview").stdout
	mustContain(t, "admin overview", out, "Nothing needs attention.", st.id, "active", "APPLICATION", "web")

	// At a phone's width the page does not scroll sideways: the tables
	// scroll inside their sections.
	if err := b.Do(chromedp.EmulateViewport(375, 740)); err != nil {
		t.Fatal(err)
	}
	if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Fatalf("the overview is %d px wide at a 375 px screen", w)
	}
}
