// Package release signs and checks connector releases.
//
// A release is a build of sallyport for one OS and architecture, described
// by a Manifest (version, digest, size, whether it is a major release that
// updaters install on their own). The cloud signs the manifest's exact bytes
// with its release key (ed25519); connectors pin the public half at
// registration and refuse any manifest it did not sign and any binary whose
// digest or size differs from the signed manifest. docs/install.md and
// docs/protocol.md describe the format.
//
// The package also holds the update control API's paths and messages
// (control.go), which the cloud serves and the updater calls: both ends
// take them from here, beside the manifests they carry.
package release

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Format is the manifest format this version writes and reads.
const Format = "sallyport-release/1"

// MaxManifest is the largest manifest accepted (bytes).
const MaxManifest = 4 << 10

// MaxBinary is the largest release binary accepted (bytes).
const MaxBinary = 512 << 20

// signingContext is prefixed to the manifest before signing, so that a
// release signature can never be confused with any other ed25519
// signature made with the same key.
const signingContext = "sallyport release manifest v1\n"

// Manifest describes one published build.
type Manifest struct {
	Format  string `json:"format"`
	Version string `json:"version"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	// Major marks a release that updaters install automatically; other
	// releases are installed only on request ('connector update --apply').
	Major       bool      `json:"major"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	PublishedAt time.Time `json:"published_at"`
	Notes       string    `json:"notes,omitempty"`
}

// Signed is a manifest as the cloud hands it out: its exact bytes and the
// signature over them.
type Signed struct {
	Manifest  []byte `json:"manifest"`  // base64 in JSON
	Signature []byte `json:"signature"` // base64 in JSON
	KeyID     string `json:"key_id"`
}

var (
	reOSArch = regexp.MustCompile(`^[a-z0-9]{1,16}$`)
	reDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Known operating systems and architectures a release may target.
var (
	KnownOS   = []string{"linux", "windows", "darwin", "freebsd"}
	KnownArch = []string{"amd64", "arm64", "386", "arm", "riscv64", "ppc64le", "s390x"}
)

func known(list []string, s string) bool {
	for _, k := range list {
		if k == s {
			return true
		}
	}
	return false
}

// Validate checks every field of m.
func (m *Manifest) Validate() error {
	if m.Format != Format {
		return fmt.Errorf("the manifest format %q is not %q", m.Format, Format)
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return err
	}
	if !reOSArch.MatchString(m.OS) || !known(KnownOS, m.OS) {
		return fmt.Errorf("the operating system %q is not one of %v", m.OS, KnownOS)
	}
	if !reOSArch.MatchString(m.Arch) || !known(KnownArch, m.Arch) {
		return fmt.Errorf("the architecture %q is not one of %v", m.Arch, KnownArch)
	}
	if !reDigest.MatchString(m.SHA256) {
		return errors.New("the digest is not 64 lower-case hex digits of SHA-256")
	}
	if m.Size <= 0 || m.Size > MaxBinary {
		return fmt.Errorf("the size %d is not between 1 byte and %d MiB", m.Size, MaxBinary>>20)
	}
	if len(m.Notes) > 1024 {
		return errors.New("the release notes are longer than 1024 bytes")
	}
	return nil
}

// Sign validates m, encodes it and signs the encoding.
func Sign(m Manifest, key ed25519.PrivateKey) (Signed, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Signed{}, errors.New("the release key is not an ed25519 private key")
	}
	if err := m.Validate(); err != nil {
		return Signed{}, err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return Signed{}, err
	}
	pub := key.Public().(ed25519.PublicKey)
	return Signed{Manifest: raw, Signature: ed25519.Sign(key, signed(raw)), KeyID: KeyID(pub)}, nil
}

func signed(raw []byte) []byte {
	return append([]byte(signingContext), raw...)
}

// ErrBadSignature means a manifest was not signed by the pinned key.
var ErrBadSignature = errors.New("the release manifest's signature does not verify with the pinned release key")

// Verify checks s's signature with pub, then decodes and validates the
// manifest. Nothing of the manifest is trusted before the signature is.
func Verify(s Signed, pub ed25519.PublicKey) (Manifest, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Manifest{}, errors.New("no release key is pinned")
	}
	if len(s.Manifest) == 0 || len(s.Manifest) > MaxManifest {
		return Manifest{}, fmt.Errorf("the release manifest is empty or larger than %d bytes", MaxManifest)
	}
	if len(s.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, signed(s.Manifest), s.Signature) {
		return Manifest{}, ErrBadSignature
	}
	// Unmarshal, not a Decoder: the manifest must be exactly one JSON
	// value, with nothing (but white space) after it.
	var m Manifest
	if err := json.Unmarshal(s.Manifest, &m); err != nil {
		return Manifest{}, fmt.Errorf("the signed release manifest is not valid JSON (%v)", err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("the signed release manifest is not valid: %v", err)
	}
	return m, nil
}

// KeyID names a release public key: "ed25519:" and the first 16 hex digits
// of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// EncodePublicKey writes pub as "ed25519:BASE64" (the form trust.json and
// the API use).
func EncodePublicKey(pub ed25519.PublicKey) string {
	return "ed25519:" + base64.StdEncoding.EncodeToString(pub)
}
