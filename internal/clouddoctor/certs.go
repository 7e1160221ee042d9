package clouddoctor

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"

	"github.com/sallyport/sallyport/internal/cloud"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
)

func parseChain(pemBytes []byte) ([]*x509.Certificate, error) {
	certs, err := pki.ParseCertsPEM(pemBytes)
	if err == nil && len(certs) == 0 {
		err = errors.New("no certificate")
	}
	return certs, err
}

// certFinding is one certificate's step: pass, warn within
// ExpiringWithin of its expiry, fail once expired (or not yet valid).
func (r *runner) certFinding(s *Step, leaf *x509.Certificate, renew string) {
	now := r.o.Now()
	names := strings.Join(leaf.DNSNames, ", ")
	if names == "" {
		names = leaf.Subject.CommonName
	}
	left := leaf.NotAfter.Sub(now)
	days := int(left / (24 * time.Hour))
	found := fmt.Sprintf("%s, issued by %s, expires %s (%d days left)", names, leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format("2006-01-02 15:04 UTC"), days)
	switch {
	case left <= 0:
		s.set(Fail, fmt.Sprintf("%s, issued by %s, expired on %s, so clients refuse it", names, leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format("2006-01-02")), renew)
	case now.Before(leaf.NotBefore):
		s.set(Fail, fmt.Sprintf("%s is not valid before %s: this machine's clock or the certificate is wrong", names, leaf.NotBefore.UTC().Format("2006-01-02 15:04 UTC")), "check this machine's clock (timedatectl), then the certificate")
	case left < ExpiringWithin:
		s.set(Warn, found+", less than 14 days", renew)
	default:
		s.set(Pass, found, "")
	}
}

// checkCertificates is one step per certificate the cloud holds.
func (r *runner) checkCertificates() {
	r.do("cert cloud-ca", "The cloud CA's certificate", r.needs("settings"), func(_ context.Context, s *Step) {
		s.Checked = "the cloud CA's certificate " + filepath.Join(r.o.DataDir, datadir.CACertFile) + ", which connectors pin and which signs the cloud's server certificate"
		leaf, err := r.cloudCA()
		if err != nil {
			s.set(Fail, err.Error(), "restore it from the data directory's backup")
			return
		}
		r.certFinding(s, leaf, "the cloud CA cannot be renewed in place: plan a new cloud (connectors pin the CA) before it expires")
	})
	if f := r.o.EdgeCertFile; f != "" {
		r.do("cert edge", "The edge certificate (--edge-cert)", nil, func(_ context.Context, s *Step) {
			s.Checked = "the certificate " + f
			pemBytes, err := os.ReadFile(f)
			var certs []*x509.Certificate
			if err == nil {
				certs, err = parseChain(pemBytes)
			}
			if err != nil {
				s.set(Fail, fmt.Sprintf("The edge certificate %s cannot be used (%v)", f, err), "give --edge-cert a readable PEM certificate chain")
				return
			}
			r.certFinding(s, certs[0], "replace "+f+" and its key with a renewed certificate, then restart 'cloud serve'")
		})
	}
	apps, published := r.appCerts()
	for _, a := range apps {
		r.do("cert app "+a.host, "The own certificate of the application at "+a.host, nil, func(_ context.Context, s *Step) {
			s.Checked = "the certificate given with --cert-file for " + a.host
			if a.leaf == nil {
				s.set(Fail, "The application's certificate does not parse", "give it a new one with 'sallyport admin app update "+a.name+" --cert-file FILE --key-file FILE'")
				return
			}
			r.certFinding(s, a.leaf, "give it a renewed one with 'sallyport admin app update "+a.name+" --cert-file FILE --key-file FILE'")
		})
	}
	if r.o.ACMEEmail == "" || r.settings == nil {
		return
	}
	certs, err := cloud.StoredACMECertificates(r.ctx, cloud.ACMEStorage(r.o.DataDir, r.st))
	if err != nil {
		r.do("cert acme", "The ACME certificates", nil, func(_ context.Context, s *Step) {
			s.set(Fail, fmt.Sprintf("The ACME storage cannot be read (%v)", err), "check the data directory's permissions (and the store, when it holds the ACME storage)")
		})
		return
	}
	for _, c := range certs {
		r.do("cert acme "+c.Host, "The ACME certificate of "+c.Host, nil, func(_ context.Context, s *Step) {
			s.Checked = "the certificate in the ACME storage for " + c.Host
			if !published[c.Host] && published != nil {
				s.set(Pass, fmt.Sprintf("no application is published at %s any more, so its certificate (until %s) is no longer renewed", c.Host, c.Leaf.NotAfter.UTC().Format("2006-01-02")), "")
				return
			}
			r.certFinding(s, c.Leaf, "ACME renews it a third of its lifetime ahead, so renewal is failing: read events 2986 ('sallyport cloud events --level warning' on this machine) and do what they say")
		})
	}
}

