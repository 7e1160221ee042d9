package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
)

func TestFingerprintRoundTrip(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	fp := Fingerprint(ca.Cert)
	sum := sha256.Sum256(ca.Cert.Raw)
	if fp != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("Fingerprint = %q", fp)
	}
	if fp != strings.ToLower(fp) {
		t.Errorf("Fingerprint %q is not lower case", fp)
	}
	if th := Thumbprint(ca.Cert); th != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Errorf("Thumbprint = %q", th)
	}
	hexPart := fp[len("sha256:"):]
	var pairs []string
	for i := 0; i < len(hexPart); i += 2 {
		pairs = append(pairs, hexPart[i:i+2])
	}
	for _, in := range []string{
		fp,
		"SHA256:" + strings.ToUpper(hexPart),
		"sha256:" + strings.Join(pairs, ":"),
		"sha256:" + strings.ToUpper(strings.Join(pairs, ":")),
		"  " + fp + "\n",
		"sha256:" + strings.Join(pairs[:4], ":") + strings.Join(pairs[4:], ""),
	} {
		got, err := ParseFingerprint(in)
		if err != nil {
			t.Errorf("ParseFingerprint(%q): %v", in, err)
			continue
		}
		if !bytes.Equal(got, sum[:]) {
			t.Errorf("ParseFingerprint(%q) = %x", in, got)
		}
		if !FingerprintMatches(ca.Cert, got) {
			t.Errorf("FingerprintMatches(%q) is false", in)
		}
	}
	if FingerprintMatches(testCA(t).Cert, sum[:]) {
		t.Error("another CA matches the fingerprint")
	}
}

func TestParseFingerprintRefuses(t *testing.T) {
	t.Parallel()
	h := strings.Repeat("ab", 32)
	colons := strings.TrimSuffix(strings.Repeat("ab:", 32), ":")
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "must start with"},
		{"no prefix", h, "must start with"},
		{"sha1 prefix", "sha1:" + h, "must start with"},
		{"md5 prefix", "md5:" + h, "must start with"},
		{"only prefix", "sha256:", "0 hex digits"},
		{"short", "sha256:" + h[:62], "62 hex digits"},
		{"odd", "sha256:" + h[:63], "63 hex digits"},
		{"long", "sha256:" + h + "00", "more than 64"},
		{"non-hex", "sha256:" + h[:63] + "g", "contains"},
		{"space inside", "sha256:" + h[:32] + " " + h[32:], "contains"},
		{"base64", "sha256:q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ", "contains"},
		{"leading colon", "sha256::" + colons, "colon"},
		{"trailing colon", "sha256:" + colons + ":", "colon"},
		{"double colon", "sha256:ab::" + colons[3:], "colon"},
		{"colon mid-byte", "sha256:a:b" + h[2:], "colon"},
		{"dash separators", "sha256:" + strings.ReplaceAll(colons, ":", "-"), "contains"},
		{"unicode", "sha256:" + h[:62] + "é", "contains"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFingerprint(tc.in)
			if err == nil {
				t.Fatalf("ParseFingerprint = %x, want an error", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestSerialHex(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		serial *big.Int
		want   string
	}{
		{big.NewInt(255), "ff"},
		{new(big.Int).SetBytes([]byte{0xAB, 0xCD, 0x01}), "abcd01"},
		{nil, ""},
	} {
		if got := SerialHex(&x509.Certificate{SerialNumber: tc.serial}); got != tc.want {
			t.Errorf("SerialHex(%v) = %q, want %q", tc.serial, got, tc.want)
		}
	}
	ca := testCA(t)
	if got := SerialHex(ca.Cert); got != ca.Cert.SerialNumber.Text(16) || got != strings.ToLower(got) {
		t.Errorf("SerialHex = %q", got)
	}
}

func FuzzParseFingerprint(f *testing.F) {
	h := strings.Repeat("0f", 32)
	f.Add("sha256:" + h)
	f.Add("SHA256:" + strings.ToUpper(h))
	f.Add("sha256:" + strings.TrimSuffix(strings.Repeat("0f:", 32), ":"))
	f.Add("sha256::")
	f.Add("sha256:" + h + ":")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseFingerprint(s)
		if err != nil {
			if b != nil {
				t.Fatal("bytes returned with an error")
			}
			return
		}
		if len(b) != sha256.Size {
			t.Fatalf("accepted %q as %d bytes", s, len(b))
		}
		canon := "sha256:" + hex.EncodeToString(b)
		again, err := ParseFingerprint(canon)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("canonical form %q does not round-trip: %x, %v", canon, again, err)
		}
		// The input is the canonical form up to case, colons and spaces.
		norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
		if norm != strings.ReplaceAll(canon, ":", "") {
			t.Fatalf("accepted %q, which is not %q up to case and colons", s, canon)
		}
	})
}
