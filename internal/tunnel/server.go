package tunnel

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/h2"
)

// ServerConfig tunes the connector's side of a tunnel connection.
type ServerConfig struct {
	// PingInterval is how long the connection may be silent before the
	// connector sends a PING. Default 10s.
	PingInterval time.Duration
	// PingTimeout is how long a PING may go unanswered before the
	// connection is closed. Default 5s.
	PingTimeout time.Duration
	// MaxConcurrentStreams caps the streams the cloud may open at once on
	// this connection. Default 1000.
	MaxConcurrentStreams uint32
	// DrainTimeout is how long streams in flight may go on once Serve's
	// context is done (graceful drain: the cloud is told with GOAWAY to
	// open no new stream). Zero closes the connection at once.
	DrainTimeout time.Duration
	// UDPIdleTimeout ends a raw udp stream that carried no datagram either
	// way for this long. Default DefaultUDPIdleTimeout (60s).
	UDPIdleTimeout time.Duration
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.PingInterval <= 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 5 * time.Second
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = 1000
	}
	return c
}

// Window and frame sizes for both ends: large enough that one stream can
// fill a fast link, bounded so one slow reader cannot hold much memory.
const (
	// 64 KiB frames: big enough for throughput, and the size x/net's
	// client gives the body buffer of every stream of unknown length
	// (each upgraded WebSocket keeps one for its whole life): 1 MiB frames
	// cost the cloud ~0.5 MB per open WebSocket (bench/RESULTS.md).
	maxFrameSize       = 64 << 10
	connWindow         = 16 << 20
	streamWindow       = 4 << 20
	maxHeaderListBytes = 1 << 20
)

// Serve serves HTTP/2 with h on conn, a connection the connector dialled,
// until the connection ends or ctx is done. When ctx is done it drains:
// GOAWAY tells the cloud to open no new stream, streams in flight go on
// for up to cfg.DrainTimeout, then the connection closes. It returns only
// after every handler it started has returned. If conn is a *tls.Conn over
// a BatchConn, its writes are batched from now on.
func Serve(ctx context.Context, conn net.Conn, h http.Handler, cfg ServerConfig) {
	cfg = cfg.withDefaults()
	EnableBatching(conn)
	serveH2(ctx, conn, h, cfg, true)
}

// serveH2 is Serve without the defaults; pings is false on stream 0 of a
// Session, which has keepalives of its own.
func serveH2(ctx context.Context, conn net.Conn, h http.Handler, cfg ServerConfig, pings bool) {
	h2cfg := h2.ServerConfig{
		MaxConcurrentStreams:         cfg.MaxConcurrentStreams,
		MaxReadFrameSize:             maxFrameSize,
		MaxUploadBufferPerConnection: connWindow,
		MaxUploadBufferPerStream:     streamWindow,
	}
	if pings {
		h2cfg.ReadIdleTimeout, h2cfg.PingTimeout = cfg.PingInterval, cfg.PingTimeout
	}
	srv := h2.NewServer(h2cfg)
	base := &http.Server{MaxHeaderBytes: maxHeaderListBytes}
	// base.Shutdown sends GOAWAY on conn.
	if err := srv.Configure(base); err != nil {
		conn.Close()
		return
	}
	var handlers sync.WaitGroup
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		h.ServeHTTP(w, r)
	})
	served := make(chan struct{})
	var stopper sync.WaitGroup
	stopper.Add(1)
	go func() {
		defer stopper.Done()
		select {
		case <-served:
			return
		case <-ctx.Done():
		}
		base.Shutdown(context.Background()) // GOAWAY on this connection
		if cfg.DrainTimeout > 0 {
			t := time.NewTimer(cfg.DrainTimeout)
			defer t.Stop()
			select {
			case <-served:
			case <-t.C:
			}
		}
		conn.Close()
	}()
	// Streams outlive ctx while draining; closing the connection ends them.
	srv.ServeConn(context.WithoutCancel(ctx), conn, counted, base)
	close(served)
	conn.Close()
	stopper.Wait()
	handlers.Wait()
}
