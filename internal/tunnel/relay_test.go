package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel/mux"
)

// relayEnv is a connector (ServeSession) and a cloud (Client) joined by a
// version 2 tunnel.
type relayEnv struct {
	c       *Client
	cancel  context.CancelFunc // starts the connector's drain
	served  chan struct{}      // closed when ServeSession returned
	streams *streamCounter
}

// streamCounter counts the relay streams requests came on: every request
// of a stream has the stream's context.
type streamCounter struct {
	mu   sync.Mutex
	seen map[context.Context]bool
}

func (sc *streamCounter) n() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.seen)
}

func startRelay(t testing.TB, h http.Handler, cfg ServerConfig) *relayEnv {
	t.Helper()
	env := &relayEnv{served: make(chan struct{}), streams: &streamCounter{seen: map[context.Context]bool{}}}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			env.streams.mu.Lock()
			env.streams.seen[r.Context()] = true
			env.streams.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
	cconn, sconn := tlsBatchPair(t, ALPN2, ALPN)
	ctx, cancel := context.WithCancel(context.Background())
	env.cancel = cancel
	go func() {
		defer close(env.served)
		var served http.Handler = counted
		if d, ok := h.(RawDialer); ok {
			served = rawHandler{Handler: counted, dial: d.DialRaw} // raw_test.go
		}
		ServeSession(ctx, cconn, served, cfg)
	}()
	c, err := NewClient(sconn, ClientConfig{})
	if err != nil {
		cancel()
		cconn.Close()
		<-env.served
		t.Fatal(err)
	}
	env.c = c
	t.Cleanup(func() {
		c.Close()
		cancel()
		select {
		case <-env.served:
		case <-time.After(testWait):
			t.Error("ServeSession did not return after the client closed")
		}
	})
	if c.Version() != 2 {
		t.Fatalf("Version() = %d, want 2", c.Version())
	}
	return env
}

// relayReq is a request for application a_1 (relayed when the tunnel is
// version 2), bounded by ctx.
func relayReq(t testing.TB, ctx context.Context, method, path string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, method, "https://app.test"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(HeaderApp, "a_1")
	return r
}

// do sends req and reads its whole response.
func (env *relayEnv) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := env.c.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL.Path, err)
	}
	return resp, body
}

// get sends GET path for a_1 and checks the answer is 200 with want.
func (env *relayEnv) get(t *testing.T, path, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	resp, body := env.do(t, relayReq(t, ctx, "GET", path, nil))
	if resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
	}
}

const smallBody = "hello, world\n" // 13 bytes

