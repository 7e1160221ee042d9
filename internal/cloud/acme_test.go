package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/acmetest"
	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem/problemtest"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// acmeCloud is a cloud with --acme-email against a real Pebble, its names
// resolving to 127.0.0.1 for Pebble through a test DNS server.
type acmeCloud struct {
	srv      *Server
	dir      string
	pebble   *acmetest.Server
	tlsAddr  string
	httpAddr string
	cloudCA  *x509.CertPool
}

const acmeCloudName = "cloud.acme.test"

func startACMECloud(t *testing.T, only string) *acmeCloud {
	t.Helper()
	return startACMECloudWith(t, acmeCloudOptions{only: only})
}

// acmeCloudOptions: the one challenge type offered (""; both), the
// certificates' validity at Pebble (0: 90 days), and how often certmagic
// checks renewals and the lifetime's part left when it renews (0: its
// defaults).
type acmeCloudOptions struct {
	only         string
	validity     time.Duration
	renewCheck   time.Duration
	renewalRatio float64
	ocsp         bool // an OCSP responder for Pebble's certificates
}

func startACMECloudWith(t *testing.T, o acmeCloudOptions) *acmeCloud {
	t.Helper()
	only := o.only
	dns := dnstest.Start(t)
	for _, n := range []string{acmeCloudName, "web-contoso." + acmeCloudName, "unknown." + acmeCloudName} {
		dns.SetA(n, net.IPv4(127, 0, 0, 1))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := hl.Addr().String()
	hl.Close() // taken again by the cloud (--http-listen takes an address)
	httpPort, _ := strconv.Atoi(strings.Split(httpAddr, ":")[1])
	p := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: ln.Addr().(*net.TCPAddr).Port, DNSServer: dns.Addr(), Validity: o.validity, OCSP: o.ocsp})

	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: acmeCloudName, Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DataDir: dir, Listen: ln.Addr().String(), ShutdownGrace: time.Second,
		ACMEEmail: "ops@contoso.com", ACMECA: p.Directory, ACMECARootFile: p.APICertFile, HTTPListen: httpAddr, acmeOnly: only,
		acmeRenewCheck: o.renewCheck, acmeRenewalRatio: o.renewalRatio})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	caPEM, err := os.ReadFile(filepath.Join(dir, datadir.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	cloudCA := x509.NewCertPool()
	cloudCA.AddCert(ca)
	return &acmeCloud{srv: s, dir: dir, pebble: p, tlsAddr: ln.Addr().String(), httpAddr: httpAddr, cloudCA: cloudCA}
}

// handshake connects with SNI name offering HTTP (as a browser does),
// trusting only roots, and returns the certificate presented (or the
// verification error).
func (c *acmeCloud) handshake(t *testing.T, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	cs, err := c.handshakeALPN(t, name, roots, "http/1.1")
	if err != nil {
		return nil, err
	}
	return cs.PeerCertificates[0], nil
}

// handshakeALPN connects with SNI name offering protos and returns the
// connection's state once the certificate presented verifies for name
// against roots alone (a connector's ALPN needs a client certificate,
// which the test does not send: the server's certificate is checked
// before that matters).
func (c *acmeCloud) handshakeALPN(t *testing.T, name string, roots *x509.CertPool, protos ...string) (tls.ConnectionState, error) {
	t.Helper()
	var verified tls.ConnectionState
	d := &net.Dialer{Timeout: time.Minute}
	conn, err := tls.DialWithDialer(d, "tcp", c.tlsAddr, &tls.Config{ServerName: name, NextProtos: protos,
		InsecureSkipVerify: true, // verified below, against roots only
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := verifyFor(cs, name, roots); err != nil {
				return err
			}
			verified = cs
			return nil
		}})
	if conn != nil {
		conn.Close()
	}
	if verified.PeerCertificates != nil {
		return verified, nil // a connector's ALPN fails later, wanting a client certificate
	}
	return tls.ConnectionState{}, err
}

// verifyFor checks the certificate of cs for name against roots alone.
func verifyFor(cs tls.ConnectionState, name string, roots *x509.CertPool) error {
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
	return err
}

// TestACMECertificates: with --acme-email, a published host gets a
// certificate from the ACME server at its first handshake (trusted by a
// client trusting only that CA's root) and keeps it; a name no application
// is published at never starts an order (and gets the cloud CA's
// certificate); the cloud's own name keeps the cloud CA's certificate
// (what connectors and the admin CLI pin); plain HTTP redirects to https.
func TestACMECertificates(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) { testACMECertificates(t, challenge) })
	}
}

