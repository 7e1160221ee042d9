package e2e

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
)

// TestHTTPSBackend: an https:// internal URL whose certificate a private
// CA signed is served once the connector's machine trusts that CA (here
// through SSL_CERT_FILE, as for a connector service), on both tunnel
// protocols (version 2's direct backend connections and version 1's
// proxy); without that trust the edge answers backend_tls and says to add
// the CA to the machine's trust store.
func TestHTTPSBackend(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "secure %s %s over TLS %t", r.Method, r.URL.RequestURI(), r.TLS != nil)
	}))
	t.Cleanup(backend.Close)
	// httptest's certificate is its own issuer (for 127.0.0.1): trusting
	// it is trusting a private CA.
	caFile := filepath.Join(t.TempDir(), "backend-ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw})), 0o644)

	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	app := c.publish(t, c.admin, "secure", backend.URL) // https://127.0.0.1:PORT

	trusting := *c.admin
	trusting.extra = append(slices.Clone(c.admin.extra), "SSL_CERT_FILE="+caFile)
	for _, v := range []int{2, 1} {
		p := trusting.start(t, fmt.Sprintf("connector (protocol %d)", v), "connector", "run", "--dir", st.dir, "--tunnel-version", fmt.Sprint(v))
		c.waitConnector(t, c.admin, st.id, p, func(x *apiConnector) bool {
			return x != nil && x.Status == "active" && x.Tunnels == 2 && x.Protocol == v
		})
		resp, body := c.get(t, app.ExternalHost, "/report?q=1")
		if want := "secure GET /report?q=1 over TLS true"; resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("tunnel protocol %d: %d %q, want 200 %q", v, resp.StatusCode, body, want)
		}
		p.stop()
	}

	p := c.admin.start(t, "connector (system trust only)", "connector", "run", "--dir", st.dir)
	c.waitConnector(t, c.admin, st.id, p, func(x *apiConnector) bool {
		return x != nil && x.Status == "active" && x.Tunnels == 2 && x.Protocol == 2
	})
	resp, body := c.get(t, app.ExternalHost, "/report")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("backend with an untrusted certificate: %d %s", resp.StatusCode, body)
	}
	rid := checkErrorPage(t, resp, body, "backend_tls", "The secure connection to the application failed")
	mustContain(t, "the request's story", c.requestStory(t, c.admin, rid).Message, "The TLS handshake with the internal application 'secure'",
		"add the CA that signed it to the machine's trust store")
}
