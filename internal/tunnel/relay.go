package tunnel

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel/mux"
)

// ALPN2 is the TLS application protocol of tunnel version 2: a mux.Session
// whose stream 0 carries version 1's HTTP/2 connection and whose other
// streams carry proxied requests as HTTP/1.1 (docs/protocol.md §15). A
// connector offers both; a cloud that knows version 2 chooses it.
const ALPN2 = "sallyport-connector/2"

// RelayKindHTTP is the open message kind of a relay stream carrying
// HTTP/1.1 requests, one after another, for one application.
const RelayKindHTTP = "http/1.1"

// RelayKindUpgrade is the open message kind of a relay stream carrying one
// HTTP/1.1 upgrade request (a WebSocket); after a 101 answer the stream is
// the upgraded connection, otherwise it ends with the answer.
const RelayKindUpgrade = "http/1.1-upgrade"

// OpenMessage is the JSON message that opens a relay stream.
type OpenMessage struct {
	Kind string `json:"kind"`
	App  string `json:"app,omitempty"` // application id (informational: every request names its own)
	// Window is the cloud's receive window for the stream at its start
	// (0: the protocol's 4 MiB); the cloud sets it only for a connector
	// whose Hello says RelayWindow. The window grows with credit (WINDOW
	// frames) as usual.
	Window int `json:"window,omitempty"`
}

// ErrNotSent marks a relay failure that happened before any byte of the
// request left this end: the request may go to another connector.
var ErrNotSent = errors.New("the request was not sent")

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

// --- the connector's end ---

// ServeSession serves tunnel version 2 on conn: HTTP/2 with h on stream
// 0 (as Serve does on a version 1 connection), and relay streams opened
// by the cloud, whose HTTP/1.1 requests also go to h. When ctx is done it
// drains: GOAWAY on stream 0 tells the cloud to send no new request, and
// the session closes once the requests in flight have ended or
// cfg.DrainTimeout has passed. It returns after every handler returned.
func ServeSession(ctx context.Context, conn net.Conn, h http.Handler, cfg ServerConfig) {
	cfg = cfg.withDefaults()
	EnableBatching(conn)
	sess := mux.NewSession(conn, false, mux.SessionConfig{PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout, MaxStreams: int(cfg.MaxConcurrentStreams) * 4})
	var relays sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			st, err := sess.Accept()
			if err != nil {
				return
			}
			relays.Add(1)
			go func() {
				defer relays.Done()
				serveRelay(st, h)
			}()
		}
	}()
	var drainStart atomic.Int64
	stopWatch := context.AfterFunc(ctx, func() { drainStart.Store(time.Now().UnixNano()) })
	serveH2(ctx, sess.Stream0(), h, cfg, false)
	stopWatch()
	if ctx.Err() != nil && cfg.DrainTimeout > 0 {
		ended := make(chan struct{})
		go func() {
			relays.Wait()
			close(ended)
		}()
		// Relayed requests drain alongside stream 0's, within the same time.
		start := time.Now()
		if ns := drainStart.Load(); ns != 0 {
			start = time.Unix(0, ns)
		}
		t := time.NewTimer(cfg.DrainTimeout - time.Since(start))
		select {
		case <-ended:
		case <-t.C:
		case <-sess.Done():
		}
		t.Stop()
	}
	sess.Close()
	<-accepting
	relays.Wait()
}

