package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/h2"
	"github.com/sallyport/sallyport/internal/tunnel/mux"
)

// ClientConfig tunes the cloud's side of a tunnel connection.
type ClientConfig struct {
	// PingInterval is how long the connection may be silent before the
	// cloud sends a PING. Default 10s.
	PingInterval time.Duration
	// PingTimeout is how long a PING may go unanswered before the
	// connection is closed. Default 5s.
	PingTimeout time.Duration
	// ResponseLimits are the limits connectors apply to their backends'
	// response heads (default DefaultResponseLimits); the cloud takes
	// their Relayed() limits from a connector, so that even a connector
	// that does not hold to them costs the cloud no more.
	ResponseLimits ResponseLimits
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.PingInterval <= 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 5 * time.Second
	}
	return c
}

// Client is the cloud's end of one tunnel connection: an HTTP/2 client
// connection over a connection the connector dialled.
type Client struct {
	cc       *h2.ClientConn
	conn     *watchedConn
	inFlight atomic.Int64
	// unusable is set once the connection can take no new request: closed,
	// or told by the connector to drain (GOAWAY). Available reads it
	// without taking the HTTP/2 connection's locks (it is asked for every
	// request the cloud routes).
	unusable atomic.Bool
	// noRelayUpgrade is set once the connector refused an upgrade relay
	// stream as unknown (an older version 2 connector).
	noRelayUpgrade atomic.Bool

	// Version 2 (ALPN2): the session whose stream 0 carries cc, and the
	// idle relay streams for requests.
	sess   *mux.Session
	relays relays

	// limits bound the response heads read from the connector.
	limits ResponseLimits
	// openWindow is set once the connector said it honours the window of
	// a relay stream's open message (Hello.RelayWindow).
	openWindow atomic.Bool
}

// UseOpenWindows opens relay streams with a small receive window from now
// on (RelayInitialWindow, growing as they are read): the connector said in
// its Hello that it honours OpenMessage.Window.
func (c *Client) UseOpenWindows() { c.openWindow.Store(true) }

type windowBudgetKey struct{}

// WithWindowBudget returns ctx whose requests' relay streams take their
// window growth from b (the cloud gives each client connection one).
func WithWindowBudget(ctx context.Context, b *mux.WindowBudget) context.Context {
	return context.WithValue(ctx, windowBudgetKey{}, b)
}

// WindowBudgetOf returns the budget of WithWindowBudget, or nil.
func WindowBudgetOf(ctx context.Context) *mux.WindowBudget {
	b, _ := ctx.Value(windowBudgetKey{}).(*mux.WindowBudget)
	return b
}

// NewClient starts an HTTP/2 client connection on conn. The Client owns
// conn from now on. If conn is a *tls.Conn over a BatchConn, its writes
// are batched from now on.
func NewClient(conn net.Conn, cfg ClientConfig) (*Client, error) {
	cfg = cfg.withDefaults()
	c := &Client{limits: cfg.ResponseLimits.Relayed()}
	h2cfg := h2.ClientConfig{
		ReadIdleTimeout:    cfg.PingInterval,
		PingTimeout:        cfg.PingTimeout,
		MaxReadFrameSize:   maxFrameSize,
		MaxHeaderListSize:  cfg.ResponseLimits.Relayed().HeaderListSize(),
		DisableCompression: true, // a proxy passes encodings through untouched
		// No HPACK dynamic table for requests: every request carries a
		// new request id, which would be inserted and evict an older
		// entry each time (≈ 4 % of the CPU of a small request, in map
		// hashing and stack growth).
		MaxEncoderHeaderTableSize: 1,
		// Told when the connection must not be used any more (GOAWAY
		// received, read loop ended).
		OnUnusable: func() {
			c.unusable.Store(true)
			c.relays.closeAll() // a draining connector waits for its streams to end
		},
	}
	EnableBatching(conn)
	h2conn := conn
	if tc, ok := conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == ALPN2 {
		c.sess = mux.NewSession(conn, true, mux.SessionConfig{PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout})
		h2conn = c.sess.Stream0()
		h2cfg.ReadIdleTimeout = 0 // the session pings
	}
	c.conn = &watchedConn{Conn: h2conn, done: make(chan struct{}), closed: &c.unusable}
	cc, err := h2.NewClientConn(c.conn, h2cfg)
	if err != nil {
		conn.Close()
		if c.sess != nil {
			c.sess.Close()
		}
		return nil, err
	}
	c.cc = cc
	return c, nil
}