// relayHandler is the connector's handler of most relay tests.
func relayHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(smallBody)))
		io.WriteString(w, smallBody)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, smallBody) // no length: chunked
	})
	mux.HandleFunc("/proto", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("X-Request-Chunked", strconv.FormatBool(slices.Contains(r.TransferEncoding, "chunked")))
		io.Copy(w, r.Body) // as it arrives
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		if code == http.StatusNotModified {
			w.Header().Set("ETag", `"v1"`)
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body with trailers")
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	mux.HandleFunc("/early-hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("X-Final", "yes")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "final")
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	return mux
}

func TestRelayRoundTrip(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for _, path := range []string{"/small", "/chunked"} {
		resp, body := env.do(t, relayReq(t, ctx, "GET", path, nil))
		if resp.StatusCode != 200 || string(body) != smallBody || len(body) != 13 {
			t.Errorf("GET %s = %d %q", path, resp.StatusCode, body)
		}
		if resp.ProtoMajor != 1 {
			t.Errorf("GET %s came back as %s, want HTTP/1.1 (relayed)", path, resp.Proto)
		}
		if want := map[string]int64{"/small": 13, "/chunked": -1}[path]; resp.ContentLength != want {
			t.Errorf("GET %s: ContentLength %d, want %d", path, resp.ContentLength, want)
		}
	}
	if n := env.c.InFlight(); n != 0 {
		t.Errorf("InFlight = %d after the bodies were closed", n)
	}
	if err := env.c.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if n := env.streams.n(); n != 1 {
		t.Errorf("%d relay streams for two requests one after the other, want 1", n)
	}
}

// opaque hides a reader's type, so that http.NewRequest cannot know the
// body's length.
type opaque struct{ io.Reader }

// TestRelayEcho sends request bodies of every kind and size (below and
// above the inline limit, of unknown length) to a handler that echoes
// them as they arrive.
func TestRelayEcho(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	cases := []struct {
		name        string
		size        int
		unknown     bool  // the body is an opaque reader
		cl          int64 // ContentLength set on the request when unknown
		wantLen     int64 // what the handler sees
		wantChunked bool
	}{
		{"no body", 0, false, 0, 0, false},
		{"1 KiB", 1 << 10, false, 0, 1 << 10, false},
		{"64 KiB (the inline limit)", inlineBody, false, 0, inlineBody, false},
		{"64 KiB + 1", inlineBody + 1, false, 0, inlineBody + 1, false},
		{"10 MiB", 10 << 20, false, 0, 10 << 20, false},
		{"1 KiB of unknown length", 1 << 10, true, -1, -1, true},
		{"10 MiB of unknown length", 10 << 20, true, -1, -1, true},
		// http.NewRequest leaves ContentLength 0 for a reader it does not
		// know; with a Body, net/http reads that as "unknown" too.
		{"1 KiB of unknown length, ContentLength 0", 1 << 10, true, 0, -1, true},
		{"10 MiB of unknown length, ContentLength 0", 10 << 20, true, 0, -1, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := testnet.RandBytes(tc.size, byte(i))
			var body io.Reader
			if tc.size > 0 {
				body = bytes.NewReader(data)
				if tc.unknown {
					body = opaque{body}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			req := relayReq(t, ctx, "POST", "/echo", body)
			if tc.unknown {
				req.ContentLength = tc.cl
			}
			resp, got := env.do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			testnet.SameBytes(t, "echo", got, data)
			if h := resp.Header.Get("X-Request-Length"); h != strconv.FormatInt(tc.wantLen, 10) {
				t.Errorf("the handler saw ContentLength %s, want %d", h, tc.wantLen)
			}
			if h := resp.Header.Get("X-Request-Chunked"); h != strconv.FormatBool(tc.wantChunked) {
				t.Errorf("the handler saw chunked = %s, want %v", h, tc.wantChunked)
			}
		})
	}
	if n := env.c.InFlight(); n != 0 {
		t.Errorf("InFlight = %d", n)
	}
}

// TestRelayRequestBodyError: a request body that fails while it is sent
// fails the request at once (the connector's handler is still waiting for
// the rest of it).
func TestRelayRequestBodyError(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body) // the whole body, then the answer
		if err != nil {
			return
		}
		fmt.Fprintf(w, "%d bytes", len(b))
	}), ServerConfig{})
	errBody := errors.New("the client's upload broke")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	body := io.MultiReader(bytes.NewReader(make([]byte, 100<<10)), iotestErrReader{errBody})
	req := relayReq(t, ctx, "POST", "/upload", body)
	req.ContentLength = -1 // the body is written while the response is awaited
	resp, err := env.c.RoundTrip(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a request whose body failed succeeded")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the request hung until its context expired (%v): a failed body write must end the request (the stream must be closed)", err)
	}
	env.get(t, "/", "0 bytes") // the tunnel still works
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// TestRelayStreamedResponse: a response of unknown length reaches the
// client chunk by chunk as the handler flushes.
func TestRelayStreamedResponse(t *testing.T) {
	testnet.CheckLeaks(t)
	proceed := make(chan struct{})
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first chunk;")
		if err := http.NewResponseController(w).Flush(); err != nil {
			panic(err)
		}
		select {
		case <-proceed:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second chunk")
	}), ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/events", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || !slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
		t.Errorf("ContentLength %d, TransferEncoding %v; want -1, chunked", resp.ContentLength, resp.TransferEncoding)
	}
	first := make([]byte, len("first chunk;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first chunk did not arrive before the handler wrote the second: %v", err)
	}
	close(proceed)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(first)+string(rest) != "first chunk;second chunk" {
		t.Fatalf("body %q%q, %v", first, rest, err)
	}
}

