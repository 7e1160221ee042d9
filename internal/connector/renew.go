package connector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Dialer dials TCP to the cloud.
type Dialer = cloudlink.DialFunc

// NeedsRenewal reports whether a certificate should be renewed at now:
// less than a third of its lifetime remains.
func NeedsRenewal(st *statedir.State, now time.Time) bool {
	life := st.Leaf.NotAfter.Sub(st.Leaf.NotBefore.Add(pki.Backdate))
	return st.Leaf.NotAfter.Sub(now) < life/3
}

// Renew gets a new certificate for a new key over the authenticated
// control connection and switches the state directory to it: the new
// files are written beside the old ones, trust.json (replaced atomically)
// names them, the cloud confirms it accepts the new certificate, and only
// then are the old files removed. Once signed, the new certificate is the
// cloud's current one, and the old one stays accepted until the new one
// is used: a renewal interrupted at any step leaves a connector that
// works, with one certificate or the other.
func Renew(ctx context.Context, st *statedir.State, dial Dialer) (*statedir.State, error) {
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("sallyport-connector")
	if err != nil {
		return nil, err
	}
	var resp tunnel.RenewResponse
	if err := cloudlink.ControlCall(ctx, st, dial, http.MethodPost, tunnel.ControlRenew, tunnel.RenewRequest{CSR: string(csrPEM)}, &resp); err != nil {
		return nil, err
	}
	if err := stepHook("signed"); err != nil {
		return nil, err
	}
	cert, err := pki.ParseCertPEM([]byte(resp.Certificate))
	if err != nil {
		return nil, fmt.Errorf("the cloud returned a certificate that does not parse: %w", err)
	}
	next := *st
	next.Trust.Thumbprint, next.Trust.Serial = pki.Thumbprint(cert), pki.SerialHex(cert)
	next.Trust.IssuedAt, next.Trust.ExpiresAt, next.Trust.Source = cert.NotBefore.Add(pki.Backdate).UTC(), cert.NotAfter.UTC(), "renewal"
	if next.Cert, err = tlsPair([]byte(resp.Certificate), keyPEM); err != nil {
		return nil, err
	}
	next.Leaf = cert
	if err := statedir.Write(st.Dir, &next.Trust, keyPEM, []byte(resp.Certificate), nil, stepHook); err != nil {
		return nil, err
	}
	// Confirm: the cloud accepts the new certificate (and from then on
	// only it).
	var status tunnel.Status
	if err := cloudlink.ControlCall(ctx, &next, dial, http.MethodGet, tunnel.ControlStatus, nil, &status); err != nil {
		return nil, err
	}
	if status.CertSerial != next.Trust.Serial {
		return nil, fmt.Errorf("the cloud holds certificate %s as current, not the renewed %s", status.CertSerial, next.Trust.Serial)
	}
	if err := stepHook("confirmed"); err != nil {
		return nil, err
	}
	statedir.RemoveUnusedPairs(st.Dir, next.Trust)
	return statedir.Load(st.Dir)
}

// renewLoop checks the certificate at start and every RenewCheckInterval
// and renews it once less than a third of its life remains.
func (c *Connector) renewLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.RenewCheckInterval)
	defer t.Stop()
	for {
		c.reloadIfChanged() // renewed by 'sallyport connector renew' meanwhile?
		if st := c.State(); NeedsRenewal(st, c.cfg.Now()) {
			next, err := Renew(ctx, st, c.cfg.Dial)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				c.events.Event(eventlog.CertRenewalFailed, "Certificate renewal failed; the connector keeps its current certificate and tries again later: "+problem.Public(err).Error(),
					"expires_at", st.Leaf.NotAfter.UTC().Format(time.RFC3339))
			} else {
				c.st.Store(c.adopt(next))
				c.events.Event(eventlog.CertRenewed, "The connector's certificate was renewed, valid until "+next.Trust.ExpiresAt.Format(time.RFC3339),
					"serial", next.Trust.Serial, "thumbprint", next.Trust.Thumbprint)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stepHook lets tests interrupt a state change between its steps, as a
// crash would.
var stepHook = func(step string) error { return nil }

// tlsPair builds a client certificate from PEM.
func tlsPair(certPEM, keyPEM []byte) (tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return c, fmt.Errorf("the renewed certificate does not match its key: %w", err)
	}
	c.Leaf, err = x509.ParseCertificate(c.Certificate[0])
	return c, err
}

// noteGroup records in trust.json the group the cloud says this connector
// is in (it changes when an administrator moves the connector).
func (c *Connector) noteGroup(group string) {
	st := c.State()
	if group == "" || group == st.Trust.Group {
		return
	}
	next := *st
	next.Trust.Group = group
	if err := statedir.WriteTrust(st.Dir, next.Trust); err != nil {
		c.log.Warn("recording the new group in trust.json failed", "error", problem.Public(err).Error())
		return
	}
	next.LoadedAt = time.Now()
	c.st.CompareAndSwap(st, &next)
}
