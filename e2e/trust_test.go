package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
)

// Trust lifecycle through the real binary: renewal under load, expiry
// (event 1000) and re-registration under the same id, clock skew, a key
// readable by others, TLS inspection and TLS 1.1-only servers between the
// connector and the cloud.

// impostor serves TLS handshakes on addr with a certificate for
// sallyport.localhost from another CA, or allowing only TLS up to
// maxVersion — what a TLS-inspecting middlebox or an old server looks
// like to the connector.
func impostor(t *testing.T, addr, issuer string, maxVersion uint16) {
	t.Helper()
	ca, err := pki.NewCA(issuer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer([]string{cloudName}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if !eventually(readyTimeout, func() bool { ln, err = net.Listen("tcp", addr); return err == nil }) {
		t.Fatalf("cannot listen on %s: %v", addr, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion,
		NextProtos: []string{"sallyport-connector/1", "sallyport-control/1", "h2", "http/1.1"}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tls.Server(c, cfg).Handshake()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

// TestTLSInspectionAndOldTLS: a middlebox that terminates TLS with its own
// CA, and a server that speaks only TLS 1.1, are named — at registration
// and when a registered connector runs.
func TestTLSInspectionAndOldTLS(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	st := c.mustRegister(t, c.admin, filepath.Join(c.admin.dir, "conn"), contosoAdmin, contosoPW)
	c.serve.stop()
	addr := "127.0.0.1:" + c.port

	impostor(t, addr, "Corp Inspection CA", 0)
	c.admin.refused(t, contosoPW+"\n", []string{"connector", "register", "--cloud", c.url, "--dir", filepath.Join(c.admin.dir, "other"),
		"--user", contosoAdmin, "--password-stdin", "--ca-file", c.caFile},
		"TLS inspection detected", "issued by 'Corp Inspection CA'", "not by the Sallyport cloud CA", "exclude sallyport.localhost:"+c.port)
	p := c.admin.start(t, "connector", "connector", "run", "--dir", st.dir)
	if _, ok := p.waitOutput(regexp.MustCompile(`event_id=1104`), readyTimeout); !ok {
		t.Fatalf("the running connector did not report TLS inspection:\n%s", p.out.String())
	}
	p.stop()
	res := c.admin.ok(t, "", "connector", "events", "--dir", st.dir, "--level", "error", "--newest", "1", "--json")
	var evs []struct {
		ID      int    `json:"id"`
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(res.stdout), &evs) != nil || len(evs) != 1 || evs[0].ID != 1104 || !strings.Contains(evs[0].Message, "Corp Inspection CA") {
		t.Errorf("newest error event = %s", res.stdout)
	}
}

func TestOldTLSServer(t *testing.T) {
	t.Parallel()
	r := newRunner(t, "old-tls")
	port := freePort(t)
	impostor(t, "127.0.0.1:"+port, "Old Server CA", tls.VersionTLS11)
	ca := filepath.Join(r.dir, "ca.pem")
	other, _ := pki.NewCA("any", time.Hour)
	writeFile(t, ca, string(other.CertPEM), 0o644)
	r.refused(t, "pw\n", []string{"connector", "register", "--cloud", "https://" + cloudName + ":" + port, "--dir", filepath.Join(r.dir, "c"),
		"--user", contosoAdmin, "--password-stdin", "--ca-file", ca},
		"offers only TLS 1.1", "older than the TLS 1.2")
}

// TestRenewalUnderLoad: with the clock two thirds into the certificate's
// life, the running connector renews it over its authenticated connection
// and no request fails meanwhile.
func TestRenewalUnderLoad(t *testing.T) {
	t.Parallel()
	c := startCloud(t, "--connector-cert-lifetime", "1h")
	be := newBackend(t)
	c.publish(t, c.admin, "web", be.url)
	st := c.mustRegister(t, c.admin, filepath.Join(c.admin.dir, "conn"), contosoAdmin, contosoPW)
	before := readTrust(t, st.dir)
	// A clock 45 minutes on: less than a third of the hour remains, so the
	// connector renews at its first check.
	p := c.admin.start(t, "connector", "connector", "run", "--dir", st.dir, "--test-clock-offset", "45m", "--renew-check-interval", "300ms")
	c.waitConnector(t, c.admin, st.id, p, func(x *apiConnector) bool { return x != nil && x.Status == "active" && x.Tunnels == 2 })

	var stop atomic.Bool
	var failures, total atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			resp, body := c.tryGet("web-contoso."+cloudName, "/page")
			total.Add(1)
			if resp == nil || resp.StatusCode != 200 || !strings.Contains(body, backendPage) {
				failures.Add(1)
			}
		}
	}()
	if _, ok := p.waitOutput(regexp.MustCompile(`event_id=1100`), readyTimeout); !ok {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("no renewal (event 1100):\n%s", p.out.String())
	}
	// Keep the load on after the renewal too: 200 more requests.
	atRenewal := total.Load()
	eventually(readyTimeout, func() bool { return total.Load() >= atRenewal+200 })
	stop.Store(true)
	wg.Wait()
	after := readTrust(t, st.dir)
	if after.Serial == before.Serial || after.Source != "renewal" || after.ConnectorID != before.ConnectorID {
		t.Errorf("trust before %+v, after %+v", before, after)
	}
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed around the renewal", n, total.Load())
	}
	c.admin.okJSON(t, new([]apiConnector), "admin", "connector", "list", "--json")
}

type trustFile struct {
	ConnectorID string `json:"connector_id"`
	Serial      string `json:"serial"`
	Source      string `json:"source"`
}

func readTrust(t *testing.T, dir string) trustFile {
	t.Helper()
	var tr trustFile
	raw, err := os.ReadFile(filepath.Join(dir, "trust.json"))
	if err != nil || json.Unmarshal(raw, &tr) != nil {
		t.Fatalf("trust.json: %v %s", err, raw)
	}
	return tr
}

// TestExpiryAndReregistration: an expired certificate (a clock past its
// end) logs event 1000, prints it and refuses to serve; registering again
// brings the connector back under the same id. A skewed clock and a key
// readable by others are refused with their own messages.
func TestExpiryAndReregistration(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	be := newBackend(t)
	c.publish(t, c.admin, "web", be.url)
	st := c.mustRegister(t, c.admin, filepath.Join(c.admin.dir, "conn"), contosoAdmin, contosoPW)

	res := serviceRefused(t, c.admin.run(t, "", "connector", "run", "--dir", st.dir, "--test-clock-offset", "2200h"),
		"Connector re-registration failed: the connector trust certificate expired", "sallyport connector register")
	mustContain(t, "stderr", res.stderr, "event_id=1000")
	ev := c.admin.ok(t, "", "connector", "events", "--dir", st.dir, "--level", "error", "--newest", "1")
	mustContain(t, "events", ev.stdout, "1000", "trust certificate expired")

	serviceRefused(t, c.admin.run(t, "", "connector", "run", "--dir", st.dir, "--test-clock-offset", "-2h"),
		"not valid yet", "this machine's clock says")

	st2 := c.mustRegister(t, c.admin, st.dir, contosoAdmin, contosoPW)
	if st2.id != st.id {
		t.Errorf("re-registration gave id %s, want the same %s", st2.id, st.id)
	}
	p := c.runConnector(t, c.admin, st2)
	if resp, body := c.get(t, "web-contoso."+cloudName, "/page"); resp.StatusCode != 200 {
		t.Errorf("after re-registration: %d %s", resp.StatusCode, body)
	}
	p.stop()

	tr := readTrustKey(t, st.dir)
	if err := os.Chmod(filepath.Join(st.dir, tr), 0o644); err != nil {
		t.Fatal(err)
	}
	c.admin.refused(t, "", []string{"connector", "run", "--dir", st.dir}, "readable by other users", "chmod 600")
}

// serviceRefused checks a refusal of a long-running command, whose
// standard error also carries its log: the last line is the one sentence.
func serviceRefused(t *testing.T, res result, want ...string) result {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
	last := result{args: res.args, code: res.code, stdout: res.stdout, stderr: lines[len(lines)-1]}
	checkRefusal(t, last, want...)
	return res
}

func readTrustKey(t *testing.T, dir string) string {
	t.Helper()
	var tr struct {
		KeyLocation string `json:"key_location"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "trust.json"))
	json.Unmarshal(raw, &tr)
	return strings.TrimPrefix(tr.KeyLocation, "file:")
}

// tryGet is get for goroutines: it reports failure as a nil response.
func (c *cloud) tryGet(host, path string) (*http.Response, string) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.appURL(host, path), nil)
	resp, err := c.client(host, "h2").Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err.Error()
	}
	return resp, string(body)
}
