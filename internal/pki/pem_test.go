package pki

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestCertPEM(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	srv, err := ca.IssueServer([]string{"a.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := EncodeCertPEM(srv.Certificate[0])
	bundle := append(append([]byte("comment\n"), leafPEM...), ca.CertPEM...)

	c, err := ParseCertPEM(bundle)
	if err != nil || !c.Equal(srv.Leaf) {
		t.Fatalf("ParseCertPEM = %v, %v", c, err)
	}
	// Non-certificate blocks are skipped.
	keyPEM, _ := ca.KeyPEM()
	c, err = ParseCertPEM(append(append([]byte(nil), keyPEM...), ca.CertPEM...))
	if err != nil || !c.Equal(ca.Cert) {
		t.Fatalf("ParseCertPEM after a key = %v, %v", c, err)
	}
	certs, err := ParseCertsPEM(append(append([]byte(nil), bundle...), keyPEM...))
	if err != nil || len(certs) != 2 || !certs[0].Equal(srv.Leaf) || !certs[1].Equal(ca.Cert) {
		t.Fatalf("ParseCertsPEM = %v, %v", certs, err)
	}
	for _, in := range [][]byte{nil, []byte("junk"), keyPEM} {
		if _, err := ParseCertPEM(in); err == nil {
			t.Errorf("ParseCertPEM(%.20q) succeeded", in)
		}
		if _, err := ParseCertsPEM(in); err == nil {
			t.Errorf("ParseCertsPEM(%.20q) succeeded", in)
		}
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})
	if _, err := ParseCertPEM(bad); err == nil {
		t.Error("ParseCertPEM accepted garbage")
	}
	if _, err := ParseCertsPEM(append(append([]byte(nil), ca.CertPEM...), bad...)); err == nil {
		t.Error("ParseCertsPEM accepted garbage after a good certificate")
	}
}

func TestParseKeyPEM(t *testing.T) {
	t.Parallel()
	type keyCase struct {
		name string
		pem  []byte
		key  string
	}
	var cases []keyCase
	for _, name := range []string{"p256", "p384", "rsa2048", "ed25519"} {
		der, err := x509.MarshalPKCS8PrivateKey(testKey(t, name))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, keyCase{name + " pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), name})
	}
	ecDER, err := x509.MarshalECPrivateKey(mustEC(t, testKey(t, "p256")))
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})
	cases = append(cases, keyCase{"sec1", ecPEM, "p256"})
	// openssl ecparam -genkey writes an EC PARAMETERS block first.
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	cases = append(cases, keyCase{"sec1 with params", append(params, ecPEM...), "p256"})
	rsaDER := x509.MarshalPKCS1PrivateKey(mustRSA(t, testKey(t, "rsa2048")))
	cases = append(cases, keyCase{"pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: rsaDER}), "rsa2048"})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKeyPEM(tc.pem)
			if err != nil {
				t.Fatalf("ParseKeyPEM: %v", err)
			}
			if !publicKeysEqual(k.Public(), testKey(t, tc.key).Public()) {
				t.Error("wrong key")
			}
		})
	}

	for _, tc := range []struct {
		name, want string
		in         []byte
	}{
		{"empty", "no PEM private key", nil},
		{"certificate only", "no PEM private key", testCA(t).CertPEM},
		{"encrypted pkcs8", "encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})},
		{"legacy encrypted", "encrypted", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})},
		{"garbage", "cannot be parsed", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})},
		{"wrong inner type", "cannot be parsed", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: ecDER})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeyPEM(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseKeyPEM error = %v, want %q", err, tc.want)
			}
		})
	}
}
