package release

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"regexp"
	"sync"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != ed25519.PrivateKeySize {
		t.Fatalf("key is %d bytes", len(a))
	}
	if a.Equal(b) {
		t.Fatal("two generated keys are equal")
	}
	// The key signs and verifies.
	s, err := Sign(validManifest(), a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(s, a.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
}

func TestPrivateKeyPEMRoundTrip(t *testing.T) {
	priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	b, rest := pem.Decode(raw)
	if b == nil || b.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("MarshalPrivateKey = %q, want one PEM PRIVATE KEY block", raw)
	}
	back, err := ParsePrivateKey(raw)
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if !back.Equal(priv) {
		t.Fatal("the private key changed in the PEM round trip")
	}
	// Surrounding blank lines are tolerated.
	if back, err := ParsePrivateKey(append(append([]byte("\n\n"), raw...), "\n\n"...)); err != nil || !back.Equal(priv) {
		t.Fatalf("ParsePrivateKey with white space: %v", err)
	}
}

func TestPublicKeyPEMRoundTrip(t *testing.T) {
	pub, _ := testKey(3)
	raw, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "PUBLIC KEY" {
		t.Fatalf("MarshalPublicKey = %q, want a PEM PUBLIC KEY block", raw)
	}
	for _, in := range [][]byte{raw, bytes.TrimSpace(raw), append([]byte("\r\n"), raw...)} {
		back, err := ParsePublicKey(in)
		if err != nil {
			t.Fatalf("ParsePublicKey(%q): %v", in, err)
		}
		if !back.Equal(pub) {
			t.Fatal("the public key changed in the PEM round trip")
		}
	}
}

func TestParsePublicKeyEncoded(t *testing.T) {
	pub, _ := testKey(4)
	enc := EncodePublicKey(pub)
	for _, in := range []string{enc, enc + "\n", "  " + enc + "\r\n", "\t" + enc} {
		got, err := ParsePublicKey([]byte(in))
		if err != nil {
			t.Fatalf("ParsePublicKey(%q): %v", in, err)
		}
		if !got.Equal(pub) {
			t.Fatalf("ParsePublicKey(%q) = %x, want %x", in, got, pub)
		}
	}

	// RFC 8032 test 1 public key, as trust.json would hold it.
	rfc, _ := hex.DecodeString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	got, err := ParsePublicKey([]byte("ed25519:" + base64.StdEncoding.EncodeToString(rfc)))
	if err != nil || !bytes.Equal(got, rfc) {
		t.Fatalf("ParsePublicKey(RFC 8032 key) = %x, %v", got, err)
	}
}

var (
	foreignOnce sync.Once
	foreignKeys map[string]any // name → private key of another algorithm
)

func foreignPrivateKeys(t *testing.T) map[string]any {
	t.Helper()
	foreignOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		foreignKeys = map[string]any{"RSA": rk, "ECDSA": ek}
	})
	return foreignKeys
}

func TestParsePrivateKeyRefusals(t *testing.T) {
	pub, priv := testKey(5)
	pubPEM, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	privBlock, _ := pem.Decode(privPEM)

	cases := map[string][]byte{
		"empty":              nil,
		"garbage":            []byte("this is not a key"),
		"public key PEM":     pubPEM,
		"wrong block type":   pem.EncodeToMemory(&pem.Block{Type: "ED25519 PRIVATE KEY", Bytes: privBlock.Bytes}),
		"garbage DER":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")}),
		"truncated DER":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privBlock.Bytes[:len(privBlock.Bytes)-1]}),
		"truncated PEM":      privPEM[:len(privPEM)/2],
		"raw key bytes":      priv,
		"encoded public key": []byte(EncodePublicKey(pub)),
	}
	for name, k := range foreignPrivateKeys(t) {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		cases[name+" PKCS#8"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if k, err := ParsePrivateKey(raw); err == nil {
				t.Fatalf("ParsePrivateKey = %x, want an error", k)
			}
		})
	}
}

