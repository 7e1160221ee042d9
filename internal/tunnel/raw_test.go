package tunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
)

// rawHandler is a connector's handler that serves raw streams with dial
// (relayed HTTP requests go to relayHandler).
type rawHandler struct {
	http.Handler
	dial func(ctx context.Context, req RawRequest) (net.Conn, error)
}

func (h rawHandler) DialRaw(ctx context.Context, req RawRequest) (net.Conn, error) {
	return h.dial(ctx, req)
}

// dialAny dials every destination asked for.
func dialAny(ctx context.Context, req RawRequest) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, req.Network, req.Dest)
}

func startRaw(t testing.TB, cfg ServerConfig, dial func(context.Context, RawRequest) (net.Conn, error)) *relayEnv {
	t.Helper()
	return startRelay(t, rawHandler{Handler: relayHandler(), dial: dial}, cfg)
}

func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

func openRaw(t testing.TB, env *relayEnv, network, dest string) RawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	rc, err := env.c.OpenRaw(ctx, network, "a_1", dest, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	rc.SetDeadline(time.Now().Add(testWait))
	t.Cleanup(func() { rc.Close() })
	return rc
}

// TestRawRefusals: the connector's refusals reach the cloud as RawErrors
// with their codes and messages, and so does a connector without raw
// streams (an older one).
func TestRawRefusals(t *testing.T) {
	testnet.CheckLeaks(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name, dest string
		dial       func(context.Context, RawRequest) (net.Conn, error)
		code       string
	}{
		{"not covered", "db.corp:5432", func(context.Context, RawRequest) (net.Conn, error) {
			return nil, &RawError{Code: RawNotCovered, Message: "db.corp:5432 is not covered"}
		}, RawNotCovered},
		{"refused", refusedAddr, dialAny, RawRefused},
		{"unreachable", "nowhere.invalid:22", dialAny, RawUnreachable},
		{"coded refused", refusedAddr, func(ctx context.Context, req RawRequest) (net.Conn, error) {
			return nil, &RawError{Code: RawRefused, Message: req.Dest + " refused the connection"}
		}, RawRefused},
		{"busy", "db.corp:5432", func(context.Context, RawRequest) (net.Conn, error) {
			return nil, &RawError{Code: RawBusy, Message: "busy"}
		}, RawBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startRaw(t, ServerConfig{}, tc.dial)
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			rc, err := env.c.OpenRaw(ctx, "tcp", "a_1", tc.dest, "ada")
			var re *RawError
			if !errors.As(err, &re) || re.Code != tc.code || re.Message == "" {
				t.Fatalf("OpenRaw = %v, %v; want a RawError %s", rc, err, tc.code)
			}
			if env.c.InFlight() != 0 {
				t.Errorf("InFlight = %d after a refusal", env.c.InFlight())
			}
			env.get(t, "/small", smallBody) // the tunnel goes on
		})
	}
	t.Run("too many streams", func(t *testing.T) {
		addr := testnet.ServeTCP(t, echo)
		env := startRaw(t, ServerConfig{MaxConcurrentStreams: 1}, dialAny) // at most 4 streams
		for i := range 10 {
			rc, err := env.c.OpenRaw(context.Background(), "tcp", "a_1", addr, "ada")
			if err == nil {
				defer rc.Close() // held open
				continue
			}
			var re *RawError
			if !errors.As(err, &re) || re.Code != RawBusy || i < 3 {
				t.Fatalf("stream %d: OpenRaw = %v; want busy after 3", i+1, err)
			}
			return
		}
		t.Fatal("10 streams open at a connector that takes 4")
	})
	t.Run("older connector", func(t *testing.T) {
		env := startRelay(t, relayHandler(), ServerConfig{}) // no RawDialer: RESET 3
		_, err := env.c.OpenRaw(context.Background(), "udp", "a_1", "dns.corp:53", "ada")
		var re *RawError
		if !errors.As(err, &re) || re.Code != RawUnsupported {
			t.Fatalf("OpenRaw = %v; want a RawError unsupported", err)
		}
	})
	t.Run("version 1", func(t *testing.T) {
		c := start(t, tlsPair, relayHandler())
		_, err := c.OpenRaw(context.Background(), "tcp", "a_1", "db.corp:5432", "ada")
		var re *RawError
		if !errors.As(err, &re) || re.Code != RawUnsupported {
			t.Fatalf("OpenRaw = %v; want a RawError unsupported", err)
		}
	})
}

// TestRawHalfCloseFromClient: the client's CloseWrite reaches the
// destination as the end of its input, and the answer it sends after
// still arrives.
func TestRawHalfCloseFromClient(t *testing.T) {
	testnet.CheckLeaks(t)
	addr := testnet.ServeTCP(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c) // to the client's end
		fmt.Fprintf(c, "got %d bytes", n)
	})
	env := startRaw(t, ServerConfig{}, dialAny)
	rc := openRaw(t, env, "tcp", addr)
	body := testnet.RandBytes(300<<10, 1)
	if _, err := rc.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := rc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("got %d bytes", len(body)); string(got) != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
}

