package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// apiRequestStory is 'admin request show ID --json' output.
type apiRequestStory struct {
	RequestID    string `json:"request_id"`
	App          string `json:"app"`
	Group        string `json:"group"`
	ExternalHost string `json:"external_host"`
	InternalURL  string `json:"internal_url"`
	Client       string `json:"client"`
	Edge         string `json:"edge"`
	Connectors   []struct {
		ID       string `json:"id"`
		Hostname string `json:"hostname"`
		Answered bool   `json:"answered"`
	} `json:"connectors"`
	Status        int    `json:"status"`
	Code          string `json:"code"`
	Source        string `json:"source"`
	Message       string `json:"message"`
	PublicMessage string `json:"public_message"`
}

// requestStory is what admin's 'admin request show ID' says of a request.
func (c *cloud) requestStory(t *testing.T, admin *runner, id string) apiRequestStory {
	t.Helper()
	var st apiRequestStory
	admin.okJSON(t, &st, "admin", "request", "show", id, "--json")
	return st
}

// TestPublicErrorPages: an anonymous client's error page (HTML, JSON or
// text) and its headers carry the code, the request id and a public
// sentence — never the internal URL, host or port, the connector, the
// group or the tenant — while 'admin request show' tells the tenant's
// administrators (and only them) the whole story, and an application
// with --detailed-errors shows the detail on its pages.
func TestPublicErrorPages(t *testing.T) {
	c := startCloud(t)
	site := newRunner(t, "site")
	c.admin.ok(t, "", "admin", "group", "create", "Secret Net")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	closedPort := freePort(t) // nothing listens there
	refusedURL := "http://127.0.0.1:" + closedPort + "/admin/"
	refused := c.publish(t, c.admin, "dead", refusedURL, "--group", "Secret Net")
	dns := c.publish(t, c.admin, "hr", "http://hr-db.corp.contoso.invalid:8443/", "--group", "Secret Net")
	c.admin.ok(t, "", "admin", "connector", "move", st.id, "--group", "Secret Net")
	c.runConnector(t, c.admin, st)
	var hostname string
	for _, x := range c.connectors(t, c.admin) {
		if x.ID == st.id {
			hostname = x.Hostname
		}
	}
	if hostname == "" {
		t.Fatalf("connector %s has no host name", st.id)
	}

	cases := []struct {
		app      apiApp
		code     string
		internal []string // what only administrators may learn
		detail   string   // in the detailed message
	}{
		{refused, "backend_refused", []string{refusedURL, "127.0.0.1:" + closedPort, closedPort, "/admin/"}, "refused the connection from connector " + hostname},
		{dns, "backend_dns", []string{"hr-db.corp.contoso.invalid", "8443"}, "does not resolve on connector " + hostname},
	}
	for _, tc := range cases {
		secrets := append([]string{st.id, "connector " + hostname, "Secret Net", "contoso.com", "'" + tc.app.Name + "'"}, tc.internal...)
		if len(hostname) >= 4 { // a short host name could be part of any word
			secrets = append(secrets, hostname)
		}
		var rid string
		for _, accept := range []string{"text/html", "application/json", "*/*"} {
			for _, proto := range []string{"h1", "h2"} {
				resp, body := fetchPage(t, c, tc.app.ExternalHost, proto, accept)
				what := tc.app.Name + " (" + proto + ", Accept " + accept + ")"
				if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Sallyport-Error") != tc.code {
					t.Fatalf("%s: %d %s, want 502 %s: %s", what, resp.StatusCode, resp.Header.Get("Sallyport-Error"), tc.code, body)
				}
				rid = resp.Header.Get("Sallyport-Request-Id")
				mustContain(t, what, body, tc.code, rid)
				for k, vv := range resp.Header {
					if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "sallyport-") && k != "Sallyport-Error" && k != "Sallyport-Request-Id" {
						t.Errorf("%s: the client got the header %s: %q", what, k, vv)
					}
					for _, s := range secrets {
						if strings.Contains(strings.Join(vv, " "), s) {
							t.Errorf("%s: header %s names %q", what, k, s)
						}
					}
				}
				for _, s := range secrets {
					if strings.Contains(body, s) {
						t.Errorf("%s: the public page names %q:\n%s", what, s, body)
					}
				}
				if accept == "application/json" {
					var pb struct {
						Error struct{ Code, Message, RequestID string } `json:"error"`
					}
					if err := json.Unmarshal([]byte(body), &pb); err != nil || pb.Error.Code != tc.code || pb.Error.Message == "" {
						t.Errorf("%s: JSON page %s (%v)", what, body, err)
					}
				}
			}
		}

		// The administrator gets the whole story of the last request.
		story := c.requestStory(t, c.admin, rid)
		if story.App != tc.app.Name || story.Code != tc.code || story.Source != "connector" || story.Group != "Secret Net" ||
			story.InternalURL != tc.app.InternalURL || len(story.Connectors) != 1 || story.Connectors[0].ID != st.id ||
			story.Connectors[0].Hostname != hostname || !story.Connectors[0].Answered || story.Client != "127.0.0.1" {
			t.Errorf("request story of %s: %+v", rid, story)
		}
		mustContain(t, "the request's message", story.Message, tc.detail)
		res := c.admin.ok(t, "", "admin", "request", "show", rid)
		mustContain(t, "admin request show", res.stdout, rid, tc.app.InternalURL, st.id, hostname, tc.detail, "Secret Net", story.PublicMessage)
		diag := c.admin.ok(t, "", "admin", "app", "diagnose", tc.app.Name)
		mustContain(t, "admin app diagnose", diag.stdout, rid, "sallyport admin request show "+rid,
			"Test requests", st.id, "FAILED "+tc.code, "A test request to "+tc.app.InternalURL+" through connector "+st.id+" failed")
	}

	t.Run("another tenant cannot read the story", func(t *testing.T) {
		fab := c.addFabrikam(t)
		resp, _ := fetchPage(t, c, refused.ExternalHost, "h2", "*/*")
		rid := resp.Header.Get("Sallyport-Request-Id")
		fab.refused(t, "", []string{"admin", "request", "show", rid}, "knows no failed request "+rid+" of fabrikam.com")
		fab.refused(t, "", []string{"admin", "request", "show", "0123456789abcdef01234567"}, "knows no failed request")
	})

	t.Run("an unknown host tells nothing", func(t *testing.T) {
		pages := map[string]bool{}
		for _, host := range []string{"nothing-contoso." + cloudName, "nothing-fabrikam." + cloudName, "nothing-nosuchtenant." + cloudName} {
			resp, body := fetchPage(t, c, host, "h1", "*/*")
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s: %d %s", host, resp.StatusCode, body)
			}
			pages[strings.ReplaceAll(body, resp.Header.Get("Sallyport-Request-Id"), "ID")] = true
		}
		if len(pages) != 1 {
			t.Errorf("unknown hosts get different pages: %v", pages)
		}
	})

	t.Run("detailed errors for the developers", func(t *testing.T) {
		c.admin.ok(t, "", "admin", "app", "update", refused.Name, "--detailed-errors")
		show := c.admin.ok(t, "", "admin", "app", "show", refused.Name)
		if !lineHas(show.stdout, "Detailed", "error", "pages:", "true") {
			t.Errorf("admin app show has no line 'Detailed error pages: true':\n%s", show.stdout)
		}
		_, body := fetchPage(t, c, refused.ExternalHost, "h2", "*/*")
		mustContain(t, "detailed page", body, "(error backend_refused", refusedURL, "refused the connection from connector "+hostname)
		c.admin.ok(t, "", "admin", "app", "update", refused.Name, "--detailed-errors=false")
		_, body = fetchPage(t, c, refused.ExternalHost, "h2", "*/*")
		if strings.Contains(body, refusedURL) {
			t.Errorf("detailed errors turned off, the page still names the internal URL:\n%s", body)
		}
		dev := c.publish(t, c.admin, "dev", refusedURL, "--group", "Secret Net", "--detailed-errors")
		resp, body := fetchPage(t, c, dev.ExternalHost, "h1", "application/json")
		mustContain(t, "detailed JSON page of an app created with --detailed-errors", body, refusedURL, resp.Header.Get("Sallyport-Request-Id"))
	})
}

