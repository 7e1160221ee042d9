package release

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary manifest and signature bytes to Verify with
// a fixed pinned key. With resign set the fuzzer's signature is replaced
// by a real one over the fuzzed manifest, so that the decoding and
// validation behind the signature check are explored too.
func FuzzVerify(f *testing.F) {
	pub, priv := testKey(42)
	sign := func(raw []byte) []byte {
		return ed25519.Sign(priv, append([]byte(contextPrefix), raw...))
	}

	good, err := Sign(validManifest(), priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Manifest, good.Signature, false)
	f.Add(good.Manifest, good.Signature, true)
	flipped := append([]byte(nil), good.Signature...)
	flipped[0] ^= 1
	f.Add(good.Manifest, flipped, false)
	f.Add(good.Manifest, good.Signature[:10], false)
	f.Add([]byte{}, []byte{}, false)
	f.Add([]byte{}, []byte{}, true)
	f.Add([]byte("not json"), sign([]byte("not json")), false)
	f.Add([]byte("null"), []byte(nil), true)
	f.Add([]byte("{}"), []byte(nil), true)
	f.Add(append(append([]byte(nil), good.Manifest...), "trailing"...), []byte(nil), true)
	f.Add([]byte(strings.Repeat(" ", MaxManifest+1)), []byte(nil), true)
	m := validManifest()
	m.SHA256 = "bad"
	bad, _ := json.Marshal(m)
	f.Add(bad, sign(bad), false)
	m = validManifest()
	m.Version, m.Notes, m.OS, m.Arch = "v0.1.0-dev+b.1", "", "windows", "arm64"
	other, _ := json.Marshal(m)
	f.Add(other, sign(other), false)
	f.Add([]byte(`{"format":"sallyport-release/1","version":"1.0.0","os":"linux","arch":"amd64","major":true,`+
		`"sha256":"`+strings.Repeat("a", 64)+`","size":1,"published_at":"0000-01-01T00:00:00-23:59"}`), []byte(nil), true)

	f.Fuzz(func(t *testing.T, manifest, sig []byte, resign bool) {
		if resign {
			sig = sign(manifest)
		}
		got, err := Verify(Signed{Manifest: manifest, Signature: sig}, pub)
		if err != nil {
			if (got != Manifest{}) {
				t.Fatalf("Verify returned %+v alongside %v", got, err)
			}
			if resign && len(manifest) > 0 && len(manifest) <= MaxManifest && errors.Is(err, ErrBadSignature) {
				t.Fatalf("a good signature was refused: %v", err)
			}
			return
		}
		if len(manifest) == 0 || len(manifest) > MaxManifest {
			t.Fatalf("a %d-byte manifest was accepted", len(manifest))
		}
		if !ed25519.Verify(pub, append([]byte(contextPrefix), manifest...), sig) {
			t.Fatal("Verify accepted a signature that does not verify")
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("Verify accepted an invalid manifest %+v: %v", got, err)
		}
		// What was accepted can be signed again and reads back the same.
		again, err := Sign(got, priv)
		if err != nil {
			t.Fatalf("Sign of a verified manifest: %v", err)
		}
		back, err := Verify(again, pub)
		if err != nil {
			t.Fatalf("Verify of a re-signed manifest: %v", err)
		}
		sameManifest(t, back, got)
	})
}

// FuzzParseVersion checks that ParseVersion never panics and that what it
// accepts is written back by String in a form that parses to the same
// version.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{
		"1.2.3", "v1.2.3", "1.0.0-rc.1", "1.0.0-alpha+build.5", "0.1.0-dev",
		"1.0.0-alpha.beta.1+exp.sha.5114f85", "1.2.3---", "1.2.3-01a",
		"18446744073709551615.0.0", "1.0.0-99999999999999999999",
		"01.2.3", "1.2", "1.2.3-", "1.2.3+", "1.2.3-01", "18446744073709551616.0.0",
		"1.0.0-" + strings.Repeat("a", 59), "", "v", "1.2.3\n", "１.2.3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		if len(s) > 64 {
			t.Fatalf("a %d-character version was accepted", len(s))
		}
		str := v.String()
		if want := strings.TrimPrefix(s, "v"); str != want {
			t.Fatalf("ParseVersion(%q).String() = %q, want %q", s, str, want)
		}
		w, err := ParseVersion(str)
		if err != nil {
			t.Fatalf("ParseVersion(%q) succeeded but String() %q does not parse: %v", s, str, err)
		}
		if v.Compare(w) != 0 || w.Compare(v) != 0 || v.Compare(v) != 0 {
			t.Fatalf("%q and its String() %q compare %d / %d", s, str, v.Compare(w), w.Compare(v))
		}
		if w.String() != str {
			t.Fatalf("String() is not stable: %q then %q", str, w.String())
		}
	})
}
