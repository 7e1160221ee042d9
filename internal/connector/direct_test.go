package connector

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Tests of the direct path (direct.go): requests that come on relay
// streams of a tunnel version 2 session go to the backend over the
// stream's own HTTP/1.1 connection. Every test drives a real session: a
// TLS connection on loopback that chose tunnel.ALPN2, served by
// tunnel.ServeSession with a Connector's handler, and a tunnel.Client
// (the cloud's end) sending the requests.

// directWait bounds every wait of these tests.
const directWait = testnet.Wait

// directTLSPair is a tunnel connection on loopback: the connector's end
// (the TLS client, as the connector dials) and the cloud's, both over
// BatchConns as in production, both offering alpn; it fails t unless
// they agree on the first.
func directTLSPair(t *testing.T, cloud *fakeCloud, alpn ...string) (connector, cloudEnd *tls.Conn) {
	t.Helper()
	a, b := testnet.Pair(t)
	connector = tls.Client(tunnel.NewBatchConn(a), &tls.Config{RootCAs: cloud.ca.Pool(), ServerName: "cloud.localhost",
		NextProtos: alpn, MinVersion: tls.VersionTLS12})
	cloudEnd = tls.Server(tunnel.NewBatchConn(b), &tls.Config{Certificates: []tls.Certificate{*cloud.cert},
		NextProtos: alpn, MinVersion: tls.VersionTLS12})
	errc := make(chan error, 1)
	go func() { errc <- cloudEnd.Handshake() }()
	err := connector.Handshake()
	if serr := <-errc; err == nil {
		err = serr
	}
	if err != nil {
		a.Close()
		b.Close()
		t.Fatal(err)
	}
	if got := cloudEnd.ConnectionState().NegotiatedProtocol; got != alpn[0] {
		t.Fatalf("ALPN = %q, want %q", got, alpn[0])
	}
	return connector, cloudEnd
}

// directEnv is a connector serving a version 2 tunnel session, and the
// cloud's client of it.
type directEnv struct {
	c      *Connector
	dir    string
	client *tunnel.Client

	mu      sync.Mutex
	streams map[*tunnel.RelayState]bool // the relay streams requests came on
	// ageBackend makes the next relayed request find its stream's backend
	// connection idle for longer than backendIdleReuse (set in the
	// stream's goroutine, as no sleep is needed).
	ageBackend bool
	seq        atomic.Int64 // request ids
}

// newTestConnector is a connector (state directory, event log,
// metrics) with apps configured, not running.
func newTestConnector(t *testing.T, apps ...tunnel.AppConfig) (*Connector, *fakeCloud, string) {
	t.Helper()
	cloud := newFakeCloud(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	c, err := New(Config{Dir: dir, Hostname: "test-host"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.handler.setConfig(tunnel.Config{Version: "v1", TenantID: "t_1", Group: "Default", Apps: apps}); err != nil {
		t.Fatal(err)
	}
	return c, cloud, dir
}

// startDirect starts a connector with apps configured and a tunnel
// session to it. Start the backends first: the cleanups then end the
// session (and the connections to the backends) before the backends.
func startDirect(t *testing.T, apps ...tunnel.AppConfig) *directEnv {
	t.Helper()
	c, cloud, dir := newTestConnector(t, apps...)
	env := &directEnv{c: c, dir: dir, streams: map[*tunnel.RelayState]bool{}}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rs := tunnel.RelayStateOf(r.Context()); rs != nil {
			env.mu.Lock()
			env.streams[rs] = true
			if b, ok := rs.Value.(*backendConn); ok && env.ageBackend {
				b.lastUsed = b.lastUsed.Add(-backendIdleReuse - time.Second)
				env.ageBackend = false
			}
			env.mu.Unlock()
		}
		c.handler.ServeHTTP(w, r)
	})
	connEnd, cloudEnd := directTLSPair(t, cloud, tunnel.ALPN2, tunnel.ALPN)
	env.serveTunnel(t, connEnd, cloudEnd, 2, "ServeSession", tunnel.ServeSession, counted)
	return env
}

// serveTunnel runs serve (tunnel.Serve or ServeSession, called name in a
// failure) with h on the connector's end of a tunnel connection and makes
// env.client the cloud's client on the other end; it fails t unless the
// client's tunnel version is version. The test's cleanup closes the
// client and fails t unless serve then returns.
func (env *directEnv) serveTunnel(t *testing.T, connEnd, cloudEnd net.Conn, version int, name string,
	serve func(context.Context, net.Conn, http.Handler, tunnel.ServerConfig), h http.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		serve(ctx, connEnd, h, tunnel.ServerConfig{})
	}()
	client, err := tunnel.NewClient(cloudEnd, tunnel.ClientConfig{})
	if err != nil {
		cancel()
		connEnd.Close()
		<-served
		t.Fatal(err)
	}
	env.client = client
	t.Cleanup(func() {
		client.Close()
		cancel()
		select {
		case <-served:
		case <-time.After(directWait):
			t.Errorf("%s did not return after the client closed", name)
		}
	})
	if v := client.Version(); v != version {
		t.Fatalf("tunnel version %d, want %d", v, version)
	}
}