// fetchPage GETs / of host over proto asking for accept.
func fetchPage(t *testing.T, c *cloud, host, proto, accept string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.appURL(host, "/"), nil)
	req.Header.Set("Accept", accept)
	resp, err := c.client(host, proto).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestHeaderHygiene: variants of the forwarded headers, X-Real-IP and
// Sallyport-* sent by a client (underscores, case) never reach the
// backend, which gets the edge's own once: the client's address, the
// normalised host, https.
func TestHeaderHygiene(t *testing.T) {
	c := startCloud(t)
	b := newBackend(t)
	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", b.url)
	c.runConnector(t, c.admin, st)
	for _, proto := range []string{"h1", "h2"} {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		u := c.appURL(web.ExternalHost, "/headers")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Host = strings.ToUpper(web.ExternalHost) + ".:" + c.port
		for k, v := range map[string]string{"X_forwarded_for": "10.0.0.1", "Sallyport_app": "a_forged", "X-Real-IP": "10.0.0.3",
			"X_Forwarded_Host": "evil.example", "X-Original-URL": "/admin", "Forwarded": "for=10.0.0.5", "X-Kept": "yes"} {
			req.Header[k] = []string{v}
		}
		resp, err := c.client(web.ExternalHost, proto).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		var got http.Header
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		cancel()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %v", proto, resp.Status, err)
		}
		want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Host": web.ExternalHost, "X-Forwarded-Proto": "https"}
		seen := map[string]string{}
		for k, v := range got {
			n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			if other, dup := seen[n]; dup {
				t.Errorf("%s: the backend got %q and %q, one variable to a CGI server", proto, k, other)
			}
			seen[n] = k
			switch {
			case strings.HasPrefix(n, "sallyport-"), n == "x-original-url", n == "forwarded":
				t.Errorf("%s: the backend got %s: %q", proto, k, v)
			case strings.HasPrefix(n, "x-forwarded-") || n == "x-real-ip":
				if w := want[k]; len(v) != 1 || v[0] != w {
					t.Errorf("%s: the backend got %s = %q, want [%q]", proto, k, v, w)
				}
			}
		}
		for k := range want {
			if len(got[k]) != 1 {
				t.Errorf("%s: the backend did not get %s: %v", proto, k, got)
			}
		}
		if got.Get("X-Kept") != "yes" {
			t.Errorf("%s: an ordinary header was lost: %v", proto, got)
		}
	}
}
