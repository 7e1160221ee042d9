package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"sync"
	"testing"
	"time"
)

// Keys are expensive (RSA especially), so tests share them.
var (
	keysOnce sync.Once
	keys     map[string]crypto.Signer
)

func testKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]crypto.Signer{}
		must := func(k crypto.Signer, err error) crypto.Signer {
			if err != nil {
				panic(err)
			}
			return k
		}
		keys["p256"] = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		keys["p384"] = must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
		keys["p224"] = must(ecdsa.GenerateKey(elliptic.P224(), rand.Reader))
		keys["p521"] = must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader))
		keys["rsa1024"] = must(rsa.GenerateKey(rand.Reader, 1024))
		keys["rsa2048"] = must(rsa.GenerateKey(rand.Reader, 2048))
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		keys["ed25519"] = must(ed, err)
	})
	k, ok := keys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

func testCA(t testing.TB) *CA {
	t.Helper()
	ca, err := NewCA("Sallyport Test CA", 24*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// csrPEM makes a PEM CSR from a template signed by key.
func csrPEM(t testing.TB, tmpl *x509.CertificateRequest, key crypto.Signer) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: "connector"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("CreateCertificateRequest: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func mustParseCSR(t testing.TB, p []byte) *x509.CertificateRequest {
	t.Helper()
	csr, err := ParseCSR(p)
	if err != nil {
		t.Fatalf("ParseCSR: %v", err)
	}
	return csr
}

func mustEC(t testing.TB, k crypto.Signer) *ecdsa.PrivateKey {
	t.Helper()
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("%T is not ECDSA", k)
	}
	return ec
}

func mustRSA(t testing.TB, k crypto.Signer) *rsa.PrivateKey {
	t.Helper()
	r, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("%T is not RSA", k)
	}
	return r
}
