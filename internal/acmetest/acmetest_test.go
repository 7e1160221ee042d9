package acmetest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/sallyport/sallyport/internal/acmetest"
	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/testnet"
)

// TestPebbleIssuesOverHTTP01 orders a certificate from the Pebble the
// package starts, answering its HTTP-01 challenge on loopback for a name the
// test's DNS server resolves to 127.0.0.1, and checks it against Pebble's
// root: what the cloud's ACME tests rely on.
func TestPebbleIssuesOverHTTP01(t *testing.T) {
	defer testnet.CheckLeaks(t)
	const name = "app.acmetest.example"
	dns := dnstest.Start(t)
	dns.SetA(name, net.IPv4(127, 0, 0, 1))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var tokens sync.Map // path → key authorization
	answers := make(chan struct{}, 8)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ka, ok := tokens.Load(r.URL.Path); ok {
			w.Write([]byte(ka.(string)))
			answers <- struct{}{}
			return
		}
		http.NotFound(w, r)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	p := acmetest.Start(t, acmetest.Options{HTTPPort: ln.Addr().(*net.TCPAddr).Port, TLSPort: 1, DNSServer: dns.Addr()})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &acme.Client{Key: key, DirectoryURL: p.Directory, HTTPClient: p.API}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Register(ctx, &acme.Account{Contact: []string{"mailto:ops@acmetest.example"}}, acme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		t.Fatalf("order: %v", err)
	}
	for _, u := range order.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range z.Challenges {
			if ch.Type != "http-01" {
				continue
			}
			ka, err := c.HTTP01ChallengeResponse(ch.Token)
			if err != nil {
				t.Fatal(err)
			}
			tokens.Store(c.HTTP01ChallengePath(ch.Token), ka)
			if _, err := c.Accept(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			t.Fatalf("authorization: %v", err)
		}
	}
	testnet.RecvWithin(t, "pebble fetched the HTTP-01 answer", answers)
	order, err = c.WaitOrder(ctx, order.URI)
	if err != nil {
		t.Fatal(err)
	}
	csrKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, csrKey)
	if err != nil {
		t.Fatal(err)
	}
	// x/crypto/acme follows a Location header Pebble's finalize answer
	// does not carry: finalize, then poll the order and fetch its
	// certificate.
	c.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if order, err = c.WaitOrder(ctx, order.URI); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	der, err := c.FetchCert(ctx, order.CertURL, true)
	if err != nil {
		t.Fatalf("fetch the certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, d := range der[1:] {
		ic, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: p.Roots(t), Intermediates: inter}); err != nil {
		t.Fatalf("the issued certificate does not verify against pebble's root: %v", err)
	}
	if n, nn := p.Orders(), p.OrdersFor(name); n != 1 || nn != 1 || p.OrdersFor("other.example") != 0 {
		t.Errorf("orders counted: %d, %d for %s, want 1 (the one made)", n, nn, name)
	}
}
