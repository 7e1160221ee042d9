package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEdgeErrors: every way a request can fail at the edge is answered
// with the right status and a page that says what failed and what to do.
func TestEdgeErrors(t *testing.T) {
	t.Parallel()
	c := startCloud(t, "--test-backend-timeout", "2s")
	b := newBackend(t)
	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)

	closedPort := freePort(t) // nothing listens there
	slow := c.publish(t, c.admin, "slow", b.url)
	refused := c.publish(t, c.admin, "refused", "http://127.0.0.1:"+closedPort+"/")
	dns := c.publish(t, c.admin, "dns", "http://does-not-exist.invalid/")
	c.admin.ok(t, "", "admin", "group", "create", "Empty")
	lonely := c.publish(t, c.admin, "lonely", b.url, "--group", "Empty")
	conn := c.runConnector(t, c.admin, st)
	mustContain(t, "cloud serve log", c.serve.out.String(), "test-only setting")

	t.Run("504 when the backend is too slow", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		resp, body := c.get(t, slow.ExternalHost, "/slow")
		took := time.Since(start)
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("slow backend: %d %s", resp.StatusCode, body)
		}
		rid := checkErrorPage(t, resp, body, "backend_timeout", "The application did not answer in time")
		mustContain(t, "the request's story", c.requestStory(t, c.admin, rid).Message,
			"The internal application 'slow' at "+b.url+" did not answer within 2s (backend application timeout 'default')",
			"sallyport admin app update slow --timeout long")
		if took < 2*time.Second || took > 30*time.Second {
			t.Errorf("the 504 came after %s, want about 2s", took)
		}
		// The connector gives up on the backend request too.
		select {
		case err := <-b.slowEnded:
			if err == nil {
				t.Errorf("the slow backend request was never cancelled")
			}
		case <-time.After(15 * time.Second):
			t.Errorf("the slow backend request is still running 15s after the 504")
		}
	})

	t.Run("504 page for a browser", func(t *testing.T) {
		t.Parallel()
		resp, body := c.get(t, slow.ExternalHost, "/slow", "Accept", "text/html,application/xhtml+xml")
		if resp.StatusCode != http.StatusGatewayTimeout || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("slow backend, browser: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		mustContain(t, "504 HTML page", body, "<h1>504 Gateway Timeout</h1>", "did not answer in time", "What to do:", "backend_timeout")
	})

	t.Run("502 when the group has no connector", func(t *testing.T) {
		t.Parallel()
		resp, body := c.get(t, lonely.ExternalHost, "/page")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("app of an empty group: %d %s", resp.StatusCode, body)
		}
		rid := checkErrorPage(t, resp, body, "no_connector", "The application cannot be reached right now")
		mustContain(t, "the request's story", c.requestStory(t, c.admin, rid).Message,
			"No active connector in group 'Empty' of contoso.com can serve application 'lonely'",
			"install a connector and assign it to this group")
	})

	t.Run("502 when the backend refuses the connection", func(t *testing.T) {
		t.Parallel()
		resp, body := c.get(t, refused.ExternalHost, "/")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("refused backend: %d %s", resp.StatusCode, body)
		}
		rid := checkErrorPage(t, resp, body, "backend_refused", "The application is not accepting connections")
		mustContain(t, "the request's story", c.requestStory(t, c.admin, rid).Message,
			"The internal application 'refused' at http://127.0.0.1:"+closedPort+"/ refused the connection",
			"listening on 127.0.0.1:"+closedPort)
		// The page's request id leads to the failure in both logs.
		logged := regexp.MustCompile(`backend_refused.*request_id=` + rid + `|request_id=` + rid + `.*backend_refused`)
		for _, p := range []*proc{c.serve, conn} {
			if _, ok := p.waitOutput(logged, 10*time.Second); !ok {
				t.Errorf("%s did not log the backend_refused failure with the request id %s of the error page:\n%s", p.name, rid, tail(p.out.String(), 10))
			}
		}
	})

	t.Run("502 when the backend host does not resolve", func(t *testing.T) {
		t.Parallel()
		resp, body := c.get(t, dns.ExternalHost, "/")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("unresolvable backend: %d %s", resp.StatusCode, body)
		}
		rid := checkErrorPage(t, resp, body, "backend_dns", "its internal address is not known")
		mustContain(t, "the request's story", c.requestStory(t, c.admin, rid).Message,
			"The internal host 'does-not-exist.invalid' of application 'dns' does not resolve",
			"DNS server or hosts file")
	})

	t.Run("404 for a host with no application", func(t *testing.T) {
		t.Parallel()
		host := "nothing-contoso." + cloudName
		resp, body := c.get(t, host, "/")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown host: %d %s", resp.StatusCode, body)
		}
		checkErrorPage(t, resp, body, "no_application", "No application is published at this address", "check the address")
	})

	t.Run("the backend still answers", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.appURL(slow.ExternalHost, "/page"), nil)
		resp, err := c.client(slow.ExternalHost, "h1").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /page of the slow app: %s", resp.Status)
		}
	})
}

var requestIDRe = regexp.MustCompile(`request id ([0-9a-f]{24})`)

// checkErrorPage checks a plain-text edge error page: its code, its
// sentences, and the request id that is also in the response header; it
// returns the request id.
func checkErrorPage(t *testing.T, resp *http.Response, body, code string, want ...string) string {
	t.Helper()
	mustContain(t, "error page", body, append([]string{"(error " + code}, want...)...)
	if got := resp.Header.Get("Sallyport-Error"); got != code {
		t.Errorf("Sallyport-Error header = %q, want %q", got, code)
	}
	m := requestIDRe.FindStringSubmatch(body)
	if m == nil || resp.Header.Get("Sallyport-Request-Id") != m[1] {
		t.Errorf("request id in the page %v and in the header %q differ", m, resp.Header.Get("Sallyport-Request-Id"))
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("error page Cache-Control = %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	for _, bad := range []string{"goroutine ", "panic", "dial tcp"} {
		if strings.Contains(body, bad) {
			t.Errorf("error page shows internal detail %q:\n%s", bad, body)
		}
	}
	return resp.Header.Get("Sallyport-Request-Id")
}