// relayStreams is the number of relay streams requests came on.
func (env *directEnv) relayStreams() int {
	env.mu.Lock()
	defer env.mu.Unlock()
	return len(env.streams)
}

// req is a request for application app, as the cloud sends it.
func (env *directEnv) req(t *testing.T, ctx context.Context, method, app, path string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, method, "https://app.test"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(tunnel.HeaderApp, app)
	r.Header.Set(tunnel.HeaderRequestID, fmt.Sprintf("req-%d", env.seq.Add(1)))
	return r
}

// do sends req and reads the whole response.
func (env *directEnv) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := env.client.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.RequestURI(), err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL.RequestURI(), err)
	}
	return resp, body
}

// get sends GET path for app and checks the answer is 200 with want.
func (env *directEnv) get(t *testing.T, app, path, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), directWait)
	defer cancel()
	resp, body := env.do(t, env.req(t, ctx, "GET", app, path, nil))
	if resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("GET %s = %d %q (%s), want 200 %q", path, resp.StatusCode, body, resp.Header.Get(tunnel.HeaderError), want)
	}
}

// events returns the connector's events with id.
func (env *directEnv) events(t *testing.T, id eventlog.ID) []eventlog.Event {
	t.Helper()
	evs, err := eventlog.Read(filepath.Join(env.dir, statedir.EventsFile), eventlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []eventlog.Event
	for _, e := range evs {
		if e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// served is requests_total{app=name,code=code}.
func (env *directEnv) served(name string, code int) float64 {
	return testutil.ToFloat64(env.c.metrics.requests.WithLabelValues(name, strconv.Itoa(code)))
}

// countingBackend is an httptest server (HTTP/1.1) that counts the TCP
// connections it accepted. It closes in a cleanup registered now.
func countingBackend(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// appAt is the configuration of an application at internalURL.
func appAt(id, name, internalURL string) tunnel.AppConfig {
	return tunnel.AppConfig{ID: id, Name: name, InternalURL: internalURL, Timeout: time.Minute}
}

const smallBody = "hello, world\n" // 13 bytes

// commonHandler serves the paths most tests use.
func commonHandler() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(smallBody)))
		io.WriteString(w, smallBody)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, smallBody)
		w.(http.Flusher).Flush() // no length: chunked
	})
	mux.HandleFunc("/length", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d bytes", n)
	})
	mux.HandleFunc("/early-hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, smallBody)
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		if code == http.StatusNotModified {
			w.Header().Set("ETag", `"v1"`)
		}
		w.WriteHeader(code)
	})
	return mux
}

// opaque hides a reader's type, so that http.NewRequest cannot know the
// body's length (the request goes chunked).
type opaque struct{ io.Reader }

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// seenRequest is what a backend saw of a request.
type seenRequest struct {
	host, uri string
	header    http.Header
	body      string
}