// serveRelay serves the HTTP/1.1 requests of one relay stream with h,
// one after the other, until the cloud closes the stream.
func serveRelay(st *mux.Stream, h http.Handler) {
	defer st.Close()
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				log.Printf("tunnel: panic serving a relayed request: %v\n%s", v, debug.Stack())
			}
			st.CloseWithCode(mux.ResetCancel, "the handler failed")
		}
	}()
	var om OpenMessage
	if err := json.Unmarshal(st.OpenMessage(), &om); err != nil || (om.Kind != RelayKindHTTP && om.Kind != RelayKindUpgrade) {
		st.CloseWithCode(mux.ResetUnsupported, fmt.Sprintf("this connector does not serve relay streams of kind %q", om.Kind))
		return
	}
	st.SetSendWindow(om.Window) // nothing was written yet
	upgrade := om.Kind == RelayKindUpgrade
	var rw *relayIO
	if upgrade {
		rw = newUpgradeIO(st)
	} else {
		rw = relayIOs.get(st)
		defer relayIOs.put(rw)
	}
	state := &RelayState{}
	defer state.close()
	ctx := context.WithValue(st.Context(), relayStateKey{}, state)
	remote := st.RemoteAddr().String()
	for {
		req, err := http.ReadRequest(rw.br)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				st.CloseWithCode(mux.ResetProtocol, "bad request on the relay stream: "+err.Error())
			}
			return
		}
		if upgrade {
			if state.Upgrade = UpgradeProtocol(req.Header); state.Upgrade == "" || (req.Body != nil && req.Body != http.NoBody) {
				st.CloseWithCode(mux.ResetProtocol, "an upgrade stream carries one upgrade request without a body")
				return
			}
		}
		req = req.WithContext(ctx)
		req.RemoteAddr = remote
		w := &relayWriter{bw: rw.bw, req: req, header: make(http.Header), cl: -1, st: st, br: rw.br, hijackable: upgrade}
		if req.Body != nil && req.Body != http.NoBody {
			w.body = &trackedBody{ReadCloser: req.Body}
			req.Body = w.body
		}
		h.ServeHTTP(w, req)
		if w.hijacked {
			return // the handler served the upgraded connection and closed it
		}
		if err := w.finish(); err != nil {
			return
		}
		if upgrade {
			// Not switched: the stream ends with the answer.
			st.CloseWrite()
			return
		}
		// What the handler left of the request body must be read before
		// the next request (a little: more, and the response said
		// "Connection: close"), or the stream closes. (A body the handler
		// closed was read to its end by Close.)
		if w.body != nil {
			n, err := io.Copy(io.Discard, io.LimitReader(w.body, maxLeftover+1))
			if (err != nil && !errors.Is(err, http.ErrBodyReadAfterClose)) || n > maxLeftover {
				return
			}
		}
		if w.closeAfter || req.Close {
			st.CloseWrite()
			return
		}
	}
}

// maxLeftover is how much of a request body the handler did not read is
// read and dropped after the response, to keep the stream for the next
// request.
const maxLeftover = 256 << 10

// trackedBody is a relayed request's body, counting what was read of it.
type trackedBody struct {
	io.ReadCloser
	n   atomic.Int64
	eof atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// RelayState is what a handler keeps for the requests of one relay stream
// (the connector keeps its connection to the backend there: the requests
// of a stream come one after the other).
type RelayState struct {
	// Value is the handler's; if it is an io.Closer, it is closed when the
	// stream ends.
	Value any
	// Upgrade is the protocol asked for on a stream of kind
	// RelayKindUpgrade ("" on others).
	Upgrade string
}

func (s *RelayState) close() {
	if c, ok := s.Value.(io.Closer); ok {
		c.Close()
	}
}

type relayStateKey struct{}

// RelayStateOf returns the state of the relay stream a request came on,
// or nil for a request that came otherwise (HTTP/2 on stream 0).
func RelayStateOf(ctx context.Context) *RelayState {
	s, _ := ctx.Value(relayStateKey{}).(*RelayState)
	return s
}

// relayWriter is the http.ResponseWriter of a relayed request: HTTP/1.1
// onto the stream, chunked when the length is unknown.
type relayWriter struct {
	bw         *bufio.Writer
	req        *http.Request
	body       *trackedBody // the request's, nil without one
	header     http.Header
	wrote      bool
	noBody     bool
	chunked    bool
	cl         int64 // declared Content-Length, or -1
	written    int64
	trailers   []string
	closeAfter bool
	err        error
	st         *mux.Stream
	br         *bufio.Reader // the stream's, for Hijack
	hijackable bool          // a stream of kind RelayKindUpgrade
	hijacked   bool
}

func (w *relayWriter) Header() http.Header { return w.header }

// Hijack hands the stream of an upgrade to the handler, after a 101 was
// written (and not yet flushed: the returned writer holds it). The handler
// closes the stream when done.
func (w *relayWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.hijackable || w.hijacked || w.err != nil {
		return nil, nil, http.ErrNotSupported
	}
	w.hijacked = true
	w.wrote = true
	return w.st, bufio.NewReadWriter(w.br, w.bw), nil
}

func (w *relayWriter) WriteHeader(code int) {
	if w.wrote || w.err != nil {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An interim answer (103 Early Hints): passed on as it came.
		w.writeHead(code, w.header)
		return
	}
	w.wrote = true
	h := w.header
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified || code < 200
	if v := h.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			h.Del("Content-Length")
		}
	}
	h.Del("Transfer-Encoding")
	for _, v := range h.Values("Connection") {
		if strings.Contains(strings.ToLower(v), "close") {
			w.closeAfter = true
		}
	}
	if b := w.body; b != nil && !b.eof.Load() && !w.closeAfter {
		// Much of the request body is still to come (or an unknown
		// amount): rather than read it all after the answer, end the
		// stream after it — and say so, so that the cloud does not send
		// another request on it (net/http's server does the same).
		if w.req.ContentLength < 0 || w.req.ContentLength-b.n.Load() > maxLeftover {
			w.closeAfter = true
			h.Set("Connection", "close")
		}
	}
	if !w.noBody && w.cl < 0 {
		w.chunked = true
		h.Set("Transfer-Encoding", "chunked")
		for _, v := range h.Values("Trailer") {
			for _, k := range strings.Split(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
				}
			}
		}
	}
	w.writeHead(code, h)
}

