package cloud

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sallyport/sallyport/internal/accesslog"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/h2"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tunnel"
	"github.com/sallyport/sallyport/internal/version"
)

// Config is how the cloud service runs.
type Config struct {
	DataDir string
	// Listen is the one TLS address for connectors, the admin API and
	// applications. Default ":443".
	Listen string
	// EdgeCertFile and EdgeKeyFile, when set, are a certificate (e.g. a
	// wildcard for *.NAME) the edge presents for the hosts it covers.
	EdgeCertFile, EdgeKeyFile string
	// BackendTimeoutOverride replaces every application's backend timeout
	// (test-only setting).
	BackendTimeoutOverride time.Duration
	// InactiveAfter is how long without a heartbeat makes a connector
	// inactive. Default 2 minutes.
	InactiveAfter time.Duration
	// RemoveInactiveAfter is how long an inactive connector is kept before
	// it is removed (and its certificate revoked). Default 10 days.
	RemoveInactiveAfter time.Duration
	// FailoverTimeout is how long a tunnel may stop answering before its
	// connector is out of rotation: a PING goes out after a third of it
	// without traffic and must be answered within the rest. Default 3s.
	FailoverTimeout time.Duration
	// HeartbeatInterval is how often the cloud pings each tunnel and
	// records the connector as seen. Default 10s.
	HeartbeatInterval time.Duration
	// RefreshInterval is how often the route table is reloaded from the
	// store (changes made through this instance apply at once). Default 5s.
	RefreshInterval time.Duration
	// MetricsListen, when set, is where /metrics, /healthz and /ready are
	// served (plain HTTP: keep it on loopback or a management network).
	MetricsListen string
	// ShutdownGrace is how long requests in flight may finish when the
	// cloud stops (SIGTERM) before its tunnels close. Default 10s.
	ShutdownGrace time.Duration
	// ConnectorCertLifetime, when set, replaces the lifetime of new
	// connector certificates from the settings file (default 90 days).
	ConnectorCertLifetime time.Duration
	// TunnelCheckInterval is how often every live tunnel's certificate is
	// checked against the clock and the store: expired or revoked (also by
	// another instance or an operator command) closes the tunnel; replaced
	// by a renewal retires it shortly before it expires. Default 10s.
	TunnelCheckInterval time.Duration
	// MaxTunnelsPerConnector is the most tunnel connections one connector
	// may hold; beyond it a new one is refused (too_many_tunnels, retried
	// by the connector). Default 20: a connector's 16 at most, plus room
	// for reconnections that overlap the old connection's close.
	MaxTunnelsPerConnector int
	// MaxConnsPerSource is the most connections one source (an IPv4
	// address or an IPv6 /64) holds open at once on the cloud's port;
	// beyond it a new one is closed before its handshake. Default 1024:
	// room for many connectors behind one NAT address (16 tunnels each at
	// most) and for browsers behind a shared proxy.
	MaxConnsPerSource int
	// ConnectorLimit is the most requests one connector serves at once;
	// beyond it requests go to other connectors, or get 503. Default 1000.
	ConnectorLimit int
	// EdgeLimits bound request sizes and rates at the edge.
	EdgeLimits edge.Limits
	// AccessLog, when set, is the file (or "-" for standard output) where
	// a JSON line is written for each edge request.
	AccessLog string
	// AccessLogSample, above 1, logs one in that many ordinary answers
	// (every failure is logged).
	AccessLogSample int
	// DNSResolver, when set, is the HOST:PORT of the DNS server that the
	// TXT records proving tenants' domains are looked up at (default: the
	// system's resolver).
	DNSResolver string
	Tunnel      tunnel.ClientConfig
	Logger      *slog.Logger
	Now         func() time.Time
}

