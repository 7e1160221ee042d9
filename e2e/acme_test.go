package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/acmetest"
	"github.com/sallyport/sallyport/internal/dnstest"
)

// TestACME runs 'cloud serve --acme-email' against a real ACME server
// (Pebble, its names resolved to 127.0.0.1 by a test DNS server): two
// published hosts get certificates a client trusting only Pebble's root
// accepts; an unknown name and the cloud's own name make no order (the
// cloud's name keeps the cloud CA's certificate, which the admin CLI pins);
// plain HTTP redirects to https with 308.
func TestACME(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	const unknown = "unknown." + cloudName
	c := initCloud(t)
	port, httpPort := freePort(t), freePort(t)
	tlsPort, _ := strconv.Atoi(port)
	hp, _ := strconv.Atoi(httpPort)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: hp, TLSPort: tlsPort, DNSServer: dns.Addr()})

	c.port, c.url = port, "https://"+cloudName+":"+port
	serve := c.admin.start(t, "cloud serve", "cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:"+port,
		"--acme-email", "ops@contoso.com", "--acme-ca", p.Directory, "--acme-ca-root", p.APICertFile,
		"--http-listen", "127.0.0.1:"+httpPort)
	if !c.waitServing(serve) || serve.exited() {
		t.Fatalf("cloud serve --acme-email did not come up:\n%s", tail(serve.out.String(), 40))
	}
	c.serve = serve
	c.login(t, c.admin, contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", "http://127.0.0.1:1")
	api := c.publish(t, c.admin, "api", "http://127.0.0.1:1")
	for _, n := range []string{cloudName, web.ExternalHost, api.ExternalHost, unknown} {
		dns.SetA(n, net.IPv4(127, 0, 0, 1))
	}
	roots := p.Roots(t)
	handshake := func(name string, pool *x509.CertPool) error {
		d := &net.Dialer{Timeout: time.Minute}
		conn, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+port, &tls.Config{ServerName: name, RootCAs: pool, NextProtos: []string{"h2"}})
		if err == nil {
			conn.Close()
		}
		return err
	}
	for _, host := range []string{web.ExternalHost, api.ExternalHost} {
		var err error
		// The route table of the serving process picks up the new
		// applications within its refresh interval.
		if !eventually(30*time.Second, func() bool { err = handshake(host, roots); return err == nil }) {
			t.Fatalf("%s presents no certificate from the ACME server: %v\n%s", host, err, tail(serve.out.String(), 20))
		}
	}
	for _, name := range []string{unknown, cloudName} {
		if err := handshake(name, roots); err == nil {
			t.Errorf("%s presents a certificate from the ACME server", name)
		}
		if err := handshake(name, c.pool); err != nil {
			t.Errorf("%s: want the cloud CA's certificate: %v", name, err)
		}
		if strings.Contains(p.Log.String(), `"`+name+`"`) {
			t.Errorf("an order was made for %s", name)
		}
	}
	if n := strings.Count(p.Log.String(), "Issued certificate"); n != 2 {
		t.Errorf("pebble issued %d certificates, want 2 (one per published host)", n)
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