// TestDirectRequestRewrite: the backend gets the internal URL's host and
// path joined with the request's, the query, the client's headers but no
// tunnel header, no User-Agent of Go's and no Expect; the client gets the
// backend's headers but no tunnel or hop-by-hop header.
func TestDirectRequestRewrite(t *testing.T) {
	testnet.CheckLeaks(t)
	seen := make(chan seenRequest, 1)
	backend, _ := countingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen <- seenRequest{host: r.Host, uri: r.RequestURI, header: r.Header.Clone(), body: string(body)}
		w.Header().Set("Sallyport-Foo", "from the backend")
		w.Header().Set(tunnel.HeaderError, "forged")
		w.Header()["Sallyport_error"] = []string{"forged, as CGI reads it"}
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "hop-by-hop")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "answer")
	}))
	env := startDirect(t,
		appAt("a_base", "base", backend.URL+"/base/"),
		appAt("a_query", "query", backend.URL+"/q?fixed=1"),
		appAt("a_bare", "bare", backend.URL),
	)
	internalHost := strings.TrimPrefix(backend.URL, "http://")
	cases := []struct {
		name, app, method, path string
		hdr                     http.Header
		body                    string
		wantURI                 string
		wantUA                  string // "" for none
	}{
		{name: "base path joined, query passed", app: "a_base", method: "GET", path: "/x/y?q=1&r=a%20b", wantURI: "/base/x/y?q=1&r=a%20b"},
		{name: "root of the base path", app: "a_base", method: "GET", path: "/", wantURI: "/base/"},
		{name: "escaped slash kept", app: "a_base", method: "GET", path: "/a%2Fb?x", wantURI: "/base/a%2Fb?x"},
		{name: "no base path", app: "a_bare", method: "GET", path: "/p?z=9", wantURI: "/p?z=9"},
		{name: "internal URL with a query", app: "a_query", method: "GET", path: "/x?y=2", wantURI: "/q/x?fixed=1&y=2"},
		{name: "internal URL with a query, request without", app: "a_query", method: "GET", path: "/x", wantURI: "/q/x?fixed=1"},
		{name: "client's User-Agent passed", app: "a_base", method: "GET", path: "/ua", hdr: http.Header{"User-Agent": {"curl/8.5.0"}},
			wantURI: "/base/ua", wantUA: "curl/8.5.0"},
		{name: "POST with Expect: 100-continue", app: "a_base", method: "POST", path: "/form", hdr: http.Header{"Expect": {"100-continue"}},
			body: "name=value", wantURI: "/base/form"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), directWait)
			defer cancel()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := env.req(t, ctx, tc.method, tc.app, tc.path, body)
			req.Header["User-Agent"] = nil // as a client that sent none: no User-Agent line at all
			req.Header.Set("Sallyport-Foo", "tunnel header")
			req.Header["Sallyport_app"] = []string{"a_forged"} // read as Sallyport-App by CGI and WSGI
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Forwarded-Host", "web.example")
			req.Header.Set("X-Forwarded-Proto", "https")
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			resp, got := env.do(t, req)
			if resp.StatusCode != 200 || string(got) != "answer" {
				t.Fatalf("got %d %q (%s)", resp.StatusCode, got, resp.Header.Get(tunnel.HeaderError))
			}
			s := testnet.RecvWithin(t, "the backend's request", (<-chan seenRequest)(seen))
			if s.uri != tc.wantURI {
				t.Errorf("the backend got %s, want %s", s.uri, tc.wantURI)
			}
			if s.host != internalHost {
				t.Errorf("the backend got Host %q, want the internal host %q", s.host, internalHost)
			}
			for k := range s.header {
				if tunnel.IsProtocolHeader(k) {
					t.Errorf("the backend got the tunnel header %s: %q", k, s.header[k])
				}
			}
			for k, want := range map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": "web.example", "X-Forwarded-Proto": "https"} {
				if got := s.header.Get(k); got != want {
					t.Errorf("the backend got %s %q, want %q", k, got, want)
				}
			}
			if ua, ok := s.header["User-Agent"]; tc.wantUA == "" && ok {
				t.Errorf("the backend got User-Agent %q from a client that sent none", ua)
			} else if tc.wantUA != "" && s.header.Get("User-Agent") != tc.wantUA {
				t.Errorf("the backend got User-Agent %q, want %q", s.header.Get("User-Agent"), tc.wantUA)
			}
			if v, ok := s.header["Expect"]; ok {
				t.Errorf("the backend got Expect %q", v)
			}
			if s.body != tc.body {
				t.Errorf("the backend got the body %q, want %q", s.body, tc.body)
			}
			for k := range resp.Header {
				if tunnel.IsProtocolHeader(k) {
					t.Errorf("the client got the backend's %s: %q", k, resp.Header[k])
				}
			}
			if v := resp.Header.Get("X-Hop"); v != "" {
				t.Errorf("the client got the hop-by-hop header X-Hop %q (named by the backend's Connection)", v)
			}
			if resp.Header.Get("X-Kept") != "yes" {
				t.Errorf("the client lacks the backend's X-Kept (headers %v)", resp.Header)
			}
		})
	}
}

// TestDirectKeepAlive: requests one after the other on a relay stream
// (bodies inline and written alongside, answers of known and unknown
// length) share one backend connection, and are counted in the metrics.
func TestDirectKeepAlive(t *testing.T) {
	testnet.CheckLeaks(t)
	backend, conns := countingBackend(t, commonHandler())
	env := startDirect(t, appAt("a_web", "web", backend.URL))
	const n = 25
	ctx, cancel := context.WithTimeout(context.Background(), directWait)
	defer cancel()
	for i := range n {
		switch i % 5 {
		case 0:
			env.get(t, "a_web", "/small", smallBody)
		case 1:
			env.get(t, "a_web", "/chunked", smallBody)
		case 2:
			env.get(t, "a_web", "/early-hints", smallBody) // a 103 first, skipped
		case 3, 4:
			size := 10
			if i%5 == 4 {
				size = 100 << 10 // above the inline limit: written alongside the response read
			}
			resp, body := env.do(t, env.req(t, ctx, "POST", "a_web", "/length", bytes.NewReader(make([]byte, size))))
			if want := fmt.Sprintf("%d bytes", size); resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("POST of %d bytes: %d %q, want 200 %q", size, resp.StatusCode, body, want)
			}
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d backend connections for %d requests one after the other, want 1 (a request body written alongside whose writer had not yet reported when the response ended costs the connection: bodyWait.finished)", got, n)
	}
	if got := env.relayStreams(); got != 1 {
		t.Errorf("%d relay streams for %d requests one after the other, want 1", got, n)
	}
	// A request is counted when its handler returns, which may be just
	// after the client has the answer (an answer is sent before an upload
	// written alongside it has been waited for).
	deadline := time.Now().Add(directWait)
	for (env.served("web", 200) != n || testutil.ToFloat64(env.c.metrics.inFlight) != 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := env.served("web", 200); got != n {
		t.Errorf("sallyport_connector_requests_total{app=web,code=200} = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(env.c.metrics.inFlight); got != 0 {
		t.Errorf("streams in flight = %v after the requests, want 0", got)
	}
}

// TestDirectNoBodyResponses: answers without a body (HEAD, 204, 304)
// leave both the relay stream and the backend connection usable.
func TestDirectNoBodyResponses(t *testing.T) {
	cases := []struct {
		method, path string
		status       int
		length       int64 // the client's resp.ContentLength
	}{
		{"HEAD", "/small", 200, int64(len(smallBody))}, // the length a GET would have
		{"GET", "/status/204", 204, 0},
		{"GET", "/status/304", 304, 0},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			testnet.CheckLeaks(t)
			backend, conns := countingBackend(t, commonHandler())
			env := startDirect(t, appAt("a_web", "web", backend.URL))
			ctx, cancel := context.WithTimeout(context.Background(), directWait)
			defer cancel()
			for range 3 {
				resp, body := env.do(t, env.req(t, ctx, tc.method, "a_web", tc.path, nil))
				if resp.StatusCode != tc.status || len(body) != 0 {
					t.Fatalf("%s %s = %d with %d bytes of body, want %d and none", tc.method, tc.path, resp.StatusCode, len(body), tc.status)
				}
				if resp.ContentLength != tc.length {
					t.Errorf("ContentLength %d, want %d", resp.ContentLength, tc.length)
				}
				env.get(t, "a_web", "/small", smallBody)
			}
			if got := conns.Load(); got != 1 {
				t.Errorf("%d backend connections, want 1: the connector dropped it after %s %s", got, tc.method, tc.path)
			}
			if got := env.relayStreams(); got != 1 {
				t.Errorf("%d relay streams, want 1: the stream ended after %s %s", got, tc.method, tc.path)
			}
			want := 3.0
			if tc.status == 200 {
				want = 6 // and the GETs in between
			}
			if got := env.served("web", tc.status); got != want {
				t.Errorf("requests_total{web,%d} = %v, want %v", tc.status, got, want)
			}
		})
	}
}

