package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel/mux"
)

// The cloud's end of the relay (protocol version 2): requests sent as
// HTTP/1.1 on relay streams the cloud opens, idle streams kept per
// application for the next request, and the window budgets that bound
// what the streams of clients that do not read may hold.

// RelayInitialWindow is the receive window the cloud opens a relay stream
// with when the connector honours the open message's window
// (OpenMessage.Window): small, so that a stream whose client does not read
// holds little at the cloud; it grows while the stream is read, up to
// 4 MiB.
const RelayInitialWindow = mux.SmallWindow

// ClientConnWindowBudget bounds how far the relay windows of the requests
// of one client connection grow altogether beyond their first windows, at
// the cloud; TotalWindowBudget bounds it for all client connections
// together. A stream that meets a spent budget keeps its window (slower,
// never stopped).
const (
	ClientConnWindowBudget = 8 << 20
	TotalWindowBudget      = 512 << 20
)

// NewWindowBudget returns a budget of n bytes for relay streams' window
// growth, each byte also taken from parent (if not nil); see WithWindowBudget.
func NewWindowBudget(n int64, parent *mux.WindowBudget) *mux.WindowBudget {
	return mux.NewWindowBudget(n, parent)
}

// relayConn is one relay stream at the cloud, with its buffers.
type relayConn struct {
	st        *mux.Stream
	rb        *relayIO
	app       string
	idleSince time.Time
	sending   bool // a goroutine writes the request body
	upgrade   bool // an upgrade stream: its buffers are not the pool's
}

// close closes the stream. Its buffers go back to the pool unless a
// goroutine may still be writing the request body with them.
func (rc *relayConn) close() {
	rc.st.Abort()
	if rc.rb != nil && !rc.sending && !rc.upgrade {
		relayIOs.put(rc.rb)
	}
	rc.rb = nil
}

// relays is a Client's pool of idle relay streams, by application.
type relays struct {
	mu     sync.Mutex
	idle   map[string][]*relayConn
	closed bool
}

// Idle relay streams: at most maxIdleRelays per application, closed after
// relayIdleTimeout unused.
const (
	maxIdleRelays    = 128
	relayIdleTimeout = 90 * time.Second
)

func (p *relays) get(app string) *relayConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[app]
	for len(l) > 0 {
		rc := l[len(l)-1]
		l = l[:len(l)-1]
		p.idle[app] = l
		if time.Since(rc.idleSince) < relayIdleTimeout && !rc.st.Ended() {
			return rc
		}
		go rc.close()
	}
	return nil
}

func (p *relays) put(rc *relayConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.idle == nil {
		p.idle = map[string][]*relayConn{}
	}
	l := p.idle[rc.app]
	// Expired streams are at the front (the pool is a stack).
	for len(l) > 0 && time.Since(l[0].idleSince) >= relayIdleTimeout {
		go l[0].close()
		l = l[1:]
	}
	if len(l) >= maxIdleRelays {
		p.idle[rc.app] = l
		return false
	}
	rc.idleSince = time.Now()
	p.idle[rc.app] = append(l, rc)
	return true
}

// closeAll closes the idle streams and refuses any from now on.
func (p *relays) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, l := range idle {
		for _, rc := range l {
			rc.close()
		}
	}
}

// relayable reports whether a request (not an upgrade: those are sent
// before this is asked) can travel on a relay stream: anything but gRPC,
// which needs HTTP/2 to the backend.
func relayable(req *http.Request) bool {
	return !strings.HasPrefix(req.Header.Get("Content-Type"), "application/grpc")
}

