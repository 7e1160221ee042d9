package socks5

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
	"golang.org/x/net/proxy"
)

// testDialer dials the names it knows to loopback addresses, records what
// it was asked, and refuses what a test says.
type testDialer struct {
	mu     sync.Mutex
	asked  []string          // "tcp HOST PORT"
	names  map[string]string // HOST:PORT asked → the loopback address dialled
	refuse map[string]error  // HOST:PORT → the error
}

func newTestDialer() *testDialer {
	return &testDialer{names: map[string]string{}, refuse: map[string]error{}}
}

func (d *testDialer) dial(ctx context.Context, network, host string, port uint16) (net.Conn, error) {
	hp := net.JoinHostPort(host, strconv.Itoa(int(port)))
	d.mu.Lock()
	d.asked = append(d.asked, network+" "+host+" "+strconv.Itoa(int(port)))
	to, ok := d.names[hp]
	err := d.refuse[hp]
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &ReplyError{ReplyNotAllowed, fmt.Errorf("%s is outside every segment", hp)}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

func (d *testDialer) DialTCP(ctx context.Context, host string, port uint16) (net.Conn, error) {
	return d.dial(ctx, "tcp", host, port)
}

func (d *testDialer) DialUDP(ctx context.Context, host string, port uint16) (net.Conn, error) {
	return d.dial(ctx, "udp", host, port)
}

func (d *testDialer) set(hostPort, to string) {
	d.mu.Lock()
	d.names[hostPort] = to
	d.mu.Unlock()
}

func (d *testDialer) lastAsked() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.asked) == 0 {
		return ""
	}
	return d.asked[len(d.asked)-1]
}

// startServer serves cfg on 127.0.0.1; the test's cleanup closes it and
// checks that Serve ended with ErrServerClosed.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// echoServer answers each line with "echo: " and the line, on 127.0.0.1
// or ::1.
func echoServer(t *testing.T, network, addr string) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s listener on %s: %v", network, addr, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b, _ := io.ReadAll(c) // until the client's half-close
				c.Write(append([]byte("echo: "), b...))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestConnect: through golang.org/x/net/proxy's SOCKS5 client, CONNECT
// to a name (handed to the dialer unresolved), an IPv4 and an IPv6
// address, with half-close kept both ways; refusals become the client's
// errors with the reply's words.
func TestConnect(t *testing.T) {
	testnet.CheckLeaks(t)
	d := newTestDialer()
	v4 := echoServer(t, "tcp", "127.0.0.1:0")
	d.set("db.corp:5432", v4)
	d.set("DB.Corp.:5432", v4)
	d.set(v4, v4)
	d.refuse["refused.corp:1"] = &ReplyError{ReplyConnectionRefused, errors.New("refused")}
	d.refuse["gone.corp:1"] = &ReplyError{ReplyHostUnreachable, errors.New("no such host")}
	d.refuse["plain.corp:1"] = errors.New("something else")
	_, addr := startServer(t, Config{Dialer: d})
	client, err := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dst, asked, err string
	}{
		{dst: "db.corp:5432", asked: "tcp db.corp 5432"},
		{dst: "DB.Corp.:5432", asked: "tcp DB.Corp. 5432"},
		{dst: v4, asked: "tcp 127.0.0.1 " + v4[strings.LastIndexByte(v4, ':')+1:]},
		{dst: "other.corp:22", asked: "tcp other.corp 22", err: "connection not allowed by ruleset"},
		{dst: "refused.corp:1", err: "connection refused"},
		{dst: "gone.corp:1", err: "host unreachable"},
		{dst: "plain.corp:1", err: "general SOCKS server failure"},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			c, err := client.Dial("tcp", tc.dst)
			if tc.err != "" {
				if err == nil {
					c.Close()
					t.Fatalf("Dial(%s) succeeded, want %q", tc.dst, tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("Dial(%s) = %v, want %q", tc.dst, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial(%s): %v", tc.dst, err)
			}
			defer c.Close()
			roundTrip(t, c)
			if tc.asked != "" && d.lastAsked() != tc.asked {
				t.Errorf("the dialer was asked %q, want %q", d.lastAsked(), tc.asked)
			}
		})
	}

	v6 := echoServer(t, "tcp", "[::1]:0")
	d.set(v6, v6)
	c, err := client.Dial("tcp", v6)
	if err != nil {
		t.Fatalf("Dial(%s): %v", v6, err)
	}
	defer c.Close()
	roundTrip(t, c)
	if !strings.HasPrefix(d.lastAsked(), "tcp ::1 ") {
		t.Errorf("IPv6: the dialer was asked %q", d.lastAsked())
	}
}