// closingBackend answers one request per connection as if it kept the
// connection open (no "Connection: close"), then closes it: a backend
// whose keep-alive timeout ended while the connection was idle.
type closingBackend struct {
	ln       net.Listener
	accepted atomic.Int32
	closed   chan struct{} // one value per connection it closed
	seen     chan string   // "METHOD path body-length" per request read
	wg       sync.WaitGroup
}

func newClosingBackend(t *testing.T) *closingBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &closingBackend{ln: ln, closed: make(chan struct{}, 64), seen: make(chan string, 64)}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.wg.Add(1)
			go b.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *closingBackend) serve(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		c.Close()
		b.closed <- struct{}{}
	}()
	c.SetDeadline(time.Now().Add(directWait))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	n, _ := io.Copy(io.Discard, req.Body)
	b.seen <- fmt.Sprintf("%s %s %d", req.Method, req.URL.Path, n)
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
}

func (b *closingBackend) url() string { return "http://" + b.ln.Addr().String() }

// requests returns what the backend read so far.
func (b *closingBackend) requests() []string {
	var out []string
	for {
		select {
		case s := <-b.seen:
			out = append(out, s)
		default:
			return out
		}
	}
}

// TestDirectStaleConnection: a request meeting a kept connection the
// backend closed meanwhile is sent again on a new one if it has no body;
// one with a body fails (502) and is not sent again.
func TestDirectStaleConnection(t *testing.T) {
	t.Run("GET is sent again", func(t *testing.T) {
		testnet.CheckLeaks(t)
		backend := newClosingBackend(t)
		env := startDirect(t, appAt("a_web", "web", backend.url()))
		env.get(t, "a_web", "/first", "ok")
		testnet.RecvWithin(t, "the backend to close the idle connection", (<-chan struct{})(backend.closed))
		env.get(t, "a_web", "/second", "ok")
		if got := backend.accepted.Load(); got != 2 {
			t.Errorf("%d backend connections, want 2 (the first, and one redial)", got)
		}
		if got, want := backend.requests(), []string{"GET /first 0", "GET /second 0"}; !slices.Equal(got, want) {
			t.Errorf("the backend read %q, want %q", got, want)
		}
		if got := env.relayStreams(); got != 1 {
			t.Errorf("%d relay streams, want 1 (the retry is the connector's own)", got)
		}
		if evs := env.events(t, 1400); len(evs) != 0 {
			t.Errorf("a retried request logged a backend failure: %+v", evs)
		}
	})
	bodies := []struct {
		name    string
		size    int
		chunked bool
	}{
		{"small body", 10, false},
		{"1 MiB body", 1 << 20, false},
		{"1 MiB body of unknown length", 1 << 20, true},
	}
	for _, tc := range bodies {
		t.Run("POST with a "+tc.name+" is not sent again", func(t *testing.T) {
			testnet.CheckLeaks(t)
			backend := newClosingBackend(t)
			env := startDirect(t, appAt("a_web", "web", backend.url()))
			env.get(t, "a_web", "/first", "ok")
			testnet.RecvWithin(t, "the backend to close the idle connection", (<-chan struct{})(backend.closed))
			ctx, cancel := context.WithTimeout(context.Background(), directWait)
			defer cancel()
			var body io.Reader = bytes.NewReader(make([]byte, tc.size))
			if tc.chunked {
				body = opaque{body}
			}
			resp, got := env.do(t, env.req(t, ctx, "POST", "a_web", "/upload", body))
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(tunnel.HeaderError) != "backend_failed" {
				t.Fatalf("POST on a stale connection = %d %q %q, want 502 backend_failed", resp.StatusCode, resp.Header.Get(tunnel.HeaderError), got)
			}
			if n := backend.accepted.Load(); n != 1 {
				t.Errorf("%d backend connections after the failed POST, want 1: the POST was sent again on a new connection", n)
			}
			env.get(t, "a_web", "/after", "ok")
			reqs := backend.requests()
			if want := []string{"GET /first 0", "GET /after 0"}; !slices.Equal(reqs, want) {
				t.Errorf("the backend read %q, want %q (the POST never)", reqs, want)
			}
			if n := env.served("web", 502); n != 1 {
				t.Errorf("requests_total{web,502} = %v, want 1", n)
			}
		})
	}
	t.Run("POST after the idle limit goes on a new connection", func(t *testing.T) {
		testnet.CheckLeaks(t)
		backend := newClosingBackend(t)
		env := startDirect(t, appAt("a_web", "web", backend.url()))
		env.get(t, "a_web", "/first", "ok")
		testnet.RecvWithin(t, "the backend to close the idle connection", (<-chan struct{})(backend.closed))
		env.mu.Lock()
		env.ageBackend = true // idle for longer than backendIdleReuse: not trusted
		env.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), directWait)
		defer cancel()
		resp, got := env.do(t, env.req(t, ctx, "POST", "a_web", "/upload", strings.NewReader("payload")))
		if resp.StatusCode != 200 || string(got) != "ok" {
			t.Fatalf("POST after the idle limit = %d %q (%s), want 200 ok", resp.StatusCode, got, resp.Header.Get(tunnel.HeaderError))
		}
		if reqs, want := backend.requests(), []string{"GET /first 0", "POST /upload 7"}; !slices.Equal(reqs, want) {
			t.Errorf("the backend read %q, want %q", reqs, want)
		}
		if n := backend.accepted.Load(); n != 2 {
			t.Errorf("%d backend connections, want 2", n)
		}
	})
}

