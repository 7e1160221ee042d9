package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ConnectorIdentity is what a connector certificate says about who it is.
type ConnectorIdentity struct{ TenantID, ConnectorID string }

// The URI SAN that names a connector is
// sallyport://TENANTID/connector/CONNECTORID; ids are at most maxIDLen long.
const (
	uriPrefix    = "sallyport://"
	uriConnector = "/connector/"
	maxIDLen     = 64
)

// URI returns the identity's URI, "sallyport://TENANTID/connector/CONNECTORID".
// It does not validate the ids; see Validate.
func (id ConnectorIdentity) URI() string {
	return uriPrefix + id.TenantID + uriConnector + id.ConnectorID
}

// Validate checks that both ids match [A-Za-z0-9_-]{1,64}.
func (id ConnectorIdentity) Validate() error {
	if err := ValidateID(id.TenantID); err != nil {
		return fmt.Errorf("tenant id: %w", err)
	}
	if err := ValidateID(id.ConnectorID); err != nil {
		return fmt.Errorf("connector id: %w", err)
	}
	return nil
}

// ValidateID checks that s is a valid tenant or connector id for a
// connector certificate: 1 to 64 characters from [A-Za-z0-9_-].
func ValidateID(s string) error {
	if s == "" {
		return errors.New("the id is empty")
	}
	if len(s) > maxIDLen {
		return fmt.Errorf("the id is longer than %d characters", maxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("the id contains the character %q; only letters, digits, '_' and '-' are allowed", rune(c))
		}
	}
	return nil
}

// SignConnector signs a client certificate for the CSR's public key. The
// certificate says: Subject CommonName = ConnectorID, OrganizationalUnit =
// [TenantID], Organization = ["Sallyport connector"], one URI SAN
// "sallyport://TENANTID/connector/CONNECTORID", ExtKeyUsageClientAuth only,
// KeyUsageDigitalSignature, not a CA, a random 128-bit serial, and validity
// [notBefore, notAfter]. Nothing of the CSR but its public key is used: its
// subject and extensions are never copied. The CSR signature and key type
// are checked again here. It returns the certificate DER.
func (ca *CA) SignConnector(csr *x509.CertificateRequest, id ConnectorIdentity, notBefore, notAfter time.Time) ([]byte, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("the CA is not loaded")
	}
	if csr == nil {
		return nil, errors.New("no certificate signing request was given")
	}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if !notAfter.After(notBefore) {
		return nil, errors.New("the certificate would expire before it becomes valid")
	}
	if err := checkPublicKey(csr.PublicKey, "certificate signing request"); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the certificate signing request signature is invalid: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(csr.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         id.ConnectorID,
			OrganizationalUnit: []string{id.TenantID},
			Organization:       []string{"Sallyport connector"},
		},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{{Scheme: "sallyport", Host: id.TenantID, Path: uriConnector + id.ConnectorID}},
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(nil, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("creating the connector certificate: %w", err)
	}
	return der, nil
}

// IdentityFromCert reads a connector's identity from its certificate's URI
// SAN. The certificate must carry exactly one URI SAN, of the exact form
// "sallyport://TENANTID/connector/CONNECTORID" with ids matching
// [A-Za-z0-9_-]{1,64}. It does not verify the certificate; call it on a
// verified chain's leaf only.
func IdentityFromCert(cert *x509.Certificate) (ConnectorIdentity, error) {
	if cert == nil {
		return ConnectorIdentity{}, errNilCertificate
	}
	switch len(cert.URIs) {
	case 0:
		return ConnectorIdentity{}, errors.New("the certificate has no connector URI")
	case 1:
	default:
		return ConnectorIdentity{}, fmt.Errorf("the certificate has %d URIs; a connector certificate has exactly one", len(cert.URIs))
	}
	u := cert.URIs[0]
	if u == nil {
		return ConnectorIdentity{}, errors.New("the certificate has no connector URI")
	}
	return IdentityFromURI(u.String())
}

// IdentityFromURI parses "sallyport://TENANTID/connector/CONNECTORID", with
// ids matching [A-Za-z0-9_-]{1,64}, and nothing else: no user info, port,
// query, fragment, escapes or trailing slash.
func IdentityFromURI(s string) (ConnectorIdentity, error) {
	rest, ok := strings.CutPrefix(s, uriPrefix)
	if !ok {
		return ConnectorIdentity{}, fmt.Errorf("the URI %.80q is not a sallyport:// connector URI", s)
	}
	tenant, connector, ok := strings.Cut(rest, uriConnector)
	if !ok {
		return ConnectorIdentity{}, fmt.Errorf("the URI %.80q is not of the form sallyport://TENANT/connector/CONNECTOR", s)
	}
	id := ConnectorIdentity{TenantID: tenant, ConnectorID: connector}
	if err := id.Validate(); err != nil {
		return ConnectorIdentity{}, fmt.Errorf("the URI %.80q is not a valid connector URI: %w", s, err)
	}
	return id, nil
}
