package cloud

import (
	"crypto/x509"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/acmetest"
	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/testnet"
)

// TestACMETwoInstancesOrderOnce: two instances on one PostgreSQL store,
// both with ACME against Pebble, behind a TCP load balancer that sends
// Pebble's validations to either in turn (so the instance answering a
// challenge is not always the one that ordered: challenge tokens are in
// the store too). Both order the same published host's certificate at the
// same moment: Pebble sees exactly one order (the other instance waits for
// the store's lock, then finds the certificate there), and both serve that
// one certificate.
func TestACMETwoInstancesOrderOnce(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	dns := dnstest.Start(t)
	const host = "web-contoso." + acmeCloudName
	dns.SetA(host, net.IPv4(127, 0, 0, 1))
	lb := testnet.StartBalancer(t)
	p := acmetest.Start(t, acmetest.Options{TLSPort: lb.Port(), DNSServer: dns.Addr()})

	cfg := Config{ACMEEmail: "ops@contoso.com", ACMECA: p.Directory, ACMECARootFile: p.APICertFile,
		HTTPListen: "127.0.0.1:0", acmeOnly: "tls-alpn-01", InstanceBeat: 100 * time.Millisecond}
	a := newPostgresServerNamed(t, cluster, acmeCloudName, cfg)
	b := peerOf(t, a, cfg)
	var addrs []string
	for _, s := range []*Server{a, b} {
		serveStoppable(t, s)
		testnet.WaitUntil(t, "the instance listens", func() bool { return s.connLimit.Load() != nil })
		addrs = append(addrs, s.connLimit.Load().Addr().String())
	}
	lb.SetTargets(addrs...)

	admin := login(t, a, "admin@contoso.com", testPassword)
	if rec, eb := call(t, a, "POST", "/apps", admin, api.CreateAppRequest{Name: "web", InternalURL: "http://127.0.0.1:1", PreAuth: "passthrough"}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	testnet.WaitUntil(t, "both instances route the app", func() bool { return a.acmeDecision(host) == nil && b.acmeDecision(host) == nil })
	roots := p.Roots(t)

	// Both order at once. (Handshakes in one process would not show it:
	// certmagic merges one process's on-demand orders of a name by
	// itself. e2e's TestACMEScaleOut runs two processes.)
	errs := make([]error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range []*Server{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.acme.cfg.ObtainCertSync(t.Context(), host)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	var certs []*x509.Certificate
	for i, addr := range addrs {
		c := &acmeCloud{tlsAddr: addr}
		cert, err := c.handshake(t, host, roots)
		if err != nil {
			t.Fatalf("instance %d presents no certificate from the ACME server: %v", i, err)
		}
		certs = append(certs, cert)
	}
	if x, y := certs[0].SerialNumber, certs[1].SerialNumber; x.Cmp(y) != 0 {
		t.Errorf("the instances serve two certificates (serials %x and %x): each ordered its own", x, y)
	}
	// Orders for the host only: the cloud's own name is ordered too
	// (at start, by each instance that finds it not held yet).
	if n := p.OrdersFor(host); n != 1 {
		t.Errorf("Pebble received %d orders for %s, want 1 (one instance orders, the other waits for the lock and loads it from the store)", n, host)
	}
	if lb.Conns() == 0 {
		t.Error("Pebble's validation did not go through the load balancer")
	}
}