// Done is closed once the connection is closed, for whatever reason. On
// version 2 that is the session's end: relayed requests may go on after
// stream 0 ended (a connector draining).
func (c *Client) Done() <-chan struct{} {
	if c.sess != nil {
		return c.sess.Done()
	}
	return c.conn.done
}

// Version is the tunnel protocol version of the connection: 1 or 2.
func (c *Client) Version() int {
	if c.sess != nil {
		return 2
	}
	return 1
}

// Available reports whether new requests may be sent: the connection is
// open and the connector has not asked to drain it (GOAWAY).
func (c *Client) Available() bool { return !c.unusable.Load() }

// recheck looks at the connection's state after a request failed without
// being sent, in case it became unusable in a way the transport does not
// report to its pool.
func (c *Client) recheck() {
	if c.cc.Closing() {
		c.unusable.Store(true)
	}
}

// Close closes the connection at once; streams in flight fail.
func (c *Client) Close() error {
	c.unusable.Store(true)
	c.relays.closeAll()
	err := c.cc.Close()
	c.conn.Close()
	if c.sess != nil {
		c.sess.Close()
	}
	return err
}

// Ping sends a PING and waits for its answer.
func (c *Client) Ping(ctx context.Context) error {
	if c.sess != nil {
		return c.sess.Ping(ctx)
	}
	return c.cc.Ping(ctx)
}

// InFlight is the number of requests sent on this connection whose
// response body has not been closed yet.
func (c *Client) InFlight() int64 { return c.inFlight.Load() }

// RemoteAddr is the connector's address as seen by the cloud.
func (c *Client) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// RoundTrip sends req to the connector as one stream. A request carrying
// "Connection: Upgrade" is sent as an upgrade stream; if the backend
// switches protocols, the response is a 101 whose Body is an
// io.ReadWriteCloser joined to the backend's upgraded connection, which
// outlives req's context: only closing the Body ends it (so that the edge
// can let go of the request that asked for it).
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	c.inFlight.Add(1)
	var (
		resp *http.Response
		err  error
	)
	if proto := UpgradeProtocol(req.Header); proto != "" {
		app := req.Header.Get(HeaderApp)
		if c.sess != nil && app != "" && !c.noRelayUpgrade.Load() {
			resp, err = c.roundTripRelayUpgrade(req, app, proto)
			if errors.Is(err, errNoRelayUpgrade) {
				// An older connector: upgrades go on stream 0, as in version 1.
				c.noRelayUpgrade.Store(true)
				resp, err = c.roundTripUpgrade(req, proto)
			}
		} else {
			resp, err = c.roundTripUpgrade(req, proto)
		}
	} else if app := req.Header.Get(HeaderApp); c.sess != nil && app != "" && relayable(req) {
		resp, err = c.roundTripRelay(req, app)
	} else {
		resp, err = c.roundTripH2(req)
	}
	if err != nil {
		c.inFlight.Add(-1)
		if NotSent(err) {
			c.recheck()
		}
		return nil, err
	}
	cb := &countedBody{ReadCloser: resp.Body, c: c}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = UpgradedConn(rw, cb.Close)
	} else {
		resp.Body = cb
	}
	return resp, nil
}

