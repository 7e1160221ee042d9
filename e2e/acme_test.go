package e2e

import (
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
	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/pki"
)

// TestACME runs 'cloud serve --acme-email' against a real ACME server
// (Pebble, its names resolved to 127.0.0.1 by a test DNS server): the
// cloud's own name and two published hosts get certificates a client
// trusting only Pebble's root accepts; the clients that pin the cloud CA
// (admin login, connector registration by CA file and by fingerprint, the
// connector's tunnels) keep working; an unknown name makes no order; plain
// HTTP redirects to https with 308.
func TestACME(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	const unknown = "unknown." + cloudName
	c := initCloud(t)
	port, httpPort := freePort(t), freePort(t)
	tlsPort, _ := strconv.Atoi(port)
	hp, _ := strconv.Atoi(httpPort)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: hp, TLSPort: tlsPort, DNSServer: dns.Addr()})
	dns.SetA(cloudName, net.IPv4(127, 0, 0, 1))

	c.port, c.url = port, "https://"+cloudName+":"+port
	serve := c.admin.start(t, "cloud serve", "cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:"+port,
		"--acme-email", "ops@contoso.com", "--acme-ca", p.Directory, "--acme-ca-root", p.APICertFile,
		"--http-listen", "127.0.0.1:"+httpPort)
	if !c.waitServing(serve) || serve.exited() {
		t.Fatalf("cloud serve --acme-email did not come up:\n%s", tail(serve.out.String(), 40))
	}
	c.serve = serve
	roots := p.Roots(t)
	handshake := func(name string, pool *x509.CertPool) error {
		d := &net.Dialer{Timeout: time.Minute}
		conn, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+port, &tls.Config{ServerName: name, RootCAs: pool, NextProtos: []string{"h2"}})
		if err == nil {
			conn.Close()
		}
		return err
	}
	// The cloud's name is ordered at start: browsers get Pebble's
	// certificate, then the pinning clients are tried.
	var err error
	if !eventually(30*time.Second, func() bool { err = handshake(cloudName, roots); return err == nil }) {
		t.Fatalf("the cloud's name presents no certificate from the ACME server: %v\n%s", err, tail(serve.out.String(), 20))
	}
	c.login(t, c.admin, contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", "http://127.0.0.1:1")
	api := c.publish(t, c.admin, "api", "http://127.0.0.1:1")
	for _, n := range []string{web.ExternalHost, api.ExternalHost, unknown} {
		dns.SetA(n, net.IPv4(127, 0, 0, 1))
	}
	st := c.mustRegister(t, c.admin, filepath.Join(t.TempDir(), "conn"), contosoAdmin, contosoPW)
	c.runConnector(t, c.admin, st)
	caPEM, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, res := c.register(t, c.admin, filepath.Join(t.TempDir(), "conn2"), contosoAdmin, contosoPW, "--ca-fingerprint", pki.Fingerprint(ca)); res.code != 0 {
		t.Errorf("registration pinning the CA by fingerprint failed with ACME on:\n%s", res)
	}
	for _, host := range []string{web.ExternalHost, api.ExternalHost} {
		var err error
		// The route table of the serving process picks up the new
		// applications within its refresh interval.
		if !eventually(30*time.Second, func() bool { err = handshake(host, roots); return err == nil }) {
			t.Fatalf("%s presents no certificate from the ACME server: %v\n%s", host, err, tail(serve.out.String(), 20))
		}
	}
	if err := handshake(unknown, roots); err == nil {
		t.Errorf("%s presents a certificate from the ACME server", unknown)
	}
	if err := handshake(unknown, c.pool); err != nil {
		t.Errorf("%s: want the cloud CA's certificate: %v", unknown, err)
	}
	for name, want := range map[string]int{unknown: 0, cloudName: 1, web.ExternalHost: 1, api.ExternalHost: 1} {
		if n := p.OrdersFor(name); n != want {
			t.Errorf("%d orders for %s, want %d", n, name, want)
		}
	}
	if n := strings.Count(p.Log.String(), "Issued certificate"); n != 3 {
		t.Errorf("pebble issued %d certificates, want 3 (the cloud's name and each published host)", n)
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+httpPort+"/path/x?q=1", nil)
	req.Host = web.ExternalHost
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://" + web.ExternalHost + ":" + port + "/path/x?q=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}
