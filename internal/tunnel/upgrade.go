package tunnel

import (
	"io"
	"net/http"
	"sync"
)

// UpgradeRequested returns the protocol of an upgrade stream the cloud
// opened ("" for an ordinary request).
func UpgradeRequested(r *http.Request) string { return r.Header.Get(HeaderUpgrade) }

// PrepareUpgrade turns the headers of an upgrade stream back into an
// HTTP/1.1 upgrade request for the backend.
func PrepareUpgrade(h http.Header, proto string) {
	h.Del(HeaderUpgrade)
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", proto)
}

// ServeUpgrade answers an upgrade stream whose backend switched protocols:
// it sends the backend's headers marked with HeaderUpgrade, then copies
// bytes both ways between the stream and backend until either side ends.
// It closes backend before returning.
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
	h.Set(HeaderUpgrade, proto)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	var once sync.Once
	stop := func() { once.Do(func() { backend.Close() }) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay(backend, r.Body, nil)
		if cw, ok := backend.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			stop()
		}
	}()
	relay(w, backend, rc.Flush)
	stop()
	r.Body.Close()
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
// either fails.
func relay(dst io.Writer, src io.Reader, flush func() error) {
	small := make([]byte, relaySmall)
	buf := small
	var large *[]byte
	defer func() {
		if large != nil {
			relayBuffers.Put(large)
		}
	}()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if flush != nil && flush() != nil {
				return
			}
		}
		if err != nil {
			return
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
