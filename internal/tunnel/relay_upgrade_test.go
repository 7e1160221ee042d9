package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel/mux"
)

// upgradeBackend is an in-memory backend of an upgraded connection: the
// handler splices near; the test's script runs on far.
type upgradeBackend struct {
	script func(far net.Conn)
	done   chan struct{}      // closed when the script returned
	seen   chan *http.Request // the requests the handler was given
}

func newUpgradeBackend(script func(far net.Conn)) *upgradeBackend {
	return &upgradeBackend{script: script, done: make(chan struct{}), seen: make(chan *http.Request, 4)}
}

// handler upgrades requests that ask for it, serves /small and refuses
// others with 403.
func (b *upgradeBackend) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, smallBody)
			return
		}
		b.seen <- r
		proto := UpgradeRequested(r)
		if proto != "websocket" {
			http.Error(w, "no upgrade here", http.StatusForbidden)
			return
		}
		near, far := net.Pipe()
		go func() {
			defer close(b.done)
			defer far.Close()
			b.script(far)
		}()
		ServeUpgrade(w, r, http.Header{"Sec-Websocket-Accept": {"x"}}, near, proto)
	})
}

func upgradeReq(t *testing.T, ctx context.Context) *http.Request {
	t.Helper()
	req := relayReq(t, ctx, "GET", "/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	return req
}

// upgrade sends an upgrade request and returns the upgraded connection.
func upgrade(t *testing.T, c *Client) io.ReadWriteCloser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	resp, err := c.RoundTrip(upgradeReq(t, ctx))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.ProtoMajor != 1 {
		t.Fatalf("answer %s %d, want HTTP/1.1 101", resp.Proto, resp.StatusCode)
	}
	if resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-Websocket-Accept") != "x" || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Errorf("headers of the 101: %v", resp.Header)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("body %T is not an io.ReadWriteCloser", resp.Body)
	}
	return rw
}

// TestRelayUpgrade: on a version 2 tunnel an upgrade travels on a relay
// stream of kind http/1.1-upgrade, which becomes the upgraded connection.
func TestRelayUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(far net.Conn)
		client func(t *testing.T, rw io.ReadWriteCloser)
	}{
		{
			name: "echo in upper case",
			script: func(far net.Conn) {
				sc := bufio.NewScanner(far)
				for sc.Scan() {
					fmt.Fprintf(far, "%s\n", strings.ToUpper(sc.Text()))
				}
			},
			client: func(t *testing.T, rw io.ReadWriteCloser) {
				br := bufio.NewReader(rw)
				for _, msg := range []string{"hello", "sally", "port"} {
					fmt.Fprintf(rw, "%s\n", msg)
					got, err := br.ReadString('\n')
					if want := strings.ToUpper(msg) + "\n"; err != nil || got != want {
						t.Fatalf("got %q, %v; want %q", got, err, want)
					}
				}
			},
		},
		{
			name:   "large bursts both ways",
			script: func(far net.Conn) { io.Copy(far, far) },
			client: func(t *testing.T, rw io.ReadWriteCloser) {
				for _, size := range []int{1, 1024, 1025, 300 << 10, 5, 5 << 20} {
					msg := make([]byte, size)
					for i := range msg {
						msg[i] = byte(i*7 + size)
					}
					werr := make(chan error, 1)
					go func() { _, err := rw.Write(msg); werr <- err }()
					got := make([]byte, size)
					if _, err := io.ReadFull(rw, got); err != nil {
						t.Fatalf("%d bytes: %v", size, err)
					}
					if err := <-werr; err != nil {
						t.Fatalf("writing %d bytes: %v", size, err)
					}
					if sha256.Sum256(got) != sha256.Sum256(msg) {
						t.Fatalf("%d bytes came back damaged", size)
					}
				}
			},
		},
		{
			name: "the backend speaks first, then ends: all of it, then EOF",
			script: func(far net.Conn) {
				io.WriteString(far, "welcome\n")
				io.WriteString(far, strings.Repeat("x", 100<<10)+"\nbye\n")
			},
			client: func(t *testing.T, rw io.ReadWriteCloser) {
				got, err := io.ReadAll(rw)
				if want := "welcome\n" + strings.Repeat("x", 100<<10) + "\nbye\n"; err != nil || string(got) != want {
					t.Fatalf("read %d bytes (%v), want %d and EOF", len(got), err, len(want))
				}
			},
		},
		{
			name: "the client ends: the backend sees EOF",
			script: func(far net.Conn) {
				io.Copy(io.Discard, far)
			},
			client: func(t *testing.T, rw io.ReadWriteCloser) {
				io.WriteString(rw, "one message\n")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			b := newUpgradeBackend(tc.script)
			env := startRelay(t, b.handler(), ServerConfig{})
			rw := upgrade(t, env.c)
			r := <-b.seen
			if r.ProtoMajor != 1 || RelayStateOf(r.Context()) == nil || RelayStateOf(r.Context()).Upgrade != "websocket" {
				t.Errorf("the handler saw %s, relay state %+v; want HTTP/1.1 on an upgrade relay stream", r.Proto, RelayStateOf(r.Context()))
			}
			tc.client(t, rw)
			rw.Close()
			select {
			case <-b.done:
			case <-time.After(testWait):
				t.Fatal("the backend's side did not end after the client closed")
			}
			if n := env.c.InFlight(); n != 0 {
				// The count ends when the body closes.
				t.Errorf("InFlight = %d after the upgraded connection closed", n)
			}
			env.get(t, "/small", smallBody) // the tunnel still serves
		})
	}
}