// roundTripH2 sends req as an HTTP/2 stream (stream 0 on version 2): the
// response head is bounded by the HTTP/2 header list size the cloud
// announced, and must hold to c.limits.
func (c *Client) roundTripH2(req *http.Request) (*http.Response, error) {
	resp, err := c.cc.RoundTrip(req)
	if err != nil {
		if IsHeadersTooLarge(err) && !errors.Is(err, ErrResponseHeadersTooLarge) {
			err = fmt.Errorf("%w: %w", ErrResponseHeadersTooLarge, err)
		}
		return nil, err
	}
	if err := CheckResponseHeader(resp.Header, c.limits); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

func (c *Client) roundTripUpgrade(req *http.Request, proto string) (*http.Response, error) {
	pr, pw := io.Pipe()
	// The stream outlives req's context once switched (see RoundTrip):
	// until then, req's context ends it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(req.Context()))
	stop := context.AfterFunc(req.Context(), cancel)
	out := req.Clone(ctx)
	out.Header.Del("Connection")
	out.Header.Del("Upgrade")
	out.Header.Set(HeaderUpgrade, proto)
	out.Body = pr
	out.ContentLength = -1
	resp, err := c.roundTripH2(out)
	if err != nil {
		stop()
		cancel()
		pw.CloseWithError(err)
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.EqualFold(resp.Header.Get(HeaderUpgrade), proto) {
		// The backend did not switch protocols: an ordinary answer, still
		// bound to req's context.
		pw.Close()
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { stop(); cancel() }}
		return resp, nil
	}
	stop()
	resp.Header.Del(HeaderUpgrade)
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", proto)
	resp.StatusCode = http.StatusSwitchingProtocols
	resp.Status = "101 Switching Protocols"
	// Look like the HTTP/1.1 101 the backend sent, as net/http's own
	// transport makes it: a 101 has no body (what follows is the upgraded
	// connection). With the stream's HTTP/2.0 and unknown length,
	// httputil.ReverseProxy would write "HTTP/2.0 101" and add
	// "Connection: close", which WebSocket clients refuse.
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	resp.ContentLength = 0
	resp.Body = &upgradedBody{r: resp.Body, w: pw, cancel: cancel}
	return resp, nil
}

// cancelOnClose runs cancel once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
	once   sync.Once
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.cancel)
	return err
}

// UpgradeProtocol returns the Upgrade protocol of a message that asks for
// one (Connection names upgrade), or "".
func UpgradeProtocol(h http.Header) string {
	for _, v := range h.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// upgradedBody joins the stream's response body (connector → cloud) and
// request body (cloud → connector) into one connection.
type upgradedBody struct {
	r      io.ReadCloser
	w      *io.PipeWriter
	cancel context.CancelFunc // ends the stream's context
	once   sync.Once
}

func (b *upgradedBody) Read(p []byte) (int, error)  { return b.r.Read(p) }
func (b *upgradedBody) Write(p []byte) (int, error) { return b.w.Write(p) }
func (b *upgradedBody) Close() error {
	b.once.Do(func() {
		b.w.Close()
		b.r.Close()
		b.cancel()
	})
	return nil
}

// countedBody ends a request's count in InFlight when its body is closed.
type countedBody struct {
	io.ReadCloser
	c      *Client
	closed atomic.Bool
}

func (b *countedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.closed.CompareAndSwap(false, true) {
		b.c.inFlight.Add(-1)
	}
	return err
}

// watchedConn closes done when the connection is closed by anyone, and
// sets closed first.
type watchedConn struct {
	net.Conn
	once   sync.Once
	done   chan struct{}
	closed *atomic.Bool
}

func (c *watchedConn) Close() error {
	c.closed.Store(true)
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// NotSent reports whether a RoundTrip error means the request never
// reached the connector (connection unusable, draining, or stream
// refused), so it may be sent again elsewhere whatever its method.
func NotSent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotSent) {
		return true
	}
	// Refused by the connector, or the connection took no new stream.
	return h2.NotSent(err)
}

// IsConnectionError reports whether err means the tunnel connection itself
// failed (as opposed to the request being cancelled by its caller).
func IsConnectionError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return true
}

// retire takes a connection whose session can open no more streams out of
// service: no new request, and closed once the requests in flight have
// ended (or after retireWait), so that the connector dials a new one.
func (c *Client) retire() {
	if c.unusable.Swap(true) {
		return
	}
	c.relays.closeAll()
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		deadline := time.Now().Add(retireWait)
		for c.InFlight() > 0 && time.Now().Before(deadline) {
			select {
			case <-t.C:
			case <-c.Done():
				return
			}
		}
		c.Close()
	}()
}

// Retire takes the connection out of service gently: no new request, and
// closed once the requests in flight have ended (at most retireWait).
func (c *Client) Retire() { c.retire() }

// retireWait bounds how long a retired connection waits for its requests.
const retireWait = 5 * time.Minute
