package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testWait bounds every wait of these tests: what should happen at once
// fails the test after it instead of hanging.
const testWait = testnet.Wait

// transports are the kinds of connection the protocol must work over,
// like yamux's suite: an in-memory pipe, TCP, and TLS with the ALPN.
var transports = []struct {
	name string
	pair func(t testing.TB) (connector, cloud net.Conn)
}{
	{"pipe", func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", testnet.Pair},
	{"tls", tlsPair},
	{"tls-batch", func(t testing.TB) (net.Conn, net.Conn) { return tlsBatchPair(t) }}, // as the connector and the cloud run it
}

func tlsPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	a, b := testnet.Pair(t)
	return tlsOver(t, a, b)
}

// tlsBatchPair is TLS over BatchConns (tunnel.Serve, NewClient and the
// relay ends switch batching on) on loopback: the connector's end and the
// cloud's. Both offer alpn (ALPN if none), and agree on the first.
func tlsBatchPair(t testing.TB, alpn ...string) (connector, cloud net.Conn) {
	t.Helper()
	a, b := testnet.Pair(t)
	return tlsOver(t, NewBatchConn(a), NewBatchConn(b), alpn...)
}

// testCA is one CA for every test's TLS connections.
var testCA = sync.OnceValues(func() (*pki.CA, error) { return pki.NewCA("test CA", time.Hour) })

// tlsOver runs a TLS handshake over a (the client, as the connector dials)
// and b (the server, the cloud), both offering alpn (ALPN if none); it
// fails t unless they agree on the first.
func tlsOver(t testing.TB, a, b net.Conn, alpn ...string) (net.Conn, net.Conn) {
	t.Helper()
	if len(alpn) == 0 {
		alpn = []string{ALPN}
	}
	ca, err := testCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer([]string{"cloud.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client := tls.Client(a, &tls.Config{RootCAs: ca.Pool(), ServerName: "cloud.test", NextProtos: alpn, MinVersion: tls.VersionTLS12})
	server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: alpn, MinVersion: tls.VersionTLS12})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := client.ConnectionState().NegotiatedProtocol; got != alpn[0] {
		t.Fatalf("ALPN = %q, want %q", got, alpn[0])
	}
	return client, server
}

// start serves h on one end (the connector) and returns the client (the cloud).
func start(t *testing.T, pair func(t testing.TB) (net.Conn, net.Conn), h http.Handler) *Client {
	t.Helper()
	cconn, sconn := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, cconn, h, ServerConfig{})
	}()
	c, err := NewClient(sconn, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	return c
}

func newReq(t *testing.T, method, path string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "https://app.test"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := start(t, tr.pair, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-App", r.Header.Get(HeaderApp))
				fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
			}))
			req := newReq(t, "GET", "/hello", nil)
			req.Header.Set(HeaderApp, "a_1")
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got, want := string(body), "GET /hello"; got != want {
				t.Errorf("body = %q, want %q", got, want)
			}
			if got := resp.Header.Get("X-App"); got != "a_1" {
				t.Errorf("X-App = %q, want a_1", got)
			}
			if n := c.InFlight(); n != 0 {
				t.Errorf("InFlight = %d after the body was closed, want 0", n)
			}
			if err := c.Ping(context.Background()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

// TestFullDuplexEcho guards against a proxy that waits for the whole
// request body before answering: the handler echoes each line as it
// arrives, and the client writes the next line only after reading the
// previous echo.
func TestFullDuplexEcho(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := start(t, tr.pair, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(200)
				rc := http.NewResponseController(w)
				rc.Flush()
				sc := bufio.NewScanner(r.Body)
				for sc.Scan() {
					fmt.Fprintf(w, "echo %s\n", sc.Text())
					rc.Flush()
				}
			}))
			pr, pw := io.Pipe()
			resp, err := c.RoundTrip(newReq(t, "POST", "/echo", pr))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			for i := range 5 {
				fmt.Fprintf(pw, "line %d\n", i)
				got, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("echo line %d\n", i); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			pw.Close()
		})
	}
}

// TestLargeBodies streams a body both ways and checks every byte.
func TestLargeBodies(t *testing.T) {
	const size = 32 << 20
	c := start(t, tlsPair, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	src := io.LimitReader(patternReader{}, size)
	want := sha256.New()
	io.Copy(want, io.LimitReader(patternReader{}, size))
	resp, err := c.RoundTrip(newReq(t, "PUT", "/upload", src))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, w := string(body), fmt.Sprintf("%d %x", size, want.Sum(nil)); got != w {
		t.Errorf("upload: got %q, want %q", got, w)
	}
}

type patternReader struct{}

func (patternReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i * 7)
	}
	return len(p), nil
}

