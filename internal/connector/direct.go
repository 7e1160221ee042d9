package connector

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/neterr"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// The direct path serves a request that came on a relay stream (tunnel
// version 2) without net/http's Transport: the
// relay stream keeps one HTTP/1.1 connection to the backend, and each
// request of the stream is written to it and its response read back in
// the stream's own goroutine. The Transport's two goroutines per
// connection (and their hand-offs on every request) are what this saves.
//
// Applications reached through a backend forward proxy keep the
// Transport's path (serveProxied, with the proxy set). What the backend
// gets and what the cloud gets back are the same on every path
// (backend.go).

// backendConn is a relay stream's connection to an application's backend.
type backendConn struct {
	app      *app
	conn     net.Conn
	hl       *tunnel.HeadLimiter // under br: bounds the response heads
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

// backendIdleReuse is how long an idle backend connection is trusted to
// still be open: a request without a body on a connection the backend
// closed meanwhile is retried on a new one, but one with a body cannot
// be, so older connections are not reused. Backends close idle
// connections after 5 s (Apache httpd) to 75 s (nginx) and more.
const backendIdleReuse = 2 * time.Second

var backendBufs = sync.Pool{New: func() any {
	hl := tunnel.NewHeadLimiter(nil)
	return &backendConn{hl: hl, br: bufio.NewReaderSize(hl, 4<<10), bw: bufio.NewWriterSize(nil, 4<<10)}
}}

// Close closes the connection and gives its buffers back; the relay
// stream's state calls it when the stream ends.
func (b *backendConn) Close() error {
	b.conn.Close()
	b.hl.Reset(nil)
	b.br.Reset(nil)
	b.bw.Reset(nil)
	b.app, b.conn = nil, nil
	backendBufs.Put(b)
	return nil
}

var backendDialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}

// dialBackend opens a connection to a's backend (TLS for https) with
// pooled buffers.
func (h *handler) dialBackend(ctx context.Context, a *app) (*backendConn, error) {
	conn, err := dialBackendConn(ctx, a)
	if err != nil {
		return nil, err
	}
	b := backendBufs.Get().(*backendConn)
	b.app, b.conn = a, conn
	b.hl.Reset(conn)
	b.br.Reset(b.hl)
	b.bw.Reset(conn)
	return b, nil
}

// dialBackendConn opens a connection to a's backend (TLS for https).
func dialBackendConn(ctx context.Context, a *app) (net.Conn, error) {
	addr := a.target.Host
	if a.target.Port() == "" {
		if a.target.Scheme == "https" {
			addr = net.JoinHostPort(a.target.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(a.target.Hostname(), "80")
		}
	}
	conn, err := backendDialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if a.target.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: a.target.Hostname(), NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, neterr.Handshake(err)
		}
		conn = tc
	}
	return conn, nil
}