// roundTrip sends a line, half-closes, and wants the echo: the half-close
// reached the server (it reads to EOF) and the answer came back after it.
func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	want := testnet.RandBytes(100_000, 7)
	go func() {
		c.Write(want)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	testnet.SameBytes(t, "echo", got, append([]byte("echo: "), want...))
}

// rawClient is a SOCKS5 client written byte by byte.
type rawClient struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawClient{t: t, c: c}
}

func (r *rawClient) send(b ...byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// expect reads len(want) bytes and wants them.
func (r *rawClient) expect(want ...byte) {
	r.t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r.c, got); err != nil {
		r.t.Fatalf("read %x: %v", want, err)
	}
	if !bytes.Equal(got, want) {
		r.t.Fatalf("got % x, want % x", got, want)
	}
}

// expectClosed wants the server to close the connection, with nothing
// more to read.
func (r *rawClient) expectClosed() {
	r.t.Helper()
	b, err := io.ReadAll(r.c)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil // closed with bytes of ours unread
	}
	if err != nil || len(b) != 0 {
		r.t.Fatalf("after the answer: % x, %v; want the connection closed", b, err)
	}
}

// reply reads a reply and returns its code and bound address.
func (r *rawClient) reply() (byte, Addr) {
	r.t.Helper()
	var h [3]byte
	if _, err := io.ReadFull(r.c, h[:]); err != nil {
		r.t.Fatalf("reply: %v", err)
	}
	a, err := readAddr(r.c)
	if err != nil || h[0] != 5 || h[2] != 0 {
		r.t.Fatalf("reply % x %v, %v", h, a, err)
	}
	return h[1], a
}

// TestProtocol: the greeting, commands and addresses a client may send,
// answered byte for byte.
func TestProtocol(t *testing.T) {
	testnet.CheckLeaks(t)
	d := newTestDialer()
	_, addr := startServer(t, Config{Dialer: d})
	greet := []byte{5, 1, 0}
	connect := func(atyp byte, rest ...byte) []byte { return append([]byte{5, 1, 0, atyp}, rest...) }
	failure := func(code byte) []byte { return []byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0} }
	for _, tc := range []struct {
		name   string
		send   []byte
		expect []byte
	}{
		{"only username/password offered", []byte{5, 1, 2}, []byte{5, 0xFF}},
		{"no method offered", []byte{5, 0}, []byte{5, 0xFF}},
		{"GSSAPI and no-auth: no-auth chosen", []byte{5, 2, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 22}, append([]byte{5, 0}, failure(ReplyNotAllowed)...)},
		{"SOCKS4 greeting", []byte{4, 1, 0, 80, 10, 0, 0, 1, 0}, nil},
		{"BIND", append(greet, 5, 2, 0, 1, 10, 0, 0, 1, 0, 22), append([]byte{5, 0}, failure(ReplyCommandNotSupported)...)},
		{"unknown command", append(greet, 5, 9, 0, 1, 10, 0, 0, 1, 0, 22), append([]byte{5, 0}, failure(ReplyCommandNotSupported)...)},
		{"unknown address type", append(greet, connect(7, 1, 2, 3, 4, 0, 22)...), append([]byte{5, 0}, failure(ReplyAddressNotSupported)...)},
		{"empty name", append(greet, connect(3, 0, 0, 22)...), append([]byte{5, 0}, failure(ReplyHostUnreachable)...)},
		{"name with a space", append(greet, connect(3, 3, 'a', ' ', 'b', 0, 22)...), append([]byte{5, 0}, failure(ReplyHostUnreachable)...)},
		{"request of version 4", append(greet, 4, 1, 0, 1, 10, 0, 0, 1, 0, 22), []byte{5, 0}},
		{"outside the segments", append(greet, connect(3, 7, 'x', '.', 'c', 'o', 'r', 'p', '.', 0, 22)...), append([]byte{5, 0}, failure(ReplyNotAllowed)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			r.send(tc.send...)
			r.expect(tc.expect...)
			r.expectClosed()
		})
	}
	// A name of 255 bytes (the most a request carries) reaches the dialer.
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63)
	if len(long) != MaxDomain {
		t.Fatalf("len = %d", len(long))
	}
	r := dialRaw(t, addr)
	r.send(greet...)
	r.expect(5, 0)
	r.send(append(append(connect(3, byte(len(long))), long...), 0, 22)...)
	if code, _ := r.reply(); code != ReplyNotAllowed || d.lastAsked() != "tcp "+long+" 22" {
		t.Errorf("255-byte name: code %d, asked %q", code, d.lastAsked())
	}
	// An IP address sent as a name is handed over as the address.
	r = dialRaw(t, addr)
	r.send(greet...)
	r.expect(5, 0)
	r.send(append(append(connect(3, 8), "10.1.0.5"...), 0, 22)...)
	if code, _ := r.reply(); code != ReplyNotAllowed || d.lastAsked() != "tcp 10.1.0.5 22" {
		t.Errorf("IP as a name: code %d, asked %q", code, d.lastAsked())
	}
}

