package cloud

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/accesslog"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/tunnel"
)

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
		s.recordEdge(&out, rec.code, rec.took)
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

// statusClientClosed is the code counted for an edge request whose client
// went away before any answer: nginx's 499.
const statusClientClosed = 499

// statusRecorder captures the status an edge handler wrote. On an
// HTTP/1.1 connection it also sends each large write's TLS records
// together (corked: one system call instead of one per 16 KiB record).
type statusRecorder struct {
	http.ResponseWriter
	code  int
	start time.Time
	took  time.Duration
	bc    *tunnel.BatchConn // the connection under TLS, HTTP/1.x only
	// written counts the response body bytes (for the access log).
	written int64
}

// corkAbove is the size of a write above which it is corked: more than one
// TLS record.
const corkAbove = 16 << 10

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code, w.took = code, time.Since(w.start)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.bc != nil && len(p) > corkAbove {
		w.bc.Cork()
		n, err := w.ResponseWriter.Write(p)
		if uerr := w.bc.Uncork(); err == nil && uerr != nil {
			err = uerr
		}
		w.written += int64(n)
		return n, err
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes over the connection, which the edge does only to carry an
// upgraded connection (after writing its 101 itself): counted as 101.
func (w *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code, w.took = http.StatusSwitchingProtocols, time.Since(w.start)
	}
	return c, brw, err
}
