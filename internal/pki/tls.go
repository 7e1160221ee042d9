package pki

import "crypto/tls"

// MinTLSVersion is the oldest TLS version the cloud and its clients speak.
const MinTLSVersion = tls.VersionTLS12

// CipherSuites returns the TLS 1.2 cipher suites the cloud offers and its
// clients (connector, admin client) propose: forward-secret ECDHE with an
// AEAD only (AES-GCM, ChaCha20-Poly1305), as a current "intermediate"
// profile has it. No CBC (LUCKY13), no RSA key exchange (no forward
// secrecy), no 3DES or RC4. TLS 1.3, preferred whenever both ends speak it,
// has only AEAD suites and is not configured here. Go orders the suites
// itself (AES-GCM first when the hardware has AES, else ChaCha20).
// A fresh slice each call: callers may keep it in their tls.Config.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// PinnedCAALPN is the ALPN protocol name that a client pinning the cloud CA
// (the admin CLI, connector registration, fingerprint discovery) offers
// with its real protocols so that the cloud presents, for its own name,
// its certificate from the cloud CA rather than the publicly trusted ACME
// one browsers get (docs/certificates.md). The cloud never selects it: it
// only steers the certificate choice, and the client still checks the
// certificate against the pinned CA alone.
const PinnedCAALPN = "sallyport-pinned-ca"
