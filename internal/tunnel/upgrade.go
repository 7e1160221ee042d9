package tunnel

import (
	"io"
	"net/http"
	"sync"
)

// UpgradeRequested returns the protocol of an upgrade the cloud asked for
// ("" for an ordinary request): on stream 0 an upgrade stream, on a relay
// stream of kind http/1.1-upgrade its request's Upgrade.
func UpgradeRequested(r *http.Request) string {
	if p := r.Header.Get(HeaderUpgrade); p != "" {
		return p
	}
	if rs := RelayStateOf(r.Context()); rs != nil {
		return rs.Upgrade
	}
	return ""
}

// PrepareUpgrade turns the headers of an upgrade stream back into an
// HTTP/1.1 upgrade request for the backend.
func PrepareUpgrade(h http.Header, proto string) {
	h.Del(HeaderUpgrade)
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", proto)
}

// ServeUpgrade answers an upgrade whose backend switched protocols: it
// sends the backend's headers — on stream 0 as a 200 marked with
// HeaderUpgrade, on a relay stream as the backend's 101 — then copies bytes
// both ways between the stream and backend until either side ends. It
// closes backend before returning.
func ServeUpgrade(w http.ResponseWriter, r *http.Request, backendHeader http.Header, backend io.ReadWriteCloser, proto string) {
	defer backend.Close()
	h := w.Header()
	for k, vv := range backendHeader {
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Upgrade", "Keep-Alive", "Transfer-Encoding", "Proxy-Connection":
			continue
		}
		h[k] = vv
	}
	if rs := RelayStateOf(r.Context()); rs != nil && rs.Upgrade != "" {
		serveRelayUpgrade(w, backend, proto)
		return
	}
	h.Set(HeaderUpgrade, proto)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	splice(backend, r.Body, w, rc.Flush, func() { r.Body.Close() })
}

// serveRelayUpgrade answers on a relay stream: the 101, then the stream
// itself is the upgraded connection.
func serveRelayUpgrade(w http.ResponseWriter, backend io.ReadWriteCloser, proto string) {
	h := w.Header()
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", proto)
	w.WriteHeader(http.StatusSwitchingProtocols)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if brw.Flush() != nil {
		return
	}
	splice(backend, brw.Reader, conn, nil, func() {
		// FIN first: the cloud reads all that came before it, then EOF.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		conn.Close()
	})
}

// splice copies from (the cloud's side) to backend and backend to to,
// until either direction ends; then it closes backend, and end stops the
// cloud's side (which must make reads of from return).
func splice(backend io.ReadWriteCloser, from io.Reader, to io.Writer, flush func() error, end func()) {
	var once sync.Once
	stop := func() { once.Do(func() { backend.Close() }) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay(backend, from, nil)
		if cw, ok := backend.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			stop()
		}
	}()
	relay(to, backend, flush)
	stop()
	end()
	<-done
}

// Buffers of upgraded connections. An idle WebSocket waits for its next
// message in both directions at once, holding a buffer each way: a small
// one of its own, so that thousands of idle ones cost little memory. A
// read that fills it borrows a large buffer from a pool until the reads
// catch up with the sender.
const (
	relaySmall = 1 << 10
	relayLarge = 32 << 10
)

var relayBuffers = sync.Pool{New: func() any { b := make([]byte, relayLarge); return &b }}

// relay copies src to dst, calling flush (if set) after each write, until
// either fails; it returns the bytes written and the error that ended it
// (nil at src's EOF).
func relay(dst io.Writer, src io.Reader, flush func() error) (written int64, err error) {
	small := make([]byte, relaySmall)
	buf := small
	var large *[]byte
	defer func() {
		if large != nil {
			relayBuffers.Put(large)
		}
	}()
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			written += int64(w)
			if werr != nil {
				return written, werr
			}
			if flush != nil {
				if err := flush(); err != nil {
					return written, err
				}
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
		switch {
		case n == len(buf) && large == nil:
			// More is probably waiting.
			large = relayBuffers.Get().(*[]byte)
			buf = *large
		case n < len(buf) && large != nil:
			// Caught up: wait for the next message with the small one.
			relayBuffers.Put(large)
			large, buf = nil, small
		}
	}
}

// UpgradedConn is the response body of an upgraded connection at the
// cloud: readable and writable, with close run on Close (each layer that
// wraps a response body adds its own). io.Copy to or from it uses
// WriteTo/ReadFrom, which copy with the small buffers of an idle
// connection (see relay) instead of io.Copy's 32 KiB each way.
func UpgradedConn(rw io.ReadWriteCloser, close func() error) io.ReadWriteCloser {
	return &upgradedConn{rw: rw, close: close}
}

type upgradedConn struct {
	rw    io.ReadWriteCloser
	close func() error
}

func (c *upgradedConn) Read(p []byte) (int, error)  { return c.rw.Read(p) }
func (c *upgradedConn) Write(p []byte) (int, error) { return c.rw.Write(p) }
func (c *upgradedConn) Close() error                { return c.close() }

func (c *upgradedConn) WriteTo(w io.Writer) (int64, error) { return relay(w, innermost(c.rw), nil) }

// ReadFrom copies r to the connection until r ends; then it ends the
// connection's sending direction if it can (a FIN after the last byte).
func (c *upgradedConn) ReadFrom(r io.Reader) (int64, error) {
	in := innermost(c.rw)
	n, err := relay(in, r, nil)
	if cw, ok := in.(interface{ CloseWrite() error }); ok && err == nil {
		cw.CloseWrite()
	}
	return n, err
}

// innermost is the connection under any UpgradedConn layers (their reads
// and writes only pass through).
func innermost(rw io.ReadWriteCloser) io.ReadWriteCloser {
	for {
		c, ok := rw.(*upgradedConn)
		if !ok {
			return rw
		}
		rw = c.rw
	}
}