// TestRelayNoBodyResponses: HEAD, 204 and 304 answers carry no body, and
// the stream carries the next request.
func TestRelayNoBodyResponses(t *testing.T) {
	cases := []struct {
		method, path string
		status       int
		length       int64
	}{
		{"HEAD", "/small", 200, 13}, // a HEAD answer with the length a GET would have
		{"HEAD", "/chunked", 200, -1},
		{"GET", "/status/204", 204, 0},
		{"GET", "/status/304", 304, 0},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			testnet.CheckLeaks(t)
			env := startRelay(t, relayHandler(), ServerConfig{})
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			for range 3 {
				resp, body := env.do(t, relayReq(t, ctx, tc.method, tc.path, nil))
				if resp.StatusCode != tc.status || len(body) != 0 {
					t.Fatalf("%s %s = %d with %d bytes of body, want %d and none", tc.method, tc.path, resp.StatusCode, len(body), tc.status)
				}
				if tc.status == 200 && resp.ContentLength != tc.length {
					t.Errorf("ContentLength %d, want %d", resp.ContentLength, tc.length)
				}
				env.get(t, "/small", smallBody)
			}
			if n := env.streams.n(); n != 1 {
				t.Errorf("%d relay streams for 6 requests one after the other, want 1: the connector ended the stream after %s %s", n, tc.method, tc.path)
			}
		})
	}
}

// TestRelayTrailers: trailers announced with the Trailer header, and set
// with http.TrailerPrefix, arrive in resp.Trailer.
func TestRelayTrailers(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/trailers", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Trailer["X-Checksum"]; !ok {
		t.Errorf("the trailer was not announced: Trailer %v", resp.Trailer)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "body with trailers" {
		t.Fatalf("body %q, %v", body, err)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("trailer X-Checksum = %q, want abc123 (trailers %v)", got, resp.Trailer)
	}
	if got := resp.Trailer.Get("X-Late"); got != "late" {
		t.Errorf("trailer X-Late = %q, want late (trailers %v)", got, resp.Trailer)
	}
	env.get(t, "/small", smallBody)
	if n := env.streams.n(); n != 1 {
		t.Errorf("%d relay streams, want 1", n)
	}
}

// TestRelayEarlyHints: a 103 before the answer is skipped by the client.
func TestRelayEarlyHints(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	resp, body := env.do(t, relayReq(t, ctx, "GET", "/early-hints", nil))
	if resp.StatusCode != 200 || string(body) != "final" || resp.Header.Get("X-Final") != "yes" {
		t.Errorf("got %d %q %v, want 200 \"final\" with X-Final", resp.StatusCode, body, resp.Header)
	}
	env.get(t, "/small", smallBody)
	if n := env.streams.n(); n != 1 {
		t.Errorf("%d relay streams, want 1", n)
	}
}

// TestRelayConnectionClose: a handler's "Connection: close" ends the
// stream after its answer; the next request goes on a new one.
func TestRelayConnectionClose(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	resp, body := env.do(t, relayReq(t, ctx, "GET", "/close", nil))
	if string(body) != "bye" || !resp.Close {
		t.Errorf("got %q, Close %v; want \"bye\", true", body, resp.Close)
	}
	testnet.WaitUntil(t, "the client forgot the closed stream", func() bool { return env.c.sess.NumStreams() == 1 })
	env.get(t, "/small", smallBody)
	env.get(t, "/small", smallBody)
	if n := env.streams.n(); n != 2 {
		t.Errorf("%d relay streams, want 2 (one closed after Connection: close, one reused)", n)
	}
}