func testACMECertificates(t *testing.T, challenge string) {
	c := startACMECloud(t, challenge)
	tok := login(t, c.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, c.srv, "POST", "/apps", tok, api.CreateAppRequest{Name: "web", InternalURL: "http://127.0.0.1:1", PreAuth: "passthrough"}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	app := "web-contoso." + acmeCloudName
	testnet.WaitUntil(t, "the route table has the app", func() bool { return c.srv.acmeDecision(app) == nil })
	roots := c.pebble.Roots(t)
	// The cloud's own name is ordered at start (not on demand).
	testnet.WaitUntil(t, "the cloud's name presents an ACME certificate to browsers", func() bool {
		_, err := c.handshake(t, acmeCloudName, roots)
		return err == nil
	})

	cert, err := c.handshake(t, app, roots)
	if err != nil {
		t.Fatalf("the app's host does not present a certificate from the ACME server: %v", err)
	}
	again, err := c.handshake(t, app, roots)
	if err != nil || !again.Equal(cert) {
		t.Fatalf("the second handshake presents another certificate (%v): ordered twice?", err)
	}
	testnet.WaitUntil(t, "event 2985 names the host", func() bool {
		b, _ := os.ReadFile(filepath.Join(c.dir, datadir.EventsFile))
		return strings.Contains(string(b), `"id":2985`) && strings.Contains(string(b), app)
	})
	// The app's answer names the ACME certificate the handshake got.
	if c := getJSON[api.AppDetail](t, c.srv, tok, "/apps/web").Certificate; c.Source != api.CertSourceACME || c.ACME == nil || c.ACME.State != api.ACMEValid ||
		len(c.Names) != 1 || c.Names[0] != app || !c.NotAfter.Equal(cert.NotAfter.UTC()) {
		t.Errorf("the app's certificate is told as %+v (%+v)", c, c.ACME)
	}
	// Pebble logs its HTTP-01 fetches only.
	if overHTTP := strings.Contains(c.pebble.Log.String(), "validate w/ HTTP"); overHTTP != (challenge == "http-01") {
		t.Errorf("validated over HTTP: %v, want %v (only %s offered)", overHTTP, !overHTTP, challenge)
	}
	if n := strings.Count(c.pebble.Log.String(), "Issued certificate"); n != 2 || c.pebble.OrdersFor(app) != 1 || c.pebble.OrdersFor(acmeCloudName) != 1 {
		t.Errorf("pebble issued %d certificates (%d orders for %s, %d for %s), want 2: one order each for the cloud's name and the app's host",
			n, c.pebble.OrdersFor(acmeCloudName), acmeCloudName, c.pebble.OrdersFor(app), app)
	}
	// Pebble's certificates here have no OCSP URL (as Let's Encrypt's have
	// not since 2025): served with no staple, and no error.
	if cs, err := c.handshakeALPN(t, app, roots, "http/1.1"); err != nil {
		t.Errorf("a certificate without an OCSP URL: %v", err)
	} else if urls := cs.PeerCertificates[0].OCSPServer; len(urls) != 0 || cs.OCSPResponse != nil {
		t.Errorf("OCSP URLs %v, a staple of %d bytes; want none, none", urls, len(cs.OCSPResponse))
	}

	// No order for a name no application is published at.
	unknown := "unknown." + acmeCloudName
	orders := c.pebble.Orders()
	if _, err := c.handshake(t, unknown, roots); err == nil {
		t.Errorf("%s presents an ACME certificate, but no application is published there", unknown)
	}
	if _, err := c.handshake(t, unknown, c.cloudCA); err != nil {
		t.Errorf("%s: want the cloud CA's certificate: %v", unknown, err)
	}
	if n := c.pebble.Orders(); n != orders || c.pebble.OrdersFor(unknown) != 0 {
		t.Errorf("an order was made for %s (%d orders, %d before), but no application is published there", unknown, n, orders)
	}

	// Clients that pin the cloud CA get its certificate for the cloud's
	// name: connectors (tunnels, control) by their ALPN, the admin CLI and
	// registration by offering pki.PinnedCAALPN.
	for _, protos := range [][]string{
		{"h2", "http/1.1", pki.PinnedCAALPN},
		{"http/1.1", pki.PinnedCAALPN},
		{tunnel.ALPN2, tunnel.ALPN, tunnel.ControlALPN},
		{tunnel.ALPN},
		{tunnel.ControlALPN},
	} {
		if _, err := c.handshakeALPN(t, acmeCloudName, c.cloudCA, protos...); err != nil {
			t.Errorf("ALPN %v: want the cloud CA's certificate for the cloud's name: %v", protos, err)
		}
	}
	for _, protos := range [][]string{{"h2", "http/1.1"}, {"http/1.1"}, nil} {
		if _, err := c.handshakeALPN(t, acmeCloudName, roots, protos...); err != nil {
			t.Errorf("ALPN %v: want the ACME certificate for the cloud's name: %v", protos, err)
		}
	}
	testnet.WaitUntil(t, "event 2990 names the cloud", func() bool {
		b, _ := os.ReadFile(filepath.Join(c.dir, datadir.EventsFile))
		return strings.Contains(string(b), `"id":2990`)
	})

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	tlsPort := strings.Split(c.tlsAddr, ":")[1]
	for _, tc := range []struct{ path, want string }{
		{"/", "https://" + app + ":" + tlsPort + "/"},
		{"/a/b%2Fc?x=1&y=2", "https://" + app + ":" + tlsPort + "/a/b%2Fc?x=1&y=2"},
		{"/.well-known/acme-challenge/unknown-token", "https://" + app + ":" + tlsPort + "/.well-known/acme-challenge/unknown-token"},
	} {
		req, _ := http.NewRequest("GET", "http://"+c.httpAddr+tc.path, nil)
		req.Host = app
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != tc.want {
			t.Errorf("GET %s: %d to %q, want 308 to %q", tc.path, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}
}

// TestACMEFailureTold: an order Pebble refuses (the host's name does not
// resolve) is event 2986 with its cause, the CA's message and the step, and the
// app's answer says failed, with the cloud CA's certificate serving.
func TestACMEFailureTold(t *testing.T) {
	c := startACMECloud(t, "http-01")
	tok := login(t, c.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, c.srv, "POST", "/apps", tok, api.CreateAppRequest{Name: "nodns", InternalURL: "http://127.0.0.1:1", PreAuth: "passthrough"}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	host := "nodns-contoso." + acmeCloudName // no record in the test DNS server
	testnet.WaitUntil(t, "the route table has the app", func() bool { return c.srv.acmeDecision(host) == nil })
	// An order as the first handshake for the host starts it, but under a
	// context the test ends: certmagic retries a failed order for minutes
	// (a handshake would wait that long, its goroutine outliving the test);
	// the event of the first failed attempt is enough.
	ctx, cancel := context.WithCancel(context.Background())
	ordered := make(chan struct{})
	go func() {
		defer close(ordered)
		c.srv.acme.cfg.ObtainCertSync(ctx, host)
	}()
	defer func() { cancel(); <-ordered }()
	var ev eventlog.Event
	testnet.WaitUntil(t, "event 2986 for the host", func() bool {
		evs, _ := eventlog.Read(filepath.Join(c.dir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{eventlog.ACMECertFailed}})
		for _, e := range evs {
			if e.Fields["host"] == host {
				ev = e
				return true
			}
		}
		return false
	})
	// Pebble answers "connection" for a name it cannot resolve (Let's
	// Encrypt answers "dns"): either way the step names the DNS first.
	if ev.Fields["cause"] != "unreachable" || ev.Fields["error"] == "" || !strings.Contains(ev.Message, "check that the host's DNS name points at this cloud") {
		t.Errorf("event 2986: %s %v", ev.Message, ev.Fields)
	}
	got := getJSON[api.AppDetail](t, c.srv, tok, "/apps/nodns").Certificate
	if got.Source != api.CertSourceCloudCA || got.ACME == nil || got.ACME.State != api.ACMEFailed || got.ACME.Cause != "unreachable" || got.ACME.Error != ev.Fields["error"] {
		t.Errorf("the app's certificate is told as %+v (%+v)", got, got.ACME)
	}
}

func TestACMEConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		code string
	}{
		{"ca without email", Config{ACMECA: "https://ca.example/dir"}, "acme"},
		{"http without email", Config{HTTPListen: ":80"}, "acme"},
		{"bad http address", Config{ACMEEmail: "ops@example.com", HTTPListen: "80"}, "http_listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problemtest.Want(t, "checkACME", tc.cfg.checkACME(), tc.code)
		})
	}
	if err := (&Config{ACMEEmail: "ops@example.com", HTTPListen: "127.0.0.1:8080"}).checkACME(); err != nil {
		t.Fatal(err)
	}
}

// TestACMEDecision: an order is allowed only for a host an application is
// published at without its own certificate — never for the cloud's name,
// a deleted application's host, or any other name.
func TestACMEDecision(t *testing.T) {
	s := &Server{}
	if err := s.acmeDecision("web-contoso." + acmeCloudName); err == nil {
		t.Fatal("an order is allowed before the routing table is loaded")
	}
	s.routes.Store(&routeTable{
		byHost: map[string]*edge.App{"web-contoso." + acmeCloudName: {}, "own.contoso.com": {}},
		certs:  map[string]*tls.Certificate{"own.contoso.com": {}},
	})
	for _, tc := range []struct {
		host  string
		allow bool
	}{
		{"web-contoso." + acmeCloudName, true},
		{"own.contoso.com", false},               // its own certificate wins
		{acmeCloudName, false},                   // ordered at start, never on demand
		{"gone-contoso." + acmeCloudName, false}, // deleted, or never published
		{"random.example", false},
	} {
		if err := s.acmeDecision(tc.host); (err == nil) != tc.allow {
			t.Errorf("acmeDecision(%q) = %v, want allowed %v", tc.host, err, tc.allow)
		}
	}
}
