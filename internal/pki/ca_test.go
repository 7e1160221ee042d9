package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	t.Parallel()
	before := time.Now()
	ca := testCA(t)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v maxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	if c.Subject.CommonName != "Sallyport Test CA" || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "Sallyport" {
		t.Errorf("Subject = %v", c.Subject)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("no SubjectKeyId")
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T is not ECDSA P-256", c.PublicKey)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	if nb := before.Add(-time.Hour); c.NotBefore.After(nb.Add(time.Second)) || c.NotBefore.Before(nb.Add(-2*time.Second)) {
		t.Errorf("NotBefore = %v, want about %v", c.NotBefore, nb)
	}
	if na := before.Add(24 * time.Hour); c.NotAfter.Before(na.Add(-2*time.Second)) || c.NotAfter.After(na.Add(5*time.Second)) {
		t.Errorf("NotAfter = %v, want about %v", c.NotAfter, na)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	other := testCA(t)
	if SerialHex(other.Cert) == SerialHex(ca.Cert) {
		t.Error("two CAs share a serial")
	}

	for _, tc := range []struct {
		name     string
		cn       string
		validity time.Duration
	}{
		{"empty name", "", time.Hour},
		{"zero validity", "x", 0},
		{"negative validity", "x", -time.Hour},
	} {
		if _, err := NewCA(tc.cn, tc.validity); err == nil {
			t.Errorf("%s: NewCA succeeded", tc.name)
		}
	}
}

func TestLoadCARoundTrip(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Fatalf("KeyPEM is not a PRIVATE KEY block: %q", keyPEM)
	}
	loaded, err := LoadCA(ca.CertPEM, keyPEM)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("loaded certificate differs")
	}
	if !bytes.Equal(loaded.CertPEM, ca.CertPEM) {
		t.Error("loaded CertPEM differs")
	}
	if !publicKeysEqual(loaded.Key.Public(), ca.Key.Public()) {
		t.Error("loaded key differs")
	}
	// The loaded CA signs certificates the original's pool accepts.
	srv, err := loaded.IssueServer([]string{"cloud.sallyport.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "cloud.sallyport.test"}); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestLoadCARefuses(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	otherKeyPEM, err := testCA(t).KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServer([]string{"leaf.sallyport.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafKeyDER, err := x509.MarshalPKCS8PrivateKey(srv.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKeyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKeyDER})

	// A self-signed CA certificate whose key usage lacks certSign.
	k := testKey(t, "p256")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "no certsign"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kDER, _ := x509.MarshalPKCS8PrivateKey(k)
	kPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kDER})

	for _, tc := range []struct {
		name            string
		certPEM, keyPEM []byte
		want            string
	}{
		{"not a CA", EncodeCertPEM(srv.Certificate[0]), leafKeyPEM, "not a CA"},
		{"mismatched key", ca.CertPEM, otherKeyPEM, "does not match"},
		{"no certSign usage", EncodeCertPEM(der), kPEM, "key usage"},
		{"no certificate", []byte("junk"), keyPEM, "no PEM CERTIFICATE"},
		{"no key", ca.CertPEM, ca.CertPEM, "no PEM private key"},
		{"empty", nil, nil, "no PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCA(tc.certPEM, tc.keyPEM)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadCA error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestIssueServer(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	other := testCA(t)
	for _, tc := range []struct {
		name   string
		hosts  []string
		verify string
		roots  *CA
		ok     bool
	}{
		{"dns name", []string{"cloud.sallyport.test"}, "cloud.sallyport.test", ca, true},
		{"dns name case", []string{"cloud.sallyport.test"}, "CLOUD.sallyport.test", ca, true},
		{"wildcard", []string{"*.sallyport.test"}, "app1.sallyport.test", ca, true},
		{"wildcard with apex", []string{"sallyport.test", "*.sallyport.test"}, "sallyport.test", ca, true},
		{"ipv4", []string{"127.0.0.1"}, "127.0.0.1", ca, true},
		{"ipv6", []string{"::1"}, "::1", ca, true},
		{"mixed", []string{"localhost", "127.0.0.1", "::1"}, "localhost", ca, true},
		{"other name", []string{"cloud.sallyport.test"}, "evil.example", ca, false},
		{"wildcard is one label", []string{"*.sallyport.test"}, "a.b.sallyport.test", ca, false},
		{"wildcard not apex", []string{"*.sallyport.test"}, "sallyport.test", ca, false},
		{"other ip", []string{"127.0.0.1"}, "127.0.0.2", ca, false},
		{"other CA", []string{"cloud.sallyport.test"}, "cloud.sallyport.test", other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc2, err := ca.IssueServer(tc.hosts, time.Hour)
			if err != nil {
				t.Fatalf("IssueServer: %v", err)
			}
			if len(tc2.Certificate) != 2 || !bytes.Equal(tc2.Certificate[1], ca.Cert.Raw) {
				t.Fatal("chain is not [leaf, CA]")
			}
			leaf := tc2.Leaf
			if leaf == nil || !bytes.Equal(leaf.Raw, tc2.Certificate[0]) {
				t.Fatal("Leaf is not the first certificate")
			}
			if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
				t.Errorf("leaf key %T is not P-256", leaf.PublicKey)
			}
			if leaf.IsCA || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
				t.Errorf("leaf IsCA=%v EKU=%v", leaf.IsCA, leaf.ExtKeyUsage)
			}
			if !bytes.Equal(leaf.AuthorityKeyId, ca.Cert.SubjectKeyId) {
				t.Error("AuthorityKeyId does not name the CA")
			}
			_, err = leaf.Verify(x509.VerifyOptions{
				Roots:     tc.roots.Pool(),
				DNSName:   tc.verify,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if tc.ok && err != nil {
				t.Errorf("verify %q: %v", tc.verify, err)
			}
			if !tc.ok && err == nil {
				t.Errorf("verify %q succeeded", tc.verify)
			}
		})
	}
}