// TestRelayKeepAlive: requests one after the other share one stream.
func TestRelayKeepAlive(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	for range 50 {
		env.get(t, "/small", smallBody)
	}
	if n := env.streams.n(); n != 1 {
		t.Errorf("%d relay streams for 50 requests one after the other, want 1", n)
	}
	if n := env.c.sess.NumStreams(); n != 2 {
		t.Errorf("the client's session has %d streams, want 2 (stream 0 and the idle relay)", n)
	}
}

// TestRelayUnreadRequestBody: a handler that does not read the request
// body answers. Up to maxLeftover unread bytes are dropped and the stream
// carries the next request; with more, the answer says "Connection:
// close" (so the cloud never sends another request on a stream the
// connector is about to end) and the next request goes on a new stream.
func TestRelayUnreadRequestBody(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for _, tc := range []struct {
		size      int
		wantClose bool
	}{{10, false}, {100 << 10, false}, {maxLeftover, false}, {maxLeftover + 1, true}, {8 << 20, true}} {
		resp, body := env.do(t, relayReq(t, ctx, "POST", "/small", bytes.NewReader(make([]byte, tc.size))))
		before := env.streams.n()
		if resp.StatusCode != 200 || string(body) != smallBody {
			t.Fatalf("POST of %d bytes: %d %q", tc.size, resp.StatusCode, body)
		}
		if resp.Close != tc.wantClose {
			t.Errorf("POST of %d unread bytes: Connection: close is %v, want %v", tc.size, resp.Close, tc.wantClose)
		}
		env.get(t, "/small", smallBody)
		if got, want := env.streams.n()-before, map[bool]int{false: 0, true: 1}[tc.wantClose]; got != want {
			t.Errorf("POST of %d unread bytes: %d new relay streams for the next request, want %d", tc.size, got, want)
		}
	}
}

// TestRelayConcurrent: 32 goroutines × 50 requests at once.
func TestRelayConcurrent(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	const workers, requests = 32, 50
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWait)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range requests {
				var req *http.Request
				want := smallBody
				if i%2 == 0 {
					req = relayReq(t, ctx, "GET", "/small", nil)
				} else {
					want = fmt.Sprintf("worker %d request %d", w, i)
					req = relayReq(t, ctx, "POST", "/echo", strings.NewReader(want))
				}
				resp, err := env.c.RoundTrip(req)
				if err != nil {
					errs <- fmt.Errorf("worker %d request %d: %w", w, i, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != want {
					errs <- fmt.Errorf("worker %d request %d: %q, %v; want %q", w, i, body, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Fatalf("client session: %v", env.c.sess.Err())
	}
	if n := env.streams.n(); n > workers {
		t.Errorf("%d relay streams for %d workers", n, workers)
	}
	if n := env.c.InFlight(); n != 0 {
		t.Errorf("InFlight = %d", n)
	}
}

// TestRelayCancelMidResponse: cancelling the request's context while the
// response is read ends the handler's context.
func TestRelayCancelMidResponse(t *testing.T) {
	testnet.CheckLeaks(t)
	handlerSaw := make(chan struct{})
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, smallBody)
			return
		}
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			close(handlerSaw)
		case <-time.After(testWait):
		}
	}), ServerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/slow", nil))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("partial"))
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("reading the body after the request was cancelled succeeded")
	}
	resp.Body.Close()
	testnet.RecvWithin(t, "the handler to see its request cancelled", (<-chan struct{})(handlerSaw))
	env.get(t, "/", smallBody)
	if n := env.c.InFlight(); n != 0 {
		t.Errorf("InFlight = %d", n)
	}
}

