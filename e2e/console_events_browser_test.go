package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sallyport/sallyport/internal/browsertest"
)

// TestBrowserConsoleEvents, in a real Chromium 375 px wide: an
// administrator signed in at the cloud's name opens the admin center's
// Events page, sees the edge's event of a failed request without the page
// scrolling sideways, filters it with the GET form (the filter is in the
// address) and follows the request id to the request's story.
func TestBrowserConsoleEvents(t *testing.T) {
	c := startCloud(t)
	c.publish(t, c.admin, "web", "http://127.0.0.1:9/")
	// No connector: the edge answers with an error page and writes event
	// 2700 with the request id.
	resp, _ := c.get(t, webHost, "/")
	requestID := resp.Header.Get("Sallyport-Request-Id")
	if requestID == "" {
		t.Fatalf("the edge's error page (%s) has no Sallyport-Request-Id", resp.Status)
	}
	b := (&preauthCloud{cloud: c}).startBrowser(t)
	if err := b.Do(chromedp.EmulateViewport(375, 800)); err != nil {
		t.Fatal(err)
	}
	b.Navigate(c.url + "/")
	b.WaitText("Sign in")
	b.Fill("#submit", map[string]string{"user": contosoAdmin})
	b.WaitText("Password")
	b.Fill("#submit", map[string]string{"password": contosoPW})
	b.WaitText("Admin center")

	b.Navigate(c.url + "/admin/events")
	b.WaitText("Events, newest first")
	if !strings.Contains(b.Text(), requestID) || !strings.Contains(b.Text(), "A request to an application failed") {
		t.Fatalf("the events page lacks the failed request %s:\n%s", requestID, b.Text())
	}
	if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("the events page is %d px wide at 375 px: the table must scroll inside its section: %s", w, wideElements(b))
	}
	if err := b.Do(chromedp.SetValue(chromedp.CSS("#level"), "warning"), chromedp.SendKeys(chromedp.CSS("#app"), "web"),
		chromedp.Click(chromedp.CSS("#apply-filter"), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	b.WaitText("Clear the filters")
	if loc := b.Location(); !strings.Contains(loc, "level=warning") || !strings.Contains(loc, "app=web") {
		t.Errorf("after filtering the page is at %s, want the filters in the address", loc)
	}
	if !strings.Contains(b.Text(), requestID) {
		t.Fatalf("filtered by level warning and app web, the page lacks the request %s:\n%s", requestID, b.Text())
	}
	if err := b.Do(chromedp.Click(chromedp.CSS(`a[href="/admin/requests?id=`+requestID+`"]`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	b.WaitText("What happened")
	for _, want := range []string{"Request " + requestID, "The edge found no connector of group 'Default'", "Events of this request"} {
		if !strings.Contains(b.Text(), want) {
			t.Errorf("the request page lacks %q:\n%s", want, b.Text())
		}
	}
	if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("the request page is %d px wide at 375 px: %s", w, wideElements(b))
	}

	// A request id of the widest digits, unknown: the page that says so
	// fits too.
	b.Navigate(c.url + "/admin/requests?id=" + strings.Repeat("d", 24))
	b.WaitText("knows no failed request")
	if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("the page of an unknown request is %d px wide at 375 px: %s", w, wideElements(b))
	}

	// The updates page, at the same width: the connectors' table and
	// the empty releases.
	b.Navigate(c.url + "/admin/updates")
	b.WaitText("Which connector runs what")
	if !strings.Contains(b.Text(), "No release is published yet") {
		t.Errorf("the updates page of a cloud without releases:\n%s", b.Text())
	}
	if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("the updates page is %d px wide at 375 px: %s", w, wideElements(b))
	}
}

// wideElements names the elements that reach past the window's right
// edge, or whose content overflows them without a scroll bar, for a
// failure's message.
func wideElements(b *browsertest.Browser) string {
	return browsertest.Eval[string](b, `Array.from(document.querySelectorAll('body *')).
		filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth ||
			(getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)).
		slice(0, 8).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' (' + e.scrollWidth + ' px)').join(', ')`)
}
