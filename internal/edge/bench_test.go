package edge

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
)

// benchEdge is a client → edge → dispatcher → backend chain on loopback:
// the edge served by an HTTP server, its dispatcher an http.Transport to
// a real backend (where the cloud's dispatcher would use a tunnel), so
// that the edge's own cost per request (routing, limits, headers, the
// reverse proxy) can be measured with go test -bench.
func benchEdge(b *testing.B, backend http.Handler) (client *http.Client, front string) {
	b.Helper()
	be := httptest.NewServer(backend)
	b.Cleanup(be.Close)
	beURL, _ := url.Parse(be.URL)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	b.Cleanup(tr.CloseIdleConnections)
	d := dispatchFunc(func(_ *App, r *http.Request) (*http.Response, error) {
		r.URL.Scheme, r.URL.Host = beURL.Scheme, beURL.Host
		return tr.RoundTrip(r)
	})
	fe := httptest.NewServer(New(Config{Routes: routes{testApp.ExternalHost: testApp}, Dispatcher: d}))
	b.Cleanup(fe.Close)
	client = fe.Client()
	b.Cleanup(client.CloseIdleConnections)
	return client, fe.URL
}

func benchRequest(b *testing.B, client *http.Client, method, front string, body []byte, want int) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, front+"/bench", rd)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = testApp.ExternalHost
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || n != int64(want) {
		b.Fatalf("status %d, %d bytes, %v; want 200 and %d bytes", resp.StatusCode, n, err, want)
	}
}

// BenchmarkEdgeRequest is one small GET through the edge (13-byte answer).
func BenchmarkEdgeRequest(b *testing.B) {
	const answer = "hello, world\n"
	client, front := benchEdge(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		io.WriteString(w, answer)
	}))
	b.SetBytes(int64(len(answer)))
	b.ReportAllocs()
	for b.Loop() {
		benchRequest(b, client, http.MethodGet, front, nil, len(answer))
	}
}

// BenchmarkEdgeLargeBody posts 4 MiB through the edge to a backend that
// echoes it: 8 MiB through the edge per operation.
func BenchmarkEdgeLargeBody(b *testing.B) {
	const size = 4 << 20
	client, front := benchEdge(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}))
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	b.SetBytes(2 * size)
	b.ReportAllocs()
	for b.Loop() {
		benchRequest(b, client, http.MethodPost, front, body, size)
	}
}
