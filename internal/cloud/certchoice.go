package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/store"
)

// certPick is the certificate chooseCertificate picked and where it comes
// from (one of the api.CertSource values).
type certPick struct {
	source string
	cert   *tls.Certificate
	// acme: ACME applies to the host (--acme-email, published without
	// its own certificate), whether or not it holds a certificate yet.
	acme bool
}

// chooseCertificate is the one rule of which certificate the edge
// presents for host (docs/certificates.md): an application's own
// certificate > an ACME certificate (with --acme-email, for a published
// host) > --edge-cert if it covers the name > the cloud's server
// certificate. The handshake (certificateFor) and the admin API's answer
// (appCertificate) both call it and differ only in acme, how the ACME
// step gets its certificate (the handshake's may order one and wait; the
// API's only reads what is stored), and covers (the handshake asks the
// client's hello, the API the certificate's names).
func (s *Server) chooseCertificate(host string, covers func(*tls.Certificate) bool, acme func() (*tls.Certificate, error)) certPick {
	if host == s.settings.Name {
		return certPick{source: api.CertSourceCloudCA, cert: s.serverCert()} // what connectors and admin clients pin
	}
	if c := s.routes.Load().certs[host]; c != nil {
		return certPick{source: api.CertSourceApp, cert: c}
	}
	pick := certPick{}
	if s.acme != nil && s.acmeDecision(host) == nil {
		// On failure (an event says why) the next certificate in line
		// serves, and a later handshake tries again.
		pick.acme = true
		if c, err := acme(); err == nil && c != nil {
			pick.source, pick.cert = api.CertSourceACME, c
			return pick
		}
	}
	if s.edgeCert != nil && covers(s.edgeCert) {
		pick.source, pick.cert = api.CertSourceEdge, s.edgeCert
		return pick
	}
	pick.source, pick.cert = api.CertSourceCloudCA, s.serverCert()
	return pick
}

// appCertificate is the certificate section of an application's answer:
// which certificate its host gets now, by chooseCertificate, reading the
// ACME certificate from certmagic's storage without ever ordering one.
func (s *Server) appCertificate(ctx context.Context, a store.Application) api.AppCertificate {
	host := a.ExternalHost
	covers := func(c *tls.Certificate) bool {
		leaf, err := certLeaf(c)
		return err == nil && leaf.VerifyHostname(host) == nil
	}
	var stored *tls.Certificate
	pick := s.chooseCertificate(host, covers, func() (*tls.Certificate, error) {
		var err error
		stored, err = s.acme.stored(ctx, host)
		if err == nil && !s.now().Before(stored.Leaf.NotAfter) {
			return nil, errors.New("expired") // certmagic would not serve it either
		}
		return stored, err
	})
	out := api.AppCertificate{Source: pick.source}
	if leaf, err := certLeaf(pick.cert); err == nil {
		out.Names, out.Issuer, out.NotAfter = certNames(leaf), leaf.Issuer.String(), leaf.NotAfter.UTC()
		out.DaysLeft = daysLeft(leaf.NotAfter, s.now())
	}
	if pick.acme {
		out.ACME = s.acme.book.status(host, pick.source == api.CertSourceACME)
	}
	return out
}

// certLeaf is c's parsed leaf certificate.
func certLeaf(c *tls.Certificate) (*x509.Certificate, error) {
	if c == nil || len(c.Certificate) == 0 {
		return nil, errors.New("no certificate")
	}
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	return x509.ParseCertificate(c.Certificate[0])
}

// certNames are a certificate's DNS names (its subject's common name
// when it has none).
func certNames(leaf *x509.Certificate) []string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames
	}
	return []string{leaf.Subject.CommonName}
}

// daysLeft is how many whole days remain before notAfter (negative once
// it passed).
func daysLeft(notAfter, now time.Time) int {
	d := notAfter.Sub(now)
	if d < 0 {
		return -int((-d + 24*time.Hour - 1) / (24 * time.Hour))
	}
	return int(d / (24 * time.Hour))
}