// TestDirectBackendConnectionClose: a backend answering "Connection:
// close" costs its connection, not the relay stream, and its Connection
// header does not reach the client.
func TestDirectBackendConnectionClose(t *testing.T) {
	testnet.CheckLeaks(t)
	mux := commonHandler()
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	backend, conns := countingBackend(t, mux)
	env := startDirect(t, appAt("a_web", "web", backend.URL))
	ctx, cancel := context.WithTimeout(context.Background(), directWait)
	defer cancel()
	resp, body := env.do(t, env.req(t, ctx, "GET", "a_web", "/close", nil))
	if resp.StatusCode != 200 || string(body) != "bye" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Close || resp.Header.Get("Connection") != "" {
		t.Errorf("the backend's Connection: close reached the client (Close %v, Connection %q)", resp.Close, resp.Header.Get("Connection"))
	}
	env.get(t, "a_web", "/small", smallBody)
	env.get(t, "a_web", "/small", smallBody)
	if got := conns.Load(); got != 2 {
		t.Errorf("%d backend connections, want 2 (one closed by the backend, one reused)", got)
	}
	if got := env.relayStreams(); got != 1 {
		t.Errorf("%d relay streams, want 1", got)
	}
}

// TestDirectBackendFailures: a backend that cannot be reached gets the
// same answer as on the proxy path: 502, Sallyport-Error, a JSON body
// naming the application, and event 1400.
func TestDirectBackendFailures(t *testing.T) {
	testnet.CheckLeaks(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()

	// A TLS backend whose certificate no system root signed. It records
	// the connector's ClientHello: the server name is the internal URL's
	// host, and HTTP/1.1 is offered.
	type hello struct {
		serverName string
		protos     []string
	}
	hellos := make(chan hello, 4)
	tlsBackend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "should not be reached")
	}))
	tlsBackend.Config.ErrorLog = log.New(io.Discard, "", 0) // "TLS handshake error: bad certificate"
	tlsBackend.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		hellos <- hello{h.ServerName, slices.Clone(h.SupportedProtos)}
		return nil, nil
	}}
	tlsBackend.StartTLS()
	t.Cleanup(tlsBackend.Close)
	tlsURL := "https://127.0.0.1:" + portOf(tlsBackend.Listener.Addr().String()) + "/"
	tlsNameURL := "https://localhost:" + portOf(tlsBackend.Listener.Addr().String()) + "/" // the certificate names 127.0.0.1, not localhost

	// HTTPS to a trusted backend is tested end to end (e2e TestHTTPSBackend):
	// dialBackend verifies against the system roots, which a process reads
	// once (SSL_CERT_FILE), so the real binary is given its own.

	env := startDirect(t, appAt("a_refused", "refused-app", closedURL), appAt("a_tls", "tls-app", tlsURL), appAt("a_tlsname", "tls-name-app", tlsNameURL))
	cases := []struct {
		name, app, appName, code string
		contains                 []string
		step                     string
	}{
		{"connection refused", "a_refused", "refused-app", "backend_refused", []string{"'refused-app'", closedURL, "refused the connection", "test-host"}, "listening on"},
		{"untrusted TLS certificate", "a_tls", "tls-app", "backend_tls", []string{"'tls-app'", "TLS handshake", "test-host"}, "add the CA that signed it to the machine's trust store"},
		{"TLS certificate for another name", "a_tlsname", "tls-name-app", "backend_tls", []string{"'tls-name-app'", "TLS handshake", "not localhost"}, "does not name localhost"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), directWait)
			defer cancel()
			req := env.req(t, ctx, "GET", tc.app, "/x", nil)
			id := req.Header.Get(tunnel.HeaderRequestID)
			resp, body := env.do(t, req)
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(tunnel.HeaderError) != tc.code {
				t.Fatalf("got %d %q, want 502 %q (%s)", resp.StatusCode, resp.Header.Get(tunnel.HeaderError), tc.code, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var eb tunnel.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("the body is not an error body: %v (%s)", err, body)
			}
			if eb.Error.Code != tc.code || eb.Error.Step == "" {
				t.Errorf("error body %+v, want code %s and a step", eb.Error, tc.code)
			}
			for _, s := range tc.contains {
				if !strings.Contains(eb.Error.Message, s) {
					t.Errorf("message %q lacks %q", eb.Error.Message, s)
				}
			}
			if !strings.Contains(eb.Error.Step, tc.step) {
				t.Errorf("step %q lacks %q", eb.Error.Step, tc.step)
			}
			var found bool
			for _, e := range env.events(t, 1400) {
				if e.Fields["app"] == tc.appName {
					found = true
					if e.Fields["request_id"] != id || e.Fields["code"] != tc.code {
						t.Errorf("event 1400 fields %v, want request_id %s and code %s", e.Fields, id, tc.code)
					}
				}
			}
			if !found {
				t.Errorf("no event 1400 for application %s", tc.appName)
			}
			if got := env.served(tc.appName, 502); got != 1 {
				t.Errorf("requests_total{%s,502} = %v, want 1", tc.appName, got)
			}
		})
	}
	// Two handshakes: to 127.0.0.1 (no server name: SNI carries no
	// addresses) and to localhost.
	var named bool
	for range 2 {
		select {
		case h := <-hellos:
			named = named || h.serverName == "localhost"
			if !slices.Contains(h.protos, "http/1.1") || (h.serverName != "localhost" && h.serverName != "") {
				t.Errorf("ClientHello: server name %q, protocols %q; want localhost or none, and http/1.1", h.serverName, h.protos)
			}
		default:
			t.Error("the TLS backend saw fewer than 2 ClientHellos")
		}
	}
	if !named {
		t.Error("no ClientHello named localhost")
	}
}

