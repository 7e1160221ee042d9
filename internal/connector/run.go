package connector

import (
	"context"
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

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Config is how a connector runs.
type Config struct {
	Dir string
	// Connections is the number of tunnel connections kept to the cloud. Default 2.
	Connections int
	// Version and Hostname are reported to the cloud.
	Version  string
	Hostname string
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts (jittered exponential). Defaults 500ms and 5s: a failed
	// attempt costs one TCP (and TLS) handshake, and a connector must be
	// back within seconds once the cloud is.
	MinBackoff, MaxBackoff time.Duration
	// BusyMaxBackoff bounds the wait after the cloud closed a connection
	// before its TLS handshake or did not finish the handshake in time (a
	// busy cloud): such failures grow the wait fourfold, up to this.
	// Default 60s (backoff.go).
	BusyMaxBackoff time.Duration
	// Tunnel tunes each tunnel connection; Tunnel.DrainTimeout (default
	// 30s) is the grace period for requests in flight when Run's context
	// ends (SIGTERM): no new request is taken meanwhile.
	Tunnel tunnel.ServerConfig
	// RenewCheckInterval is how often the certificate's remaining life is
	// checked (default 6h); it is renewed once less than a third remains.
	RenewCheckInterval time.Duration
	// MetricsListen is where /metrics, /healthz and /ready are served
	// ("" for nowhere). The command sets DefaultMetricsListen, on loopback.
	MetricsListen string
	// MetricsOptional makes a MetricsListen address that is taken a
	// warning instead of an error (the default address, not chosen by the
	// user).
	MetricsOptional bool
	// Proxy, when set, replaces the proxy of the state directory's
	// settings (or HTTPS_PROXY) for every connection to the cloud.
	Proxy *cloudlink.Proxy
	// TunnelVersion 1 offers the cloud only tunnel protocol version 1
	// (HTTP/2 for everything); 0 or 2 offers version 2 first.
	TunnelVersion int
	// Dial, if set, replaces the TCP dial to the cloud (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now, if set, replaces time.Now (tests).
	Now    func() time.Time
	Logger *slog.Logger
}

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Dir == "" {
		c.Dir = statedir.DefaultDir()
	}
	if c.Connections == 0 {
		c.Connections = 2
	}
	if c.Connections < 1 || c.Connections > 16 {
		return problem.Newf(400, "bad_config", "use a value from 1 to 16", "The number of tunnel connections %d is out of range", c.Connections)
	}
	if c.Tunnel.PingInterval <= 0 {
		c.Tunnel.PingInterval = 10 * time.Second // also keeps proxies from cutting idle tunnels
	}
	if c.Tunnel.DrainTimeout == 0 {
		c.Tunnel.DrainTimeout = 30 * time.Second
	}
	if c.RenewCheckInterval <= 0 {
		c.RenewCheckInterval = 6 * time.Hour
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.BusyMaxBackoff <= 0 {
		c.BusyMaxBackoff = time.Minute
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}

	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Connector is a running connector.
type Connector struct {
	cfg     Config
	st      atomic.Pointer[statedir.State] // replaced after a renewal
	log     *slog.Logger
	handler *handler

	events  *eventlog.Log // nil-safe
	metrics *metrics

	mu       sync.Mutex
	up       int
	protocol int       // tunnel protocol version of the tunnel that came up last
	lastUp   time.Time // when a tunnel last came up
	lastErr  string    // last connection error, for status.json

	statusKick chan struct{}                // asks statusLoop to write status.json now
	instKick   chan struct{}                // asks keepInstances to look at the instances again
	lists      map[string][]tunnel.Instance // the latest list of live instances from each instance, by its id (guarded by mu)
	slots      map[*slot]bool               // running tunnel slots (guarded by mu)
	refusal    error                        // set when the cloud refused this connector for good
	busyNoted  atomic.Bool                  // event 1210 written; cleared when a tunnel comes up
	stop       context.CancelFunc
}

// New loads the state directory and prepares a connector.
func New(cfg Config) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := statedir.Load(cfg.Dir)
	if err != nil {
		return nil, err
	}
	c := &Connector{cfg: cfg, log: cfg.Logger.With("connector_id", st.Trust.ConnectorID), statusKick: make(chan struct{}, 1), instKick: make(chan struct{}, 1), slots: map[*slot]bool{}, lists: map[string][]tunnel.Instance{}}
	if c.cfg.Dial == nil {
		// The state's proxy, looked up per dial: a state reloaded from
		// disk brings its proxy settings along.
		c.cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&cloudlink.Dialer{Proxy: c.State().Target.Proxy}).DialContext(ctx, network, addr)
		}
	}
	c.st.Store(c.adopt(st))
	c.metrics = newMetrics(c)
	ev, err := eventlog.Open(eventlog.Config{Path: filepath.Join(cfg.Dir, statedir.EventsFile), Source: "connector", Logger: c.log, Now: cfg.Now})
	if err != nil {
		c.log.Warn("the event log cannot be opened; events go to the process log only", "error", err.Error())
	}
	c.events = ev
	c.handler = newHandler(c)
	return c, nil
}