// TestRelayProtocols: only requests for an application go on relay
// streams; the others, and gRPC, go over HTTP/2 on stream 0.
func TestRelayProtocols(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	noApp := relayReq(t, ctx, "GET", "/proto", nil)
	noApp.Header.Del(HeaderApp)
	grpc := relayReq(t, ctx, "POST", "/proto", strings.NewReader("\x00\x00\x00\x00\x00"))
	grpc.Header.Set("Content-Type", "application/grpc+proto")
	for _, tc := range []struct {
		name string
		req  *http.Request
		want string
	}{
		{"no Sallyport-App", noApp, "HTTP/2.0"},
		{"an application's request", relayReq(t, ctx, "GET", "/proto", nil), "HTTP/1.1"},
		{"gRPC", grpc, "HTTP/2.0"},
	} {
		_, body := env.do(t, tc.req)
		if string(body) != tc.want {
			t.Errorf("%s: the handler saw %s, want %s", tc.name, body, tc.want)
		}
	}
}

// TestRelayBadOpenMessage: a relay stream of an unknown kind is refused.
func TestRelayBadOpenMessage(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	for _, msg := range []string{`{"kind":"ssh"}`, `not json`, ``} {
		st, err := env.c.sess.Open([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		st.SetDeadline(time.Now().Add(testWait))
		_, err = st.Read(make([]byte, 1))
		var se *mux.StreamError
		if !errors.As(err, &se) || se.Code != mux.ResetUnsupported {
			t.Errorf("open message %q: Read = %v, want a mux.StreamError with mux.ResetUnsupported", msg, err)
		}
		st.Close()
	}
	env.get(t, "/small", smallBody)
}

// TestRelayDrain: once the connector's context is done, a relayed request
// in flight completes, the cloud stops sending new ones, and ServeSession
// returns when the request is done.
func TestRelayDrain(t *testing.T) {
	testnet.CheckLeaks(t)
	entered, release := make(chan struct{}), make(chan struct{})
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
			io.WriteString(w, "done")
			return
		}
		io.WriteString(w, smallBody)
	}), ServerConfig{DrainTimeout: 3 * testWait}) // far longer than the test needs, even on a loaded machine
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 4*testWait)
	defer cancel()
	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/slow", nil))
		if err != nil {
			slow <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- result{string(b), err}
	}()
	testnet.RecvWithin(t, "the slow request to reach the handler", (<-chan struct{})(entered))
	env.cancel()
	testnet.WaitUntil(t, "the client is no longer available", func() bool { return !env.c.Available() })

	// New requests: refused as not sent, or (sent before the client
	// learnt of the drain) answered.
	for _, app := range []bool{true, false} {
		req := relayReq(t, ctx, "GET", "/new", nil)
		if !app {
			req.Header.Del(HeaderApp)
		}
		resp, err := env.c.RoundTrip(req)
		if err != nil {
			if !NotSent(err) {
				t.Errorf("a new request (relayed: %v) while draining failed with %v, for which NotSent is false", app, err)
			}
			t.Logf("a new request (relayed: %v) while draining: refused (%v)", app, err)
			continue
		}
		t.Logf("a new request (relayed: %v) while draining: sent, and served", app)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != smallBody {
			t.Errorf("a new request (relayed: %v) while draining: %q, %v", app, b, err)
		}
	}
	select {
	case <-env.served:
		t.Fatal("ServeSession returned with a request in flight")
	default:
	}
	close(release)
	r := testnet.RecvWithin(t, "the slow request", slow)
	if r.err != nil || r.body != "done" {
		t.Fatalf("request in flight during the drain: %q, %v", r.body, r.err)
	}
	testnet.RecvWithin(t, "ServeSession to return after the drain", (<-chan struct{})(env.served))
	testnet.RecvWithin(t, "the client's session to end", env.c.Done())
}

