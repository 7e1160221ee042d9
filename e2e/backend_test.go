package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/websocket"
)

// backend is an internal application served by the test process on
// 127.0.0.1, reached only by connectors.
//
//	/page        JSON: what the backend saw (path, host, X-Forwarded-*, Sallyport-* headers)
//	/headers     JSON: every request header the backend got, by name
//	/download?n= N bytes of the pattern stream, generated on the fly
//	/upload      hashes the request body while reading it; JSON {len, sha256}
//	/echo        streams the request body back while reading it (full duplex)
//	/slow        blocks until the request's context is done
//	/ws          WebSocket echo
type backend struct {
	srv *httptest.Server
	url string // http://127.0.0.1:PORT/

	stop        chan struct{} // closed at cleanup: releases /slow
	slowStarted chan struct{} // one value per /slow request started
	slowEnded   chan error    // the context error of each /slow request when it ended
}

// pageInfo is /page's answer.
type pageInfo struct {
	Page            string   `json:"page"`
	Path            string   `json:"path"`
	Host            string   `json:"host"`
	XForwardedFor   []string `json:"x_forwarded_for"`
	XForwardedProto []string `json:"x_forwarded_proto"`
	XForwardedHost  []string `json:"x_forwarded_host"`
	SallyportHeader []string `json:"sallyport_headers"`
}

const backendPage = "sallyport-e2e backend page"

// uploadInfo is /upload's answer.
type uploadInfo struct {
	Len    int64  `json:"len"`
	SHA256 string `json:"sha256"`
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{stop: make(chan struct{}), slowStarted: make(chan struct{}, 16), slowEnded: make(chan error, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		info := pageInfo{Page: backendPage, Path: r.URL.Path, Host: r.Host,
			XForwardedFor: r.Header.Values("X-Forwarded-For"), XForwardedProto: r.Header.Values("X-Forwarded-Proto"),
			XForwardedHost: r.Header.Values("X-Forwarded-Host"), SallyportHeader: []string{}}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "sallyport-") {
				info.SallyportHeader = append(info.SallyportHeader, k)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(info)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header) // every header as the backend got it
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, newPatternReader(n))
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(uploadInfo{Len: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		b.slowStarted <- struct{}{}
		select {
		case <-r.Context().Done():
			b.slowEnded <- r.Context().Err()
		case <-b.stop:
			b.slowEnded <- nil
		}
	})
	mux.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) {
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(ws, "echo: "+msg); err != nil {
				return
			}
		}
	}))
	b.srv = httptest.NewServer(mux)
	b.url = b.srv.URL + "/"
	t.Cleanup(b.srv.Close)
	t.Cleanup(func() { close(b.stop) }) // runs before Close
	return b
}

// The pattern stream: byte i is pattern[i % len(pattern)]. The length is
// prime, so it lines up with no buffer or frame size: a chunk lost,
// repeated or reordered changes the hash.
var pattern = func() []byte {
	b := make([]byte, 65521)
	rand.NewChaCha8([32]byte{'s', 'a', 'l', 'l', 'y'}).Read(b)
	return b
}()

type patternReader struct{ off, n int64 }

func newPatternReader(n int64) *patternReader { return &patternReader{n: n} }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	total := 0
	for len(p) > 0 {
		c := copy(p, pattern[r.off%int64(len(pattern)):])
		p = p[c:]
		r.off += int64(c)
		r.n -= int64(c)
		total += c
	}
	return total, nil
}

var (
	patternSumsMu sync.Mutex
	patternSums   = map[int64]string{}
)

// patternSHA256 is the hex SHA-256 of the first n bytes of the pattern stream.
func patternSHA256(n int64) string {
	patternSumsMu.Lock()
	defer patternSumsMu.Unlock()
	if s, ok := patternSums[n]; ok {
		return s
	}
	h := sha256.New()
	io.Copy(h, newPatternReader(n))
	s := hex.EncodeToString(h.Sum(nil))
	patternSums[n] = s
	return s
}
