package release

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// contextPrefix is the signing context spelled out independently of the
// package constant, so that a change to the constant (which would break
// every deployed connector) fails the tests.
const contextPrefix = "sallyport release manifest v1\n"

// testKey returns a deterministic key derived from seed byte n.
func testKey(n byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

// signRaw signs arbitrary bytes the way the cloud does, without
// validating or encoding anything.
func signRaw(priv ed25519.PrivateKey, raw []byte) Signed {
	msg := append([]byte(contextPrefix), raw...)
	return Signed{
		Manifest:  raw,
		Signature: ed25519.Sign(priv, msg),
		KeyID:     KeyID(priv.Public().(ed25519.PublicKey)),
	}
}

func validManifest() Manifest {
	return Manifest{
		Format:      Format,
		Version:     "1.4.0",
		OS:          "linux",
		Arch:        "amd64",
		Major:       true,
		SHA256:      strings.Repeat("0123456789abcdef", 4),
		Size:        12 << 20,
		PublishedAt: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC),
		Notes:       "Fixes the reconnect loop.",
	}
}

func sameManifest(t *testing.T, got, want Manifest) {
	t.Helper()
	if got.Format != want.Format || got.Version != want.Version || got.OS != want.OS ||
		got.Arch != want.Arch || got.Major != want.Major || got.SHA256 != want.SHA256 ||
		got.Size != want.Size || !got.PublishedAt.Equal(want.PublishedAt) || got.Notes != want.Notes {
		t.Fatalf("manifest = %+v, want %+v", got, want)
	}
}

func TestSigningContextConstant(t *testing.T) {
	if signingContext != contextPrefix {
		t.Fatalf("signingContext = %q, want %q (changing it invalidates every signature)", signingContext, contextPrefix)
	}
}

func TestManifestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Manifest)
		ok     bool
	}{
		{"valid", func(*Manifest) {}, true},
		{"valid minor release", func(m *Manifest) { m.Major = false }, true},
		{"valid v-prefixed pre-release with build", func(m *Manifest) { m.Version = "v2.0.0-rc.1+build.7" }, true},
		{"valid without notes", func(m *Manifest) { m.Notes = "" }, true},
		{"valid notes of 1024 bytes", func(m *Manifest) { m.Notes = strings.Repeat("n", 1024) }, true},
		{"valid size 1", func(m *Manifest) { m.Size = 1 }, true},
		{"valid size MaxBinary", func(m *Manifest) { m.Size = MaxBinary }, true},
		{"valid zero published time", func(m *Manifest) { m.PublishedAt = time.Time{} }, true},

		{"empty format", func(m *Manifest) { m.Format = "" }, false},
		{"future format", func(m *Manifest) { m.Format = "sallyport-release/2" }, false},
		{"format with trailing space", func(m *Manifest) { m.Format = Format + " " }, false},

		{"empty version", func(m *Manifest) { m.Version = "" }, false},
		{"two-part version", func(m *Manifest) { m.Version = "1.4" }, false},
		{"leading-zero version", func(m *Manifest) { m.Version = "01.4.0" }, false},
		{"garbage version", func(m *Manifest) { m.Version = "latest" }, false},

		{"empty os", func(m *Manifest) { m.OS = "" }, false},
		{"upper-case os", func(m *Manifest) { m.OS = "Linux" }, false},
		{"unknown os", func(m *Manifest) { m.OS = "plan9" }, false},
		{"os with space", func(m *Manifest) { m.OS = "linux " }, false},
		{"os path", func(m *Manifest) { m.OS = "../linux" }, false},

		{"empty arch", func(m *Manifest) { m.Arch = "" }, false},
		{"unknown arch", func(m *Manifest) { m.Arch = "x86_64" }, false},
		{"upper-case arch", func(m *Manifest) { m.Arch = "AMD64" }, false},
		{"arch too long", func(m *Manifest) { m.Arch = strings.Repeat("a", 17) }, false},

		{"empty digest", func(m *Manifest) { m.SHA256 = "" }, false},
		{"upper-case digest", func(m *Manifest) { m.SHA256 = strings.ToUpper(m.SHA256) }, false},
		{"short digest", func(m *Manifest) { m.SHA256 = m.SHA256[:63] }, false},
		{"long digest", func(m *Manifest) { m.SHA256 += "0" }, false},
		{"non-hex digest", func(m *Manifest) { m.SHA256 = "g" + m.SHA256[1:] }, false},
		{"sha512-sized digest", func(m *Manifest) { m.SHA256 += m.SHA256 }, false},
		{"digest with newline", func(m *Manifest) { m.SHA256 = m.SHA256[:63] + "\n" }, false},

		{"zero size", func(m *Manifest) { m.Size = 0 }, false},
		{"negative size", func(m *Manifest) { m.Size = -1 }, false},
		{"size over MaxBinary", func(m *Manifest) { m.Size = MaxBinary + 1 }, false},

		{"notes over 1024 bytes", func(m *Manifest) { m.Notes = strings.Repeat("n", 1025) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.modify(&m)
			err := m.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("Validate() = nil, want an error for %+v", m)
			}
		})
	}
}