func TestParsePublicKeyRefusals(t *testing.T) {
	pub, priv := testKey(6)
	privPEM, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubBlock, _ := pem.Decode(pubPEM)
	b64 := base64.StdEncoding.EncodeToString

	cases := map[string]string{
		"empty":                "",
		"white space":          " \n\t",
		"garbage":              "this is not a key",
		"prefix only":          "ed25519:",
		"bad base64":           "ed25519:!!!!",
		"url base64":           "ed25519:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)),
		"unpadded base64":      "ed25519:" + base64.RawStdEncoding.EncodeToString(pub),
		"31 bytes":             "ed25519:" + b64(pub[:31]),
		"33 bytes":             "ed25519:" + b64(append(bytes.Clone(pub), 0)),
		"64 bytes (private)":   "ed25519:" + b64(priv),
		"hex instead":          "ed25519:" + hex.EncodeToString(pub),
		"upper-case prefix":    "ED25519:" + b64(pub),
		"other algorithm":      "ecdsa:" + b64(pub),
		"bare base64":          b64(pub),
		"private key PEM":      string(privPEM),
		"wrong block type":     string(pem.EncodeToMemory(&pem.Block{Type: "ED25519 PUBLIC KEY", Bytes: pubBlock.Bytes})),
		"certificate block":    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pubBlock.Bytes})),
		"garbage DER":          string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")})),
		"truncated DER":        string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubBlock.Bytes[:len(pubBlock.Bytes)-1]})),
		"truncated PEM":        string(pubPEM[:len(pubPEM)/2]),
		"prefix then PEM text": "ed25519:" + string(pubPEM),
	}
	for name, k := range foreignPrivateKeys(t) {
		var pk any
		switch k := k.(type) {
		case *rsa.PrivateKey:
			pk = &k.PublicKey
			cases["RSA PKCS#1"] = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey)}))
		case *ecdsa.PrivateKey:
			pk = &k.PublicKey
		}
		der, err := x509.MarshalPKIXPublicKey(pk)
		if err != nil {
			t.Fatal(err)
		}
		cases[name+" PKIX"] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if k, err := ParsePublicKey([]byte(raw)); err == nil {
				t.Fatalf("ParsePublicKey(%q) = %x, want an error", raw, k)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	pubA, _ := testKey(7)
	pubB, _ := testKey(8)
	re := regexp.MustCompile(`^ed25519:[0-9a-f]{16}$`)

	idA := KeyID(pubA)
	if !re.MatchString(idA) {
		t.Fatalf("KeyID = %q, want ed25519: and 16 lower-case hex digits", idA)
	}
	if again := KeyID(bytes.Clone(pubA)); again != idA {
		t.Fatalf("KeyID is not stable: %q then %q", idA, again)
	}
	// The same key read back from either encoding has the same ID.
	parsed, err := ParsePublicKey([]byte(EncodePublicKey(pubA)))
	if err != nil {
		t.Fatal(err)
	}
	pemA, err := MarshalPublicKey(pubA)
	if err != nil {
		t.Fatal(err)
	}
	fromPEM, err := ParsePublicKey(pemA)
	if err != nil {
		t.Fatal(err)
	}
	if KeyID(parsed) != idA || KeyID(fromPEM) != idA {
		t.Fatalf("KeyID differs after parsing: %q, %q, want %q", KeyID(parsed), KeyID(fromPEM), idA)
	}

	if idB := KeyID(pubB); idB == idA || !re.MatchString(idB) {
		t.Fatalf("KeyID of two keys: %q and %q", idA, idB)
	}
	// A one-bit change gives another ID.
	flipped := bytes.Clone(pubA)
	flipped[31] ^= 1
	if KeyID(flipped) == idA {
		t.Fatal("KeyID does not depend on the last byte of the key")
	}

	// Known answer: SHA-256 of the RFC 8032 test 1 public key, first 8
	// bytes. Connectors pin keys by this ID, so it must never change.
	rfc, _ := hex.DecodeString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	if got, want := KeyID(rfc), "ed25519:21fe31dfa154a261"; got != want {
		t.Fatalf("KeyID(RFC 8032 key) = %q, want %q", got, want)
	}
}
