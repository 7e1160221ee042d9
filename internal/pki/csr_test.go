package pki

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func decodeOne(p []byte) ([]byte, error) {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	return b.Bytes, nil
}

func TestParseCSR(t *testing.T) {
	t.Parallel()
	valid := csrPEM(t, nil, testKey(t, "p256"))

	// Tamper with the signed part: rename the subject, keep the signature.
	tmplA := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "aaaaaaaa"}}
	signedA := csrPEM(t, tmplA, testKey(t, "p256"))
	derA := mustDecode(t, signedA)
	tamperedDER := bytes.Replace(derA, []byte("aaaaaaaa"), []byte("bbbbbbbb"), 1)
	if bytes.Equal(tamperedDER, derA) {
		t.Fatal("tampering failed")
	}
	tampered := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tamperedDER})

	// Corrupt the signature itself.
	badSigDER := append([]byte(nil), mustDecode(t, csrPEM(t, nil, testKey(t, "ed25519")))...)
	badSigDER[len(badSigDER)-1] ^= 0x01
	badSig := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: badSigDER})

	withHeaders := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Headers: map[string]string{"X": "y"}, Bytes: mustDecode(t, valid)})
	oversize := append(bytes.Repeat([]byte("#"), MaxCSRSize+1-len(valid)), valid...)
	atLimit := append(bytes.Repeat([]byte("\n"), MaxCSRSize-len(valid)), valid...)

	for _, tc := range []struct {
		name string
		in   []byte
		want string // "" means accepted
	}{
		{"ecdsa p256", valid, ""},
		{"ecdsa p384", csrPEM(t, nil, testKey(t, "p384")), ""},
		{"rsa 2048", csrPEM(t, nil, testKey(t, "rsa2048")), ""},
		{"ed25519", csrPEM(t, nil, testKey(t, "ed25519")), ""},
		{"leading and trailing text", append(append([]byte("Certificate Request:\n  ...\n"), valid...), "\n"...), ""},
		{"exactly at the size limit", atLimit, ""},
		{"rsa 1024", csrPEM(t, nil, testKey(t, "rsa1024")), "1024-bit RSA key"},
		{"ecdsa p224", csrPEM(t, nil, testKey(t, "p224")), "P-224"},
		{"ecdsa p521", csrPEM(t, nil, testKey(t, "p521")), "P-521"},
		{"tampered subject", tampered, "signature is invalid"},
		{"tampered signature", badSig, "signature is invalid"},
		{"oversize", oversize, "too large"},
		{"not PEM", []byte("hello, I am a CSR"), "not PEM encoded"},
		{"empty", nil, "not PEM encoded"},
		{"raw DER", mustDecode(t, valid), "not PEM encoded"},
		{"wrong block type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mustDecode(t, valid)}), "not a \"CERTIFICATE REQUEST\""},
		{"old block type", pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: mustDecode(t, valid)}), "not a \"CERTIFICATE REQUEST\""},
		{"two blocks", append(append([]byte(nil), valid...), valid...), "more than one PEM block"},
		{"csr and key", append(append([]byte(nil), valid...), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"...), "more than one PEM block"},
		{"headers", withHeaders, "headers"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}), "cannot be parsed"},
		{"trailing DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: append(mustDecode(t, valid), 0)}), "cannot be parsed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr, err := ParseCSR(tc.in)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseCSR: %v", err)
				}
				if err := csr.CheckSignature(); err != nil {
					t.Fatalf("accepted CSR has a bad signature: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseCSR accepted it; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseCSR error %q does not contain %q", err, tc.want)
			}
			if msg := err.Error(); msg[0] < 'a' || msg[0] > 'z' {
				t.Errorf("error %q does not start with a lower-case letter", msg)
			}
		})
	}
}

func TestParseCSRRefusesSHA1(t *testing.T) {
	t.Parallel()
	der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{
		Subject:            pkix.Name{CommonName: "old"},
		SignatureAlgorithm: x509.SHA1WithRSA,
	}, testKey(t, "rsa2048"))
	if err != nil {
		t.Skipf("this Go cannot make SHA-1 CSRs: %v", err)
	}
	_, err = ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	if err == nil || !strings.Contains(err.Error(), "insecure") {
		t.Fatalf("ParseCSR error = %v, want an insecure algorithm error", err)
	}
}

func TestNewKeyAndCSR(t *testing.T) {
	t.Parallel()
	keyPEM, csrBytes, err := NewKeyAndCSR("my-connector")
	if err != nil {
		t.Fatal(err)
	}
	csr := mustParseCSR(t, csrBytes)
	if csr.Subject.CommonName != "my-connector" {
		t.Errorf("CommonName = %q", csr.Subject.CommonName)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Fatal("key is not a PKCS#8 PEM block")
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(key.Public(), csr.PublicKey) {
		t.Error("the key does not match the CSR")
	}
	if err := checkPublicKey(csr.PublicKey, "csr"); err != nil {
		t.Error(err)
	}
}

func FuzzParseCSR(f *testing.F) {
	valid := csrPEM(f, nil, testKey(f, "p256"))
	f.Add(valid)
	f.Add(csrPEM(f, nil, testKey(f, "ed25519")))
	f.Add(csrPEM(f, nil, testKey(f, "rsa2048")))
	f.Add(append(append([]byte(nil), valid...), valid...))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{0x30, 0x00}}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mustDecode(f, valid)}))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("junk"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		csr, err := ParseCSR(in)
		if err != nil {
			if csr != nil {
				t.Fatal("ParseCSR returned a CSR with an error")
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if len(in) > MaxCSRSize {
			t.Fatalf("accepted %d bytes", len(in))
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR whose signature does not verify: %v", err)
		}
		if err := checkPublicKey(csr.PublicKey, "csr"); err != nil {
			t.Fatalf("accepted a CSR with a refused key: %v", err)
		}
	})
}