func (w *relayWriter) writeHead(code int, h http.Header) {
	bw := w.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeFieldValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
}

// writeFieldValue writes v with line breaks replaced (a header value
// cannot end the header).
func writeFieldValue(bw *bufio.Writer, v string) {
	if !strings.ContainsAny(v, "\r\n") {
		bw.WriteString(v)
		return
	}
	bw.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
}

func (w *relayWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return len(p), nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		w.err = http.ErrContentLength
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.chunked {
		w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		w.bw.WriteString("\r\n")
	}
	if _, err := w.bw.Write(p); err != nil {
		w.err = err
		return 0, err
	}
	if w.chunked {
		w.bw.WriteString("\r\n")
	}
	return len(p), nil
}

// Flush sends what is buffered (streamed responses, server-sent events).
func (w *relayWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
}

// finish ends the response; an error means the stream cannot carry
// another one.
func (w *relayWriter) finish() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if w.chunked {
		w.bw.WriteString("0\r\n")
		for _, k := range w.trailers {
			for _, v := range w.header.Values(k) {
				w.bw.WriteString(k + ": ")
				writeFieldValue(w.bw, v)
				w.bw.WriteString("\r\n")
			}
		}
		for k, vs := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				for _, v := range vs {
					w.bw.WriteString(http.CanonicalHeaderKey(name) + ": ")
					writeFieldValue(w.bw, v)
					w.bw.WriteString("\r\n")
				}
			}
		}
		w.bw.WriteString("\r\n")
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if !w.noBody && w.cl >= 0 && w.written < w.cl {
		return errors.New("tunnel: the response was shorter than its Content-Length")
	}
	return nil
}

// relayIO are a relay stream's buffered reader and writer (4 KiB
// each). A stream holds its pair for its whole life (the reader may hold
// the start of the next message) and gives it back to a pool when it ends.
type relayIO struct {
	hl *HeadLimiter // under br: bounds a response head (the cloud's end)
	br *bufio.Reader
	bw *bufio.Writer
}

type relayIOPool struct{ p sync.Pool }

var relayIOs = &relayIOPool{}

func (p *relayIOPool) get(st *mux.Stream) *relayIO {
	if rb, ok := p.p.Get().(*relayIO); ok {
		rb.hl.Reset(st)
		rb.br.Reset(rb.hl)
		rb.bw.Reset(st)
		return rb
	}
	hl := NewHeadLimiter(st)
	return &relayIO{hl: hl, br: bufio.NewReaderSize(hl, 4<<10), bw: bufio.NewWriterSize(st, 4<<10)}
}

