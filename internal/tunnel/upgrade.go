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
		io.Copy(backend, r.Body)
		if cw, ok := backend.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			stop()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := backend.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			if rc.Flush() != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	stop()
	r.Body.Close()
	<-done
}