// certExpiryAttention is the overview's line for an application whose
// certificate expires within certExpiringWithin, or nil.
func certExpiryAttention(a store.Application, c api.AppCertificate, now time.Time) *api.Attention {
	if c.NotAfter.IsZero() || c.NotAfter.Sub(now) >= certExpiringWithin {
		return nil
	}
	what := map[string]string{
		api.CertSourceApp:     "its own certificate (--cert-file)",
		api.CertSourceACME:    "its ACME certificate",
		api.CertSourceEdge:    "the edge certificate (--edge-cert)",
		api.CertSourceCloudCA: "the cloud CA's server certificate",
	}[c.Source]
	step := map[string]string{
		api.CertSourceApp:     fmt.Sprintf("give it a new one with 'sallyport admin app update %s --cert-file FILE --key-file FILE'", a.Name),
		api.CertSourceACME:    "ACME renews a third of the lifetime ahead, so renewal is failing: see events 2986 and run 'sallyport cloud doctor' on the cloud's machine",
		api.CertSourceEdge:    "replace the files of --edge-cert and --edge-key and restart 'cloud serve'",
		api.CertSourceCloudCA: "restart 'cloud serve' (it re-issues its certificate) and run 'sallyport cloud doctor'",
	}[c.Source]
	verb := "expires"
	if c.DaysLeft < 0 {
		verb = "expired"
	}
	return &api.Attention{Kind: api.AttentionCertExpiring, Link: "/admin/apps/" + a.Name,
		Message: fmt.Sprintf("Application '%s' is served with %s, which %s on %s, so browsers will refuse it: %s", a.Name, what, verb, c.NotAfter.Format("2006-01-02"), step)}
}

// stored is the ACME certificate certmagic's storage holds for host, read
// without ordering one (nil, error when it holds none). Its key is not
// loaded: the answer is for showing, never for serving.
func (m *acmeManager) stored(ctx context.Context, host string) (*tls.Certificate, error) {
	if m == nil {
		return nil, errors.New("ACME is off")
	}
	return storedACMECert(ctx, m.cfg.Storage, m.issuer.IssuerKey(), host)
}

// storedACMECert reads host's certificate chain from st under issuerKey.
func storedACMECert(ctx context.Context, st certmagic.Storage, issuerKey, host string) (*tls.Certificate, error) {
	pemBytes, err := st.Load(ctx, certmagic.StorageKeys.SiteCert(issuerKey, host))
	if err != nil {
		return nil, err
	}
	chain, err := pki.ParseCertsPEM(pemBytes)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("the stored certificate of %s does not parse", host)
	}
	c := &tls.Certificate{Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, nil
}

// ACMEStorage is where the cloud keeps its ACME certificates and
// accounts: 'cloud serve' and 'cloud doctor' both take it from here.
func ACMEStorage(dataDir string, st store.Store) certmagic.Storage {
	if st == nil { // a data directory of the version before the store kept them
		return &certmagic.FileStorage{Path: filepath.Join(dataDir, acmeDir)}
	}
	return newACMEStorage(st, "doctor", time.Now, slog.New(slog.DiscardHandler), nil)
}

// ACMECertificate is one certificate in certmagic's storage.
type ACMECertificate struct {
	Host string
	Leaf *x509.Certificate
}

// StoredACMECertificates lists the certificates in st, of every issuer
// (cloud doctor: read without a running cloud, and without ordering).
func StoredACMECertificates(ctx context.Context, st certmagic.Storage) ([]ACMECertificate, error) {
	keys, err := st.List(ctx, "certificates", true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ACMECertificate
	for _, k := range keys {
		if !strings.HasSuffix(k, ".crt") {
			continue
		}
		pemBytes, err := st.Load(ctx, k)
		if err != nil {
			return nil, err
		}
		chain, err := pki.ParseCertsPEM(pemBytes)
		if err != nil || len(chain) == 0 {
			return nil, fmt.Errorf("the stored certificate %s does not parse", k)
		}
		host := chain[0].Subject.CommonName
		if len(chain[0].DNSNames) > 0 {
			host = chain[0].DNSNames[0]
		}
		if h, ok := edge.NormalizeHost(host); ok {
			host = h
		}
		out = append(out, ACMECertificate{Host: host, Leaf: chain[0]})
	}
	return out, nil
}
