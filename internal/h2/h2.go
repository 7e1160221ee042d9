// Package h2 is the one place that uses golang.org/x/net/http2: HTTP/2
// served on a connection or by an http.Server, HTTP/2 client connections
// on a connection made elsewhere, and which of their errors mean that a
// request never left (so that it may go on another connection).
//
// Keeping x/net/http2 behind these few functions means that its
// deprecated APIs, its option names and its error texts are met in one
// file: a change of x/net (or its move into net/http) is one file's
// change. The package imports no package of this module.
package h2

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http2"
)

// ServerConfig is what an HTTP/2 server may be told; zero values are
// x/net/http2's defaults.
type ServerConfig struct {
	// MaxConcurrentStreams bounds the streams a client may have open at
	// once on one connection.
	MaxConcurrentStreams uint32
	// MaxReadFrameSize is the largest frame the server reads.
	MaxReadFrameSize uint32
	// MaxUploadBufferPerConnection and MaxUploadBufferPerStream are the
	// flow-control windows: how many bytes of request bodies the client
	// may send before the handlers read them.
	MaxUploadBufferPerConnection int32
	MaxUploadBufferPerStream     int32
	// ReadIdleTimeout is how long a connection may be silent before the
	// server sends a PING; PingTimeout how long the PING may go
	// unanswered before the connection is closed. Zero: no PINGs.
	ReadIdleTimeout, PingTimeout time.Duration
	// IdleTimeout closes a connection with no open stream for this long.
	IdleTimeout time.Duration
}

// Server is an HTTP/2 server. Its methods may be called at once.
type Server struct{ srv *http2.Server }

// NewServer returns a server with cfg.
func NewServer(cfg ServerConfig) *Server {
	return &Server{srv: &http2.Server{
		MaxConcurrentStreams:         cfg.MaxConcurrentStreams,
		MaxReadFrameSize:             cfg.MaxReadFrameSize,
		MaxUploadBufferPerConnection: cfg.MaxUploadBufferPerConnection,
		MaxUploadBufferPerStream:     cfg.MaxUploadBufferPerStream,
		ReadIdleTimeout:              cfg.ReadIdleTimeout,
		PingTimeout:                  cfg.PingTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
	}}
}

// Configure makes hs serve HTTP/2 with s on its TLS connections (ALPN h2),
// and makes hs.Shutdown send GOAWAY on every connection s serves, those of
// ServeConn with hs as base included.
func (s *Server) Configure(hs *http.Server) error { return http2.ConfigureServer(hs, s.srv) }

// ServeConn serves HTTP/2 with h on conn, a connection whose first bytes
// are the client's preface, until the connection ends. ctx is the
// requests' base context; base, if not nil, gives the settings that
// http.Server has too (MaxHeaderBytes, ErrorLog, ...). It returns once
// the connection has ended.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn, h http.Handler, base *http.Server) {
	s.srv.ServeConn(conn, &http2.ServeConnOpts{Context: ctx, Handler: h, BaseConfig: base})
}

// ConfigureServer is NewServer(cfg).Configure(hs).
func ConfigureServer(hs *http.Server, cfg ServerConfig) error {
	return NewServer(cfg).Configure(hs)
}

// ServeConn is NewServer(cfg).ServeConn(ctx, conn, h, base).
func ServeConn(ctx context.Context, conn net.Conn, h http.Handler, base *http.Server, cfg ServerConfig) {
	NewServer(cfg).ServeConn(ctx, conn, h, base)
}

// ClientConfig is what an HTTP/2 client connection may be told; zero
// values are x/net/http2's defaults.
type ClientConfig struct {
	// ReadIdleTimeout is how long the connection may be silent before
	// the client sends a PING; PingTimeout how long the PING may go
	// unanswered before the connection is closed. Zero: no PINGs.
	ReadIdleTimeout, PingTimeout time.Duration
	// MaxReadFrameSize is the largest frame the client reads.
	MaxReadFrameSize uint32
	// MaxHeaderListSize bounds the response heads the client accepts.
	MaxHeaderListSize uint32
	// MaxEncoderHeaderTableSize bounds the HPACK table of request heads
	// (1: none in effect).
	MaxEncoderHeaderTableSize uint32
	// DisableCompression: no "Accept-Encoding: gzip" is added to
	// requests, and response bodies are passed on as they come.
	DisableCompression bool
	// OnUnusable, if set, is called (from the connection's goroutines)
	// once the connection can take no new request: the server sent
	// GOAWAY, or the connection ended. x/net calls it just before it
	// records a GOAWAY, so Closing may still be false for a moment.
	OnUnusable func()
}

