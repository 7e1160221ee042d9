package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
)

// MaxCSRSize is the largest PEM input ParseCSR accepts.
const MaxCSRSize = 16 << 10

// ParseCSR parses an untrusted PEM certificate signing request. The input
// must be at most MaxCSRSize bytes and hold exactly one PEM block, of type
// "CERTIFICATE REQUEST" (text around it is ignored). The public key must be
// ECDSA P-256 or P-384, RSA of 2048 to 8192 bits, or Ed25519, and the CSR's
// signature must verify with it and must not use MD5 or SHA-1. Errors are
// plain errors with a lower-case reason.
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	if len(pemBytes) > MaxCSRSize {
		return nil, fmt.Errorf("the certificate signing request is too large (more than %d KiB)", MaxCSRSize>>10)
	}
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("the certificate signing request is not PEM encoded")
	}
	if block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("the PEM block is a %.40q, not a \"CERTIFICATE REQUEST\"", block.Type)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("the input holds more than one PEM block; send exactly one certificate signing request")
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("the certificate signing request PEM block has headers; it must have none")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the certificate signing request cannot be parsed: %w", err)
	}
	// Bound the cost of the signature check by checking the key first.
	if err := checkPublicKey(csr.PublicKey, "certificate signing request"); err != nil {
		return nil, err
	}
	switch csr.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return nil, fmt.Errorf("the certificate signing request is signed with the insecure algorithm %s", csr.SignatureAlgorithm)
	case x509.UnknownSignatureAlgorithm:
		return nil, errors.New("the certificate signing request is signed with an unknown algorithm")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the certificate signing request signature is invalid: %w", err)
	}
	return csr, nil
}

// NewKeyAndCSR makes an ECDSA P-256 key and a CSR with the given common
// name. It returns the key as PKCS#8 PEM and the CSR as PEM.
func NewKeyAndCSR(commonName string) (keyPEM, csrPEM []byte, err error) {
	key, err := newECKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{
		Subject:            pkix.Name{CommonName: commonName},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the certificate signing request: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the private key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	csrPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	return keyPEM, csrPEM, nil
}