// Validate fills defaults.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return problem.New(400, "data_dir", "No data directory was given", "give one with --data-dir")
	}
	if c.Listen == "" {
		c.Listen = ":443"
	}
	if (c.EdgeCertFile == "") != (c.EdgeKeyFile == "") {
		return problem.New(400, "edge_cert", "Only one of the edge certificate and key files was given", "give both --edge-cert and --edge-key, or neither")
	}
	if err := c.EdgeLimits.Validate(); err != nil {
		return err
	}
	if c.ConnectorCertLifetime != 0 && c.ConnectorCertLifetime < 10*time.Second {
		return problem.Newf(400, "bad_config", "use at least 10s (days in production, e.g. 2160h)", "The connector certificate lifetime %s is too short", c.ConnectorCertLifetime)
	}
	if c.AccessLogSample < 0 {
		return problem.Newf(400, "bad_config", "give 1 to log every request, or N to log one in N", "The access log sample rate %d is negative", c.AccessLogSample)
	}
	if c.DNSResolver != "" {
		if _, port, err := net.SplitHostPort(c.DNSResolver); err != nil || port == "" {
			return problem.Newf(400, "bad_config", "give it as HOST:PORT, for example --dns-resolver 10.0.0.2:53",
				"The DNS resolver %q is not a HOST:PORT address", c.DNSResolver)
		}
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.ConnectorLimit <= 0 {
		c.ConnectorLimit = 1000
	}
	if c.TunnelCheckInterval <= 0 {
		c.TunnelCheckInterval = 10 * time.Second
	}
	if c.MaxTunnelsPerConnector <= 0 {
		c.MaxTunnelsPerConnector = 20
	}
	if c.MaxConnsPerSource <= 0 {
		c.MaxConnsPerSource = 1024
	}
	if c.InactiveAfter <= 0 {
		c.InactiveAfter = 2 * time.Minute
	}
	if c.RemoveInactiveAfter <= 0 {
		c.RemoveInactiveAfter = 10 * 24 * time.Hour
	}
	if c.FailoverTimeout <= 0 {
		c.FailoverTimeout = 3 * time.Second
	}
	if c.FailoverTimeout < 300*time.Millisecond {
		return problem.Newf(400, "bad_config", "use at least 300ms", "The failover timeout %s is too short to tell a slow link from a dead one", c.FailoverTimeout)
	}
	if c.Tunnel.PingInterval <= 0 {
		c.Tunnel.PingInterval = c.FailoverTimeout / 3
	}
	if c.Tunnel.PingTimeout <= 0 {
		c.Tunnel.PingTimeout = c.FailoverTimeout - c.Tunnel.PingInterval
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Server is a cloud service instance.
type Server struct {
	cfg      Config
	settings Settings
	log      *slog.Logger
	store    store.Store
	ca       *pki.CA
	certs    *serverCerts     // the server certificate for the cloud's name and *.name, and the CRL (servercert.go)
	edgeCert *tls.Certificate // optional, configured
	resolver txtResolver      // where domain proofs are looked up

	routes    atomic.Pointer[routeTable]
	refreshMu sync.Mutex
	registry  *registry
	edge      *edge.Handler
	api       http.Handler
	signin    *signinGuard // sign-in and registration limits (signin.go)
	caCache   sync.Map     // tenant id → *pki.CA

	wg           sync.WaitGroup // goroutines the server owns
	edgeInFlight atomic.Int64   // edge requests being served, for a graceful stop
	metrics      *metrics
	appErrors    errorLog          // recent failed requests per application
	requests     requestIndex      // failed requests by request id, per tenant
	failureLogs  eventlog.Throttle // event 2700: one per application and code per second
	events       *eventlog.Log
	releasePub   ed25519.PublicKey                   // the release key connectors pin
	access       *accesslog.Logger                   // nil without --access-log
	connLimit    atomic.Pointer[sourceLimitListener] // set by Serve
	tunnelChecks atomic.Int64                        // passes of checkTunnels, for tests
}

// New opens the data directory and prepares a server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	settings, err := LoadSettings(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectorCertLifetime > 0 {
		settings.ConnectorCertLifetime = Duration(cfg.ConnectorCertLifetime)
	}
	ca, err := loadCloudCA(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, settings: settings, log: cfg.Logger, ca: ca, resolver: txtResolver{addr: cfg.DNSResolver}}
	if err := s.startServerCerts(); err != nil {
		return nil, err
	}
	s.signin = newSigninGuard(defaultSigninLimits, s.now, func() *eventlog.Log { return s.events })
	if cfg.EdgeCertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.EdgeCertFile, cfg.EdgeKeyFile)
		if err != nil {
			return nil, problem.Newf(400, "edge_cert", "give a PEM certificate chain and its matching PEM key",
				"The edge certificate %s / %s cannot be loaded (%v)", cfg.EdgeCertFile, cfg.EdgeKeyFile, err)
		}
		s.edgeCert = &c
	}
	if s.releasePub, err = LoadReleaseKey(cfg.DataDir); err != nil {
		return nil, err
	}
	st, wrapped, err := openStore(cfg.DataDir, settings, s.log)
	if err != nil {
		return nil, err
	}
	s.store = st
	s.metrics = newMetrics(s)
	if s.events, err = eventlog.Open(eventlog.Config{Path: filepath.Join(cfg.DataDir, EventsFile), Source: "cloud", Logger: s.log, Now: cfg.Now}); err != nil {
		st.Close()
		return nil, problem.Newf(400, "data_dir", "check the data directory's permissions", "The cloud's event log cannot be opened (%v)", err)
	}
	if wrapped > 0 {
		s.events.Info(2800, fmt.Sprintf("The store's %d private keys were wrapped with the new key-encryption key %s: back that file up apart from the store", wrapped, filepath.Join(cfg.DataDir, KEKFile)),
			"keys", fmt.Sprint(wrapped))
	}
	if cfg.AccessLog != "" {
		if s.access, err = accesslog.Open(accesslog.Options{Path: cfg.AccessLog, Sample: cfg.AccessLogSample,
			OnError: func(err error) {
				s.log.Warn("writing the access log failed; lines were lost", "file", cfg.AccessLog, "error", err.Error())
			}}); err != nil {
			s.events.Close()
			st.Close()
			return nil, err
		}
	}
	s.registry = newRegistry(s.log, cfg.ConnectorLimit, s.routesNow, s.refreshRoutes)
	s.registry.maxTunnels = cfg.MaxTunnelsPerConnector
	t, err := s.loadRoutes(context.Background())
	if err != nil {
		s.Close()
		return nil, err
	}
	s.routes.Store(t)
	s.edge = edge.New(edge.Config{Routes: s, Dispatcher: s.registry, Logger: s.log, TimeoutOverride: cfg.BackendTimeoutOverride, Limits: cfg.EdgeLimits,
		OnError: s.onEdgeError})
	s.api = s.apiHandler()
	return s, nil
}