// TestHandshakeTimeout: a client that says nothing is disconnected.
func TestHandshakeTimeout(t *testing.T) {
	testnet.CheckLeaks(t)
	_, addr := startServer(t, Config{Dialer: newTestDialer(), HandshakeTimeout: 50 * time.Millisecond})
	r := dialRaw(t, addr)
	r.send(5) // half a greeting
	r.expectClosed()
}

// TestMaxConns: with MaxConns 1, a second client is served once the first
// has gone.
func TestMaxConns(t *testing.T) {
	testnet.CheckLeaks(t)
	s, addr := startServer(t, Config{Dialer: newTestDialer(), MaxConns: 1})
	first := dialRaw(t, addr)
	first.send(5, 1, 0)
	first.expect(5, 0)
	second := dialRaw(t, addr)
	second.send(5, 1, 0)
	if n := s.Active(); n != 1 {
		t.Errorf("Active = %d with MaxConns 1", n)
	}
	first.c.Close()
	second.expect(5, 0)
}

// TestCurl: curl --socks5-hostname reaches a web server by a name only
// the dialer knows (curl resolves nothing itself).
func TestCurl(t *testing.T) {
	testnet.CheckLeaks(t)
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed: .ci/run installs it")
		}
		t.Skip("curl is not installed")
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s%s", r.Host, r.URL.Path)
	}))
	defer web.Close()
	d := newTestDialer()
	d.set("intranet.corp:80", web.Listener.Addr().String())
	_, addr := startServer(t, Config{Dialer: d})
	for _, tc := range []struct {
		url, want string
		code      string // curl's exit code
	}{
		{"http://intranet.corp/wiki", "hello from intranet.corp/wiki", "0"},
		{"http://elsewhere.corp/", "", "97"}, // CURLE_PROXY: the proxy refused (not allowed by ruleset)
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, curl, "-sS", "--max-time", "20", "--socks5-hostname", addr, tc.url).CombinedOutput()
		cancel()
		code := "0"
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = strconv.Itoa(ee.ExitCode())
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || (tc.want != "" && string(out) != tc.want) {
			t.Errorf("curl %s: exit %s, %q; want exit %s, %q", tc.url, code, out, tc.code, tc.want)
		}
	}
	if got := d.lastAsked(); got != "tcp elsewhere.corp 80" {
		t.Errorf("the dialer was last asked %q", got)
	}
}