// TestDirectTrailers: trailers of a chunked answer reach the client.
func TestDirectTrailers(t *testing.T) {
	testnet.CheckLeaks(t)
	mux := commonHandler()
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body with trailers")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc123")
	})
	mux.HandleFunc("/late-trailers", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "body with a trailer not announced")
		w.(http.Flusher).Flush()
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	backend, conns := countingBackend(t, mux)
	env := startDirect(t, appAt("a_web", "web", backend.URL))
	cases := []struct {
		path, body, trailer, value string
		announced                  bool
	}{
		{"/trailers", "body with trailers", "X-Checksum", "abc123", true},
		// Announced by no Trailer header: net/http's server sends it in the
		// chunked trailer all the same, and httputil.ReverseProxy (the
		// proxy path) passes it on.
		{"/late-trailers", "body with a trailer not announced", "X-Late", "late", false},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), directWait)
			defer cancel()
			resp, err := env.client.RoundTrip(env.req(t, ctx, "GET", "a_web", tc.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := resp.Trailer[tc.trailer]; tc.announced && !ok {
				t.Errorf("the trailer was not announced: Trailer %v", resp.Trailer)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != tc.body {
				t.Fatalf("body %q, %v", body, err)
			}
			if got := resp.Trailer.Get(tc.trailer); got != tc.value {
				t.Errorf("trailer %s = %q, want %q (trailers %v)", tc.trailer, got, tc.value, resp.Trailer)
			}
			env.get(t, "a_web", "/small", smallBody)
		})
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d backend connections, want 1", got)
	}
}

