// Package pki owns key, certificate and CSR handling for the cloud's
// certificate authorities and the connectors' identities: making and loading
// CAs, issuing TLS server certificates, signing connector client certificates
// from untrusted certificate signing requests, reading a connector's identity
// back from its certificate, and the PEM, fingerprint and serial helpers
// around them.
//
// The package does no I/O except the atomic file helper, WriteFileAtomic, and
// it knows nothing of the store, the network or the CLI. Its errors are plain
// errors with a lower-case reason; callers turn them into problems.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// clockSkew is how far back NotBefore is set for certificates whose
// validity starts now, so that a peer whose clock is slightly behind still
// accepts them.
const clockSkew = time.Hour

// Key size bounds for RSA public keys accepted from connectors.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// newSerial returns a random, positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generating a serial number: %w", err)
		}
		n := new(big.Int).SetBytes(b)
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// newECKey makes an ECDSA P-256 private key.
func newECKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating an ECDSA P-256 key: %w", err)
	}
	return key, nil
}

// subjectKeyID computes a key identifier from a public key following RFC
// 7093 section 2 method 1: the leftmost 160 bits of the SHA-256 hash of the
// subjectPublicKey BIT STRING.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decoding the public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// checkPublicKey enforces the key types and sizes the package accepts from
// connectors: ECDSA P-256 or P-384, RSA of 2048 to 8192 bits, or Ed25519.
// what names the thing that carries the key, for the error message.
func checkPublicKey(pub any, what string) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return fmt.Errorf("the %s has an invalid ECDSA public key", what)
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384():
			return nil
		}
		return fmt.Errorf("the %s uses the ECDSA curve %s; only P-256 and P-384 are allowed", what, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return fmt.Errorf("the %s has an invalid RSA public key", what)
		}
		bits := k.N.BitLen()
		if bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("the %s has a %d-bit RSA key; between %d and %d bits are allowed", what, bits, minRSABits, maxRSABits)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("the %s has an invalid Ed25519 public key", what)
		}
		return nil
	case nil:
		return fmt.Errorf("the %s has no public key", what)
	default:
		return fmt.Errorf("the %s uses an unsupported key type %T; only ECDSA P-256/P-384, RSA and Ed25519 are allowed", what, pub)
	}
}

// publicKeysEqual reports whether two public keys are the same key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return false
	}
	return ka.Equal(b)
}

var errNilCertificate = errors.New("no certificate was given")

// Backdate is how long before its issue a connector certificate becomes
// valid, so that a clock a few minutes behind does not refuse it. The
// certificate's lifetime is counted from NotBefore+Backdate.
const Backdate = 5 * time.Minute
