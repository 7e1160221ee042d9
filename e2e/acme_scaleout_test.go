package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/acmetest"
	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/testnet"
)

// TestACMEScaleOut: two 'cloud serve --acme-email' processes on one
// PostgreSQL store, behind TCP balancers (Pebble's validations reach
// either instance, as behind a real load balancer), get their first TLS
// handshakes for the same published host at the same moment: Pebble
// receives exactly one order, and both instances present the same
// certificate (the one ordering holds the store's lock; the other waits,
// then loads the certificate from the store).
func TestACMEScaleOut(t *testing.T) {
	t.Parallel()
	pg := pgtest.NewCluster(t)
	pwFile := filepath.Join(t.TempDir(), "pg-password")
	writeFile(t, pwFile, pgPassword+"\n", 0o600)
	c := initCloudArgs(t, "--store", pg.DSN(t), "--store-password-file", pwFile)
	dirs := []string{c.dataDir, c.dataDir + "-2"}
	copyDir(t, c.dataDir, dirs[1])

	dns := dnstest.Start(t)
	tlsLB, httpLB := testnet.StartBalancer(t), testnet.StartBalancer(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: httpLB.Port(), TLSPort: tlsLB.Port(), DNSServer: dns.Addr()})
	ports, httpPorts := []string{freePort(t), freePort(t)}, []string{freePort(t), freePort(t)}
	tlsLB.SetTargets("127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1])
	httpLB.SetTargets("127.0.0.1:"+httpPorts[0], "127.0.0.1:"+httpPorts[1])
	serve := func(i int) *proc {
		in := &cloud{admin: c.admin, dataDir: dirs[i], port: ports[i], url: "https://" + cloudName + ":" + ports[i],
			caFile: c.caFile, pool: c.pool, fingerprint: c.fingerprint, clients: map[string]*http.Client{}}
		t.Cleanup(func() {
			for _, hc := range in.clients {
				hc.CloseIdleConnections()
			}
		})
		pr := c.admin.start(t, "cloud serve #"+ports[i], "cloud", "serve", "--data-dir", dirs[i], "--listen", "127.0.0.1:"+ports[i],
			"--acme-email", "ops@contoso.com", "--acme-ca", p.Directory, "--acme-ca-root", p.APICertFile,
			"--http-listen", "127.0.0.1:"+httpPorts[i])
		if !in.waitServing(pr) || pr.exited() {
			t.Fatalf("cloud serve #%d did not come up:\n%s", i+1, tail(pr.out.String(), 40))
		}
		return pr
	}

	// The application is published before the second instance starts:
	// both route it from their first handshake.
	first := serve(0)
	c.port, c.url, c.serve = ports[0], "https://"+cloudName+":"+ports[0], first
	c.login(t, c.admin, contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", "http://127.0.0.1:1")
	dns.SetA(web.ExternalHost, net.IPv4(127, 0, 0, 1))
	second := serve(1)

	roots := p.Roots(t)
	certs := make([]*x509.Certificate, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, port := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d := &net.Dialer{Timeout: 2 * time.Minute}
			conn, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+port, &tls.Config{ServerName: web.ExternalHost, RootCAs: roots, NextProtos: []string{"h2"}})
			if err != nil {
				errs[i] = err
				return
			}
			certs[i] = conn.ConnectionState().PeerCertificates[0]
			conn.Close()
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d presents no certificate from the ACME server: %v\n%s\n%s", i+1, err,
				tail(first.out.String(), 20), tail(second.out.String(), 20))
		}
	}
	if x, y := certs[0].SerialNumber, certs[1].SerialNumber; x.Cmp(y) != 0 {
		t.Errorf("the instances present two certificates (serials %x and %x): each ordered its own", x, y)
	}
	// Orders for the host only: the cloud's own name is ordered too
	// (at start, by each instance that finds it not held yet).
	if n := p.OrdersFor(web.ExternalHost); n != 1 {
		t.Errorf("Pebble received %d orders for %s, want 1", n, web.ExternalHost)
	}
}