func loadCloudCA(dir string) (*pki.CA, error) {
	certPEM, err1 := os.ReadFile(filepath.Join(dir, CACertFile))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err := errors.Join(err1, err2); err != nil {
		return nil, problem.Newf(400, "data_dir", "restore the data directory from a backup, or run 'sallyport cloud init' for a new cloud",
			"The cloud CA in %s cannot be read (%v)", dir, err)
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, problem.Newf(400, "data_dir", "restore the data directory from a backup", "The cloud CA in %s is damaged (%v)", dir, err)
	}
	return ca, nil
}

// Name is the cloud's DNS name.
func (s *Server) Name() string { return s.settings.Name }

// Store returns the server's store.
func (s *Server) Store() store.Store { return s.store }

// Refresh reloads the route table now (after changes made directly in the store).
func (s *Server) Refresh(ctx context.Context) error { return s.refreshRoutes(ctx) }

func (s *Server) now() time.Time { return s.cfg.Now() }

// Listen opens the configured TCP listener.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, listenProblem(s.cfg.Listen, err)
	}
	return ln, nil
}

// listenProblem says why the cloud cannot listen on addr, by the kind of
// error (issue 20, defect 5: "--listen 18445" was told to stop the program
// using the port).
func listenProblem(addr string, err error) *problem.Problem {
	var addrErr *net.AddrError
	var dnsErr *net.DNSError
	var step string
	switch {
	case errors.As(err, &addrErr):
		step = "give --listen as HOST:PORT or :PORT, for example :18443 (all addresses) or 127.0.0.1:18443"
	case errors.As(err, &dnsErr):
		step = "give --listen an address of this machine, or a name that resolves to one, as HOST:PORT"
	case errors.Is(err, syscall.EADDRINUSE):
		step = "stop the program using that port, or choose another address with --listen"
	case errors.Is(err, syscall.EACCES):
		step = "choose a port from 1024 up with --listen, or run with root or CAP_NET_BIND_SERVICE"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		step = "give --listen an address of this machine (see 'ip address'), or :PORT for all of them"
	default:
		step = "choose another address with --listen"
	}
	return problem.Newf(400, "listen", step, "The cloud cannot listen on %s (%v)", addr, errors.Unwrap(err)).Wrap(err)
}

