package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// fingerprintPrefix starts every fingerprint.
const fingerprintPrefix = "sha256:"

// Fingerprint returns "sha256:" followed by the lower-case hex SHA-256 of the
// certificate DER. It is what users pin, like kubeadm's
// --discovery-token-ca-cert-hash.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return fingerprintPrefix + hex.EncodeToString(sum[:])
}

// FingerprintMatches reports whether cert has the given fingerprint bytes,
// as returned by ParseFingerprint.
func FingerprintMatches(cert *x509.Certificate, fp []byte) bool {
	sum := sha256.Sum256(cert.Raw)
	return len(fp) == len(sum) && string(fp) == string(sum[:])
}

// ParseFingerprint parses "sha256:HEX" into the 32 bytes of the hash. The
// prefix and the hex digits are case-insensitive, surrounding white space is
// ignored, and colons between byte pairs ("ab:cd:...") are allowed and
// ignored. Anything else is an error.
func ParseFingerprint(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) < len(fingerprintPrefix) || !strings.EqualFold(s[:len(fingerprintPrefix)], fingerprintPrefix) {
		return nil, errors.New(`the fingerprint must start with "sha256:"`)
	}
	s = s[len(fingerprintPrefix):]
	digits := make([]byte, 0, 2*sha256.Size)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			if len(digits) == 2*sha256.Size {
				return nil, fmt.Errorf("the fingerprint has more than %d hex digits", 2*sha256.Size)
			}
			digits = append(digits, c)
		case c == ':':
			// Only between byte pairs: after an even, non-zero number of
			// digits, and followed by a digit.
			if len(digits) == 0 || len(digits)%2 != 0 || i+1 == len(s) || s[i+1] == ':' {
				return nil, errors.New("the fingerprint has a colon that is not between two bytes")
			}
		default:
			return nil, fmt.Errorf("the fingerprint contains %q; only hex digits and colons are allowed", rune(c))
		}
	}
	if len(digits) != 2*sha256.Size {
		return nil, fmt.Errorf("the fingerprint has %d hex digits; a SHA-256 fingerprint has %d", len(digits), 2*sha256.Size)
	}
	out := make([]byte, sha256.Size)
	if _, err := hex.Decode(out, digits); err != nil {
		return nil, fmt.Errorf("the fingerprint is not valid hex: %w", err)
	}
	return out, nil
}

// Thumbprint returns the upper-case hex SHA-256 of the certificate DER, as
// shown in trust settings (like Windows certificate thumbprints).
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// SerialHex returns the lower-case hex of a certificate's serial number.
func SerialHex(cert *x509.Certificate) string {
	if cert == nil || cert.SerialNumber == nil {
		return ""
	}
	return cert.SerialNumber.Text(16)
}
