package testnet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority a test makes for itself: an ECDSA P-256
// key and a self-signed certificate, valid from an hour ago for a day.
type CA struct {
	Root   *x509.Certificate // the CA's certificate, what a client trusts
	Key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// NewCA makes a test CA.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca := &CA{Key: newKey(t)}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)), Subject: pkix.Name{CommonName: "testnet CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.Key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Root, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	return ca
}

// Cert is a server certificate signed by the CA for names (IP addresses
// or DNS names; the first is also the subject's common name), with its
// chain (the leaf, then the CA) and its key.
func (ca *CA) Cert(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	if len(names) == 0 {
		t.Fatal("testnet: a certificate needs a name")
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Root, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Root.Raw}, PrivateKey: key}
}

// PEM is Cert in PEM: the chain (leaf first) and the key (PKCS #8), as
// a program reads them from files.
func (ca *CA) PEM(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	c := ca.Cert(t, names...)
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	k, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