func TestValidateEveryKnownTarget(t *testing.T) {
	for _, os := range KnownOS {
		for _, arch := range KnownArch {
			m := validManifest()
			m.OS, m.Arch = os, arch
			if err := m.Validate(); err != nil {
				t.Errorf("%s/%s: Validate() = %v", os, arch, err)
			}
		}
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	pub, priv := testKey(1)
	want := validManifest()
	s, err := Sign(want, priv)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if s.KeyID != KeyID(pub) {
		t.Errorf("KeyID = %q, want %q", s.KeyID, KeyID(pub))
	}
	if len(s.Signature) != ed25519.SignatureSize {
		t.Errorf("signature is %d bytes", len(s.Signature))
	}
	if !ed25519.Verify(pub, append([]byte(contextPrefix), s.Manifest...), s.Signature) {
		t.Error("the signature is not over the context prefix and the manifest bytes")
	}
	if ed25519.Verify(pub, s.Manifest, s.Signature) {
		t.Error("the signature verifies over the bare manifest: the context prefix is missing")
	}
	got, err := Verify(s, pub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	sameManifest(t, got, want)

	// Every valid variant round-trips as well.
	for _, v := range []string{"0.1.0-dev", "v3.0.0", "1.0.0-alpha+build.5"} {
		m := validManifest()
		m.Version, m.Major, m.Notes = v, false, ""
		s, err := Sign(m, priv)
		if err != nil {
			t.Fatalf("Sign(%s): %v", v, err)
		}
		got, err := Verify(s, pub)
		if err != nil {
			t.Fatalf("Verify(%s): %v", v, err)
		}
		sameManifest(t, got, m)
	}
}

func TestSignRefusesInvalidManifest(t *testing.T) {
	_, priv := testKey(1)
	m := validManifest()
	m.SHA256 = "nope"
	if s, err := Sign(m, priv); err == nil {
		t.Fatalf("Sign of an invalid manifest = %+v, want an error", s)
	}
}

func TestSignRefusesBadKey(t *testing.T) {
	_, priv := testKey(1)
	for _, key := range []ed25519.PrivateKey{nil, {}, priv[:32], append(append(ed25519.PrivateKey{}, priv...), 0)} {
		if _, err := Sign(validManifest(), key); err == nil {
			t.Errorf("Sign with a %d-byte key succeeded", len(key))
		}
	}
}

func TestVerifyRefusesFlippedManifestByte(t *testing.T) {
	pub, priv := testKey(1)
	s, err := Sign(validManifest(), priv)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Manifest {
		for _, bit := range []byte{0x01, 0x80} {
			bad := s
			bad.Manifest = bytes.Clone(s.Manifest)
			bad.Manifest[i] ^= bit
			if _, err := Verify(bad, pub); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("byte %d ^ %#x: Verify = %v, want ErrBadSignature", i, bit, err)
			}
		}
	}
	// Truncated and extended manifests.
	for _, raw := range [][]byte{s.Manifest[:len(s.Manifest)-1], append(bytes.Clone(s.Manifest), ' ')} {
		bad := s
		bad.Manifest = raw
		if _, err := Verify(bad, pub); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("manifest of %d bytes: Verify = %v, want ErrBadSignature", len(raw), err)
		}
	}
}

func TestVerifyRefusesFlippedSignatureByte(t *testing.T) {
	pub, priv := testKey(1)
	s, err := Sign(validManifest(), priv)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Signature {
		for _, bit := range []byte{0x01, 0x80} {
			bad := s
			bad.Signature = bytes.Clone(s.Signature)
			bad.Signature[i] ^= bit
			if _, err := Verify(bad, pub); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("signature byte %d ^ %#x: Verify = %v, want ErrBadSignature", i, bit, err)
			}
		}
	}
}

