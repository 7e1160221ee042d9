package e2e

import (
	"archive/zip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsAndDiagBundle: the running connector serves metrics on
// loopback that count the traffic, and 'connector diag' bundles them with
// the state and events — without the private key or the password.
func TestMetricsAndDiagBundle(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	be := newBackend(t)
	c.publish(t, c.admin, "web", be.url)
	st := c.mustRegister(t, c.admin, filepath.Join(c.admin.dir, "conn"), contosoAdmin, contosoPW)
	mport := freePort(t)
	p := c.admin.start(t, "connector", "connector", "run", "--dir", st.dir, "--metrics-listen", "127.0.0.1:"+mport)
	c.waitConnector(t, c.admin, st.id, p, func(x *apiConnector) bool { return x != nil && x.Tunnels == 2 })
	for range 5 {
		if resp, body := c.get(t, "web-contoso."+cloudName, "/page"); resp.StatusCode != 200 {
			t.Fatalf("GET: %d %s", resp.StatusCode, body)
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + mport + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustContain(t, "metrics", string(raw), `sallyport_connector_requests_total{app="web",code="200"} 5`, "sallyport_connector_tunnels_up 2")
	if resp, err := http.Get("http://127.0.0.1:" + mport + "/ready"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/ready: %v %v", resp, err)
	}

	out := filepath.Join(c.admin.dir, "bundle.zip")
	c.admin.ok(t, "", "connector", "diag", "--dir", st.dir, "--out", out, "--metrics-url", "http://127.0.0.1:"+mport)
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	key := readTrustKey(t, st.dir)
	keyPEM, _ := os.ReadFile(filepath.Join(st.dir, key))
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		for _, secret := range []string{"PRIVATE KEY", contosoPW, strings.TrimSpace(string(keyPEM))} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s holds a secret", f.Name)
			}
		}
	}
	for _, want := range []string{"version.txt", "state/trust.json", "state/events.jsonl", "state/register.log", "metrics.txt", "goroutines.txt", "MANIFEST.json"} {
		if !names[want] {
			t.Errorf("bundle lacks %s", want)
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode: %v %v", fi, err)
	}
}
