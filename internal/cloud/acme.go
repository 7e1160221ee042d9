package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
)

// acmeManager obtains, renews and serves the ACME certificates of the
// published hosts (docs/certificates.md). Issuance is on demand, at the
// first handshake for a host, and gated by the routing table: a name no
// application is published at never starts an order.
type acmeManager struct {
	cfg     *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	tlsPort int      // where HTTP is redirected to
	book    acmeBook // this instance's view of the orders (acmefailure.go)
}

// checkACME checks the ACME settings before anything starts.
func (c *Config) checkACME() error {
	if c.ACMEEmail == "" {
		if c.ACMECA != "" || c.ACMECARootFile != "" || c.HTTPListen != "" {
			return problem.New(400, "acme", "add --acme-email, or leave out --acme-ca, --acme-ca-root and --http-listen",
				"--acme-ca, --acme-ca-root and --http-listen apply only with --acme-email, which turns ACME on")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(c.HTTPListen); c.HTTPListen != "" && err != nil {
		return problem.Newf(400, "http_listen", "give --http-listen as HOST:PORT or :PORT, for example :80",
			"The plain HTTP address %q is not HOST:PORT (%v)", c.HTTPListen, err)
	}
	return nil
}

// startACME makes the ACME manager for the TLS listener ln (its port is
// where the CA's TLS-ALPN-01 validation arrives) and the HTTP-01 port
// (0: none, HTTP-01 off). Called once, before the listener serves.
func (s *Server) startACME(ln net.Listener, httpPort int) error {
	if s.cfg.ACMEEmail == "" {
		return nil
	}
	var roots *x509.CertPool
	if s.cfg.ACMECARootFile != "" {
		pem, err := os.ReadFile(s.cfg.ACMECARootFile)
		if err != nil {
			return problem.Newf(400, "acme_ca_root", "give --acme-ca-root a readable PEM file of the ACME server's root certificate",
				"The ACME server's root %s cannot be read (%v)", s.cfg.ACMECARootFile, err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return problem.Newf(400, "acme_ca_root", "give --acme-ca-root a PEM file with at least one CERTIFICATE block",
				"The ACME server's root %s holds no PEM certificate", s.cfg.ACMECARootFile)
		}
	}
	tlsPort := 443
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		tlsPort = a.Port
	}
	storage := s.startACMEStorage() // acmestorage.go
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			if n := s.acmeName.Load(); n != nil && n.covers(c) {
				return n.cfg, nil // acmename.go
			}
			return cfg, nil
		},
		RenewCheckInterval: s.cfg.acmeRenewCheck, // 0: certmagic's default
		OCSPCheckInterval:  s.cfg.acmeRenewCheck,
		Logger:             zap.NewNop(),
	})
	cfg = certmagic.New(cache, certmagic.Config{
		Storage: storage,
		Logger:  zap.NewNop(),
		OnDemand: &certmagic.OnDemandConfig{
			DecisionFunc: func(_ context.Context, name string) error { return s.acmeDecision(name) },
		},
		OnEvent:            s.acmeEvent,
		RenewalWindowRatio: s.cfg.acmeRenewalRatio, // 0: certmagic's third of the lifetime
	})
	tmpl := certmagic.ACMEIssuer{
		CA:                      s.cfg.ACMECA,
		Email:                   s.cfg.ACMEEmail,
		Agreed:                  true,
		TrustedRoots:            roots,
		AltTLSALPNPort:          tlsPort,
		ListenHost:              listenHost(ln),
		AltHTTPPort:             httpPort,
		DisableHTTPChallenge:    httpPort == 0 || s.cfg.acmeOnly == "tls-alpn-01",
		DisableTLSALPNChallenge: s.cfg.acmeOnly == "http-01",
		Logger:                  zap.NewNop(),
	}
	if tmpl.CA == "" {
		tmpl.CA = certmagic.LetsEncryptProductionCA
	}
	issuer := certmagic.NewACMEIssuer(cfg, tmpl)
	cfg.Issuers = []certmagic.Issuer{issuer}
	s.acme = &acmeManager{cfg: cfg, issuer: issuer, tlsPort: tlsPort}
	s.acmeName.Store(s.newACMEName(cache, cfg.Storage, tmpl))
	s.acmeStop = func() {
		cache.Stop()
		storage.close()
	}
	return nil
}