// TestRelayNoNewStreamWhileDraining: once the connector asked to drain
// (GOAWAY), the cloud opens no new relay stream on the connection
// (protocol §15.4): a request for an application is refused as not sent,
// so that it goes to another connector, as one without is by HTTP/2.
func TestRelayNoNewStreamWhileDraining(t *testing.T) {
	testnet.CheckLeaks(t)
	entered, release := make(chan struct{}), make(chan struct{})
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, smallBody)
	}), ServerConfig{DrainTimeout: testWait})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	slow := make(chan error, 1)
	go func() { // keeps the drain going
		resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/slow", nil))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		slow <- err
	}()
	testnet.RecvWithin(t, "the slow request to reach the handler", (<-chan struct{})(entered))
	before := env.streams.n()
	env.cancel()
	testnet.WaitUntil(t, "the client is no longer available", func() bool { return !env.c.Available() })
	resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/new", nil))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Errorf("a request for an application was sent on a new relay stream after GOAWAY (%d streams before, %d after)", before, env.streams.n())
	} else if !NotSent(err) {
		t.Errorf("a request after GOAWAY failed with %v, for which NotSent is false", err)
	}
	close(release)
	if err := testnet.RecvWithin(t, "the slow request", slow); err != nil {
		t.Errorf("the request in flight: %v", err)
	}
}

// TestRelayDrainTimeout: a relayed request still running at the end of
// DrainTimeout is cut, and ServeSession returns.
func TestRelayDrainTimeout(t *testing.T) {
	testnet.CheckLeaks(t)
	entered := make(chan struct{})
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}), ServerConfig{DrainTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/forever", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-entered
	start := time.Now()
	env.cancel()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("a request cut by the drain's end read as complete")
	}
	testnet.RecvWithin(t, "ServeSession to return", (<-chan struct{})(env.served))
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("the drain ended after %v, before its timeout", d)
	}
}

// TestRelayHandlerPanic: a handler that panics on a relay stream (as
// httputil.ReverseProxy does with http.ErrAbortHandler when the backend
// fails mid-answer) must cost the stream, not the process: net/http and
// the HTTP/2 server recover such panics. The test runs in a child process
// so that a crash shows as a failure.
func TestRelayHandlerPanic(t *testing.T) {
	if os.Getenv("TUNNEL_RELAY_PANIC_CHILD") == "1" {
		relayHandlerPanicChild(t)
		return
	}
	testnet.CheckLeaks(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRelayHandlerPanic$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), "TUNNEL_RELAY_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(l) != "" && len(lines) < 12 {
				lines = append(lines, l)
			}
		}
		t.Fatalf("a handler panicking on a relay stream crashed the connector's process (%v):\n%s", err, strings.Join(lines, "\n"))
	}
}

func relayHandlerPanicChild(t *testing.T) {
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/bug":
			panic("a bug in the handler")
		}
		io.WriteString(w, smallBody)
	}), ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for _, path := range []string{"/abort", "/bug"} {
		resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", path, nil))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("GET %s: a request whose handler panicked read as complete", path)
		}
	}
	env.get(t, "/small", smallBody)
}

// TestRelayIDsExhausted: a session that has used all its stream ids
// refuses the next request as not sent (the cloud sends it elsewhere),
// takes no more, and closes, so that the connector dials a new one.
func TestRelayIDsExhausted(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, relayHandler(), ServerConfig{})
	env.get(t, "/small", smallBody)
	env.c.sess.SkipIDs(1<<31 - 1)
	env.c.relays.closeAll() // no idle stream to reuse
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	_, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/small", nil))
	if !NotSent(err) || !errors.Is(err, mux.ErrIDsExhausted) {
		t.Fatalf("RoundTrip = %v, want a not-sent error for exhausted ids", err)
	}
	if env.c.Available() {
		t.Error("the connection still takes requests")
	}
	select {
	case <-env.c.Done():
	case <-ctx.Done():
		t.Fatal("the retired connection did not close")
	}
}

