package cloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/h2"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
	"github.com/sallyport/sallyport/internal/version"
)

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
	hs := &http.Server{
		Handler:           http.HandlerFunc(s.route),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(slogWriter{s.log}, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			// What the relay streams of one client connection may hold
			// beyond their first window (issue 14).
			ctx = tunnel.WithWindowBudget(ctx, tunnel.NewWindowBudget(tunnel.ClientConnWindowBudget, s.relayBudget))
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
			tunnel.AccessALPN: func(_ *http.Server, c *tls.Conn, _ http.Handler) {
				s.wg.Add(1)
				defer s.wg.Done()
				s.serveAccess(tctx, c)
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
	hln, err := s.listenHTTP()
	if err != nil {
		return err
	}
	httpPort := 0
	if hln != nil {
		httpPort = hln.Addr().(*net.TCPAddr).Port
	}
	if err := s.startACME(ln, httpPort); err != nil {
		if hln != nil {
			hln.Close()
		}
		return err
	}
	if s.acmeStop != nil {
		defer s.acmeStop()
	}
	if n := s.acmeName.Load(); n != nil {
		if err := n.manage(ctx); err != nil {
			return err
		}
	}
	if hln != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveHTTP(ctx, hln)
		}()
	}
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
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.beat(ctx)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.followChanges(ctx)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.announceInstances(ctx) // connectorinstances.go
	}()
	errc := make(chan error, 1)
	// Tunnels batch their writes (tunnel.BatchConn); other connections
	// write straight through it.
	// At most MaxHandshakes TLS handshakes at once (handshakes.go).
	hl := newHandshakeListener(tunnel.NewBatchListener(s.sourceLimit(ln)), tlsCfg, s.cfg.MaxHandshakes, s.log, s.events)
	s.handshakes.Store(hl)
	hl.start()
	defer hl.waitClosed()
	go func() { errc <- hs.Serve(hl) }()
	s.events.Event(eventlog.CloudStarted, fmt.Sprintf("The cloud service %s started, listening on %s", s.settings.Name, ln.Addr()), "version", version.Version)
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
	s.events.Event(eventlog.CloudStopped, "The cloud service stopped")
	return nil
}

// sourceLimit wraps the cloud's listener with the per-source connection
// cap (Config.MaxConnsPerSource).
func (s *Server) sourceLimit(ln net.Listener) net.Listener {
	l := newSourceLimitListener(ln, s.cfg.MaxConnsPerSource, s.log)
	s.connLimit.Store(l)
	return l
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("http server", "message", string(p))
	return len(p), nil
}
