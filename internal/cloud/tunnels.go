package cloud

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// serveTunnel runs one connector tunnel connection until it ends. The
// client certificate is verified here rather than in the handshake, so
// that a refused connector is told why over the tunnel before it closes.
func (s *Server) serveTunnel(ctx context.Context, conn *tls.Conn) {
	conn.SetDeadline(time.Time{})
	addr := conn.RemoteAddr().String()
	client, err := tunnel.NewClient(conn, s.cfg.Tunnel)
	if err != nil {
		return
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()

	rec, err := s.identify(ctx, conn.ConnectionState().PeerCertificates)
	if p, ok := problem.As(err); ok {
		s.events.Event(eventlog.ConnectorCertRefused, "A connector's connection was refused: "+p.Error(), "address", addr, "code", p.Code)
		refuse(ctx, client, p)
		return
	}
	if err != nil {
		// A passing failure of the cloud (the store): the connector retries.
		s.log.Error("checking a connector's certificate failed", "address", addr, "error", err.Error())
		return
	}
	hello, err := getHello(ctx, client)
	if err != nil {
		s.log.Warn("connector did not answer its hello", "connector", rec.ID, "address", addr, "error", err.Error())
		return
	}
	if hello.RelayWindow {
		client.UseOpenWindows() // small relay windows that grow as they are read (issue 14)
	}
	now := s.now()
	if err := s.store.UpdateConnectorSeen(ctx, rec.TenantID, rec.ID, now, addr, hello.Hostname, hello.Version); err != nil {
		s.log.Warn("recording connector failed", "connector", rec.ID, "error", err.Error())
	}
	leaf := conn.ConnectionState().PeerCertificates[0] // identify found one
	lt := &liveTunnel{c: client, serial: pki.SerialHex(leaf), notAfter: leaf.NotAfter}
	if !s.registry.add(lt, rec.ID, rec.TenantID, rec.GroupID, addr, hello) {
		p := tooManyTunnels(rec.ID, s.cfg.MaxTunnelsPerConnector)
		s.events.Event(eventlog.TunnelRefusedLimit, "A connector's tunnel was refused: "+p.Error(), "connector", rec.ID, "tenant", rec.TenantID, "address", addr, "code", p.Code)
		refuse(ctx, client, p)
		return
	}
	defer s.registry.remove(lt)
	if err := s.registry.ensureConfig(ctx, lt); err != nil {
		s.log.Warn("sending configuration to connector failed", "connector", rec.ID, "error", err.Error())
		return
	}
	if err := s.registry.ensureInstances(ctx, lt); err != nil {
		s.log.Warn("sending the list of instances to connector failed", "connector", rec.ID, "error", err.Error())
	}
	s.log.Info("connector tunnel up", "connector", rec.ID, "tenant", rec.TenantID, "hostname", hello.Hostname, "version", hello.Version, "address", addr)
	s.heartbeat(ctx, client, rec, addr, hello)
	s.log.Info("connector tunnel down", "connector", rec.ID, "address", addr)
}

// heartbeat pings the tunnel and records the connector as seen, until the
// connection ends.
func (s *Server) heartbeat(ctx context.Context, c *tunnel.Client, rec store.Connector, addr string, hello tunnel.Hello) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.Done():
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.HeartbeatInterval)
		start := time.Now()
		err := c.Ping(pctx)
		cancel()
		if err == nil {
			s.metrics.rtt.Observe(time.Since(start).Seconds())
		}
		if err != nil {
			s.log.Warn("connector stopped answering pings; closing its tunnel", "connector", rec.ID, "address", addr)
			c.Close()
			return
		}
		if err := s.store.UpdateConnectorSeen(ctx, rec.TenantID, rec.ID, s.now(), addr, hello.Hostname, hello.Version); errors.Is(err, store.ErrNotFound) {
			c.Close() // deleted meanwhile
			return
		}
	}
}