// Close releases the event log.
func (c *Connector) Close() error {
	if c.events == nil {
		return nil
	}
	return c.events.Close()
}

// State returns the loaded state directory.
func (c *Connector) State() *statedir.State { return c.st.Load() }

// TunnelsUp is the number of tunnel connections currently established.
func (c *Connector) TunnelsUp() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// Run keeps the tunnels up until ctx is done, then returns nil; or until
// the cloud refuses the connector for good (revoked, expired), returning
// that refusal.
func (c *Connector) Run(ctx context.Context) error {
	st := c.State()
	if err := st.CheckValidity(c.cfg.Now()); err != nil {
		if p, ok := problem.As(err); ok {
			switch p.Code {
			case "trust_expired":
				c.events.Event(eventlog.TrustExpired, statedir.ExpiredMessage, "expired_at", st.Leaf.NotAfter.UTC().Format(time.RFC3339))
			case "clock_skew":
				c.events.Event(eventlog.CertNotYetValid, p.Error())
			}
		}
		return err
	}
	var mln net.Listener
	if c.cfg.MetricsListen != "" {
		ln, err := listenMetrics(c.cfg.MetricsListen)
		switch {
		case err == nil:
			mln = ln
		case c.cfg.MetricsOptional:
			c.log.Warn("metrics are off: "+problem.Public(err).Error(), "address", c.cfg.MetricsListen)
		default:
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	c.stop = cancel
	c.mu.Unlock()
	var wg sync.WaitGroup
	if mln != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.serveMetrics(ctx, mln)
		}()
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		c.keepInstances(ctx) // the tunnels: to the cloud's name, and to each instance it lists
	}()
	go func() {
		defer wg.Done()
		c.renewLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		c.statusLoop(ctx)
	}()
	c.events.Event(eventlog.ConnectorStarted, fmt.Sprintf("The connector started: %d tunnel connection(s) to %s", c.cfg.Connections, st.Target.URL),
		"group", st.Trust.Group, "version", c.cfg.Version)
	<-ctx.Done()
	if c.TunnelsUp() > 0 && c.cfg.Tunnel.DrainTimeout > 0 {
		c.events.Event(eventlog.ConnectorDraining, fmt.Sprintf("The connector is draining: no new requests, requests in flight have up to %s to finish", c.cfg.Tunnel.DrainTimeout))
	}
	wg.Wait()
	c.events.Event(eventlog.ConnectorStopped, "The connector stopped")
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusal
}