func (c *Client) roundTripRelay(req *http.Request, app string) (*http.Response, error) {
	rc := c.relays.get(app)
	if rc == nil {
		st, err := c.openRelay(RelayKindHTTP, app)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		rc = &relayConn{st: st, rb: relayIOs.get(st), app: app}
	}
	ctx := req.Context()
	rc.st.SetBudget(WindowBudgetOf(ctx))
	stop := context.AfterFunc(ctx, func() { rc.st.Abort() })
	bodyDone, err := WriteRequest(rc.rb.bw, req, func() { rc.st.Abort() }) // the connector waits for the rest of the body
	if err != nil {
		stop()
		rc.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	rc.sending = bodyDone != nil
	resp, err := ReadFinalResponse(rc.rb.br, rc.rb.hl, req, c.limits)
	if err != nil {
		stop()
		rc.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var se *mux.StreamError
		if errors.As(err, &se) && se.Code == mux.ResetRefused {
			return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		return nil, err
	}
	resp.Body = &relayBody{ReadCloser: resp.Body, rc: rc, c: c, stop: stop, bodyDone: bodyDone,
		reuse: !resp.Close && !req.Close}
	return resp, nil
}

// openRelay opens a relay stream of kind for app.
func (c *Client) openRelay(kind, app string) (*mux.Stream, error) {
	return c.openRelayMsg(OpenMessage{Kind: kind, App: app})
}

// errNoRelayUpgrade: the connector does not know relay streams of kind
// RelayKindUpgrade (an older version 2 connector).
var errNoRelayUpgrade = errors.New("tunnel: the connector does not take upgrades on relay streams")

// roundTripRelayUpgrade sends an upgrade request (bodiless) on a relay
// stream of its own. After a 101 the response body is the stream, as the
// upgraded connection; any other answer ends the stream with it.
func (c *Client) roundTripRelayUpgrade(req *http.Request, app, proto string) (*http.Response, error) {
	st, err := c.openRelay(RelayKindUpgrade, app)
	if err != nil {
		return nil, err
	}
	rb := newUpgradeIO(st)
	rc := &relayConn{st: st, rb: rb, app: app, upgrade: true}
	ctx := req.Context()
	st.SetBudget(WindowBudgetOf(ctx))
	stop := context.AfterFunc(ctx, func() { st.Abort() })
	fail := func(err error) (*http.Response, error) {
		stop()
		rc.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	out := req
	if req.Body != nil && req.Body != http.NoBody {
		out = req.Clone(ctx) // an upgrade request has no body; a stray one is not sent
		out.Body, out.ContentLength = http.NoBody, 0
	}
	out.Header.Set("Connection", "Upgrade")
	out.Header.Set("Upgrade", proto)
	_, err = WriteRequest(rb.bw, out, nil) // a refusal may come before the request is written
	var resp *http.Response
	if err == nil {
		resp, err = ReadFinalResponse(rb.br, rb.hl, out, c.limits)
	}
	if err != nil {
		return fail(upgradeOpenError(err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// Not switched: an ordinary answer, and the stream ends with it.
		resp.Body = &relayBody{ReadCloser: resp.Body, rc: rc, c: c, stop: stop}
		return resp, nil
	}
	// Switched: from now on only closing the body ends the stream, not
	// req's context (see RoundTrip).
	stop()
	resp.Body = &relayUpgraded{rc: rc}
	return resp, nil
}

// relayUpgraded is an upgraded connection on a relay stream at the cloud.
type relayUpgraded struct {
	rc   *relayConn
	once sync.Once
}

// Read reads what the stream's reader holds first (bytes that came with
// the 101), then the stream.
func (u *relayUpgraded) Read(p []byte) (int, error)  { return u.rc.rb.br.Read(p) }
func (u *relayUpgraded) Write(p []byte) (int, error) { return u.rc.st.Write(p) }

// CloseWrite ends the cloud's direction (FIN).
func (u *relayUpgraded) CloseWrite() error { return u.rc.st.CloseWrite() }

// Close closes the stream. Its buffers are left to the garbage collector:
// the other direction's goroutine may still be returning from a read.
func (u *relayUpgraded) Close() error {
	u.once.Do(func() { u.rc.st.Abort() })
	return nil
}

// closeBody closes a request's body, as a RoundTripper must even when it
// fails. (The registry's retry wrapper ignores this for a body not read
// yet, so that the request can go to another connector.)
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// relayBody returns the stream to the pool once the response was read to
// its end, if the stream can carry another request; otherwise it closes it.
type relayBody struct {
	io.ReadCloser
	rc       *relayConn
	c        *Client
	stop     func() bool
	bodyDone <-chan error
	reuse    bool
	once     sync.Once
	eof      bool
}

func (b *relayBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
		b.release()
	}
	return n, err
}

func (b *relayBody) Close() error {
	b.release()
	return nil
}

func (b *relayBody) release() {
	b.once.Do(func() {
		reuse := b.eof && b.reuse && b.stop()
		if b.bodyDone != nil && reuse {
			err, ended := BodyWritten(b.bodyDone)
			reuse = ended && err == nil // still sending the request: the stream cannot be reused
			if ended {
				b.rc.sending = false // its writer is done with the buffers
			}
		}
		// A stream whose window grew is not kept: the next request may
		// come from a client that does not read.
		if reuse && b.rc.rb.br.Buffered() == 0 && !b.rc.st.Grown() && b.c.Available() {
			b.rc.st.SetBudget(nil)
			if b.c.relays.put(b.rc) {
				return
			}
		}
		b.stop()
		b.rc.close()
	})
}

// upgradeOpenError classifies a failure to open an upgrade relay stream: a
// RESET for an unsupported kind means an older connector (the upgrade goes
// on stream 0 instead), a refused stream was never sent.
func upgradeOpenError(err error) error {
	var se *mux.StreamError
	if errors.As(err, &se) {
		switch se.Code {
		case mux.ResetUnsupported:
			return fmt.Errorf("%w: %w", ErrNotSent, errNoRelayUpgrade)
		case mux.ResetRefused:
			return fmt.Errorf("%w: %w", ErrNotSent, err)
		}
	}
	return err
}