// TestUpgrade carries an upgraded connection over a stream: the handler
// splices it to an in-memory "backend" that echoes in upper case.
func TestUpgrade(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			backendDone := make(chan struct{})
			c := start(t, tr.pair, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				proto := UpgradeRequested(r)
				if proto != "websocket" {
					http.Error(w, "not an upgrade", 400)
					return
				}
				near, far := net.Pipe()
				go func() {
					defer close(backendDone)
					defer far.Close()
					sc := bufio.NewScanner(far)
					for sc.Scan() {
						fmt.Fprintf(far, "%s\n", strings.ToUpper(sc.Text()))
					}
				}()
				ServeUpgrade(w, r, http.Header{"Sec-Websocket-Accept": {"x"}}, near, proto)
			}))
			req := newReq(t, "GET", "/ws", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status = %d, want 101", resp.StatusCode)
			}
			if resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-Websocket-Accept") != "x" {
				t.Errorf("headers = %v", resp.Header)
			}
			rw, ok := resp.Body.(io.ReadWriteCloser)
			if !ok {
				t.Fatalf("body %T is not an io.ReadWriteCloser", resp.Body)
			}
			br := bufio.NewReader(rw)
			for _, msg := range []string{"hello", "sally", "port"} {
				fmt.Fprintf(rw, "%s\n", msg)
				got, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if want := strings.ToUpper(msg) + "\n"; got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			rw.Close()
			<-backendDone
		})
	}
}

// TestUpgradeRefused: a backend that does not switch protocols gives an
// ordinary response.
// TestUpgradeLargeMessages: an upgraded connection carries large bursts
// intact both ways (its relay switches from its small buffer to a large
// one and back).
func TestUpgradeLargeMessages(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			backendDone := make(chan struct{})
			c := start(t, tr.pair, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				near, far := net.Pipe()
				go func() {
					defer close(backendDone)
					defer far.Close()
					io.Copy(far, far) // echo
				}()
				ServeUpgrade(w, r, http.Header{}, near, UpgradeRequested(r))
			}))
			req := newReq(t, "GET", "/ws", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			rw := resp.Body.(io.ReadWriteCloser)
			for _, size := range []int{1, 1000, 1024, 300 << 10, 5, 2 << 20} {
				msg := make([]byte, size)
				for i := range msg {
					msg[i] = byte(i*7 + size)
				}
				go rw.Write(msg)
				got := make([]byte, size)
				if _, err := io.ReadFull(rw, got); err != nil {
					t.Fatalf("%d bytes: %v", size, err)
				}
				if sha256.Sum256(got) != sha256.Sum256(msg) {
					t.Fatalf("%d bytes came back damaged", size)
				}
			}
			rw.Close()
			<-backendDone
		})
	}
}

func TestUpgradeRefused(t *testing.T) {
	c := start(t, testnet.Pair, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	}))
	req := newReq(t, "GET", "/ws", nil)
	req.Header.Set("Connection", "keep-alive, Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status = %d, want 403", resp.StatusCode)
	}
}

// TestDoneWhenConnectorGoes: the cloud learns at once that the
// connection is gone, and requests in flight fail instead of hanging.
func TestDoneWhenConnectorGoes(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cconn, sconn := tr.pair(t)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan struct{})
			entered := make(chan struct{})
			go func() {
				defer close(served)
				Serve(ctx, cconn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					close(entered)
					<-r.Context().Done()
				}), ServerConfig{})
			}()
			c, err := NewClient(sconn, ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			errc := make(chan error, 1)
			go func() {
				resp, err := c.RoundTrip(newReq(t, "GET", "/slow", nil))
				if err == nil {
					resp.Body.Close()
				}
				errc <- err
			}()
			<-entered
			cconn.Close() // the connector's connection dies (as with kill -9)
			<-served
			cancel()
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("Done not closed 10s after the connector went away")
			}
			select {
			case err := <-errc:
				if err == nil {
					t.Error("request in flight succeeded after the connection closed")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("request in flight still hangs 10s after the connection closed")
			}
		})
	}
}

// TestDeadPeerDetected: a peer that stops answering (no FIN, no reads) is
// detected by PINGs with a deadline.
func TestDeadPeerDetected(t *testing.T) {
	cconn, sconn := net.Pipe()
	stall := make(chan struct{})
	go func() {
		// Answer the HTTP/2 preface and settings, then stop reading.
		buf := make([]byte, 4096)
		cconn.SetReadDeadline(time.Now().Add(time.Second))
		cconn.Read(buf)
		<-stall
		cconn.Close()
	}()
	defer close(stall)
	c, err := NewClient(sconn, ClientConfig{PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Ping(ctx); err == nil {
		t.Fatal("Ping to a stalled peer succeeded")
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stalled peer not detected within 10s")
	}
}

func TestUpgradeProtocol(t *testing.T) {
	tests := []struct {
		conn, upgrade, want string
	}{
		{"Upgrade", "websocket", "websocket"},
		{"keep-alive, upgrade", "websocket", "websocket"},
		{"keep-alive", "websocket", ""},
		{"", "websocket", ""},
		{"Upgrade", "", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.conn != "" {
			h.Set("Connection", tt.conn)
		}
		if tt.upgrade != "" {
			h.Set("Upgrade", tt.upgrade)
		}
		if got := UpgradeProtocol(h); got != tt.want {
			t.Errorf("UpgradeProtocol(Connection=%q, Upgrade=%q) = %q, want %q", tt.conn, tt.upgrade, got, tt.want)
		}
	}
}

var _ = bytes.NewReader

// TestNotSent: the errors that mean a request never left the cloud (and
// may go to another connector), and some that do not.
func TestNotSent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("%w: the connection takes no new request", ErrNotSent), true},
		// x/net/http2's own (internal/h2's TestNotSent makes each on a real connection).
		{errors.New("http2: client conn not usable"), true},
		{io.ErrUnexpectedEOF, false},
		{context.Canceled, false},
	} {
		if got := NotSent(tc.err); got != tc.want {
			t.Errorf("NotSent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