// Serve serves on ln until ctx is done, then stops: tunnels are closed and
// requests in flight get a few seconds to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Tunnels outlive ctx until the requests in flight are done.
	tctx, stopTunnels := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTunnels()
	relayBudget := tunnel.NewWindowBudget(tunnel.TotalWindowBudget, nil)
	hs := &http.Server{
		Handler:           http.HandlerFunc(s.route),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(slogWriter{s.log}, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			// What the relay streams of one client connection may hold
			// beyond their first window (issue 14).
			ctx = tunnel.WithWindowBudget(ctx, tunnel.NewWindowBudget(tunnel.ClientConnWindowBudget, relayBudget))
			return withBatchConn(ctx, c)
		},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){
			tunnel.ALPN: func(_ *http.Server, c *tls.Conn, _ http.Handler) {
				s.wg.Add(1)
				defer s.wg.Done()
				s.serveTunnel(tctx, c)
			},
			tunnel.ALPN2: func(_ *http.Server, c *tls.Conn, _ http.Handler) {
				s.wg.Add(1)
				defer s.wg.Done()
				s.serveTunnel(tctx, c)
			},
			tunnel.ControlALPN: func(_ *http.Server, c *tls.Conn, _ http.Handler) {
				s.wg.Add(1)
				defer s.wg.Done()
				s.serveControl(tctx, c)
			},
		},
	}
	// Per client connection: 250 streams, and at most 1 MiB of uploads
	// received and not yet read (x/net's defaults, stated); downloads are
	// bounded by the relay windows (tunnel.ClientConnWindowBudget).
	if err := h2.ConfigureServer(hs, h2.ServerConfig{MaxConcurrentStreams: 250,
		MaxUploadBufferPerConnection: 1 << 20, MaxUploadBufferPerStream: 1 << 20}); err != nil {
		return err
	}
	tlsCfg := tlsProfile(&tls.Config{GetConfigForClient: s.tlsConfigFor})
	if s.cfg.MetricsListen != "" {
		mln, err := s.listenMetrics()
		if err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveMetrics(ctx, mln)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.maintain(ctx)
	}()
	errc := make(chan error, 1)
	// Tunnels batch their writes (tunnel.BatchConn); other connections
	// write straight through it.
	go func() { errc <- hs.Serve(tls.NewListener(tunnel.NewBatchListener(s.sourceLimit(ln)), tlsCfg)) }()
	s.events.Info(2000, fmt.Sprintf("The cloud service %s started, listening on %s", s.settings.Name, ln.Addr()), "version", version.Version)
	if err := s.warnUnownedHosts(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("checking the applications' external hosts failed", "error", err.Error())
	}
	select {
	case err := <-errc:
		s.registry.closeAll()
		s.wg.Wait()
		return err
	case <-ctx.Done():
	}
	// Stop taking connections and requests, let those in flight finish
	// (at most ShutdownGrace), then close the tunnels.
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace+5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- hs.Shutdown(sctx) }()
	deadline := time.Now().Add(s.cfg.ShutdownGrace)
	for s.edgeInFlight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling a counter with a deadline
	}
	if n := s.edgeInFlight.Load(); n > 0 {
		s.log.Warn("stopping with requests still in flight", "requests", n)
	}
	stopTunnels()
	s.registry.closeAll()
	if err := <-shut; err != nil {
		hs.Close()
	}
	<-errc
	s.wg.Wait()
	s.registry.wait()
	s.events.Info(2001, "The cloud service stopped")
	return nil
}

// EventsFile is the cloud's event log in its data directory.
const EventsFile = "events.jsonl"

// Close releases the store and the event log.
func (s *Server) Close() error {
	if s.access != nil {
		if err := s.access.Close(); err != nil {
			s.log.Warn("writing the access log failed", "error", err.Error())
		}
	}
	s.events.Close()
	return s.store.Close()
}

// ReopenAccessLog reopens the access log file (after log rotation moved
// it; 'cloud serve' does this on SIGHUP).
func (s *Server) ReopenAccessLog() error {
	if s.access == nil {
		return nil
	}
	return s.access.Reopen()
}

