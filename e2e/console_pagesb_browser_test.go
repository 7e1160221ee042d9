package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sallyport/sallyport/internal/browsertest"
)

// TestBrowserAdminAppsUsersDomains, in a real Chromium: the administrator
// signs in at the start page, runs Test on an application and sees its
// steps, and the applications, application, users and domains pages fit
// a 375 px screen (wide tables scroll inside their section); the TXT
// record's copy buttons are shown once the console's script runs.
func TestBrowserAdminAppsUsersDomains(t *testing.T) {
	pc := startPreauthCloud(t)
	pc.admin.ok(t, "", "admin", "domain", "add", "apps.contoso.com")

	b := pc.startBrowser(t)
	b.Navigate(pc.url + "/")
	b.WaitText("Sign in")
	b.Fill("#submit", map[string]string{"user": contosoAdmin})
	b.WaitText("Password")
	b.Fill("#submit", map[string]string{"password": contosoPW})
	b.WaitText("My Apps")

	b.Navigate(pc.url + "/admin/apps/web")
	b.WaitText("Application web")
	b.Fill("#test-app", nil)
	b.WaitText("Test of web")
	text := b.Text()
	for _, want := range []string{"The application is published", "has connectors", "A connector of the group is connected", "Requests reach the backend"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the test page lacks %q:\n%s", want, text)
		}
	}

	b.Navigate(pc.url + "/admin/domains")
	b.WaitText("apps.contoso.com")
	if err := b.Do(chromedp.WaitVisible(chromedp.CSS(`[data-copy="txt-value-0"]`))); err != nil {
		t.Fatalf("the TXT value's copy button is not shown: %v", err)
	}

	if err := b.Do(chromedp.EmulateViewport(375, 740)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ path, text string }{
		{"/admin/apps", "Published applications"}, {"/admin/apps/web", "Application web"}, {"/admin/apps/new", "Publish an application"},
		{"/admin/users", "Users of contoso.com"}, {"/admin/user-groups", "User groups of contoso.com"},
		{"/admin/idp", "Redirect URI"}, {"/admin/domains", "Domains of contoso.com"},
	} {
		b.Navigate(pc.url + p.path)
		b.WaitText(p.text)
		if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
			t.Errorf("%s is %d px wide at a 375 px screen", p.path, w)
		}
	}
}