// TestRawHalfCloseFromDestination: the destination's CloseWrite reaches
// the client as EOF, and the client can still send to it.
func TestRawHalfCloseFromDestination(t *testing.T) {
	testnet.CheckLeaks(t)
	heard := make(chan string, 1)
	addr := testnet.ServeTCP(t, func(c net.Conn) {
		io.WriteString(c, "hello")
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		heard <- string(b)
	})
	env := startRaw(t, ServerConfig{}, dialAny)
	rc := openRaw(t, env, "tcp", addr)
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v; want hello then EOF", got, err)
	}
	if _, err := io.WriteString(rc, "after your end"); err != nil {
		t.Fatal(err)
	}
	rc.CloseWrite()
	if s := testnet.RecvWithin(t, "what the destination read", heard); s != "after your end" {
		t.Fatalf("destination read %q", s)
	}
}

// TestRawConcurrent: 1 000 tcp streams at once through one tunnel, all
// data intact.
func TestRawConcurrent(t *testing.T) {
	testnet.CheckLeaks(t)
	addr := testnet.ServeTCP(t, echo)
	env := startRaw(t, ServerConfig{}, dialAny)
	const streams, size = 1000, 32 << 10
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoOnce(env, addr, testnet.RandBytes(size, byte(i)), manyWait)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	testnet.WaitUntil(t, "every stream counted out", func() bool { return env.c.InFlight() == 0 })
}

// manyWait bounds the waits of a test of many streams at once: a thousand
// under the race detector on a loaded machine take more than testWait.
const manyWait = 12 * testWait

// echoOnce sends body through an echo destination and checks what comes
// back by its checksum.
func echoOnce(env *relayEnv, addr string, body []byte, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	rc, err := env.c.OpenRaw(ctx, "tcp", "a_1", addr, "ada")
	if err != nil {
		return err
	}
	defer rc.Close()
	rc.SetDeadline(time.Now().Add(wait))
	errc := make(chan error, 1)
	go func() {
		_, err := rc.Write(body)
		if err == nil {
			err = rc.CloseWrite()
		}
		errc <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if werr := <-errc; werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if want := sha256.Sum256(body); n != int64(len(body)) || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("echo: %d bytes back of %d, checksums differ", n, len(body))
	}
	return nil
}

// TestRawStalledReader: a stream whose client does not read, with the
// destination writing until its window is full, does not hold back the
// others on the same tunnel.
func TestRawStalledReader(t *testing.T) {
	testnet.CheckLeaks(t)
	var written atomic.Int64
	stop := make(chan struct{})
	flood := testnet.ServeTCP(t, func(c net.Conn) {
		go func() { <-stop; c.Close() }()
		chunk := testnet.RandBytes(64<<10, 7)
		for {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { close(stop) })
	addr := testnet.ServeTCP(t, echo)
	env := startRaw(t, ServerConfig{}, dialAny)
	stalled := openRaw(t, env, "tcp", flood)
	// The stream's window (4 MiB) is full once that much more than the
	// socket buffers hold was written; waiting for it proves the flood
	// runs, and the others below run while it does.
	testnet.WaitUntil(t, "the flood to fill the stalled stream's window", func() bool { return written.Load() >= 4<<20 })
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoOnce(env, addr, testnet.RandBytes(256<<10, byte(i)), manyWait)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The stalled stream was held, not broken: its bytes are all there.
	want := testnet.RandBytes(64<<10, 7)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(stalled, got); err != nil {
		t.Fatal(err)
	}
	testnet.SameBytes(t, "the stalled stream's first bytes", got, want)
}

// TestRawUDP: datagrams of every size go and come back whole, one per
// Read, and a flow idle for the configured time ends.
func TestRawUDP(t *testing.T) {
	testnet.CheckLeaks(t)
	addr := testnet.ServeUDP(t, func(d []byte) []byte { return d })
	env := startRaw(t, ServerConfig{UDPIdleTimeout: 300 * time.Millisecond}, dialAny)
	rc := openRaw(t, env, "udp", addr)
	buf := make([]byte, MaxRawDatagram+10)
	for _, n := range []int{1, 512, 1400, 9000, MaxRawDatagram} {
		d := testnet.RandBytes(n, byte(n))
		if _, err := rc.Write(d); err != nil {
			t.Fatal(err)
		}
		got, err := rc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		testnet.SameBytes(t, fmt.Sprintf("datagram of %d bytes", n), buf[:got], d)
	}
	if _, err := rc.Write(make([]byte, MaxRawDatagram+1)); err == nil {
		t.Error("a datagram over MaxRawDatagram was sent")
	}
	// Idle: the connector ends the flow (EOF here), with no datagram sent.
	if n, err := rc.Read(buf); err != io.EOF {
		t.Fatalf("Read after the idle timeout = %d, %v; want EOF", n, err)
	}
}

// TestRawDestinationGone: a destination that resets the connection ends
// the stream at the client with an error, and the tunnel goes on.
func TestRawDestinationGone(t *testing.T) {
	testnet.CheckLeaks(t)
	addr := testnet.ServeTCP(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 1)) // connected, surely
		c.(*net.TCPConn).SetLinger(0)   // RST
	})
	env := startRaw(t, ServerConfig{}, dialAny)
	rc := openRaw(t, env, "tcp", addr)
	io.WriteString(rc, "x")
	if _, err := io.ReadAll(rc); err == nil {
		// A reset may arrive as an EOF when the destination sent nothing;
		// either way the stream ends.
		t.Log("the reset came as EOF")
	}
	env.get(t, "/small", smallBody)
	testnet.WaitUntil(t, "the stream counted out", func() bool { rc.Close(); return env.c.InFlight() == 0 })
}