func TestVerifyRefusesWrongLengthSignature(t *testing.T) {
	pub, priv := testKey(1)
	s, err := Sign(validManifest(), priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range [][]byte{
		nil,
		{},
		s.Signature[:ed25519.SignatureSize-1],
		append(bytes.Clone(s.Signature), 0),
		append(bytes.Clone(s.Signature), s.Signature...),
	} {
		bad := s
		bad.Signature = sig
		if _, err := Verify(bad, pub); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%d-byte signature: Verify = %v, want ErrBadSignature", len(sig), err)
		}
	}
}

func TestVerifyRefusesOtherKey(t *testing.T) {
	pub, _ := testKey(1)
	otherPub, other := testKey(2)
	s, err := Sign(validManifest(), other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(s, pub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify with the wrong key = %v, want ErrBadSignature", err)
	}
	// The KeyID field is informational: claiming the pinned key's ID does
	// not help.
	s.KeyID = KeyID(pub)
	if _, err := Verify(s, pub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify with a forged key ID = %v, want ErrBadSignature", err)
	}
	if _, err := Verify(s, otherPub); err != nil {
		t.Fatalf("Verify with the signing key = %v", err)
	}
}

func TestVerifyRefusesOtherContext(t *testing.T) {
	pub, priv := testKey(1)
	raw, err := json.Marshal(validManifest())
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "sallyport release manifest v2\n", "sallyport release manifest v1", strings.TrimSuffix(contextPrefix, "\n") + "\r\n"} {
		s := Signed{Manifest: raw, Signature: ed25519.Sign(priv, append([]byte(prefix), raw...))}
		if _, err := Verify(s, pub); !errors.Is(err, ErrBadSignature) {
			t.Errorf("signed with prefix %q: Verify = %v, want ErrBadSignature", prefix, err)
		}
	}
}

func TestVerifyManifestSize(t *testing.T) {
	pub, priv := testKey(1)
	raw, err := json.Marshal(validManifest())
	if err != nil {
		t.Fatal(err)
	}

	// Exactly MaxManifest bytes (JSON padded with white space) is accepted.
	atMax := append(bytes.Clone(raw), bytes.Repeat([]byte(" "), MaxManifest-len(raw))...)
	if _, err := Verify(signRaw(priv, atMax), pub); err != nil {
		t.Fatalf("manifest of MaxManifest bytes: Verify = %v", err)
	}

	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"one over MaxManifest", append(bytes.Clone(atMax), ' ')},
		{"huge", bytes.Repeat([]byte(" "), 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Validly signed, yet refused on size alone.
			m, err := Verify(signRaw(priv, tc.raw), pub)
			if err == nil {
				t.Fatalf("Verify = %+v, want an error", m)
			}
			if errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v, want a size error, not ErrBadSignature", err)
			}
		})
	}
}

func TestVerifyRefusesBadPublicKey(t *testing.T) {
	pub, priv := testKey(1)
	s, err := Sign(validManifest(), priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []ed25519.PublicKey{
		nil,
		{},
		pub[:ed25519.PublicKeySize-1],
		append(bytes.Clone(pub), 0),
		ed25519.PublicKey(priv), // the private key by mistake
	} {
		if m, err := Verify(s, key); err == nil {
			t.Errorf("Verify with a %d-byte key = %+v, want an error", len(key), m)
		}
	}
}

func TestVerifyRefusesSignedInvalidContent(t *testing.T) {
	pub, priv := testKey(1)
	tests := []struct {
		name   string
		modify func(*Manifest)
	}{
		{"bad digest", func(m *Manifest) { m.SHA256 = "not-a-digest" }},
		{"upper-case digest", func(m *Manifest) { m.SHA256 = strings.ToUpper(m.SHA256) }},
		{"other format", func(m *Manifest) { m.Format = "sallyport-release/0" }},
		{"bad version", func(m *Manifest) { m.Version = "1.2" }},
		{"unknown os", func(m *Manifest) { m.OS = "plan9" }},
		{"unknown arch", func(m *Manifest) { m.Arch = "mips" }},
		{"zero size", func(m *Manifest) { m.Size = 0 }},
		{"oversized binary", func(m *Manifest) { m.Size = MaxBinary + 1 }},
		{"long notes", func(m *Manifest) { m.Notes = strings.Repeat("x", 1025) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.modify(&m)
			raw, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Verify(signRaw(priv, raw), pub)
			if err == nil {
				t.Fatalf("Verify = %+v, want an error", got)
			}
			if errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v; the signature is good, the content is not", err)
			}
			if (got != Manifest{}) {
				t.Fatalf("Verify returned %+v alongside an error", got)
			}
		})
	}
}