// newUpgradeIO returns the buffers of an upgrade stream: small (an idle
// WebSocket holds them for its whole life, and a request or response head
// of any length still reads through them), and not from the pool.
func newUpgradeIO(st *mux.Stream) *relayIO {
	hl := NewHeadLimiter(st)
	return &relayIO{hl: hl, br: bufio.NewReaderSize(hl, upgradeIOSize), bw: bufio.NewWriterSize(st, upgradeIOSize)}
}

const upgradeIOSize = 1 << 10

func (p *relayIOPool) put(rb *relayIO) {
	rb.hl.Reset(nil)
	rb.br.Reset(nil)
	rb.bw.Reset(nil)
	p.p.Put(rb)
}

// --- the cloud's end ---

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
	rc.st.Close()
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

// inlineBody is the largest request body (of known length) written
// before the response is read; larger ones are written while it is.
const inlineBody = 64 << 10

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
	stop := context.AfterFunc(ctx, func() { rc.st.Close() })
	bodyDone, err := WriteRequest(rc.rb.bw, req, func() { rc.st.Close() }) // the connector waits for the rest of the body
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
	if !c.Available() {
		// Told to drain (GOAWAY), or closed: no new stream (§15.4).
		return nil, fmt.Errorf("%w: the connection takes no new request", ErrNotSent)
	}
	om := OpenMessage{Kind: kind, App: app}
	if c.openWindow.Load() {
		om.Window = RelayInitialWindow
	}
	msg, _ := json.Marshal(om)
	st, err := c.sess.OpenWindow(msg, om.Window)
	if err != nil {
		if errors.Is(err, mux.ErrIDsExhausted) {
			c.retire()
		}
		return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return st, nil
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
	stop := context.AfterFunc(ctx, func() { st.Close() })
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
	u.once.Do(func() { u.rc.st.Close() })
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

// BodyWritten waits for the result of WriteRequest's body writer once
// the response has ended: the writer is usually just returning from its
// last write (net/http's Transport waits the same way before reusing a
// connection). ended is false if it has not finished within a short grace
// time: the connection cannot carry another request then.
func BodyWritten(done <-chan error) (err error, ended bool) {
	select {
	case err = <-done:
		return err, true
	default:
	}
	t := time.NewTimer(bodyWriteGrace)
	defer t.Stop()
	select {
	case err = <-done:
		return err, true
	case <-t.C:
		return nil, false
	}
}

// bodyWriteGrace bounds BodyWritten's wait.
const bodyWriteGrace = 50 * time.Millisecond

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

// WriteRequest writes req as HTTP/1.1 on bw and flushes it. A body of
// known length up to 64 KiB is written before it returns; a larger one, or
// one of unknown length, by a goroutine whose result comes on the returned
// channel (nil otherwise), while the caller reads the response — as a
// proxy must: the far end may answer before it has read the whole body.
// onFail, if set, runs in that goroutine when the write fails.
func WriteRequest(bw *bufio.Writer, req *http.Request, onFail func()) (<-chan error, error) {
	write := func() error {
		err := req.Write(bw)
		if err == nil {
			err = bw.Flush()
		}
		return err
	}
	if req.Body == nil || req.Body == http.NoBody || (req.ContentLength > 0 && req.ContentLength <= inlineBody) {
		return nil, write()
	}
	done := make(chan error, 1)
	go func() {
		err := write()
		if err != nil && onFail != nil {
			onFail()
		}
		done <- err
	}()
	return done, nil
}

// ReadFinalResponse reads the final response to req from br, skipping
// interim (1xx) ones. hl, if not nil, is the HeadLimiter br reads through:
// the heads read, interim ones included, may take at most l.WireBytes()
// off the wire; the final head must also hold to l. Beyond that the error
// wraps ErrResponseHeadersTooLarge (and br cannot be used further).
func ReadFinalResponse(br *bufio.Reader, hl *HeadLimiter, req *http.Request, l ResponseLimits) (*http.Response, error) {
	if hl != nil {
		hl.left = l.WireBytes()
		defer func() { hl.left = -1 }()
	}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			if errors.Is(err, errHeadBudget) || (hl != nil && hl.left == 0) {
				return nil, fmt.Errorf("%w: the response head is longer than %d bytes", ErrResponseHeadersTooLarge, l.WireBytes())
			}
			return nil, err
		}
		if err := CheckResponseHeader(resp.Header, l); err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
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