type appCert struct {
	name, host string
	leaf       *x509.Certificate
}

// appCerts are the applications' own certificates, and the hosts
// published (nil when the store is not open).
func (r *runner) appCerts() ([]appCert, map[string]bool) {
	if r.st == nil {
		return nil, nil
	}
	all, err := r.st.ListAllApps(r.ctx)
	if err != nil {
		return nil, nil
	}
	var out []appCert
	published := map[string]bool{}
	for _, a := range all {
		published[a.ExternalHost] = true
		if len(a.CertPEM) == 0 {
			continue
		}
		c := appCert{name: a.Name, host: a.ExternalHost}
		if certs, err := parseChain(a.CertPEM); err == nil {
			c.leaf = certs[0]
		}
		out = append(out, c)
	}
	return out, published
}

// checkACMEAccount looks for the account certmagic registered for
// --acme-email at --acme-ca, in the ACME storage.
func (r *runner) checkACMEAccount(ctx context.Context, s *Step) {
	ca := r.o.ACMECA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	st := cloud.ACMEStorage(r.o.DataDir, r.st)
	issuerKey := (&certmagic.ACMEIssuer{CA: ca}).IssuerKey()
	prefix := path.Join("acme", certmagic.StorageKeys.Safe(issuerKey), "users", certmagic.StorageKeys.Safe(strings.ToLower(r.o.ACMEEmail)))
	s.Checked = fmt.Sprintf("the ACME account of %s at %s in the ACME storage", r.o.ACMEEmail, ca)
	keys, err := st.List(ctx, prefix, false)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.set(Fail, fmt.Sprintf("The ACME storage cannot be read (%v)", err), "check the data directory's permissions (and the store, when it holds the ACME storage)")
		return
	}
	var acct acme.Account
	found := false
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		b, err := st.Load(ctx, k)
		if err == nil && json.Unmarshal(b, &acct) == nil {
			found = true
			break
		}
	}
	switch {
	case !found:
		s.set(Warn, fmt.Sprintf("No ACME account of %s at %s is stored yet: it is registered at the first order", r.o.ACMEEmail, ca),
			"open an application's host in a browser to start the first order, then read events 2985 and 2986")
	case acct.Status != "" && acct.Status != "valid":
		s.set(Fail, fmt.Sprintf("The ACME account of %s at %s is %s, so no certificate can be ordered", r.o.ACMEEmail, ca, acct.Status),
			"remove the account from the ACME storage so that the cloud registers a new one at its next order")
	case acct.Location == "":
		s.set(Warn, fmt.Sprintf("The ACME account of %s at %s is stored but not registered yet", r.o.ACMEEmail, ca), "read events 2986 for why its registration failed")
	default:
		s.set(Pass, fmt.Sprintf("the account %s of %s is registered", acct.Location, r.o.ACMEEmail), "")
	}
}