// TestRelayOpenWindow: with a connector that honours the open message's
// window (Hello.RelayWindow), relay streams start at 16 KiB, a large
// download grows its window within the request's budget and gives it back
// when it ends, and a stream whose window grew is not kept for the next
// request (which may come from a client that does not read).
func TestRelayOpenWindow(t *testing.T) {
	testnet.CheckLeaks(t)
	big := testnet.RandBytes(8<<20, 7)
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		io.WriteString(w, smallBody)
	}), ServerConfig{})
	env.c.UseOpenWindows()
	const budget = 1 << 20
	b := NewWindowBudget(budget, nil)
	ctx, cancel := context.WithTimeout(WithWindowBudget(context.Background(), b), testWait)
	defer cancel()
	for range 2 {
		if _, body := env.do(t, relayReq(t, ctx, "GET", "/small", nil)); string(body) != smallBody {
			t.Fatalf("GET /small = %q", body)
		}
	}
	if n := env.streams.n(); n != 1 {
		t.Errorf("%d relay streams for two small requests, want 1 (kept between them)", n)
	}
	resp, err := env.c.RoundTrip(relayReq(t, ctx, "GET", "/big", nil))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(big)-1) // all but the last byte: the response has not ended
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	if b.Left() == budget {
		t.Error("the download's window did not grow (its budget is untouched)")
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	testnet.SameBytes(t, "GET /big", append(got, rest...), big)
	resp.Body.Close()
	if b.Left() != budget {
		t.Errorf("the budget has %d bytes left after the download ended, want %d", b.Left(), budget)
	}
	env.get(t, "/small", smallBody)
	if n := env.streams.n(); n != 2 {
		t.Errorf("%d relay streams after the download and another request on the stream it used, want 2 (the grown stream is not kept)", n)
	}
}

// TestRelayResponseHeaderLimit: the cloud refuses a connector's response
// head over its limits (tunnel.ResponseLimits.Relayed) on each path a
// response comes back by — a relayed request, an upgrade stream, HTTP/2
// on stream 0 — and the tunnel goes on serving.
func TestRelayResponseHeaderLimit(t *testing.T) {
	testnet.CheckLeaks(t)
	env := startRelay(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("head") {
		case "fields":
			for i := range 300 {
				w.Header().Set(fmt.Sprintf("X-F%d", i), "v")
			}
		case "bytes":
			w.Header().Set("X-Big", strings.Repeat("b", 100<<10))
		}
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, smallBody)
	}), ServerConfig{})
	tests := []struct {
		name, head string
		req        func(ctx context.Context, path string) *http.Request
	}{
		{"relayed, too many fields", "fields", func(ctx context.Context, path string) *http.Request { return relayReq(t, ctx, "GET", path, nil) }},
		{"relayed, too many bytes", "bytes", func(ctx context.Context, path string) *http.Request { return relayReq(t, ctx, "GET", path, nil) }},
		{"upgrade, too many fields", "fields", func(ctx context.Context, path string) *http.Request {
			r := upgradeReq(t, ctx)
			r.URL.RawQuery = path[len("/?"):]
			return r
		}},
		{"upgrade, too many bytes", "bytes", func(ctx context.Context, path string) *http.Request {
			r := upgradeReq(t, ctx)
			r.URL.RawQuery = path[len("/?"):]
			return r
		}},
		{"stream 0, too many fields", "fields", func(ctx context.Context, path string) *http.Request {
			r := relayReq(t, ctx, "POST", path, strings.NewReader("x"))
			r.Header.Set("Content-Type", "application/grpc") // not relayed: HTTP/2 on stream 0
			return r
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			resp, err := env.c.RoundTrip(tc.req(ctx, "/?head="+tc.head))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("answer %d with %d header fields, want an error", resp.StatusCode, len(resp.Header))
			}
			if !errors.Is(err, ErrResponseHeadersTooLarge) {
				t.Errorf("err = %v, want ErrResponseHeadersTooLarge", err)
			}
			if n := env.c.InFlight(); n != 0 {
				t.Errorf("InFlight = %d after the refusal", n)
			}
			env.get(t, "/small", smallBody)
		})
	}
}
