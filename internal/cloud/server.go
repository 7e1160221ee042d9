package cloud

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/accesslog"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/identity"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tunnel"
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
	// ACMEEmail, when set, turns ACME on: the hosts applications are
	// published at get certificates from ACMECA (default Let's Encrypt),
	// on demand (acme.go, docs/certificates.md). ACMECARootFile is a PEM
	// root to trust for the ACME server's own HTTPS (a private CA's).
	ACMEEmail, ACMECA, ACMECARootFile string
	// HTTPListen is the plain HTTP address with ACME on (default ":80"):
	// HTTP-01 answers and a 308 to https, nothing else.
	HTTPListen string
	// acmeOnly, when set, is the one ACME challenge type offered
	// ("http-01" or "tls-alpn-01"; tests: each checked alone).
	acmeOnly string
	// acmeRenewCheck and acmeRenewalRatio, when set, are how often
	// certmagic checks for renewals and OCSP staples, and the part of a
	// certificate's lifetime left when it is renewed (tests: a renewal
	// within seconds).
	acmeRenewCheck   time.Duration
	acmeRenewalRatio float64
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
	// KeyCheckInterval is how often the maintain loop looks whether the
	// tenants' signing keys are due for rotation or retirement (judged on
	// Now): far less than the day a new key is published ahead. Default 1
	// minute (test-only setting; at least the route refresh interval).
	KeyCheckInterval time.Duration
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
	// MaxHandshakes is the most TLS handshakes in progress at once on the
	// cloud's port; a connection that finds none free within 250 ms is
	// closed before its handshake (handshakes.go). Default 64 per CPU
	// (GOMAXPROCS).
	MaxHandshakes int
	// ConnectorLimit is the most requests one connector serves at once;
	// beyond it requests go to other connectors, or get 503. Default 1000.
	ConnectorLimit int
	// EdgeLimits bound request sizes and rates at the edge.
	EdgeLimits edge.Limits
	// AccessRate is how many private access streams one user may open a
	// second (a burst of twice that, at least 40). Default 20.
	AccessRate float64
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
	// Advertise is the HOST:PORT at which connectors reach this instance
	// directly, when several instances share one PostgreSQL store
	// (docs/scale-out.md); "" for none (a single instance).
	Advertise string
	// Store, when set, is the store's address in place of the one
	// cloud.json names ("sqlite:" or postgres://USER@HOST:PORT/DB without
	// a password); StorePasswordFile, when set, replaces cloud.json's
	// store_password_file.
	Store             string
	StorePasswordFile string
	// InstanceBeat is how often this instance writes its heartbeat in the
	// store and reads the others'; an instance that missed 3 is gone.
	// Default 2s (test-only setting).
	InstanceBeat time.Duration
	// ChangeDebounce is how long a change notified by another instance
	// (PostgreSQL) waits for more before the routing table is reloaded.
	// Default 200ms (test-only setting).
	ChangeDebounce time.Duration
	// StoreWait is how long New keeps retrying a store it cannot reach
	// (PostgreSQL down or not up yet) before it gives up. Default 0: no
	// retry.
	StoreWait time.Duration
	Tunnel    tunnel.ClientConfig
	Logger    *slog.Logger
	Now       func() time.Time
}