// keepTunnel keeps one tunnel connection of a slot up until ctx is done:
// to the cloud's name (a bootstrap slot) or to one instance's advertise
// address (an instance slot, instances.go).
func (c *Connector) keepTunnel(ctx context.Context, sl *slot) {
	// bo sets the backoff (backoff.go) and counts a tunnel that closed
	// soon after it came up; dialFailures counts the failed connection
	// attempts in a row, for event 1203 at the first and every 10th (a
	// dropped tunnel must not push the first one to the tenth: issue 20).
	bo := c.newBackoff()
	dialFailures := 0
	for ctx.Err() == nil {
		conn, connected, err := c.dial(ctx, sl.addr)
		if err != nil {
			dialFailures++
			if ctx.Err() != nil {
				return
			}
			c.noteError(err)
			busy := cloudBusy(err, connected)
			d := bo.fail(busy)
			switch {
			case busy && c.busyNoted.CompareAndSwap(false, true):
				c.noteBusy(err, sl.name, d)
			case sl.instance != "":
				sl.run.dialFailed(c, err) // one event per instance, not per slot
			case dialFailures == 1 || dialFailures%10 == 0:
				c.connectFailed(err, sl.name, dialFailures)
			}
			sleep(ctx, d)
			continue
		}
		dialFailures = 0
		started, after := time.Now(), bo.failures()
		// The tunnel counts as up once the cloud has accepted the
		// certificate and says hello (a refused one never does).
		var accepted atomic.Bool
		protocol := 1
		if conn.ConnectionState().NegotiatedProtocol == tunnel.ALPN2 {
			protocol = 2
		}
		sctx := withSlot(ctx, sl)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(tunnel.HeaderApp) == "" {
				if r.URL.Path == tunnel.PathHello && accepted.CompareAndSwap(false, true) {
					c.slotUp(sl, +1)
					c.mu.Lock()
					c.protocol = protocol
					c.mu.Unlock()
					if sl.run != nil {
						sl.run.connected()
					}
					c.events.Event(eventlog.TunnelUp, "A tunnel connection to the cloud is up", "tunnel", sl.name, "after_failures", fmt.Sprint(after),
						"protocol", fmt.Sprint(protocol))
				}
				r = r.WithContext(sctx) // control messages learn their slot
			}
			c.handler.ServeHTTP(w, r)
		})
		if protocol == 2 {
			tunnel.ServeSession(ctx, conn, rawHandler{Handler: h, d: c.handler}, c.cfg.Tunnel)
		} else {
			tunnel.Serve(ctx, conn, h, c.cfg.Tunnel)
		}
		if accepted.Load() {
			c.slotUp(sl, -1)
		}
		if ctx.Err() != nil || c.refused() {
			return
		}
		if time.Since(started) > time.Minute {
			bo.reset() // it stayed up
		}
		d := bo.fail(false)
		c.metrics.reconnects.Inc()
		if sl.instance != "" {
			// An instance that stops is dropped quietly: event 1208 if it
			// cannot be reached again, 1207 when it leaves the list.
			c.log.Info("a tunnel connection to a cloud instance closed; reconnecting", "tunnel", sl.name, "instance", sl.instance, "address", sl.addr)
			sleep(ctx, d)
			continue
		}
		msg := "A tunnel connection to the cloud closed; reconnecting"
		if p := c.State().Target.Proxy; p != nil && p.Applies(c.State().Target.Host) {
			msg += fmt.Sprintf("; it goes through the proxy %s: if this repeats after quiet periods, the proxy cuts idle tunnels, so raise its idle timeout above a minute (the connector pings every %s)",
				p, c.cfg.Tunnel.PingInterval)
		}
		c.events.Event(eventlog.TunnelClosed, msg, "tunnel", sl.name, "lasted", time.Since(started).Round(time.Second).String())
		sleep(ctx, d)
	}
}

func (c *Connector) slotUp(sl *slot, d int) {
	c.mu.Lock()
	c.up += d
	sl.up += d
	if d > 0 {
		c.lastUp, c.lastErr = time.Now().UTC(), ""
		c.busyNoted.Store(false)
	}
	c.mu.Unlock()
	kick(c.statusKick)
	kick(c.instKick)
}

