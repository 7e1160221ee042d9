package connector

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCloud is a TLS listener speaking the cloud's side of the tunnel.
type fakeCloud struct {
	ca    *pki.CA // cloud CA
	cert  *tls.Certificate
	conns chan *tunnel.Client
	ln    net.Listener
	addr  string
	// closeFirst connections are closed before their TLS handshake, as a
	// busy cloud does (issue 17); closed counts them.
	closeFirst, closed atomic.Int32
}

func newFakeCloud(t *testing.T) *fakeCloud {
	t.Helper()
	ca, err := pki.NewCA("test cloud CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer([]string{"cloud.localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &fakeCloud{ca: ca, cert: cert, conns: make(chan *tunnel.Client, 16), addr: addr}
}

// start listens (again) on the cloud's address and accepts tunnels.
func (f *fakeCloud) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*f.cert}, NextProtos: []string{tunnel.ALPN}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12})
	done := make(chan struct{})
	var clients []*tunnel.Client
	go func() {
		defer close(done)
		for {
			c, err := f.ln.Accept()
			if err != nil {
				return
			}
			if f.closeFirst.Add(-1) >= 0 {
				f.closed.Add(1)
				c.Close()
				continue
			}
			if err := c.(*tls.Conn).Handshake(); err != nil {
				c.Close()
				continue
			}
			tc, err := tunnel.NewClient(c, tunnel.ClientConfig{})
			if err != nil {
				continue
			}
			clients = append(clients, tc)
			f.conns <- tc
		}
	}()
	t.Cleanup(func() {
		f.ln.Close()
		<-done
		for _, c := range clients {
			c.Close()
		}
	})
}

// writeTestState registers a connector by hand: a tenant CA signs a
// certificate for a locally made key.
func writeTestState(t *testing.T, dir string, cloud *fakeCloud, notBefore, notAfter time.Time) {
	t.Helper()
	tenantCA, err := pki.NewCA("tenant CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("x")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	der, err := tenantCA.SignConnector(csr, pki.ConnectorIdentity{TenantID: "t_1", ConnectorID: "c_1"}, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := pki.ParseCertPEM(pki.EncodeCertPEM(der))
	tr := statedir.Trust{FormatVersion: 1, ConnectorID: "c_1", TenantID: "t_1", Tenant: "contoso.com", Group: "Default",
		CloudURL: "https://cloud.localhost:" + portOf(cloud.addr), Thumbprint: pki.Thumbprint(cert), Serial: pki.SerialHex(cert),
		CloudCAFile: statedir.CloudCAFile, IssuedAt: cert.NotBefore, ExpiresAt: cert.NotAfter, Source: "registration"}
	if err := statedir.Write(dir, &tr, keyPEM, pki.EncodeCertPEM(der), cloud.ca.CertPEM, nil); err != nil {
		t.Fatal(err)
	}
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func runConnector(t *testing.T, dir string) (*Connector, chan error) {
	t.Helper()
	c, err := New(Config{Dir: dir, Connections: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Hostname: "test-host"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(10 * time.Second):
			t.Error("connector did not stop within 10s")
		}
	})
	return c, errc
}

func nextTunnel(t *testing.T, f *fakeCloud) *tunnel.Client {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("no tunnel connection within 15s")
		return nil
	}
}

func do(t *testing.T, c *tunnel.Client, method, path string, hdr http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "https://app.test"+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestConnectsWhenCloudComesUpLater: the cloud is down when the connector
// starts; it keeps trying and connects once the cloud is up.
func TestConnectsWhenCloudComesUpLater(t *testing.T) {
	cloud := newFakeCloud(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	c, _ := runConnector(t, dir)
	cloud.start(t)
	for range 2 {
		do(t, nextTunnel(t, cloud), "GET", tunnel.PathHello, nil, nil) // as the cloud does once it accepts the connector
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.TunnelsUp() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("TunnelsUp = %d, want 2", c.TunnelsUp())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServesOnlyConfiguredApps(t *testing.T) {
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		io.WriteString(w, "internal page "+r.URL.Path)
	}))
	defer backend.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()

	cloud := newFakeCloud(t)
	cloud.start(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	runConnector(t, dir)
	tc := nextTunnel(t, cloud)

	resp, body := do(t, tc, "GET", tunnel.PathHello, nil, nil)
	var hello tunnel.Hello
	json.Unmarshal(body, &hello)
	if resp.StatusCode != 200 || hello.ConnectorID != "c_1" || hello.Hostname != "test-host" {
		t.Fatalf("hello = %d %+v", resp.StatusCode, hello)
	}
	cfg := tunnel.Config{Version: "v1", TenantID: "t_1", Group: "Default", Apps: []tunnel.AppConfig{
		{ID: "a_web", Name: "web", InternalURL: backend.URL + "/base/", Timeout: time.Minute},
		{ID: "a_down", Name: "down", InternalURL: closedURL, Timeout: time.Minute},
		{ID: "a_dns", Name: "dns", InternalURL: "http://does-not-exist.invalid/", Timeout: time.Minute},
	}}
	js, _ := json.Marshal(cfg)
	if resp, _ := do(t, tc, "PUT", tunnel.PathConfig, nil, js); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("config push = %d", resp.StatusCode)
	}

	tests := []struct {
		name, app string
		status    int
		code      string
		contains  string
	}{
		{"configured app", "a_web", 200, "", "internal page /base/x"},
		{"unknown app is refused", "a_other", http.StatusMisdirectedRequest, "app_not_configured", "no application with id a_other"},
		{"backend refused", "a_down", 502, "backend_refused", "refused the connection"},
		{"backend name unknown", "a_dns", 502, "backend_dns", "does-not-exist.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{tunnel.HeaderApp: {tt.app}, "X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Host": {"web.example"}, "X-Forwarded-Proto": {"https"}}
			resp, body := do(t, tc, "GET", "/x", hdr, nil)
			if resp.StatusCode != tt.status || resp.Header.Get(tunnel.HeaderError) != tt.code {
				t.Fatalf("got %d %q, want %d %q (%s)", resp.StatusCode, resp.Header.Get(tunnel.HeaderError), tt.status, tt.code, body)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("body %q lacks %q", body, tt.contains)
			}
		})
	}
	if seen.Get("X-Forwarded-For") != "203.0.113.7" || seen.Get("X-Forwarded-Host") != "web.example" || seen.Get(tunnel.HeaderApp) != "" {
		t.Errorf("backend saw headers %v", seen)
	}
}

