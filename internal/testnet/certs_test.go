package testnet

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// TestCA: a certificate from a test CA verifies for each of its names
// (an IP address, a DNS name) against the CA alone, and not for another
// name nor against another CA; its PEM form loads as a key pair.
func TestCA(t *testing.T) {
	ca := NewCA(t)
	if !ca.Root.IsCA || ca.Root.Subject.CommonName != "testnet CA" {
		t.Fatalf("CA certificate: IsCA %v, subject %s", ca.Root.IsCA, ca.Root.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	verify := func(c tls.Certificate, name string, roots *x509.CertPool) error {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots})
		return err
	}

	c := ca.Cert(t, "127.0.0.1", "app.example.test")
	if len(c.Certificate) != 2 || string(c.Certificate[1]) != string(ca.Root.Raw) {
		t.Fatalf("chain of %d certificates, want the leaf and the CA", len(c.Certificate))
	}
	for _, name := range []string{"127.0.0.1", "app.example.test"} {
		if err := verify(c, name, roots); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := verify(c, "other.example.test", roots); err == nil {
		t.Error("the certificate verified for a name it does not have")
	}
	other := x509.NewCertPool()
	other.AddCert(NewCA(t).Root)
	if err := verify(c, "127.0.0.1", other); err == nil {
		t.Error("the certificate verified against another CA")
	}

	certPEM, keyPEM := ca.PEM(t, "127.0.0.1")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Certificate) != 2 {
		t.Fatalf("PEM chain of %d certificates, want 2", len(pair.Certificate))
	}
	if err := verify(pair, "127.0.0.1", roots); err != nil {
		t.Fatal(err)
	}
}