// kick wakes a loop waiting on ch without blocking.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dial opens a tunnel connection: to the cloud's name when addr is "",
// else to an instance's advertise address — with the same TLS name (the
// cloud's, for SNI and verification against the pinned CA), client
// certificate and outbound proxy. connected reports whether the TCP
// connection (through the proxy, if any) was made before a failure.
func (c *Connector) dial(ctx context.Context, addr string) (conn *tls.Conn, connected bool, err error) {
	c.reloadIfChanged()
	alpn := []string{tunnel.ALPN2, tunnel.ALPN}
	if c.cfg.TunnelVersion == 1 {
		alpn = alpn[1:]
	}
	id := c.State().Identity()
	if addr != "" {
		id.Target.Addr = addr
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := c.cfg.Dial(ctx, network, addr)
		connected = err == nil
		return raw, err
	}
	conn, err = cloudlink.DialIdentified(ctx, id, dial, alpn...)
	return conn, connected, err
}

// reloadIfChanged picks up a state directory changed by another process
// ('sallyport connector renew' or 'register' while this one runs).
func (c *Connector) reloadIfChanged() {
	st := c.State()
	fi, err := os.Stat(filepath.Join(st.Dir, statedir.TrustFile))
	if err != nil || !fi.ModTime().After(st.LoadedAt) {
		return
	}
	next, err := statedir.Load(st.Dir)
	if err != nil {
		c.log.Warn("the state directory changed but cannot be loaded; keeping the certificate in use", "error", problem.Public(err).Error())
		return
	}
	if next.Trust.Serial != st.Trust.Serial {
		c.log.Info("using the certificate from the state directory", "serial", next.Trust.Serial, "source", next.Trust.Source)
	}
	c.st.CompareAndSwap(st, c.adopt(next))
}

// adopt applies the run's own settings (a --proxy given on the command
// line) to a state loaded from disk.
func (c *Connector) adopt(st *statedir.State) *statedir.State {
	if c.cfg.Proxy != nil {
		st.Target.Proxy = c.cfg.Proxy
	}
	return st
}

// refuse records a permanent refusal from the cloud. It stops Run once
// the connection that carried it ends (the cloud closes it), so that the
// answer to the refusal still goes out.
func (c *Connector) refuse(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refusal == nil {
		c.refusal = err
	}
}

// refused reports a refusal and, if there is one, stops every tunnel.
func (c *Connector) refused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refusal != nil && c.stop != nil {
		c.stop()
	}
	return c.refusal != nil
}

// errRefused marks refusal problems.
var errRefused = errors.New("refused by the cloud")

// noteBusy records, once until a tunnel is up again, that the cloud is
// busy with handshakes and the connector waits longer (event 1210).
func (c *Connector) noteBusy(err error, slot string, wait time.Duration) {
	p := problem.Public(err)
	c.events.Event(eventlog.CloudBusyBackoff,
		fmt.Sprintf("The cloud is busy: %s; the connector waits longer between attempts (now %s, at most %s) so that connectors reconnecting together do not overload it", p.Message, wait.Round(100*time.Millisecond), c.cfg.BusyMaxBackoff),
		"tunnel", slot, "code", p.Code, "wait", wait.Round(100*time.Millisecond).String())
}

// connectFailed records why a tunnel could not be set up.
func (c *Connector) connectFailed(err error, slot string, failures int) {
	p := problem.Public(err)
	switch p.Code {
	case "tls_inspection":
		c.events.Event(eventlog.TLSInspected, p.Error(), "tunnel", slot)
	case "clock_skew":
		c.events.Event(eventlog.CertNotYetValid, p.Error(), "tunnel", slot)
	default:
		c.events.Event(eventlog.CloudUnreachable, "The connector failed to download its configuration: "+p.Error(),
			"tunnel", slot, "attempts", fmt.Sprint(failures), "code", p.Code)
	}
}