// maintain refreshes the route table periodically, removes connectors
// inactive for too long, checks the live tunnels, and re-issues the
// server certificate and re-signs the CRL when due (servercert.go).
func (s *Server) maintain(ctx context.Context) {
	t := time.NewTicker(s.cfg.RefreshInterval)
	defer t.Stop()
	check := time.NewTicker(s.cfg.TunnelCheckInterval)
	defer check.Stop()
	var lastSweep time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			s.checkTunnels(ctx)
			s.maintainServerCert()
		case <-t.C:
			if err := s.refreshRoutes(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reloading applications from the store failed", "error", err.Error())
			}
			s.dropRevoked(ctx)
			if time.Since(lastSweep) >= time.Minute {
				lastSweep = time.Now()
				if _, err := s.SweepInactive(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("removing inactive connectors failed", "error", err.Error())
				}
			}
		}
	}
}

// dropRevoked closes the tunnels of live connectors that were deleted or
// revoked elsewhere (another cloud instance, an operator command), so a
// revocation takes effect everywhere within one refresh interval.
func (s *Server) dropRevoked(ctx context.Context) {
	for _, lc := range s.registry.live() {
		_, err := s.store.ConnectorByID(ctx, lc.TenantID, lc.ID)
		if errors.Is(err, store.ErrNotFound) {
			s.log.Info("closing the tunnels of a connector that no longer exists", "connector", lc.ID, "tenant", lc.TenantID)
			s.registry.disconnect(lc.ID)
		}
	}
}

// SweepInactive removes the connectors not seen for RemoveInactiveAfter
// (never connected ones count from their registration) and revokes their
// certificates. It returns how many it removed.
func (s *Server) SweepInactive(ctx context.Context) (int, error) {
	now := s.now().UTC()
	cs, err := s.store.ListInactiveConnectors(ctx, now.Add(-s.cfg.RemoveInactiveAfter))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		if _, live := s.registry.info(c.ID); live {
			continue // connected right now: its last-seen time is about to move
		}
		reason := fmt.Sprintf("removed after %s of inactivity", humanDuration(s.cfg.RemoveInactiveAfter))
		if err := s.store.DeleteConnector(ctx, c.TenantID, c.ID, reason, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return n, err
		}
		n++
		s.events.Info(2104, fmt.Sprintf("Connector %s (%s) was %s, and its certificate revoked", c.ID, c.Hostname, reason),
			"connector", c.ID, "tenant", c.TenantID, "last_seen", c.LastSeenAt.Format(time.RFC3339))
	}
	return n, nil
}

// humanDuration writes whole days as days ("10 days"), else as Go does.
func humanDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		days := int(d / (24 * time.Hour))
		if days == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", days)
	}
	return d.String()
}

// tlsConfigFor picks the TLS configuration by ALPN: connectors present a
// client certificate (verified after the handshake, so a refusal can be
// explained to the connector); everybody else gets the edge's.
func (s *Server) tlsConfigFor(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if slices.Contains(hello.SupportedProtos, tunnel.ALPN) || slices.Contains(hello.SupportedProtos, tunnel.ALPN2) || slices.Contains(hello.SupportedProtos, tunnel.ControlALPN) {
		return tlsProfile(&tls.Config{
			Certificates: []tls.Certificate{*s.serverCert()},
			ClientAuth:   tls.RequireAnyClientCert,
			NextProtos:   []string{tunnel.ALPN2, tunnel.ALPN, tunnel.ControlALPN}, // version 2 when offered
		}), nil
	}
	return tlsProfile(&tls.Config{
		GetCertificate: s.certificateFor,
		NextProtos:     []string{"h2", "http/1.1"},
	}), nil
}

// tlsProfile sets what every TLS configuration of the cloud's port shares
// (edge, admin API, tunnels, control): TLS 1.2 or later (1.3 whenever the
// client has it), only forward-secret AEAD suites on 1.2 (pki.CipherSuites),
// and no session tickets: Go's tickets live 7 days under keys rotated only
// daily, so a stolen ticket key would open a week of recorded sessions;
// without them every connection makes a full handshake, whose cost is small
// next to a connection's life here (tunnels and HTTP/2 connections last).
func tlsProfile(c *tls.Config) *tls.Config {
	c.MinVersion = pki.MinTLSVersion
	c.CipherSuites = pki.CipherSuites()
	c.SessionTicketsDisabled = true
	return c
}