// udpEcho answers each datagram with "echo: " and it, on 127.0.0.1.
func udpEcho(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo: "), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}

// associate does the greeting and UDP ASSOCIATE on a new connection and
// returns it with the relay's address.
func associate(t *testing.T, addr string) (*rawClient, *net.UDPAddr) {
	t.Helper()
	r := dialRaw(t, addr)
	r.send(5, 1, 0)
	r.expect(5, 0)
	r.send(5, 3, 0, 1, 0, 0, 0, 0, 0, 0)
	code, bnd := r.reply()
	if code != ReplySucceeded || !bnd.IP.IsLoopback() || bnd.Port == 0 {
		t.Fatalf("UDP ASSOCIATE: code %d, relay %v", code, bnd)
	}
	return r, net.UDPAddrFromAddrPort(netip.AddrPortFrom(bnd.IP, bnd.Port))
}

// udpTo is a UDP socket of the client connected to the relay, closed at
// the test's end.
func udpTo(t *testing.T, relay *net.UDPAddr) *net.UDPConn {
	t.Helper()
	uc, err := net.DialUDP("udp", nil, relay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	uc.SetDeadline(time.Now().Add(30 * time.Second))
	return uc
}

// TestUDPAssociate: datagrams to two destinations (a name and an IP)
// through one association come back with their headers; a fragment is
// dropped, and so is a datagram from another port than the client's.
func TestUDPAssociate(t *testing.T) {
	testnet.CheckLeaks(t)
	d := newTestDialer()
	echo := udpEcho(t)
	d.set("dns.corp:53", echo)
	d.set(echo, echo)
	s, addr := startServer(t, Config{Dialer: d})
	ctrl, relay := associate(t, addr)
	uc := udpTo(t, relay)
	dns := Addr{Name: "dns.corp", Port: 53}
	ep := netip.MustParseAddrPort(echo)
	byIP := Addr{IP: ep.Addr(), Port: ep.Port()}

	// A fragment first: dropped, so the first answer is the next datagram's.
	frag := appendUDP(nil, dns, []byte("fragment"))
	frag[2] = 1
	uc.Write(frag)
	for i, tc := range []struct {
		dst  Addr
		data string
	}{{dns, "query one"}, {byIP, "query two"}, {dns, "query three"}} {
		if _, err := uc.Write(appendUDP(nil, tc.dst, []byte(tc.data))); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		n, err := uc.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		h, data, err := parseUDP(buf[:n])
		if err != nil || h.frag != 0 || h.dst != tc.dst || string(data) != "echo: "+tc.data {
			t.Fatalf("datagram %d: %+v %q %v; want from %v %q", i, h, data, err, tc.dst, "echo: "+tc.data)
		}
	}
	// Another socket of the client's host, once the client's port is fixed: dropped.
	other, err := net.DialUDP("udp", nil, relay)
	if err != nil {
		t.Fatal(err)
	}
	other.Write(appendUDP(nil, Addr{Name: "stranger.corp", Port: 53}, []byte("x")))
	other.Close()
	uc.Write(appendUDP(nil, dns, []byte("last")))
	buf := make([]byte, 65535)
	n, err := uc.Read(buf)
	if h, data, _ := parseUDP(buf[:n]); err != nil || string(data) != "echo: last" || h.dst != dns {
		t.Fatalf("last datagram: %q %v", data, err)
	}
	d.mu.Lock()
	asked := strings.Join(d.asked, ", ")
	d.mu.Unlock()
	if asked != "udp dns.corp 53, udp 127.0.0.1 "+strconv.Itoa(int(ep.Port())) {
		t.Errorf("the dialer was asked: %s (one flow per destination, no stranger)", asked)
	}
	// The association ends with its control connection.
	ctrl.c.Close()
	testnet.WaitUntil(t, "the association ends", func() bool { return s.Active() == 0 })
}

// TestUDPFlowLimit: an association with MaxUDPFlows 1 drops datagrams to
// a second destination, and keeps serving the first.
func TestUDPFlowLimit(t *testing.T) {
	testnet.CheckLeaks(t)
	d := newTestDialer()
	echo := udpEcho(t)
	d.set("a.corp:53", echo)
	d.set("b.corp:53", echo)
	_, addr := startServer(t, Config{Dialer: d, MaxUDPFlows: 1})
	_, relay := associate(t, addr)
	uc := udpTo(t, relay)
	a, b := Addr{Name: "a.corp", Port: 53}, Addr{Name: "b.corp", Port: 53}
	buf := make([]byte, 65535)
	for _, step := range []struct {
		dst  Addr
		data string
		want bool
	}{{a, "1", true}, {b, "2", false}, {a, "3", true}} {
		uc.Write(appendUDP(nil, step.dst, []byte(step.data)))
		if !step.want {
			continue
		}
		n, err := uc.Read(buf)
		if _, data, _ := parseUDP(buf[:n]); err != nil || string(data) != "echo: "+step.data {
			t.Fatalf("to %v: %q, %v", step.dst, data, err)
		}
	}
}

// TestReplyCode: a Replier anywhere in the chain chooses the code.
func TestReplyCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want byte
	}{
		{errors.New("x"), ReplyGeneralFailure},
		{&ReplyError{ReplyNotAllowed, errors.New("x")}, ReplyNotAllowed},
		{fmt.Errorf("wrapped: %w", &ReplyError{ReplyConnectionRefused, errors.New("x")}), ReplyConnectionRefused},
		{context.DeadlineExceeded, ReplyGeneralFailure},
	} {
		if got := ReplyCode(tc.err); got != tc.want {
			t.Errorf("ReplyCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestHalfCloseFromServer: a server that speaks first and then shuts its
// write side: the client reads its words and EOF, and can still send,
// which the server receives to its end.
func TestHalfCloseFromServer(t *testing.T) {
	testnet.CheckLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- err.Error()
			return
		}
		defer c.Close()
		c.Write([]byte("banner"))
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		received <- string(b)
	}()
	d := newTestDialer()
	d.set("ssh.corp:22", ln.Addr().String())
	_, addr := startServer(t, Config{Dialer: d})
	client, err := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial("tcp", "ssh.corp:22")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "banner" {
		t.Fatalf("read %q, %v; want the banner then EOF", b, err)
	}
	if _, err := c.Write([]byte("after the server's EOF")); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	if got := testnet.RecvWithin(t, "what the server received", received); got != "after the server's EOF" {
		t.Errorf("the server received %q", got)
	}
}

// TestUDPIdle: a flow idle for UDPIdleTimeout ends; the next datagram to
// its destination dials again and is answered.
func TestUDPIdle(t *testing.T) {
	testnet.CheckLeaks(t)
	d := newTestDialer()
	d.set("dns.corp:53", udpEcho(t))
	ended := make(chan string, 4)
	_, addr := startServer(t, Config{Dialer: d, UDPIdleTimeout: 50 * time.Millisecond, Logf: func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); strings.Contains(msg, "idle") {
			ended <- msg
		}
	}})
	_, relay := associate(t, addr)
	uc := udpTo(t, relay)
	dns := Addr{Name: "dns.corp", Port: 53}
	buf := make([]byte, 65535)
	for i, q := range []string{"before", "after"} {
		uc.Write(appendUDP(nil, dns, []byte(q)))
		n, err := uc.Read(buf)
		if _, data, _ := parseUDP(buf[:n]); err != nil || string(data) != "echo: "+q {
			t.Fatalf("%s: %q, %v", q, data, err)
		}
		if i == 0 {
			if msg := testnet.RecvWithin(t, "the flow's end", ended); !strings.Contains(msg, "UDP flow to dns.corp:53 ended: idle") {
				t.Errorf("logged %q", msg)
			}
		}
	}
	d.mu.Lock()
	n := len(d.asked)
	d.mu.Unlock()
	if n != 2 {
		t.Errorf("%d dials, want 2 (one before and one after the idle end)", n)
	}
}