func TestRefusalStopsRun(t *testing.T) {
	cloud := newFakeCloud(t)
	cloud.start(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	_, errc := runConnector(t, dir)
	tc := nextTunnel(t, cloud)
	var eb tunnel.ErrorBody
	eb.Error.Code, eb.Error.Message, eb.Error.Step = "connector_revoked", "This connector's certificate was revoked", "register again"
	js, _ := json.Marshal(eb)
	do(t, tc, "POST", tunnel.PathRefuse, nil, js)
	tc.Close() // as the cloud does after a refusal
	select {
	case err := <-errc:
		p, ok := problem.As(err)
		if !ok || p.Code != "connector_revoked" {
			t.Fatalf("Run = %v, want the refusal", err)
		}
		errc <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after the refusal")
	}
}

// TestExpiredTrust: event 1000's condition; Run refuses to start.
func TestExpiredTrust(t *testing.T) {
	cloud := newFakeCloud(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	c, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(context.Background())
	p, ok := problem.As(err)
	if !ok || p.Code != "trust_expired" || !strings.Contains(err.Error(), "trust certificate expired") || !strings.Contains(err.Error(), "sallyport connector register") {
		t.Fatalf("Run = %v", err)
	}
	// A clock far behind makes a valid certificate look not yet valid.
	st, _ := statedir.Load(dir)
	err = st.CheckValidity(time.Now().Add(-72 * time.Hour))
	if p, ok := problem.As(err); !ok || p.Code != "clock_skew" {
		t.Fatalf("CheckValidity with a skewed clock = %v", err)
	}
	var _ = errors.New
}

// readEvents returns the ids in the connector's event log.
func readEventIDs(t *testing.T, dir string) map[eventlog.ID]bool {
	t.Helper()
	evs, err := eventlog.Read(filepath.Join(dir, statedir.EventsFile), eventlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[eventlog.ID]bool{}
	for _, e := range evs {
		ids[e.ID] = true
	}
	return ids
}

// TestConfigRefusedEvent: a configuration with an unusable internal URL
// is refused and logged as event 1301.
func TestConfigRefusedEvent(t *testing.T) {
	cloud := newFakeCloud(t)
	cloud.start(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	runConnector(t, dir)
	tc := nextTunnel(t, cloud)
	js, _ := json.Marshal(tunnel.Config{Version: "bad", Apps: []tunnel.AppConfig{{ID: "a", Name: "ftp", InternalURL: "ftp://files/"}}})
	if resp, _ := do(t, tc, "PUT", tunnel.PathConfig, nil, js); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("config push = %d, want 400", resp.StatusCode)
	}
	if !readEventIDs(t, dir)[1301] {
		t.Error("no event 1301 for the refused configuration")
	}
}

// TestRenewalFailureEvent: a certificate due for renewal whose renewal
// fails (this fake cloud has no control protocol) keeps working and logs
// event 1101.
func TestRenewalFailureEvent(t *testing.T) {
	cloud := newFakeCloud(t)
	cloud.start(t)
	dir := t.TempDir()
	// Issued long ago, ending soon: less than a third of its life remains.
	writeTestState(t, dir, cloud, time.Now().Add(-10*time.Hour), time.Now().Add(time.Hour))
	c, err := New(Config{Dir: dir, Connections: 1, RenewCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	defer func() { cancel(); <-errc }()
	nextTunnel(t, cloud)
	deadline := time.Now().Add(10 * time.Second)
	for !readEventIDs(t, dir)[1101] {
		if time.Now().After(deadline) {
			t.Fatal("no event 1101 after a failed renewal")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnreachableEventAfterDrop: once a tunnel drops and the cloud is
// gone, the first failed reconnection is event 1203 (issue 20, defect 9:
// it used to wait for the tenth, counting the drop as a failure).
func TestUnreachableEventAfterDrop(t *testing.T) {
	cloud := newFakeCloud(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	var c *Connector
	t.Run("cloud up", func(st *testing.T) { // its cleanup stops the cloud, and the tunnels drop
		cloud.start(st)
		c, _ = runConnector(t, dir)
		for range 2 {
			do(st, nextTunnel(st, cloud), "GET", tunnel.PathHello, nil, nil)
		}
		testnet.WaitUntil(st, "both tunnels are up", func() bool { return c.TunnelsUp() == 2 })
	})
	var first *eventlog.Event
	testnet.WaitUntil(t, "event 1203 is logged", func() bool {
		evs, _ := eventlog.Read(filepath.Join(dir, statedir.EventsFile), eventlog.Filter{})
		for i := range evs {
			if evs[i].ID == 1203 {
				first = &evs[i]
				return true
			}
		}
		return false
	})
	if first.Fields["attempts"] != "1" {
		t.Errorf("the first event 1203 after the drop says attempts=%s, want 1: %+v", first.Fields["attempts"], *first)
	}
}
