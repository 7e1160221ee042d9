package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSignConnector(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	other := testCA(t)
	id := ConnectorIdentity{TenantID: "tenant_A-1", ConnectorID: "conn-01_X"}
	nb := time.Now().Add(-time.Minute).Truncate(time.Second)
	na := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	for _, keyName := range []string{"p256", "p384", "rsa2048", "ed25519"} {
		t.Run(keyName, func(t *testing.T) {
			t.Parallel()
			csr := mustParseCSR(t, csrPEM(t, nil, testKey(t, keyName)))
			der, err := ca.SignConnector(csr, id, nb, na)
			if err != nil {
				t.Fatalf("SignConnector: %v", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{
				Roots:     ca.Pool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}); err != nil {
				t.Fatalf("verify as client: %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{
				Roots:     ca.Pool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}); err == nil {
				t.Error("connector certificate verifies for server auth")
			}
			if _, err := cert.Verify(x509.VerifyOptions{
				Roots:     other.Pool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}); err == nil {
				t.Error("connector certificate verifies against another CA")
			}
			got, err := IdentityFromCert(cert)
			if err != nil || got != id {
				t.Fatalf("IdentityFromCert = %v, %v; want %v", got, err, id)
			}
			if cert.Subject.CommonName != id.ConnectorID ||
				strings.Join(cert.Subject.OrganizationalUnit, ",") != id.TenantID ||
				strings.Join(cert.Subject.Organization, ",") != "Sallyport connector" {
				t.Errorf("Subject = %v", cert.Subject)
			}
			if len(cert.URIs) != 1 || cert.URIs[0].String() != "sallyport://tenant_A-1/connector/conn-01_X" {
				t.Errorf("URIs = %v", cert.URIs)
			}
			if cert.IsCA || !cert.BasicConstraintsValid {
				t.Errorf("IsCA=%v BasicConstraintsValid=%v", cert.IsCA, cert.BasicConstraintsValid)
			}
			if cert.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("KeyUsage = %v", cert.KeyUsage)
			}
			if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || len(cert.UnknownExtKeyUsage) != 0 {
				t.Errorf("ExtKeyUsage = %v %v", cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
			}
			if !cert.NotBefore.Equal(nb) || !cert.NotAfter.Equal(na) {
				t.Errorf("validity [%v, %v], want [%v, %v]", cert.NotBefore, cert.NotAfter, nb, na)
			}
			if !publicKeysEqual(cert.PublicKey, csr.PublicKey) {
				t.Error("certificate key is not the CSR key")
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v", cert.SerialNumber)
			}
		})
	}
}

// TestSignConnectorIgnoresCSRContent makes sure nothing a connector puts in
// its CSR, beyond the public key, reaches the certificate.
func TestSignConnectorIgnoresCSRContent(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	evilURI, _ := url.Parse("sallyport://other-tenant/connector/evil")
	bcOID := asn1.ObjectIdentifier{2, 5, 29, 19}
	bcCA, _ := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	ekuOID := asn1.ObjectIdentifier{2, 5, 29, 37}
	ekuServer, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
	customOID := asn1.ObjectIdentifier{1, 2, 3, 4, 5}
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{
			CommonName:         "admin",
			Organization:       []string{"Sallyport"},
			OrganizationalUnit: []string{"other-tenant"},
		},
		DNSNames:       []string{"cloud.sallyport.test", "*.sallyport.test"},
		EmailAddresses: []string{"root@sallyport.test"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1")},
		URIs:           []*url.URL{evilURI},
		ExtraExtensions: []pkix.Extension{
			{Id: bcOID, Critical: true, Value: bcCA},
			{Id: ekuOID, Value: ekuServer},
			{Id: customOID, Value: []byte{0x05, 0x00}},
		},
	}
	csr := mustParseCSR(t, csrPEM(t, tmpl, testKey(t, "p256")))
	if len(csr.Extensions) == 0 || len(csr.URIs) != 1 {
		t.Fatal("test CSR does not carry its malicious extensions")
	}
	id := ConnectorIdentity{TenantID: "t1", ConnectorID: "c1"}
	der, err := ca.SignConnector(csr, id, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "c1" || strings.Join(cert.Subject.OrganizationalUnit, ",") != "t1" ||
		strings.Join(cert.Subject.Organization, ",") != "Sallyport connector" {
		t.Errorf("Subject = %v", cert.Subject)
	}
	if len(cert.DNSNames) != 0 || len(cert.EmailAddresses) != 0 || len(cert.IPAddresses) != 0 {
		t.Errorf("SANs copied: %v %v %v", cert.DNSNames, cert.EmailAddresses, cert.IPAddresses)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "sallyport://t1/connector/c1" {
		t.Errorf("URIs = %v", cert.URIs)
	}
	if cert.IsCA {
		t.Error("certificate is a CA")
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("ExtKeyUsage = %v", cert.ExtKeyUsage)
	}
	for _, e := range cert.Extensions {
		if e.Id.Equal(customOID) {
			t.Error("custom CSR extension copied")
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "cloud.sallyport.test"}); err == nil {
		t.Error("connector certificate verifies as a server for a name from the CSR")
	}
	if got, err := IdentityFromCert(cert); err != nil || got != id {
		t.Errorf("IdentityFromCert = %v, %v", got, err)
	}
}

func TestSignConnectorRefuses(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	good := mustParseCSR(t, csrPEM(t, nil, testKey(t, "p256")))
	// A CSR object whose signature no longer matches (tampered after parsing).
	tampered := *good
	tampered.RawTBSCertificateRequest = append([]byte(nil), good.RawTBSCertificateRequest...)
	tampered.RawTBSCertificateRequest[len(tampered.RawTBSCertificateRequest)-1] ^= 1
	// A CSR with a key ParseCSR would refuse, built without ParseCSR.
	weak, err := x509.ParseCertificateRequest(mustDecode(t, csrPEM(t, nil, testKey(t, "rsa1024"))))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ok := ConnectorIdentity{TenantID: "t", ConnectorID: "c"}
	for _, tc := range []struct {
		name   string
		csr    *x509.CertificateRequest
		id     ConnectorIdentity
		nb, na time.Time
	}{
		{"nil csr", nil, ok, now, now.Add(time.Hour)},
		{"bad tenant", good, ConnectorIdentity{TenantID: "t/x", ConnectorID: "c"}, now, now.Add(time.Hour)},
		{"empty connector", good, ConnectorIdentity{TenantID: "t"}, now, now.Add(time.Hour)},
		{"long connector", good, ConnectorIdentity{TenantID: "t", ConnectorID: strings.Repeat("a", 65)}, now, now.Add(time.Hour)},
		{"inverted validity", good, ok, now, now.Add(-time.Hour)},
		{"empty validity", good, ok, now, now},
		{"tampered csr", &tampered, ok, now, now.Add(time.Hour)},
		{"weak key", weak, ok, now, now.Add(time.Hour)},
	} {
		if _, err := ca.SignConnector(tc.csr, tc.id, tc.nb, tc.na); err == nil {
			t.Errorf("%s: SignConnector succeeded", tc.name)
		}
	}
}

func TestIdentityFromCertRefuses(t *testing.T) {
	t.Parallel()
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := u("sallyport://t1/connector/c1")
	for _, tc := range []struct {
		name string
		uris []*url.URL
	}{
		{"no URI", nil},
		{"two URIs", []*url.URL{good, u("sallyport://t2/connector/c2")}},
		{"same URI twice", []*url.URL{good, good}},
		{"wrong scheme", []*url.URL{u("https://t1/connector/c1")}},
		{"spiffe", []*url.URL{u("spiffe://t1/connector/c1")}},
		{"wrong path", []*url.URL{u("sallyport://t1/connectors/c1")}},
		{"extra path", []*url.URL{u("sallyport://t1/connector/c1/x")}},
		{"trailing slash", []*url.URL{u("sallyport://t1/connector/c1/")}},
		{"port", []*url.URL{u("sallyport://t1:443/connector/c1")}},
		{"user", []*url.URL{u("sallyport://admin@t1/connector/c1")}},
		{"query", []*url.URL{u("sallyport://t1/connector/c1?admin=1")}},
		{"fragment", []*url.URL{u("sallyport://t1/connector/c1#x")}},
		{"dot in tenant", []*url.URL{u("sallyport://t1.example/connector/c1")}},
		{"escaped connector", []*url.URL{u("sallyport://t1/connector/c%2F1")}},
		{"bad connector characters", []*url.URL{u("sallyport://t1/connector/c.1")}},
		{"empty tenant", []*url.URL{u("sallyport:///connector/c1")}},
		{"empty connector", []*url.URL{u("sallyport://t1/connector/")}},
		{"nil URI", []*url.URL{nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := IdentityFromCert(&x509.Certificate{URIs: tc.uris})
			if err == nil {
				t.Fatalf("IdentityFromCert = %v, want an error", got)
			}
		})
	}
	if _, err := IdentityFromCert(nil); err == nil {
		t.Error("IdentityFromCert(nil) succeeded")
	}
	if got, err := IdentityFromCert(&x509.Certificate{URIs: []*url.URL{good}}); err != nil || got != (ConnectorIdentity{"t1", "c1"}) {
		t.Errorf("IdentityFromCert(good) = %v, %v", got, err)
	}
}

func TestIdentityFromURI(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 64)
	for _, tc := range []struct {
		in   string
		want ConnectorIdentity
		ok   bool
	}{
		{"sallyport://t1/connector/c1", ConnectorIdentity{"t1", "c1"}, true},
		{"sallyport://Tenant_9-x/connector/-_A9", ConnectorIdentity{"Tenant_9-x", "-_A9"}, true},
		{"sallyport://" + long + "/connector/" + long, ConnectorIdentity{long, long}, true},
		{"sallyport://" + long + "x/connector/c", ConnectorIdentity{}, false},
		{"sallyport://t/connector/" + long + "x", ConnectorIdentity{}, false},
		{"SALLYPORT://t1/connector/c1", ConnectorIdentity{}, false},
		{"sallyport:t1/connector/c1", ConnectorIdentity{}, false},
		{"sallyport://t1/connector/c1/connector/c2", ConnectorIdentity{}, false},
		{"sallyport://t1/Connector/c1", ConnectorIdentity{}, false},
		{"sallyport://t 1/connector/c1", ConnectorIdentity{}, false},
		{"sallyport://t1/connector/c1\n", ConnectorIdentity{}, false},
		{"sallyport://té/connector/c1", ConnectorIdentity{}, false},
		{"", ConnectorIdentity{}, false},
	} {
		got, err := IdentityFromURI(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("IdentityFromURI(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if !tc.ok && err == nil {
			t.Errorf("IdentityFromURI(%q) = %v, want an error", tc.in, got)
		}
		if tc.ok && got.URI() != tc.in {
			t.Errorf("URI() = %q, want %q", got.URI(), tc.in)
		}
	}
}

func FuzzIdentityFromURI(f *testing.F) {
	for _, s := range []string{
		"sallyport://t1/connector/c1",
		"sallyport://t1/connector/c1/connector/c2",
		"sallyport://t1:1/connector/c1",
		"sallyport://u@t1/connector/c1?q#f",
		"https://t1/connector/c1",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := IdentityFromURI(s)
		if err != nil {
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("accepted %q with invalid ids: %v", s, err)
		}
		if id.URI() != s {
			t.Fatalf("accepted %q, but it re-encodes as %q", s, id.URI())
		}
		// What x509 puts in a certificate (url.URL.String) must read back
		// the same identity.
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted %q, which net/url refuses: %v", s, err)
		}
		if u.String() != s {
			t.Fatalf("accepted %q, which net/url re-encodes as %q", s, u.String())
		}
	})
}

func mustDecode(t testing.TB, p []byte) []byte {
	t.Helper()
	der, err := decodeOne(p)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