// identify checks a connector's client certificate: issued by its
// tenant's connector CA, valid now, not revoked, and current for a
// connector that exists.
func (s *Server) identify(ctx context.Context, chain []*x509.Certificate) (store.Connector, error) {
	unknown := func(why string) error {
		return problem.Newf(401, "connector_unknown",
			"run 'sallyport connector register' on the connector's machine",
			"The cloud does not accept this connector's certificate: %s", why)
	}
	if len(chain) == 0 {
		return store.Connector{}, unknown("it presented none")
	}
	leaf := chain[0]
	id, err := pki.IdentityFromCert(leaf)
	if err != nil {
		return store.Connector{}, unknown("it is not a Sallyport connector certificate")
	}
	ca, err := s.tenantCA(ctx, id.TenantID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Connector{}, unknown("its tenant does not exist on this cloud")
	}
	if err != nil {
		return store.Connector{}, err // passing: the connector retries
	}
	now := s.now()
	if now.After(leaf.NotAfter) {
		return store.Connector{}, problem.Newf(401, "trust_expired",
			"run 'sallyport connector register' on the connector's machine to register it again",
			"Connector re-registration failed: the connector trust certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return store.Connector{}, problem.Newf(401, "clock_skew",
			"set the clocks of the connector's machine and of the cloud right (NTP)",
			"The connector's certificate is valid only from %s but the cloud's clock says %s", leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return store.Connector{}, unknown("it was not issued by the tenant's connector CA")
	}
	serial := pki.SerialHex(leaf)
	if rev, err := s.store.Revocation(ctx, serial); err == nil {
		return store.Connector{}, problem.Newf(401, "connector_revoked",
			"run 'sallyport connector register' on this machine if it should serve again",
			"This connector's certificate was revoked on %s (%s)", rev.RevokedAt.UTC().Format(time.RFC3339), rev.Reason)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Connector{}, err // passing: the connector retries
	}
	rec, err := s.store.ConnectorByID(ctx, id.TenantID, id.ConnectorID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Connector{}, problem.Newf(401, "connector_deleted",
			"run 'sallyport connector register' on this machine if it should serve again",
			"Connector %s no longer exists in its tenant (an administrator deleted it)", id.ConnectorID)
	}
	if err != nil {
		return store.Connector{}, err
	}
	switch {
	case serial == rec.CertSerial:
		if rec.PreviousSerial != "" {
			// The renewed certificate is in use: the old one is done.
			if err := s.store.UpdateConnectorCert(ctx, rec.TenantID, rec.ID, rec.CertSerial, rec.CertThumbprint, rec.CertNotAfter, ""); err != nil {
				return store.Connector{}, err
			}
			rec.PreviousSerial = ""
		}
	case rec.PreviousSerial != "" && serial == rec.PreviousSerial:
		// A renewal in progress: the old certificate still works.
	default:
		return store.Connector{}, unknown("it has been replaced by a newer certificate")
	}
	return rec, nil
}

// tooManyTunnels is the refusal of a tunnel beyond a connector's limit.
// It is not final: the connector retries with backoff, and gets in when
// one of its tunnels closes.
func tooManyTunnels(id string, limit int) *problem.Problem {
	return problem.Newf(http.StatusTooManyRequests, "too_many_tunnels",
		"the connector retries by itself; if this lasts, check that no other connector runs from a copy of its state directory",
		"Connector %s already holds %d tunnel connections to the cloud, the most it may", id, limit)
}

func (s *Server) tenantCA(ctx context.Context, tenantID string) (*pki.CA, error) {
	if v, ok := s.caCache.Load(tenantID); ok {
		return v.(*pki.CA), nil
	}
	tc, err := s.store.TenantCA(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(tc.CertPEM, tc.KeyPEM)
	if err != nil {
		return nil, err
	}
	s.caCache.Store(tenantID, ca)
	return ca, nil
}

func getHello(ctx context.Context, c *tunnel.Client) (tunnel.Hello, error) {
	var h tunnel.Hello
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://connector"+tunnel.PathHello, nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("hello answered %s", resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h)
	return h, err
}

// refuse tells the connector why it is refused; best effort.
func refuse(ctx context.Context, c *tunnel.Client, p *problem.Problem) {
	var eb tunnel.ErrorBody
	eb.Error.Code, eb.Error.Message, eb.Error.Step = p.Code, p.Message, p.Step
	js, _ := json.Marshal(eb)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://connector"+tunnel.PathRefuse, bytes.NewReader(js))
	if resp, err := c.RoundTrip(req); err == nil {
		resp.Body.Close()
	}
}