// serveDirect serves r on the relay stream's backend connection.
func (h *handler) serveDirect(w *countingWriter, r *http.Request, a *app, rs *tunnel.RelayState) {
	out := outgoing(r, a, "")
	b, _ := rs.Value.(*backendConn)
	if b != nil && (b.app != a || time.Since(b.lastUsed) > backendIdleReuse) {
		b.Close()
		b, rs.Value = nil, nil
	}
	resp, b, err := h.exchange(r.Context(), out, a, b)
	if err != nil {
		rs.Value = nil
		if r.Context().Err() != nil {
			return // the cloud gave up on this request
		}
		h.backendFailed(w, a, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		b.Close() // what follows the 101 is not HTTP
		rs.Value = nil
		h.backendFailed(w, a, errUnaskedSwitch)
		return
	}
	rs.Value = b
	if !h.copyResponse(w, r.Context(), resp, b) {
		b.Close()
		rs.Value = nil
		return
	}
	b.lastUsed = time.Now()
}

// exchange sends out on b (or a new connection) and reads the response
// headers. A request without a body that meets a reused connection the
// backend had closed is sent again on a new one.
func (h *handler) exchange(ctx context.Context, out *http.Request, a *app, b *backendConn) (*http.Response, *backendConn, error) {
	hasBody := out.Body != nil && out.Body != http.NoBody
	for attempt := 0; ; attempt++ {
		reused := b != nil
		if b == nil {
			var err error
			if b, err = h.dialBackend(ctx, a); err != nil {
				return nil, nil, err
			}
		}
		resp, err := h.send(ctx, out, b)
		if err == nil {
			return resp, b, nil
		}
		b.Close()
		b = nil
		if !reused || hasBody || attempt > 0 || ctx.Err() != nil || !staleConn(err) {
			return nil, nil, err
		}
	}
}

// send writes out on b and reads the final response's headers; ctx
// cancels both.
func (h *handler) send(ctx context.Context, out *http.Request, b *backendConn) (resp *http.Response, err error) {
	stop := context.AfterFunc(ctx, expire(b.conn))
	var bodyErr <-chan error
	defer func() {
		if !stop() {
			// The connection has a deadline in the past now.
			if err == nil && bodyErr != nil {
				b.conn.Close() // ends the body writer, which uses b's buffers
				<-bodyErr
			}
			resp, err = nil, ctx.Err()
		}
	}()
	if bodyErr, err = tunnel.WriteRequest(b.bw, out, nil); err != nil {
		return nil, err
	}
	if resp, err = tunnel.ReadFinalResponse(b.br, b.hl, out, respLimits); err != nil {
		if bodyErr != nil {
			b.conn.Close() // ends the body writer too
			<-bodyErr
		}
		return nil, err
	}
	if bodyErr != nil {
		resp.Body = &bodyWait{ReadCloser: resp.Body, done: bodyErr, conn: b.conn}
	}
	return resp, nil
}

// expire returns a function that makes conn's reads and writes fail at
// once (for context.AfterFunc: it may run after b was closed and reused,
// so it holds the connection itself).
func expire(conn net.Conn) func() {
	return func() { conn.SetDeadline(time.Unix(1, 0)) }
}

// bodyWait is a response body whose request body may still be being
// written; the connection is reusable only if that ended well.
type bodyWait struct {
	io.ReadCloser
	done <-chan error
	conn net.Conn
}

// finished reports whether the request body went out whole. Called once
// the response has ended: a body still being written then (the backend
// answered without reading it all) is cut off by closing the connection.
func (b *bodyWait) finished() bool {
	err, ended := tunnel.BodyWritten(b.done)
	if !ended {
		b.conn.Close()
		<-b.done
		return false
	}
	return err == nil
}

// copyResponse writes resp to w (writeResponse); false if the backend
// connection cannot carry another request.
func (h *handler) copyResponse(w *countingWriter, ctx context.Context, resp *http.Response, b *backendConn) bool {
	stop := context.AfterFunc(ctx, expire(b.conn))
	ok := writeResponse(w, resp)
	if bw, isWait := resp.Body.(*bodyWait); isWait {
		w.Flush() // the answer goes out now, whatever the upload does
		ok = bw.finished() && ok
	}
	// A cancelled request left the connection with a deadline in the past.
	return ok && !resp.Close && stop()
}

// serveDirectUpgrade serves an upgrade (a WebSocket) that came on a relay
// stream of its own: a backend connection of its own, with small buffers
// (an idle WebSocket holds them for its whole life), and, if the backend
// switches protocols, the stream and that connection joined.
func (h *handler) serveDirectUpgrade(w *countingWriter, r *http.Request, a *app, proto string) {
	ctx := r.Context()
	out := outgoing(r, a, proto)
	conn, err := dialBackendConn(ctx, a)
	if err != nil {
		if ctx.Err() == nil {
			h.backendFailed(w, a, err)
		}
		return
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // until the answer
	hl := tunnel.NewHeadLimiter(conn)
	uc := &upgradeConn{Conn: conn, br: bufio.NewReaderSize(hl, upgradeBufSize)}
	_, err = tunnel.WriteRequest(bufio.NewWriterSize(conn, upgradeBufSize), out, nil)
	var resp *http.Response
	if err == nil {
		resp, err = tunnel.ReadFinalResponse(uc.br, hl, out, respLimits)
	}
	if !stop() || err != nil {
		conn.Close()
		if ctx.Err() == nil && err != nil {
			h.backendFailed(w, a, err)
		}
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// Not switched: an ordinary answer (the stream ends with it).
		defer conn.Close()
		h.copyResponse(w, ctx, resp, &backendConn{conn: conn})
		return
	}
	tunnel.StripProtocolHeaders(resp.Header) // a backend cannot speak for the connector
	tunnel.ServeUpgrade(w, r, resp.Header, uc, proto)
}

const upgradeBufSize = 1 << 10

// upgradeConn is a backend connection after its 101: reads first take
// what its reader holds (bytes that came behind the 101).
type upgradeConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *upgradeConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// CloseWrite ends the sending direction if the connection can (TCP, TLS).
func (c *upgradeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