func TestVerifyRefusesSignedNonJSON(t *testing.T) {
	pub, priv := testKey(1)
	raw, err := json.Marshal(validManifest())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  string
	}{
		{"text", "not json at all"},
		{"truncated", string(raw[:len(raw)/2])},
		{"array", "[]"},
		{"string", `"manifest"`},
		{"number", "42"},
		{"null", "null"},
		{"empty object", "{}"},
		{"wrong field type", strings.Replace(string(raw), `"size":12582912`, `"size":"12582912"`, 1)},
		{"trailing garbage", string(raw) + "garbage"},
		{"second object", string(raw) + string(raw)},
		{"nul byte", "\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Verify(signRaw(priv, []byte(tc.raw)), pub)
			if err == nil {
				t.Fatalf("Verify(%q) = %+v, want an error", tc.raw, m)
			}
			if errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v; the signature is good, the content is not", err)
			}
		})
	}
	// Sanity check of the "wrong field type" case: the replacement hit.
	if !strings.Contains(string(raw), `"size":12582912`) {
		t.Fatalf("the test manifest encoding changed: %s", raw)
	}
}

func TestVerifyAcceptsHandSignedManifest(t *testing.T) {
	// A manifest encoded by someone other than Sign (field order,
	// white space, a time zone offset) still verifies:
	// the signature covers the bytes, not a canonical form.
	pub, priv := testKey(1)
	raw := []byte(`{
  "sha256": "` + strings.Repeat("ab", 32) + `",
  "size": 1,
  "version": "v0.1.0-dev",
  "os": "darwin", "arch": "arm64",
  "format": "sallyport-release/1",
  "major": false,
  "published_at": "2025-01-02T03:04:05+01:00"
}
`)
	m, err := Verify(signRaw(priv, raw), pub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if m.Version != "v0.1.0-dev" || m.OS != "darwin" || m.Arch != "arm64" || m.Size != 1 || m.Major {
		t.Fatalf("Verify = %+v", m)
	}
	if want := time.Date(2025, 1, 2, 2, 4, 5, 0, time.UTC); !m.PublishedAt.Equal(want) {
		t.Fatalf("PublishedAt = %v, want %v", m.PublishedAt, want)
	}
}

func TestSignedJSONRoundTrip(t *testing.T) {
	pub, priv := testKey(1)
	s, err := Sign(validManifest(), priv)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}

	var fields map[string]string
	if err := json.Unmarshal(enc, &fields); err != nil {
		t.Fatalf("the encoding %s is not an object of strings: %v", enc, err)
	}
	if len(fields) != 3 {
		t.Errorf("fields = %v, want manifest, signature and key_id", fields)
	}
	if got, want := fields["manifest"], base64.StdEncoding.EncodeToString(s.Manifest); got != want {
		t.Errorf("manifest = %q, want standard base64 %q", got, want)
	}
	if got, want := fields["signature"], base64.StdEncoding.EncodeToString(s.Signature); got != want {
		t.Errorf("signature = %q, want standard base64 %q", got, want)
	}
	if fields["key_id"] != KeyID(pub) {
		t.Errorf("key_id = %q, want %q", fields["key_id"], KeyID(pub))
	}

	var back Signed
	if err := json.Unmarshal(enc, &back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Manifest, s.Manifest) || !bytes.Equal(back.Signature, s.Signature) || back.KeyID != s.KeyID {
		t.Fatalf("round trip = %+v, want %+v", back, s)
	}
	m, err := Verify(back, pub)
	if err != nil {
		t.Fatalf("Verify after the JSON round trip: %v", err)
	}
	sameManifest(t, m, validManifest())

	// Invalid base64 in either field is refused by the decoder.
	for _, bad := range []string{
		`{"manifest":"!!!","signature":"","key_id":""}`,
		`{"manifest":"","signature":"not base64?","key_id":""}`,
	} {
		var x Signed
		if err := json.Unmarshal([]byte(bad), &x); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}

func TestKeyIDAndEncodePublicKeyFormat(t *testing.T) {
	pub, _ := testKey(1)
	enc := EncodePublicKey(pub)
	rest, ok := strings.CutPrefix(enc, "ed25519:")
	if !ok {
		t.Fatalf("EncodePublicKey = %q, want an \"ed25519:\" prefix", enc)
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || !bytes.Equal(b, pub) {
		t.Fatalf("EncodePublicKey = %q does not hold the key in standard base64", enc)
	}
}