// TestDirectStreamedResponse: an answer of unknown length reaches the
// client as the backend flushes it.
func TestDirectStreamedResponse(t *testing.T) {
	testnet.CheckLeaks(t)
	proceed := make(chan struct{})
	backend, _ := countingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "first chunk;")
		w.(http.Flusher).Flush()
		select {
		case <-proceed:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second chunk")
	}))
	env := startDirect(t, appAt("a_web", "web", backend.URL))
	ctx, cancel := context.WithTimeout(context.Background(), directWait)
	defer cancel()
	resp, err := env.client.RoundTrip(env.req(t, ctx, "GET", "a_web", "/events", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 {
		t.Errorf("ContentLength %d, want -1", resp.ContentLength)
	}
	first := make([]byte, len("first chunk;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first chunk did not arrive before the backend wrote the second: %v", err)
	}
	close(proceed)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(first)+string(rest) != "first chunk;second chunk" {
		t.Fatalf("body %q%q, %v", first, rest, err)
	}
}

// TestDirectLargeUploads: 10 MiB bodies, of known length and chunked, go
// through whole while the backend echoes them as they arrive; a backend
// that refuses a large body without reading it ends the request at once.
func TestDirectLargeUploads(t *testing.T) {
	testnet.CheckLeaks(t)
	mux := commonHandler()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			panic(err)
		}
		w.Header().Set("X-Request-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("X-Request-Chunked", strconv.FormatBool(slices.Contains(r.TransferEncoding, "chunked")))
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge) // the body unread
	})
	backend, _ := countingBackend(t, mux)
	env := startDirect(t, appAt("a_web", "web", backend.URL))
	const size = 10 << 20
	data := randomBytes(size, 1)
	cases := []struct {
		name        string
		path        string
		chunked     bool
		status      int
		wantBody    []byte
		wantLength  string
		wantChunked string
	}{
		{"echo, known length", "/echo", false, 200, data, strconv.Itoa(size), "false"},
		{"echo, chunked", "/echo", true, 200, data, "-1", "true"},
		{"413 without reading, known length", "/limited", false, 413, []byte("too large\n"), "", ""},
		{"413 without reading, chunked", "/limited", true, 413, []byte("too large\n"), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), directWait)
			defer cancel()
			var body io.Reader = bytes.NewReader(data)
			if tc.chunked {
				body = opaque{body}
			}
			resp, err := env.client.RoundTrip(env.req(t, ctx, "POST", "a_web", tc.path, body))
			var got []byte
			if err == nil {
				got, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Fatalf("the request hung until its deadline (%v)", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Header.Get(tunnel.HeaderError), tc.status)
			}
			if !bytes.Equal(got, tc.wantBody) {
				i := 0
				for i < len(got) && i < len(tc.wantBody) && got[i] == tc.wantBody[i] {
					i++
				}
				t.Fatalf("the answer has %d bytes, want %d; they differ from byte %d on", len(got), len(tc.wantBody), i)
			}
			if tc.wantLength != "" {
				if h := resp.Header.Get("X-Request-Length"); h != tc.wantLength {
					t.Errorf("the backend saw ContentLength %s, want %s", h, tc.wantLength)
				}
				if h := resp.Header.Get("X-Request-Chunked"); h != tc.wantChunked {
					t.Errorf("the backend saw chunked %s, want %s", h, tc.wantChunked)
				}
			}
			env.get(t, "a_web", "/small", smallBody) // the application still works
		})
	}
}

// TestDirectCancel: a request the cloud cancels while the backend works
// on it ends the backend's request (the connector closes the connection).
func TestDirectCancel(t *testing.T) {
	testnet.CheckLeaks(t)
	entered := make(chan struct{}, 1)
	sawDone := make(chan struct{}, 1)
	mux := commonHandler()
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("partial") != "" {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
			sawDone <- struct{}{}
		case <-time.After(directWait): // the test fails anyway; the server can close
		}
	})
	backend, _ := countingBackend(t, mux)
	env := startDirect(t, appAt("a_web", "web", backend.URL))
	cases := []struct {
		name    string
		partial bool
	}{
		{"waiting for the headers", false},
		{"while the body is read", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			path := "/block"
			if tc.partial {
				path += "?partial=1"
			}
			req := env.req(t, ctx, "GET", "a_web", path, nil)
			if tc.partial {
				// The headers and the start of the body arrive; then cancel.
				resp, err := env.client.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				first := make([]byte, len("partial"))
				if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "partial" {
					t.Fatalf("the start of the body: %q, %v", first, err)
				}
				testnet.RecvWithin(t, "the request to reach the backend", (<-chan struct{})(entered))
				cancel()
				if rest, err := io.ReadAll(resp.Body); err == nil {
					t.Errorf("a cancelled request read as complete: %q", rest)
				}
			} else {
				// The backend holds the headers back: RoundTrip waits.
				done := make(chan error, 1)
				go func() {
					resp, err := env.client.RoundTrip(req)
					if err == nil {
						_, err = io.ReadAll(resp.Body)
						resp.Body.Close()
						if err == nil {
							err = errors.New("a cancelled request read as complete")
						}
					}
					done <- err
				}()
				testnet.RecvWithin(t, "the request to reach the backend", (<-chan struct{})(entered))
				cancel()
				if err := testnet.RecvWithin(t, "the cancelled request to end", (<-chan error)(done)); !errors.Is(err, context.Canceled) {
					t.Errorf("the cancelled request ended with %v, want context.Canceled", err)
				}
			}
			testnet.RecvWithin(t, "the backend's request context to end", (<-chan struct{})(sawDone))
			env.get(t, "a_web", "/small", smallBody)
		})
	}
	if evs := env.events(t, 1400); len(evs) != 0 {
		t.Errorf("a request cancelled by the cloud logged a backend failure: %+v", evs)
	}
}