func TestIssueServerIPsAndNames(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	c, err := ca.IssueServer([]string{"a.test", "10.0.0.1", "*.b.test", "fd00::1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Leaf.DNSNames, ","); got != "a.test,*.b.test" {
		t.Errorf("DNSNames = %s", got)
	}
	if len(c.Leaf.IPAddresses) != 2 || !c.Leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) || !c.Leaf.IPAddresses[1].Equal(net.ParseIP("fd00::1")) {
		t.Errorf("IPAddresses = %v", c.Leaf.IPAddresses)
	}
}

func TestIssueServerClampsToCA(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	c, err := ca.IssueServer([]string{"a.test"}, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %v is after the CA's %v", c.Leaf.NotAfter, ca.Cert.NotAfter)
	}
}

func TestIssueServerRefuses(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	for _, tc := range []struct {
		name     string
		hosts    []string
		validity time.Duration
	}{
		{"no hosts", nil, time.Hour},
		{"empty host", []string{""}, time.Hour},
		{"space", []string{"a b.test"}, time.Hour},
		{"bare wildcard", []string{"*"}, time.Hour},
		{"wildcard tld", []string{"*.test"}, time.Hour},
		{"inner wildcard", []string{"a.*.test"}, time.Hour},
		{"empty label", []string{"a..test"}, time.Hour},
		{"url", []string{"https://a.test"}, time.Hour},
		{"ip with zone", []string{"fe80::1%eth0"}, time.Hour},
		{"zero validity", []string{"a.test"}, 0},
	} {
		if _, err := ca.IssueServer(tc.hosts, tc.validity); err == nil {
			t.Errorf("%s: IssueServer succeeded", tc.name)
		}
	}
}

// TestMutualTLS runs a real TLS 1.3 handshake: a server certificate from
// IssueServer, a connector client certificate from SignConnector, both
// checked against the CA.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	srv, err := ca.IssueServer([]string{"connect.sallyport.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csr, err := NewKeyAndCSR("ignored")
	if err != nil {
		t.Fatal(err)
	}
	id := ConnectorIdentity{TenantID: "t1", ConnectorID: "c1"}
	der, err := ca.SignConnector(mustParseCSR(t, csr), id, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := tls.X509KeyPair(EncodeCertPEM(der), keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	cConn, sConn := net.Pipe()
	defer cConn.Close()
	defer sConn.Close()
	server := tls.Server(sConn, &tls.Config{
		Certificates: []tls.Certificate{*srv},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS13,
		// net.Pipe is unbuffered: a post-handshake ticket would block.
		SessionTicketsDisabled: true,
	})
	client := tls.Client(cConn, &tls.Config{
		Certificates: []tls.Certificate{clientCert},
		RootCAs:      ca.Pool(),
		ServerName:   "connect.sallyport.test",
		MinVersion:   tls.VersionTLS13,
	})
	errc := make(chan error, 1)
	go func() { errc <- client.Handshake() }()
	if err := server.Handshake(); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	peer := server.ConnectionState().PeerCertificates
	if len(peer) == 0 {
		t.Fatal("no peer certificate")
	}
	got, err := IdentityFromCert(peer[0])
	if err != nil || got != id {
		t.Fatalf("IdentityFromCert = %v, %v; want %v", got, err, id)
	}
}