// TestRelayUpgradeRefused: a backend that does not switch protocols gives
// an ordinary answer, and the upgrade stream ends with it.
func TestRelayUpgradeRefused(t *testing.T) {
	testnet.CheckLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, smallBody)
			return
		}
		if UpgradeRequested(r) != "websocket" {
			t.Errorf("the handler saw no upgrade: %v", r.Header)
		}
		http.Error(w, "no upgrade here", http.StatusForbidden)
	})
	env := startRelay(t, h, ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for range 3 {
		resp, body := env.do(t, upgradeReq(t, ctx))
		if resp.StatusCode != http.StatusForbidden || string(body) != "no upgrade here\n" {
			t.Fatalf("refused upgrade: %d %q", resp.StatusCode, body)
		}
	}
	env.get(t, "/small", smallBody)
	if n := env.c.InFlight(); n != 0 {
		t.Errorf("InFlight = %d", n)
	}
}

// TestRelayUpgradeBadRequest: an upgrade stream whose request is not an
// upgrade, or has a body, is reset; the connector's handler never sees it.
func TestRelayUpgradeBadRequest(t *testing.T) {
	testnet.CheckLeaks(t)
	b := newUpgradeBackend(func(net.Conn) {})
	env := startRelay(t, b.handler(), ServerConfig{})
	for _, raw := range []string{
		"GET /ws HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"POST /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 3\r\n\r\nabc",
	} {
		msg, _ := json.Marshal(OpenMessage{Kind: RelayKindUpgrade, App: "a_1"})
		st, err := env.c.sess.Open(msg)
		if err != nil {
			t.Fatal(err)
		}
		st.SetDeadline(time.Now().Add(testWait))
		io.WriteString(st, raw)
		_, err = io.ReadAll(st)
		var se *mux.StreamError
		if !errors.As(err, &se) || se.Code != mux.ResetProtocol {
			t.Errorf("%q: read %v, want a mux.StreamError with mux.ResetProtocol", raw, err)
		}
		st.Close()
	}
	select {
	case r := <-b.seen:
		t.Errorf("the handler was given %s %s", r.Method, r.URL)
	default:
	}
}

// TestRelayUpgradeOlderConnector: a version 2 connector that does not know
// upgrade relay streams (it resets them as unsupported) still gets its
// WebSockets, on stream 0; the cloud stops asking it.
func TestRelayUpgradeOlderConnector(t *testing.T) {
	testnet.CheckLeaks(t)
	b := newUpgradeBackend(func(far net.Conn) { io.Copy(far, far) })
	cconn, sconn := tlsBatchPair(t, ALPN2, ALPN)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	var opened sync.WaitGroup
	go func() {
		defer close(served)
		// ServeSession as it was before upgrade relay streams.
		sess := mux.NewSession(cconn, false, mux.SessionConfig{})
		opened.Go(func() {
			for {
				st, err := sess.Accept()
				if err != nil {
					return
				}
				var om OpenMessage
				json.Unmarshal(st.OpenMessage(), &om)
				if om.Kind != RelayKindHTTP {
					st.CloseWithCode(mux.ResetUnsupported, "unknown kind")
					continue
				}
				opened.Go(func() { serveRelay(st, b.handler(), ServerConfig{}) })
			}
		})
		serveH2(ctx, sess.Stream0(), b.handler(), ServerConfig{}.withDefaults(), false)
		sess.Close()
	}()
	c, err := NewClient(sconn, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Close()
		cancel()
		<-served
		opened.Wait()
	}()
	rw := upgrade(t, c)
	if r := <-b.seen; r.ProtoMajor != 2 {
		t.Errorf("the handler saw %s, want the upgrade on stream 0 (HTTP/2)", r.Proto)
	}
	if !c.noRelayUpgrade.Load() {
		t.Error("the client did not note that the connector lacks upgrade relay streams")
	}
	msg := bytes.Repeat([]byte("echo "), 1000)
	go rw.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(rw, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo on stream 0: %v", err)
	}
	rw.Close()
	<-b.done
}