// acmeDecision allows an order for name only when an application is
// published at it without its own certificate. The cloud's own name keeps
// the cloud CA's certificate: connectors and the admin CLI pin that CA
// for it (docs/certificates.md).
func (s *Server) acmeDecision(name string) error {
	rt := s.routes.Load()
	if rt == nil {
		return errors.New("no routing table yet")
	}
	if _, ok := rt.byHost[name]; !ok {
		return fmt.Errorf("no application is published at %s", name)
	}
	if rt.certs[name] != nil {
		return fmt.Errorf("the application at %s has its own certificate", name)
	}
	return nil
}

// acmeEvent turns certmagic's events into the cloud's.
func (s *Server) acmeEvent(_ context.Context, event string, data map[string]any) error {
	host, _ := data["identifier"].(string)
	switch event {
	case "cert_obtained":
		s.acme.book.obtained(host)
		renewal, _ := data["renewal"].(bool)
		s.events.Event(eventlog.ACMECertObtained, fmt.Sprintf("An ACME certificate for %s was obtained from %v", host, data["issuer"]),
			"host", host, "renewal", strconv.FormatBool(renewal))
	case "cert_obtaining":
		s.acme.book.obtaining(host)
	case "cert_failed":
		renewal, _ := data["renewal"].(bool)
		err, _ := data["error"].(error)
		s.acmeFailed(host, renewal, err)
	}
	return nil
}

// getCertificate is the ACME certificate for hello's name, obtained now
// if it is allowed and not held yet (the handshake waits).
func (m *acmeManager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cfg.GetCertificate(hello)
}

// listenHost is the address ln listens on ("" for all): certmagic's
// solvers try to listen there first and, finding the port taken by the
// cloud, leave the challenges to the cloud's own listeners.
func listenHost(ln net.Listener) string {
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		return a.IP.String()
	}
	return ""
}

// listenHTTP opens --http-listen (default :80 with ACME on).
func (s *Server) listenHTTP() (net.Listener, error) {
	if s.cfg.ACMEEmail == "" {
		return nil, nil
	}
	addr := s.cfg.HTTPListen
	if addr == "" {
		addr = ":80"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, problem.Newf(400, "http_listen", "free that port, or choose another address with --http-listen (the CA's HTTP-01 validation and the redirect need port 80 reachable from the internet)",
			"The cloud cannot serve plain HTTP on %s (%v)", addr, errors.Unwrap(err))
	}
	return ln, nil
}

// httpHandler is the plain HTTP port: the answers to the CA's HTTP-01
// challenges, and a 308 to https (same host and path) for everything
// else. No application is ever served over plain HTTP.
func (m *acmeManager) httpHandler() http.Handler {
	return m.issuer.HTTPChallengeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, ok := edge.NormalizeHost(r.Host)
		if !ok {
			http.Error(w, "This address is served over HTTPS only, and the request names no valid host.", http.StatusBadRequest)
			return
		}
		if m.tlsPort != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(m.tlsPort))
		}
		u := url.URL{Scheme: "https", Host: host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, u.String(), http.StatusPermanentRedirect)
	}))
}

// serveHTTP serves the plain HTTP port until ctx ends.
func (s *Server) serveHTTP(ctx context.Context, ln net.Listener) {
	hs := &http.Server{
		Handler:           s.acme.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(slogWriter{s.log}, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	select {
	case <-ctx.Done():
	case <-done:
	}
	hs.Close()
	<-done
}