// certificateFor chooses the edge certificate for a server name: an
// application's own certificate, the configured edge certificate if it
// covers the name, else the server certificate (the cloud's name and
// *.NAME). The cloud CA never issues a certificate for any other name: a
// name nobody gave a certificate for gets a name mismatch, never a
// certificate for it.
func (s *Server) certificateFor(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host, ok := edge.NormalizeHost(hello.ServerName)
	if !ok {
		return s.serverCert(), nil
	}
	if host == s.settings.Name {
		return s.serverCert(), nil // what connectors and admin clients pin
	}
	if c := s.routes.Load().certs[host]; c != nil {
		return c, nil
	}
	if s.edgeCert != nil && hello.SupportsCertificate(s.edgeCert) == nil {
		return s.edgeCert, nil
	}
	return s.serverCert(), nil
}

// route sends a request to the admin API (cloud's own name) or the edge.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	host, hostOK := edge.NormalizeHost(r.Host)
	if hostOK && host == s.settings.Name {
		s.api.ServeHTTP(w, r)
		return
	}
	s.edgeInFlight.Add(1)
	defer s.edgeInFlight.Add(-1)
	rec := &statusRecorder{ResponseWriter: w, start: time.Now()}
	if r.ProtoMajor == 1 {
		// HTTP/1.x writes on the connection from this goroutine; HTTP/2's
		// serve loop writes for every stream (no corking there).
		rec.bc, _ = r.Context().Value(batchConnKey{}).(*tunnel.BatchConn)
		if rec.bc != nil && r.Body != http.NoBody && (r.ContentLength < 0 || r.ContentLength > readAheadAbove) {
			rec.bc.ReadAhead()
			defer rec.bc.EndReadAhead()
		}
	}
	var in *countingBody
	if s.access != nil && r.Body != nil && r.Body != http.NoBody {
		in = &countingBody{ReadCloser: r.Body}
		r.Body = in
	}
	var out edge.Outcome
	s.edge.Serve(rec, r, &out)
	if rec.code == 0 {
		// Nothing written: net/http answers 200, unless the client went
		// away first (the edge writes nothing to a closed request).
		rec.code, rec.took = http.StatusOK, time.Since(rec.start)
		if r.Context().Err() != nil {
			rec.code = statusClientClosed
		}
	}
	if out.App != nil {
		s.metrics.observe(out.App.Tenant, out.App.Name, rec.code, rec.took)
	}
	if s.access != nil {
		s.logAccess(r, rec, &out, in)
	}
}

// logAccess writes the access log line of an edge request.
func (s *Server) logAccess(r *http.Request, rec *statusRecorder, out *edge.Outcome, in *countingBody) {
	e := accesslog.Entry{Time: rec.start, RequestID: out.RequestID, Connector: out.Connector, Error: out.Error,
		Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(), Proto: r.Proto, Status: rec.code,
		TTFB: rec.took, Duration: time.Since(rec.start), BytesOut: rec.written, UserAgent: r.UserAgent()}
	if out.App != nil {
		e.Tenant, e.App = out.App.Tenant, out.App.Name
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.Client = ip
	}
	if in != nil {
		e.BytesIn = in.n.Load()
	}
	s.access.Log(&e)
}

// countingBody counts the bytes read of a request body (atomically: a
// relay's body writer may still be returning from its last read).
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// readAheadAbove is the request body size above which the edge reads the
// client's connection 64 KiB at a time (bench/RESULTS.md).
const readAheadAbove = 64 << 10

type batchConnKey struct{}

// withBatchConn puts a connection's BatchConn (under its TLS) in the
// context of its requests.
func withBatchConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if bc, ok := tc.NetConn().(*tunnel.BatchConn); ok {
			return context.WithValue(ctx, batchConnKey{}, bc)
		}
	}
	return ctx
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("http server", "message", string(p))
	return len(p), nil
}

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("cloud %s", s.settings.Name) }

// sourceLimit wraps the cloud's listener with the per-source connection
// cap (Config.MaxConnsPerSource).
func (s *Server) sourceLimit(ln net.Listener) net.Listener {
	l := newSourceLimitListener(ln, s.cfg.MaxConnsPerSource, s.log)
	s.connLimit.Store(l)
	return l
}
