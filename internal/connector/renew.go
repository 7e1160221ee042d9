package connector

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Dialer dials TCP to the cloud.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// NeedsRenewal reports whether a certificate should be renewed at now:
// less than a third of its lifetime remains.
func NeedsRenewal(st *State, now time.Time) bool {
	life := st.Leaf.NotAfter.Sub(st.Leaf.NotBefore.Add(pki.Backdate))
	return st.Leaf.NotAfter.Sub(now) < life/3
}

// trimStep removes the step the API repeats at the end of a message.
func trimStep(msg, step string) string {
	if step != "" {
		if i := bytes.LastIndex([]byte(msg), []byte("; "+step)); i > 0 {
			return msg[:i]
		}
	}
	return msg
}

// Renew gets a new certificate for a new key over the authenticated
// control connection and switches the state directory to it: the new
// files are written beside the old ones, trust.json (replaced atomically)
// names them, the cloud confirms it accepts the new certificate, and only
// then are the old files removed. Once signed, the new certificate is the
// cloud's current one, and the old one stays accepted until the new one
// is used: a renewal interrupted at any step leaves a connector that
// works, with one certificate or the other.
func Renew(ctx context.Context, st *State, dial Dialer) (*State, error) {
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("sallyport-connector")
	if err != nil {
		return nil, err
	}
	var resp tunnel.RenewResponse
	if err := controlCall(ctx, st, dial, http.MethodPost, tunnel.ControlRenew, tunnel.RenewRequest{CSR: string(csrPEM)}, &resp); err != nil {
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
	if err := writeState(st.Dir, &next.Trust, keyPEM, []byte(resp.Certificate), nil); err != nil {
		return nil, err
	}
	// Confirm: the cloud accepts the new certificate (and from then on
	// only it).
	var status tunnel.Status
	if err := controlCall(ctx, &next, dial, http.MethodGet, tunnel.ControlStatus, nil, &status); err != nil {
		return nil, err
	}
	if status.CertSerial != next.Trust.Serial {
		return nil, fmt.Errorf("the cloud holds certificate %s as current, not the renewed %s", status.CertSerial, next.Trust.Serial)
	}
	if err := stepHook("confirmed"); err != nil {
		return nil, err
	}
	removeUnusedPairs(st.Dir, next.Trust)
	return LoadState(st.Dir)
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

// FetchStatus asks the cloud, over the authenticated control connection,
// what it knows of this connector: registration, group, status, its
// clock, and the group's applications.
func FetchStatus(ctx context.Context, st *State, dial Dialer) (tunnel.Status, error) {
	var s tunnel.Status
	err := controlCall(ctx, st, dial, http.MethodGet, tunnel.ControlStatus, nil, &s)
	return s, err
}
