package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// CA is a certificate authority held in memory.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// NewCA makes a self-signed ECDSA P-256 CA with the given common name and
// Organization "Sallyport". It is valid from one hour ago (to tolerate clock
// skew) until validity from now, may only sign end-entity certificates
// (MaxPathLen 0) and has a random 128-bit serial and a SubjectKeyId.
//
// With permittedDNS, the certificate carries critical X.509 name
// constraints: the CA may only sign DNS names equal to or under those
// domains, and no IP address at all, so a verifier that trusts it rejects
// any other name even if the CA's key were made to sign one.
func NewCA(commonName string, validity time.Duration, permittedDNS ...string) (*CA, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, errors.New("the CA common name is empty")
	}
	if validity <= 0 {
		return nil, errors.New("the CA validity must be positive")
	}
	key, serial, skid, err := newKeyMaterial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   commonName,
			Organization: []string{"Sallyport"},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          skid,
	}
	if len(permittedDNS) > 0 {
		tmpl.PermittedDNSDomainsCritical = true
		tmpl.PermittedDNSDomains = permittedDNS
		tmpl.ExcludedIPRanges = []*net.IPNet{
			{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		}
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the new CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCertPEM(der)}, nil
}

// KeyPEM returns the CA key as PKCS#8 PEM ("PRIVATE KEY").
func (ca *CA) KeyPEM() ([]byte, error) {
	if ca == nil || ca.Key == nil {
		return nil, errors.New("the CA has no private key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("encoding the CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Pool returns a new certificate pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// LoadCA parses a CA from PEM: the first CERTIFICATE block of certPEM and the
// private key in keyPEM (see ParseKeyPEM). It refuses a certificate that is
// not a CA (basic constraints) or whose key usage excludes certificate
// signing, and a key that does not match the certificate. CertPEM of the
// result holds that one certificate, re-encoded.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("loading the CA certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, errors.New("the certificate is not a CA certificate")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("the CA certificate's key usage does not allow signing certificates")
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading the CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("the CA key does not match the CA certificate")
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCertPEM(cert.Raw)}, nil
}

// IssueServer issues a TLS server certificate (ECDSA P-256,
// ExtKeyUsageServerAuth) for hosts: DNS names, wildcards such as
// "*.sallyport.test", or IP literals, which go into IPAddresses. It is valid
// from one hour ago until validity from now, but never past the CA's own
// NotAfter. The returned certificate chain is [leaf DER, CA DER], with Leaf
// set. Options add to the certificate (DistributionPoint).
func (ca *CA) IssueServer(hosts []string, validity time.Duration, opts ...ServerOption) (*tls.Certificate, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("the CA is not loaded")
	}
	if len(hosts) == 0 {
		return nil, errors.New("a server certificate needs at least one host name or IP address")
	}
	if validity <= 0 {
		return nil, errors.New("the server certificate validity must be positive")
	}
	var dnsNames []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if err := checkServerHost(h); err != nil {
			return nil, err
		}
		dnsNames = append(dnsNames, h)
	}
	key, serial, skid, err := newKeyMaterial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"Sallyport"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
		SubjectKeyId:          skid,
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(nil, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("creating the server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the new server certificate: %w", err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, ca.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// ServerOption adds to a server certificate that IssueServer makes.
type ServerOption func(*x509.Certificate)

// DistributionPoint puts url (where the CA publishes its CRL, see
// CreateCRL) into the certificate's CRL distribution points, so that a
// client can learn whether the certificate was revoked.
func DistributionPoint(url string) ServerOption {
	return func(c *x509.Certificate) { c.CRLDistributionPoints = append(c.CRLDistributionPoints, url) }
}

// checkServerHost accepts a DNS name, optionally with a "*." wildcard as its
// whole leftmost label.
func checkServerHost(h string) error {
	name := h
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = rest
		if !strings.Contains(name, ".") {
			return fmt.Errorf("the wildcard host %q must have at least two labels after the wildcard", h)
		}
	}
	if name == "" || len(name) > 253 {
		return fmt.Errorf("the host %q is not a valid DNS name or IP address", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("the host %q is not a valid DNS name or IP address", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("the host %q is not a valid DNS name or IP address", h)
			}
		}
	}
	return nil
}

// newKeyMaterial makes what every new certificate needs: an ECDSA P-256
// key, a random serial and the key's subject key id.
func newKeyMaterial() (*ecdsa.PrivateKey, *big.Int, []byte, error) {
	key, err := newECKey()
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, nil, nil, err
	}
	return key, serial, skid, nil
}