// TestUpgradedConn: layers of UpgradedConn pass reads and writes through,
// run every layer's close, and io.Copy to and from them goes through the
// innermost connection.
func TestUpgradedConn(t *testing.T) {
	near, far := net.Pipe()
	var closed []string
	inner := UpgradedConn(near, func() error { closed = append(closed, "inner"); return near.Close() })
	outer := UpgradedConn(inner, func() error { closed = append(closed, "outer"); return inner.Close() })
	go func() {
		io.WriteString(far, strings.Repeat("a", 3000))
		far.Close()
	}()
	var got bytes.Buffer
	n, err := io.Copy(&got, outer) // WriteTo
	if err != nil || n != 3000 || got.String() != strings.Repeat("a", 3000) {
		t.Fatalf("io.Copy from the connection: %d bytes, %v", n, err)
	}
	near2, far2 := net.Pipe()
	c2 := UpgradedConn(UpgradedConn(near2, near2.Close), near2.Close)
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(far2)
		done <- b
	}()
	n, err = io.Copy(c2, strings.NewReader(strings.Repeat("b", 5000))) // ReadFrom
	c2.Close()
	if b := <-done; err != nil || n != 5000 || string(b) != strings.Repeat("b", 5000) {
		t.Fatalf("io.Copy to the connection: %d bytes, %v; the far end read %d", n, err, len(b))
	}
	outer.Close()
	if strings.Join(closed, ",") != "outer,inner" {
		t.Errorf("closed %v, want outer then inner", closed)
	}
}

// TestRelayUpgradeLargeHeads: the small buffers of an upgrade stream carry
// request and response heads far larger than themselves.
func TestRelayUpgradeLargeHeads(t *testing.T) {
	testnet.CheckLeaks(t)
	big := strings.Repeat("c", 6000)
	done := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "big="+big {
			t.Errorf("the connector got a Cookie of %d bytes, want %d", len(r.Header.Get("Cookie")), len(big)+4)
		}
		near, far := net.Pipe()
		go func() {
			defer close(done)
			defer far.Close()
			io.Copy(far, far)
		}()
		ServeUpgrade(w, r, http.Header{"X-Big": {big}}, near, UpgradeRequested(r))
	})
	env := startRelay(t, h, ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	req := upgradeReq(t, ctx)
	req.Header.Set("Cookie", "big="+big)
	resp, err := env.c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Big") != big {
		t.Fatalf("answer %d with X-Big of %d bytes", resp.StatusCode, len(resp.Header.Get("X-Big")))
	}
	rw := resp.Body.(io.ReadWriteCloser)
	go io.WriteString(rw, big)
	got := make([]byte, len(big))
	if _, err := io.ReadFull(rw, got); err != nil || string(got) != big {
		t.Fatalf("echo: %v", err)
	}
	rw.Close()
	<-done
}

// TestUpgradeOutlivesRequestContext: once switched, an upgraded connection
// ends only when its body is closed, not with the request's context (the
// edge lets go of the request that asked for it) — on both protocols.
func TestUpgradeOutlivesRequestContext(t *testing.T) {
	for _, proto := range []int{2, 1} {
		t.Run(fmt.Sprintf("tunnel protocol %d", proto), func(t *testing.T) {
			testnet.CheckLeaks(t)
			b := newUpgradeBackend(func(far net.Conn) { io.Copy(far, far) })
			var c *Client
			if proto == 2 {
				c = startRelay(t, b.handler(), ServerConfig{}).c
			} else {
				c = start(t, tlsPair, b.handler())
			}
			ctx, cancel := context.WithCancel(context.Background())
			resp, err := c.RoundTrip(upgradeReq(t, ctx))
			if err != nil {
				t.Fatal(err)
			}
			<-b.seen
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", resp.StatusCode)
			}
			cancel() // the request is over
			rw := resp.Body.(io.ReadWriteCloser)
			for _, msg := range []string{"still", "here"} {
				go io.WriteString(rw, msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(rw, got); err != nil || string(got) != msg {
					t.Fatalf("echo after the request's context ended: %q, %v", got, err)
				}
			}
			rw.Close()
			select {
			case <-b.done:
			case <-time.After(testWait):
				t.Fatal("closing the body did not end the backend's side")
			}
		})
	}
}