// ClientConn is an HTTP/2 client connection. Its methods may be called
// at once, RoundTrip for many requests at a time.
type ClientConn struct{ cc *http2.ClientConn }

// NewClientConn starts an HTTP/2 client connection on conn, which it owns
// from now on.
func NewClientConn(conn net.Conn, cfg ClientConfig) (*ClientConn, error) {
	t := &http2.Transport{
		ReadIdleTimeout:           cfg.ReadIdleTimeout,
		PingTimeout:               cfg.PingTimeout,
		MaxReadFrameSize:          cfg.MaxReadFrameSize,
		MaxHeaderListSize:         cfg.MaxHeaderListSize,
		MaxEncoderHeaderTableSize: cfg.MaxEncoderHeaderTableSize,
		DisableCompression:        cfg.DisableCompression,
	}
	if cfg.OnUnusable != nil {
		// The transport tells its pool when a connection must not be used
		// any more; this pool only listens.
		t.ConnPool = listeningPool{cfg.OnUnusable}
	}
	cc, err := t.NewClientConn(conn)
	if err != nil {
		return nil, err
	}
	return &ClientConn{cc: cc}, nil
}

// listeningPool is the connection pool of a ClientConn's transport: it is
// never asked for connections (RoundTrip goes to the ClientConn itself),
// but is told when the connection goes bad.
type listeningPool struct{ unusable func() }

func (listeningPool) GetClientConn(*http.Request, string) (*http2.ClientConn, error) {
	return nil, errors.New("h2: no connection pool")
}

func (p listeningPool) MarkDead(*http2.ClientConn) { p.unusable() }

// RoundTrip sends req on the connection and returns its response.
func (c *ClientConn) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.cc.RoundTrip(req)
}

// Ping sends a PING and waits for its answer.
func (c *ClientConn) Ping(ctx context.Context) error { return c.cc.Ping(ctx) }

// Close closes the connection at once; requests in flight fail.
func (c *ClientConn) Close() error { return c.cc.Close() }

// Closing reports whether the connection is closed or going to close (no
// new request may start on it).
func (c *ClientConn) Closing() bool {
	st := c.cc.State()
	return st.Closed || st.Closing
}

// NotSent reports whether err, from a ClientConn's RoundTrip, means that
// the request never left this end, so that it may be sent on another
// connection whatever its method: the server refused the stream
// (REFUSED_STREAM), or the connection could take no new stream (closed,
// told to go away before the stream was sent).
//
// x/net/http2 retries the same errors itself inside its own pool
// (canRetryError), but exports neither that function nor the errors
// other than StreamError: those are unexported errors.New values
// (transport_common.go), so their texts are matched here, and
// TestNotSent produces each from a real connection, so that a change of
// x/net's wording fails that test rather than sending a request twice
// or never.
func NotSent(err error) bool {
	if err == nil {
		return false
	}
	var se http2.StreamError
	if errors.As(err, &se) && se.Code == http2.ErrCodeRefusedStream {
		return true
	}
	msg := err.Error()
	for _, text := range notSentTexts {
		if strings.Contains(msg, text) {
			return true
		}
	}
	return false
}

// notSentTexts are the messages of x/net/http2's errors that mean the
// request was not sent (x/net v0.62, transport_common.go). TestNotSent
// makes each but errClientConnClosed on a real connection: that one comes
// from a body writer waiting for window on a closed connection, whose
// stream has by then failed with the connection's own error; it is kept
// as x/net's retry logic and this package's callers had it.
var notSentTexts = []string{
	"http2: client conn not usable",                               // errClientConnUnusable: closed or draining before the stream started
	"http2: client conn is closed",                                // errClientConnClosed
	"http2: client conn could not be established",                 // errClientConnNotEstablished: closed before any stream
	"http2: Transport received Server's graceful shutdown GOAWAY", // errClientConnGotGoAway: the stream was above GOAWAY's last id
}
