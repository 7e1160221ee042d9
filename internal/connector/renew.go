package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"

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

// controlCall makes one call on a control connection authenticated by
// st's certificate.
func controlCall(ctx context.Context, st *State, dial Dialer, method, path string, in, out any) error {
	conn, err := dialCloud(ctx, st, dial, tunnel.ControlALPN)
	if err != nil {
		return err
	}
	defer conn.Close()
	cc, err := (&http2.Transport{}).NewClientConn(conn)
	if err != nil {
		return err
	}
	defer cc.Close()
	var body io.Reader = http.NoBody
	if in != nil {
		js, _ := json.Marshal(in)
		body = bytes.NewReader(js)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, st.Target.URL+path, body)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return problem.Newf(502, "control_failed", "check the connector's network path to the cloud and retry",
			"The call %s %s to the cloud at %s failed (%v)", method, path, st.Target.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var eb tunnel.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
			return &problem.Problem{Status: resp.StatusCode, Code: eb.Error.Code, Message: trimStep(eb.Error.Message, eb.Error.Step), Step: eb.Error.Step}
		}
		return problem.Newf(resp.StatusCode, "control_failed", "check that the cloud runs the same Sallyport version",
			"The cloud answered %s to %s %s", resp.Status, method, path)
	}
	return json.Unmarshal(raw, out)
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
				c.events.Warning(1101, "Certificate renewal failed; the connector keeps its current certificate and tries again later: "+problem.Public(err).Error(),
					"expires_at", st.Leaf.NotAfter.UTC().Format(time.RFC3339))
			} else {
				c.st.Store(c.adopt(next))
				c.events.Info(1100, "The connector's certificate was renewed, valid until "+next.Trust.ExpiresAt.Format(time.RFC3339),
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
