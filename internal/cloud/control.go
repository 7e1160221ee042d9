package cloud

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/h2"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// serveControl serves one connector control connection: the connector is
// the HTTP/2 client, authenticated by its certificate like a tunnel.
func (s *Server) serveControl(ctx context.Context, conn *tls.Conn) {
	conn.SetDeadline(time.Time{})
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rec, ierr := s.identify(ctx, conn.ConnectionState().PeerCertificates)
	serial := ""
	if certs := conn.ConnectionState().PeerCertificates; len(certs) > 0 {
		serial = pki.SerialHex(certs[0])
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ierr != nil {
			writeProblem(w, problem.Public(ierr))
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == tunnel.ControlRenew:
			s.handleRenew(w, r, rec, serial)
		case r.Method == http.MethodGet && r.URL.Path == tunnel.ControlStatus:
			s.handleControlStatus(w, r, rec)
		case s.serveReleaseControl(w, r, rec):
		default:
			http.NotFound(w, r)
		}
	})
	h2.ServeConn(ctx, conn, h, &http.Server{MaxHeaderBytes: 64 << 10}, h2.ServerConfig{MaxConcurrentStreams: 8, IdleTimeout: time.Minute})
}

// handleRenew signs a certificate for the connector's new key. The serial
// that authenticated this call stays accepted until the connector
// connects with the new certificate, so an interrupted renewal can go on
// with the old one.
func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request, rec store.Connector, usedSerial string) {
	var in tunnel.RenewRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		writeProblem(w, problem.New(http.StatusBadRequest, "bad_request", "run the renewal again", "The renewal request is not valid JSON"))
		return
	}
	csr, err := pki.ParseCSR([]byte(in.CSR))
	if err != nil {
		writeProblem(w, problem.Newf(http.StatusBadRequest, "bad_csr", "run the renewal again with this version of sallyport",
			"Certificate renewal failed: the certificate signing request was refused (%v)", err))
		return
	}
	ctx := r.Context()
	ca, err := s.tenantCA(ctx, rec.TenantID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now().UTC()
	der, err := ca.SignConnector(csr, pki.ConnectorIdentity{TenantID: rec.TenantID, ConnectorID: rec.ID}, now.Add(-pki.Backdate), now.Add(time.Duration(s.settings.ConnectorCertLifetime)))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	certPEM := pki.EncodeCertPEM(der)
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.UpdateConnectorCert(ctx, rec.TenantID, rec.ID, pki.SerialHex(cert), pki.Thumbprint(cert), cert.NotAfter, usedSerial); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.events.Event(eventlog.ConnectorCertRenewed, fmt.Sprintf("The certificate of connector %s was renewed, valid until %s", rec.ID, cert.NotAfter.UTC().Format(time.RFC3339)),
		"connector", rec.ID, "tenant", rec.TenantID, "serial", pki.SerialHex(cert))
	writeJSON(w, http.StatusOK, tunnel.RenewResponse{Certificate: string(certPEM), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter})
}

// handleControlStatus tells the connector what the cloud knows of it.
func (s *Server) handleControlStatus(w http.ResponseWriter, r *http.Request, rec store.Connector) {
	st := tunnel.Status{ConnectorID: rec.ID, TenantID: rec.TenantID, CloudTime: s.now().UTC(), CertSerial: rec.CertSerial,
		Status: s.connectorStatus(rec), Apps: []tunnel.AppConfig{}, TimeoutNames: map[string]string{}}
	if t, err := s.store.TenantByID(r.Context(), rec.TenantID); err == nil {
		st.Tenant = t.Domain
	}
	if g, err := s.store.GroupByID(r.Context(), rec.TenantID, rec.GroupID); err == nil {
		st.Group = g.Name
	}
	if cfg := s.routesNow().configs[rec.GroupID]; cfg != nil {
		st.Apps = append(st.Apps, cfg.Apps...)
		for _, a := range cfg.Apps {
			if ea, ok := s.routesNow().Lookup(a.ExternalHost); ok {
				st.TimeoutNames[a.ID] = ea.TimeoutName
			}
		}
	}
	writeJSON(w, http.StatusOK, st)
}