// Validate fills defaults.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return problem.New(400, "data_dir", "give one with --data-dir", "No data directory was given")
	}
	if c.Listen == "" {
		c.Listen = ":443"
	}
	if (c.EdgeCertFile == "") != (c.EdgeKeyFile == "") {
		return problem.New(400, "edge_cert", "give both --edge-cert and --edge-key, or neither", "Only one of the edge certificate and key files was given")
	}
	if err := c.checkACME(); err != nil {
		return err
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
	if c.KeyCheckInterval <= 0 {
		c.KeyCheckInterval = time.Minute
	}
	if c.MaxTunnelsPerConnector <= 0 {
		c.MaxTunnelsPerConnector = 20
	}
	if c.MaxConnsPerSource <= 0 {
		c.MaxConnsPerSource = 1024
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = DefaultMaxHandshakes()
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
	if err := validateAdvertise(c.Advertise); err != nil {
		return err
	}
	if c.InstanceBeat <= 0 {
		c.InstanceBeat = DefaultInstanceBeat
	}
	if c.ChangeDebounce <= 0 {
		c.ChangeDebounce = 200 * time.Millisecond
	}
	if c.StoreWait < 0 {
		return problem.Newf(400, "bad_config", "give 0 (no retry) or a duration such as 5m", "The store wait %s is negative", c.StoreWait)
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
	settings datadir.Settings
	log      *slog.Logger
	store    store.Store
	ca       *pki.CA
	certs    *serverCerts     // the server certificate for the cloud's name and *.name, and the CRL (servercert.go)
	edgeCert *tls.Certificate // optional, configured
	acme     *acmeManager     // with --acme-email (acme.go), set before serving
	acmeStop func()           // stops the ACME certificate cache's maintenance
	resolver txtResolver      // where domain proofs are looked up
	// acmeName is the cloud name's ACME certificate (acmename.go), with
	// acme; atomic: the route table's refresh reads it from any goroutine.
	acmeName atomic.Pointer[acmeName]

	routes    atomic.Pointer[routeTable]
	refreshMu sync.Mutex
	registry  *registry
	edge      *edge.Handler
	api       http.Handler
	signin    *signinGuard // sign-in and registration limits (signin.go)
	deviceMu  sync.Mutex   // one change of a device grant or refresh token at a time (device.go)
	caCache   sync.Map     // tenant id → *pki.CA

	wg           sync.WaitGroup // goroutines the server owns
	edgeInFlight atomic.Int64   // edge requests being served, for a graceful stop
	metrics      *metrics
	appErrors    errorLog          // recent failed requests per application
	requests     requestIndex      // failed requests by request id, per tenant
	history      history           // the last hour per application and connector, for the overview (history.go)
	failureLogs  eventlog.Throttle // event 2700: one per application and code per second
	events       *eventlog.Log
	releasePub   ed25519.PublicKey                   // the release key connectors pin
	access       *accesslog.Logger                   // nil without --access-log
	connLimit    atomic.Pointer[sourceLimitListener] // set by Serve
	handshakes   atomic.Pointer[handshakeListener]   // set by Serve
	tunnelChecks atomic.Int64                        // passes of checkTunnels, for tests
	identity     *identity.Service                   // tenants' signing keys, assertions, JWKS
	keyPasses    atomic.Int64                        // passes of the signing keys' rotation, for tests
	sessions     sessionCache                        // sessions read from the store (preauth.go)
	refusals     eventlog.Throttle                   // event 2925: one per user and application per second
	totp         totpGuard                           // second factor codes used (mfa.go)
	oidc         oidcState                           // tenants' OpenID providers (oidc.go)
	inst         instances                           // the other instances on the store (instances.go)
	changes      chan struct{}                       // changes made elsewhere, for the refresher (changes.go)
	feed         feedState                           // the store's change feed (changes.go)
	accessLimits accessLimits                        // private access: per user rate, streams per user and tenant (accessnet.go)
	openNet      netOpener                           // opens a private access stream on a connector (accessnet.go)
}

// New opens the data directory and prepares a server.
func New(cfg Config) (*Server, error) { return NewContext(context.Background(), cfg) }

// NewContext is New, giving up waiting for the store (Config.StoreWait)
// when ctx is done.
func NewContext(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	settings, err := datadir.LoadSettings(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectorCertLifetime > 0 {
		settings.ConnectorCertLifetime = datadir.Duration(cfg.ConnectorCertLifetime)
	}
	if cfg.Store != "" {
		if err := datadir.CheckStoreURL(cfg.Store); err != nil {
			return nil, err
		}
		settings.Store = cfg.Store
		if settings.Store == "sqlite:" {
			settings.Store = ""
		}
	}
	if cfg.StorePasswordFile != "" {
		settings.StorePasswordFile = cfg.StorePasswordFile
	}
	ca, err := loadCloudCA(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, settings: settings, log: cfg.Logger, ca: ca, resolver: txtResolver{addr: cfg.DNSResolver},
		changes: make(chan struct{}, 1)}
	s.inst.self = store.Instance{ID: newInstanceID(), Advertise: cfg.Advertise, StartedAt: time.Now().UTC()}
	s.inst.seen = map[string]*seenInstance{}
	s.totp.claim = s.claimTOTPStep
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
	if s.releasePub, err = datadir.LoadReleaseKey(cfg.DataDir); err != nil {
		return nil, err
	}
	if s.events, err = eventlog.Open(eventlog.Config{Path: filepath.Join(cfg.DataDir, datadir.EventsFile), Source: "cloud", Logger: s.log, Now: cfg.Now}); err != nil {
		return nil, problem.Newf(400, "data_dir", "check the data directory's permissions", "The cloud's event log cannot be opened (%v)", err)
	}
	st, wrapped, err := s.openStore(ctx)
	if err != nil {
		s.events.Close()
		return nil, err
	}
	s.store = st
	s.metrics = newMetrics(s)
	if wrapped > 0 {
		s.events.Event(eventlog.StoreKeysWrapped, fmt.Sprintf("The store's %d private keys were wrapped with the new key-encryption key %s: back that file up apart from the store", wrapped, filepath.Join(cfg.DataDir, datadir.KEKFile)),
			"keys", fmt.Sprint(wrapped))
	}
	if s.identity, err = identity.New(identity.Config{Store: st, CloudName: settings.Name, Port: s.urlPort(), Events: s.events, Now: cfg.Now}); err != nil {
		s.events.Close()
		st.Close()
		return nil, err
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
	s.accessLimits.perSecond = cfg.AccessRate
	s.openNet = s.openOnConnector
	s.registry.maxTunnels = cfg.MaxTunnelsPerConnector
	t, err := s.loadRoutes(context.Background())
	if err != nil {
		s.Close()
		return nil, err
	}
	s.routes.Store(t)
	s.edge = edge.New(edge.Config{Routes: s, Dispatcher: s.registry, Logger: s.log, TimeoutOverride: cfg.BackendTimeoutOverride, Limits: cfg.EdgeLimits,
		OnError: s.onEdgeError, Gate: s})
	s.api = s.apiHandler()
	return s, nil
}

func loadCloudCA(dir string) (*pki.CA, error) {
	certPEM, err1 := os.ReadFile(filepath.Join(dir, datadir.CACertFile))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, datadir.CAKeyFile))
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

// Identity returns the service that mints the identity assertions sent to
// backends (the edge's gate will call it) and publishes the tenants' keys.
func (s *Server) Identity() *identity.Service { return s.identity }

// Store returns the server's store.
func (s *Server) Store() store.Store { return s.store }

// Refresh reloads the route table now (after changes made directly in the store).
func (s *Server) Refresh(ctx context.Context) error { return s.refreshRoutes(ctx) }

func (s *Server) now() time.Time { return s.cfg.Now() }

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

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("cloud %s", s.settings.Name) }
