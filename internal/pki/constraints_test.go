package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// forge signs a server certificate with the CA's key directly, as a bug
// (or anyone holding the key) would, bypassing IssueServer.
func forge(t *testing.T, ca *CA, dnsNames []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "forged"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dnsNames, IPAddresses: ips}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestNameConstrainedCA: a CA made with permitted names carries critical
// name constraints, so a certificate it signs for any other name (or an IP
// address) fails verification by those who trust it.
func TestNameConstrainedCA(t *testing.T) {
	ca, err := NewCA("Sallyport cloud CA sallyport.example.com", time.Hour, "sallyport.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.PermittedDNSDomainsCritical || len(ca.Cert.PermittedDNSDomains) != 1 || len(ca.Cert.ExcludedIPRanges) != 2 {
		t.Fatalf("constraints: critical %v, permitted %v, excluded IPs %v", ca.Cert.PermittedDNSDomainsCritical, ca.Cert.PermittedDNSDomains, ca.Cert.ExcludedIPRanges)
	}
	// It survives a PEM round trip (what the data directory keeps).
	key, _ := ca.KeyPEM()
	if ca, err = LoadCA(ca.CertPEM, key); err != nil {
		t.Fatal(err)
	}
	unconstrained, _ := NewCA("Sallyport cloud CA (old)", time.Hour)
	for _, tc := range []struct {
		names  []string
		ips    []net.IP
		verify string // name verified
		ok     bool
	}{
		{[]string{"sallyport.example.com", "*.sallyport.example.com"}, nil, "sallyport.example.com", true},
		{[]string{"sallyport.example.com", "*.sallyport.example.com"}, nil, "web-contoso.sallyport.example.com", true},
		{[]string{"accounts.google.com"}, nil, "accounts.google.com", false},
		{[]string{"sallyport.example.com", "accounts.google.com"}, nil, "sallyport.example.com", false},
		{[]string{"example.com"}, nil, "example.com", false},
		{[]string{"evilsallyport.example.com"}, nil, "evilsallyport.example.com", false},
		{[]string{"sallyport.example.com"}, []net.IP{net.ParseIP("127.0.0.1")}, "sallyport.example.com", false},
		{[]string{"sallyport.example.com"}, []net.IP{net.ParseIP("::1")}, "sallyport.example.com", false},
	} {
		t.Run(strings.Join(tc.names, ","), func(t *testing.T) {
			leaf := forge(t, ca, tc.names, tc.ips)
			_, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: tc.verify})
			if (err == nil) != tc.ok {
				t.Errorf("Verify = %v, want ok %v", err, tc.ok)
			}
			// The same certificate from an unconstrained CA verifies: the
			// constraint, not something else, is what refuses it.
			if !tc.ok {
				old := forge(t, unconstrained, tc.names, tc.ips)
				if _, err := old.Verify(x509.VerifyOptions{Roots: unconstrained.Pool(), DNSName: tc.verify}); err != nil {
					t.Errorf("unconstrained CA: %v", err)
				}
			}
		})
	}
	// IssueServer still works for the cloud's names.
	c, err := ca.IssueServer([]string{"sallyport.example.com", "*.sallyport.example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "app-contoso.sallyport.example.com"}); err != nil {
		t.Errorf("server certificate: %v", err)
	}
}