// TestDirectCancelledAsHeadersArrive: the cloud cancels a request just as
// the backend's (early) response headers have been read, while the
// goroutine writing a large request body still runs. exchange must not
// return, giving the connection and its buffers back to backendBufs,
// before that goroutine is done with them: another request would get
// them while the old body is still being written (into its buffer, or
// onto its connection).
//
// White-box, to hit the window deterministically: the response is read
// through a reader that cancels the request as it hands over the end of
// the headers, and the request body holds its writer until the
// connection is closed. With the window open the body's writer flushes
// into a buffer reset to a nil writer and panics, so the test runs in a
// child process, where a crash shows as a failure.
func TestDirectCancelledAsHeadersArrive(t *testing.T) {
	if os.Getenv("SALLYPORT_DIRECT_CANCEL_CHILD") == "1" {
		cancelledAsHeadersArrive(t)
		return
	}
	testnet.CheckLeaks(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestDirectCancelledAsHeadersArrive$", "-test.count=1", "-test.timeout=60s")
	// atexit_sleep_ms: a binary built with -race otherwise waits 1 s on exit.
	cmd.Env = append(os.Environ(), "SALLYPORT_DIRECT_CANCEL_CHILD=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(l) != "" && len(lines) < 40 {
				lines = append(lines, l)
			}
		}
		t.Fatalf("the child process failed (%v):\n%s", err, strings.Join(lines, "\n"))
	}
}

func cancelledAsHeadersArrive(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	c, _, _ := newTestConnector(t, appAt("a_web", "web", "http://127.0.0.1:1"))
	a := c.handler.apps.Load().byID["a_web"]
	connEnd, backendEnd := net.Pipe()
	defer backendEnd.Close()
	connClosed := make(chan struct{}) // the backend saw the connector close the connection
	go func() {
		defer close(connClosed)
		io.Copy(io.Discard, backendEnd)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const answer = "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n"
	early := &cancellingReader{r: strings.NewReader(answer), cancel: cancel}
	// Deadlines are ignored: the body's writer is busy reading the body
	// (as from a slow client), not stopped by the cancellation's deadline.
	conn := noDeadlineConn{connEnd}
	hl := tunnel.NewHeadLimiter(io.MultiReader(early, conn))
	b := &backendConn{app: a, conn: conn, hl: hl, br: bufio.NewReader(hl), bw: bufio.NewWriter(conn)}
	body := &heldBody{release: connClosed}
	out, err := http.NewRequestWithContext(ctx, "POST", "http://127.0.0.1:1/upload", body)
	if err != nil {
		t.Fatal(err)
	}
	out.ContentLength = 1 << 20 // above the inline limit of tunnel.WriteRequest: written by a goroutine
	type result struct {
		err     error
		reading bool // the body's writer was reading it
	}
	ret := make(chan result, 1)
	go func() {
		_, _, err := c.handler.exchange(ctx, out, a, b)
		body.returned.Store(true)
		ret <- result{err, body.reading.Load() > 0}
	}()
	r := testnet.RecvWithin(t, "exchange to return", (<-chan result)(ret))
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("exchange = %v, want context.Canceled", r.err)
	}
	testnet.RecvWithin(t, "the backend to see the connection closed", (<-chan struct{})(connClosed))
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("goroutines left: %v", err)
	}
	if r.reading || body.late.Load() {
		t.Errorf("exchange returned (%v) while the goroutine writing the request body still ran: the backend connection and its buffers went back to the pool in use", r.err)
	}
}

// noDeadlineConn is a connection whose deadlines are not set.
type noDeadlineConn struct{ net.Conn }

func (noDeadlineConn) SetDeadline(time.Time) error      { return nil }
func (noDeadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (noDeadlineConn) SetWriteDeadline(time.Time) error { return nil }

// cancellingReader reads r, and calls cancel as it hands over r's end.
type cancellingReader struct {
	r      *strings.Reader
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.r.Len() == 0 {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	if c.r.Len() == 0 {
		c.cancel()
	}
	return n, err
}

// heldBody is a request body whose first read gives one byte and whose
// next blocks until release is closed, then fails. It records reads
// under way when, or begun after, exchange returned.
type heldBody struct {
	release  <-chan struct{}
	first    atomic.Bool
	reading  atomic.Int32
	returned atomic.Bool
	late     atomic.Bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.reading.Add(1)
	defer b.reading.Add(-1)
	if b.returned.Load() {
		b.late.Store(true)
	}
	if b.first.CompareAndSwap(false, true) && len(p) > 0 {
		p[0] = 'x'
		return 1, nil
	}
	select {
	case <-b.release:
	case <-time.After(directWait):
	}
	return 0, errors.New("the body was cut")
}
