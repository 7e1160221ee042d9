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

// The connector's end of the relay (protocol version 2): ServeSession
// accepts the relay streams the cloud opens and serves their HTTP/1.1
// requests with the connector's handler, writing the responses back.

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
				serveRelay(st, h, cfg)
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
func serveRelay(st *mux.Stream, h http.Handler, cfg ServerConfig) {
	defer st.Abort()
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				log.Printf("tunnel: panic serving a relayed request: %v\n%s", v, debug.Stack())
			}
			st.CloseWithCode(mux.ResetCancel, "the handler failed")
		}
	}()
	var om OpenMessage
	err := json.Unmarshal(st.OpenMessage(), &om)
	if err == nil && (om.Kind == RelayKindTCP || om.Kind == RelayKindUDP) {
		serveRaw(st, h, cfg)
		return
	}
	if err != nil || (om.Kind != RelayKindHTTP && om.Kind != RelayKindUpgrade) {
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
	return abortOnClose{w.st}, bufio.NewReadWriter(w.br, w.bw), nil
}

// abortOnClose is a hijacked relay stream: the handler's Close ends it
// for both ends at once (Abort), as the relay's streams end.
type abortOnClose struct{ *mux.Stream }

func (c abortOnClose) Close() error { return c.Abort() }

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
