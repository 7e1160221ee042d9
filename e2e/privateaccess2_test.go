package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	be "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/pgtest"
)

// More of issue 19's tests with programs no one here wrote (psql, dig,
// Go's resolver through SOCKS5 UDP ASSOCIATE), half-close through the
// whole path, refusals (another tenant's segment, SOCKS reply codes),
// 1 000 concurrent streams with a stalled reader, and failover.

var udpListeningRe = regexp.MustCompile(`Listening on (\S+) \(udp\): each client address`)

// needProgram finds a program no one here wrote, or skips (fails under
// CI=true, where .ci/run installs pkg).
func needProgram(t *testing.T, name, pkg string, also ...string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, pattern := range also {
			if m, _ := filepath.Glob(pattern); len(m) > 0 {
				return m[len(m)-1]
			}
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: .ci/run installs %s", name, pkg)
		}
		t.Skipf("%s is not installed (Debian package %s)", name, pkg)
	}
	return p
}

// tcpServer is a loopback TCP server run by the test: handle serves each
// connection; every connection is closed and every handler waited for
// when the test ends.
type tcpServer struct {
	addr     string
	port     string
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

func serveTCP(t *testing.T, handle func(c *net.TCPConn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	_, s.port, _ = net.SplitHostPort(s.addr)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			if s.conns == nil { // closing
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = true
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.conns = nil
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

// hashServer reads until the client's end (half-close), then answers how
// many bytes and their SHA-256, and closes: the answer comes after the
// client stopped sending.
func hashServer(c *net.TCPConn) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return
	}
	fmt.Fprintf(c, "got %d bytes sha256 %x\n", n, h.Sum(nil))
}

// socksHello opens a SOCKS5 session without authentication.
func socksHello(t *testing.T, proxy string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, cmdTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(cmdTimeout))
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b != [2]byte{5, 0} {
		t.Fatalf("SOCKS5 greeting: %v %v", b, err)
	}
	return c
}

// socksRequest sends a SOCKS5 request (cmd 1 CONNECT, 3 UDP ASSOCIATE)
// for host:port and returns the reply code and the bound address.
func socksRequest(c net.Conn, cmd byte, host string, port int) (byte, *net.UDPAddr, error) {
	req := []byte{5, cmd, 0}
	if ip := net.ParseIP(host).To4(); ip != nil {
		req = append(append(req, 1), ip...)
	} else {
		req = append(append(req, 3, byte(len(host))), host...)
	}
	req = be.BigEndian.AppendUint16(req, uint16(port))
	if _, err := c.Write(req); err != nil {
		return 0, nil, err
	}
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return 0, nil, err
	}
	var addr []byte
	switch head[3] {
	case 1:
		addr = make([]byte, 4+2)
	case 4:
		addr = make([]byte, 16+2)
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return 0, nil, err
		}
		addr = make([]byte, int(l[0])+2)
	default:
		return 0, nil, fmt.Errorf("SOCKS5 reply with address type %d", head[3])
	}
	if _, err := io.ReadFull(c, addr); err != nil {
		return 0, nil, err
	}
	var bound *net.UDPAddr
	if head[3] != 3 {
		bound = &net.UDPAddr{IP: net.IP(addr[:len(addr)-2]), Port: int(be.BigEndian.Uint16(addr[len(addr)-2:]))}
	}
	return head[1], bound, nil
}

// socksConnectReply is the reply code of a CONNECT to host:port.
func socksConnectReply(t *testing.T, proxy, host string, port int) byte {
	t.Helper()
	c := socksHello(t, proxy)
	defer c.Close()
	code, _, err := socksRequest(c, 1, host, port)
	if err != nil {
		t.Fatalf("SOCKS5 CONNECT %s:%d: %v", host, port, err)
	}
	return code
}

// socksUDPConn is one SOCKS5 UDP association used as a connected
// datagram socket to dest: each Write is one datagram with the SOCKS5 UDP
// header naming dest; each Read one answer without it. It is a
// net.PacketConn too, so that Go's resolver speaks DNS over UDP on it.
type socksUDPConn struct {
	ctrl net.Conn     // the association lives as long as this
	pc   *net.UDPConn // connected to the proxy's relay
	head []byte
	dest *net.UDPAddr
}

// socksAssociate performs UDP ASSOCIATE at proxy for datagrams to dest
// (an IPv4 address and port).
func socksAssociate(proxy string, dest *net.UDPAddr) (*socksUDPConn, error) {
	c, err := net.DialTimeout("tcp", proxy, cmdTimeout)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*socksUDPConn, error) { c.Close(); return nil, err }
	c.SetDeadline(time.Now().Add(cmdTimeout))
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return fail(err)
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b != [2]byte{5, 0} {
		return fail(fmt.Errorf("SOCKS5 greeting: %v %v", b, err))
	}
	code, relay, err := socksRequest(c, 3, "0.0.0.0", 0)
	if err != nil || code != 0 || relay == nil {
		return fail(fmt.Errorf("SOCKS5 UDP ASSOCIATE: reply %d, %v", code, err))
	}
	c.SetDeadline(time.Time{})
	if relay.IP.IsUnspecified() {
		relay.IP = net.IPv4(127, 0, 0, 1)
	}
	pc, err := net.DialUDP("udp", nil, relay)
	if err != nil {
		return fail(err)
	}
	head := append([]byte{0, 0, 0, 1}, dest.IP.To4()...)
	head = be.BigEndian.AppendUint16(head, uint16(dest.Port))
	return &socksUDPConn{ctrl: c, pc: pc, head: head, dest: dest}, nil
}

func (u *socksUDPConn) Write(p []byte) (int, error) {
	if _, err := u.pc.Write(append(append([]byte(nil), u.head...), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (u *socksUDPConn) Read(p []byte) (int, error) {
	buf := make([]byte, 65535+262)
	for {
		n, err := u.pc.Read(buf)
		if err != nil {
			return 0, err
		}
		d := buf[:n]
		if len(d) < 4 || d[2] != 0 {
			continue // not a whole datagram: dropped, as RFC 1928 says
		}
		var skip int
		switch d[3] {
		case 1:
			skip = 4 + 4 + 2
		case 4:
			skip = 4 + 16 + 2
		case 3:
			if len(d) < 5 {
				continue
			}
			skip = 4 + 1 + int(d[4]) + 2
		default:
			continue
		}
		if len(d) < skip {
			continue
		}
		return copy(p, d[skip:]), nil
	}
}

func (u *socksUDPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := u.Read(p)
	return n, u.dest, err
}
func (u *socksUDPConn) WriteTo(p []byte, _ net.Addr) (int, error) { return u.Write(p) }
func (u *socksUDPConn) Close() error {
	u.ctrl.Close()
	return u.pc.Close()
}
func (u *socksUDPConn) LocalAddr() net.Addr                { return u.pc.LocalAddr() }
func (u *socksUDPConn) RemoteAddr() net.Addr               { return u.dest }
func (u *socksUDPConn) SetDeadline(t time.Time) error      { return u.pc.SetDeadline(t) }
func (u *socksUDPConn) SetReadDeadline(t time.Time) error  { return u.pc.SetReadDeadline(t) }
func (u *socksUDPConn) SetWriteDeadline(t time.Time) error { return u.pc.SetWriteDeadline(t) }

// TestPrivateAccessPrograms: with the real binary, a cloud and a
// connector — psql runs statements against a real PostgreSQL through
// 'access tcp'; dig asks a DNS server through 'access udp', and Go's
// resolver through 'access socks”s UDP ASSOCIATE; half-close holds both
// ways through 'access tcp' and 'access stdio'; the refusals of 'access
// socks' are their SOCKS reply codes; and a destination that only another
// tenant's application covers is "outside every segment", its connector
// never asked.
func TestPrivateAccessPrograms(t *testing.T) {
	accessLog := filepath.Join(t.TempDir(), "access.log")
	pc := startPreauthCloud(t, "--access-log", accessLog)
	a := newRunner(t, "alice")
	pc.networkLogin(t, a, alice)
	port := func(s string) int { p, _ := strconv.Atoi(s); return p }

	t.Run("psql", func(t *testing.T) {
		psql := needProgram(t, "psql", "postgresql", "/usr/lib/postgresql/*/bin/psql")
		dsn, err := url.Parse(pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		pc.admin.ok(t, "", "admin", "app", "create", "pg", "--type", "tcp", "--internal-address", dsn.Host)
		pc.admin.ok(t, "", "admin", "app", "assign", "pg", "--user", alice)
		tcp := a.start(t, "access tcp pg", "access", "tcp", "pg", "--listen", "127.0.0.1:0")
		m, ok := tcp.waitOutput(listeningRe, readyTimeout)
		if !ok {
			t.Fatalf("access tcp does not listen:\n%s", tcp.out.String())
		}
		lhost, lport, _ := net.SplitHostPort(m[1])
		conninfo := fmt.Sprintf("host=%s port=%s dbname=%s user=%s sslmode=disable connect_timeout=30", lhost, lport, strings.TrimPrefix(dsn.Path, "/"), dsn.User.Username())
		sql := "CREATE TABLE hosts (name text PRIMARY KEY, port int);" +
			"INSERT INTO hosts VALUES ('db.corp', 5432), ('build1.corp', 22);" +
			"SELECT name || ':' || port FROM hosts ORDER BY name;"
		out, err := runSSH(t, a, cmdTimeout, psql, "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1", "--dbname", conninfo, "--command", sql)
		if err != nil || strings.TrimSpace(out) != "build1.corp:22\ndb.corp:5432" {
			t.Fatalf("psql through access tcp: %v\n%s", err, out)
		}
		tcp.stop()
	})

	dns := dnstest.Start(t)
	dns.SetA("db.corp", net.IPv4(10, 9, 8, 7))
	dnsAddr, _ := net.ResolveUDPAddr("udp", dns.Addr())
	pc.admin.ok(t, "", "admin", "app", "create", "dns", "--type", "udp", "--internal-address", dns.Addr())
	pc.admin.ok(t, "", "admin", "app", "assign", "dns", "--user", alice)

	t.Run("dig through access udp", func(t *testing.T) {
		dig := needProgram(t, "dig", "dnsutils")
		udp := a.start(t, "access udp dns", "access", "udp", "dns", "--listen", "127.0.0.1:0")
		m, ok := udp.waitOutput(udpListeningRe, readyTimeout)
		if !ok {
			t.Fatalf("access udp does not listen:\n%s", udp.out.String())
		}
		lhost, lport, _ := net.SplitHostPort(m[1])
		for _, name := range []string{"db.corp", "DB.corp."} { // two flows (dig's source ports differ)
			out, err := runSSH(t, a, cmdTimeout, dig, "@"+lhost, "-p", lport, name, "A", "+short", "+time=10", "+tries=1")
			if err != nil || strings.TrimSpace(out) != "10.9.8.7" {
				t.Fatalf("dig %s through access udp: %v\n%s\naccess udp:\n%s", name, err, out, udp.out.String())
			}
		}
		out, _ := runSSH(t, a, cmdTimeout, dig, "@"+lhost, "-p", lport, "nosuch.corp", "A", "+time=10", "+tries=1")
		if !strings.Contains(out, "status: NXDOMAIN") {
			t.Errorf("dig of a name the server does not know: want NXDOMAIN\n%s", out)
		}
		udp.stop()
		// Each flow's stream ends with access udp (not when the connector
		// finds it idle, 60 s later): the cloud logs it then.
		var flows int
		if !eventually(readyTimeout, func() bool {
			b, _ := os.ReadFile(accessLog)
			flows = strings.Count(string(b), `"app":"dns","connector"`)
			return flows >= 3
		}) {
			b, _ := os.ReadFile(accessLog)
			t.Errorf("the cloud logged %d ended udp streams of dns after access udp stopped, want 3:\n%s", flows, b)
		}
		// A flow without a datagram for --idle ends while access udp runs.
		udp = a.start(t, "access udp dns --idle", "access", "udp", "dns", "--listen", "127.0.0.1:0", "--idle", "1s")
		m, ok = udp.waitOutput(udpListeningRe, readyTimeout)
		if !ok {
			t.Fatalf("access udp does not listen:\n%s", udp.out.String())
		}
		lhost, lport, _ = net.SplitHostPort(m[1])
		if out, err := runSSH(t, a, cmdTimeout, dig, "@"+lhost, "-p", lport, "db.corp", "A", "+short", "+time=10", "+tries=1"); err != nil || strings.TrimSpace(out) != "10.9.8.7" {
			t.Fatalf("dig through access udp --idle 1s: %v\n%s", err, out)
		}
		if !eventually(readyTimeout, func() bool {
			b, _ := os.ReadFile(accessLog)
			return strings.Count(string(b), `"app":"dns","connector"`) >= flows+1
		}) {
			t.Errorf("the idle flow did not end:\n%s", udp.out.String())
		}
		if udp.exited() {
			t.Errorf("access udp ended with its flow:\n%s", udp.out.String())
		}
		udp.stop()
		a.refused(t, "", []string{"access", "udp", "nosuch"}, "contoso.com has no udp application named nosuch")
		a.refused(t, "", []string{"access", "udp", "dns", "--dest", "10.1.2.3:53"}, "10.1.2.3:53")
	})

	socks := a.start(t, "access socks", "access", "socks", "--listen", "127.0.0.1:0")
	m, ok := socks.waitOutput(socksRe, readyTimeout)
	if !ok {
		t.Fatalf("access socks does not listen:\n%s", socks.out.String())
	}
	proxy := m[1]

	t.Run("Go's resolver through SOCKS5 UDP ASSOCIATE", func(t *testing.T) {
		var dials atomic.Int32
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if network != "udp" {
				return nil, fmt.Errorf("the resolver asked for %s: this test carries only udp", network)
			}
			dials.Add(1)
			return socksAssociate(proxy, dnsAddr)
		}}
		ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
		defer cancel()
		addrs, err := r.LookupHost(ctx, "db.corp")
		if err != nil || len(addrs) != 1 || addrs[0] != "10.9.8.7" {
			t.Fatalf("LookupHost(db.corp) through access socks: %v, %v\naccess socks:\n%s", addrs, err, socks.out.String())
		}
		if _, err := r.LookupHost(ctx, "nosuch.corp"); !isNotFound(err) {
			t.Errorf("LookupHost(nosuch.corp): %v, want not found", err)
		}
		t.Logf("Go's resolver made %d SOCKS5 UDP associations", dials.Load())
	})

	t.Run("half-close", func(t *testing.T) {
		// The client ends its sending and still receives the answer.
		hs := serveTCP(t, hashServer)
		// The service ends its sending first; the client still sends.
		gotRest := make(chan int64, 4)
		sf := serveTCP(t, func(c *net.TCPConn) {
			io.WriteString(c, "bye\n")
			c.CloseWrite()
			n, _ := io.Copy(io.Discard, c)
			gotRest <- n
		})
		for _, s := range []*tcpServer{hs, sf} {
			pc.admin.ok(t, "", "admin", "app", "create", "half"+s.port, "--type", "tcp", "--internal-address", s.addr)
			pc.admin.ok(t, "", "admin", "app", "assign", "half"+s.port, "--user", alice)
		}
		payload := make([]byte, 3<<20)
		rand.Read(payload)
		want := fmt.Sprintf("got %d bytes sha256 %x\n", len(payload), sha256.Sum256(payload))

		// access stdio: the end of standard input is the half-close.
		res := a.ok(t, string(payload), "access", "stdio", "127.0.0.1", hs.port)
		if res.stdout != want {
			t.Errorf("access stdio after its input ended: %q, want %q", res.stdout, want)
		}

		// access tcp: CloseWrite on the local connection.
		tcp := a.start(t, "access tcp half", "access", "tcp", "half"+hs.port, "--listen", "127.0.0.1:0")
		m, ok := tcp.waitOutput(listeningRe, readyTimeout)
		if !ok {
			t.Fatalf("access tcp does not listen:\n%s", tcp.out.String())
		}
		c, err := net.Dial("tcp", m[1])
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(cmdTimeout))
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != want {
			t.Errorf("access tcp after the client's half-close: %q, %v; want %q", got, err, want)
		}
		tcp.stop()

		// The service's end reaches the client, which goes on sending.
		tcp = a.start(t, "access tcp half2", "access", "tcp", "half"+sf.port, "--listen", "127.0.0.1:0")
		m, ok = tcp.waitOutput(listeningRe, readyTimeout)
		if !ok {
			t.Fatalf("access tcp does not listen:\n%s", tcp.out.String())
		}
		c, err = net.Dial("tcp", m[1])
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(cmdTimeout))
		if got, err := io.ReadAll(c); err != nil || string(got) != "bye\n" {
			t.Fatalf("before the service's half-close: %q, %v", got, err)
		}
		if _, err := c.Write(payload); err != nil {
			t.Fatalf("sending after the service's half-close: %v", err)
		}
		c.(*net.TCPConn).CloseWrite()
		select {
		case n := <-gotRest:
			if n != int64(len(payload)) {
				t.Errorf("the service got %d bytes after its half-close, want %d", n, len(payload))
			}
		case <-time.After(cmdTimeout):
			t.Fatal("the service did not get the client's end")
		}
		c.Close()
		tcp.stop()
	})

	t.Run("refusals", func(t *testing.T) {
		pc.admin.ok(t, "", "admin", "app", "create", "probes", "--type", "tcp", "--internal-address", "127.0.0.1:1", "--internal-address", "nowhere.invalid:22")
		pc.admin.ok(t, "", "admin", "app", "assign", "probes", "--user", alice)
		pc.admin.ok(t, "", "admin", "group", "create", "empty")
		pc.admin.ok(t, "", "admin", "app", "create", "lonely", "--type", "tcp", "--internal-address", "10.255.255.1:22", "--group", "empty")
		pc.admin.ok(t, "", "admin", "app", "assign", "lonely", "--user", alice)
		only := serveTCP(t, hashServer)
		pc.admin.ok(t, "", "admin", "app", "create", "alices", "--type", "tcp", "--internal-address", only.addr)
		pc.admin.ok(t, "", "admin", "app", "assign", "alices", "--user", alice)

		// Another tenant's application covers a destination; its
		// connector runs with metrics.
		fab := pc.addFabrikam(t)
		st, res := pc.register(t, fab, filepath.Join(t.TempDir(), "fabrikam-connector"), "admin@fabrikam.com", "fabrikam-admin-password")
		if res.code != 0 || st.id == "" {
			t.Fatalf("registering fabrikam's connector:\n%s", res)
		}
		metrics := "127.0.0.1:" + freePort(t)
		pc.runConnector(t, fab, st, "--metrics-listen", metrics)
		theirs := serveTCP(t, hashServer)
		fab.ok(t, "", "admin", "app", "create", "secret", "--type", "tcp", "--internal-address", theirs.addr)

		tests := []struct {
			name  string
			args  []string // access stdio/tcp: exit 1 and the sentence
			want  string
			host  string // SOCKS5 CONNECT: the reply code
			port  int
			reply byte
		}{
			{"another tenant's segment (stdio)", []string{"access", "stdio", "127.0.0.1", theirs.port},
				theirs.addr + " is outside every tcp segment of contoso.com", "127.0.0.1", port(theirs.port), 2},
			{"another tenant's application by name", []string{"access", "tcp", "secret"}, "contoso.com has no tcp application named secret", "", 0, 0},
			{"another tenant's segment through one's own application", []string{"access", "tcp", "alices", "--dest", theirs.addr}, theirs.addr, "", 0, 0},
			{"outside every segment", []string{"access", "stdio", "db.corp", "5432"}, "db.corp:5432 is outside every tcp segment of contoso.com", "db.corp", 5432, 2},
			{"no connector", []string{"access", "stdio", "10.255.255.1", "22"}, "No connector is active in group 'empty'", "10.255.255.1", 22, 3},
			{"unreachable", []string{"access", "stdio", "nowhere.invalid", "22"}, "cannot reach nowhere.invalid:22", "nowhere.invalid", 22, 4},
			{"refused", []string{"access", "stdio", "127.0.0.1", "1"}, "connection was refused there", "127.0.0.1", 1, 5},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := a.refused(t, "", tt.args, tt.want)
				if res.code != 1 {
					t.Errorf("exit code %d, want 1", res.code)
				}
				if tt.host != "" {
					if got := socksConnectReply(t, proxy, tt.host, tt.port); got != tt.reply {
						t.Errorf("SOCKS5 reply %d, want %d", got, tt.reply)
					}
				}
			})
		}
		if n := theirs.accepted.Load(); n != 0 {
			t.Errorf("fabrikam's destination was dialled %d times for contoso.com's user", n)
		}
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(body, []byte("sallyport_connector_network_connections_total{")) {
			t.Errorf("fabrikam's connector was asked for a stream:\n%s", grepLines(string(body), "network_connections"))
		}

		// Unassigned: bob, signed in, has a SOCKS proxy of his own.
		b := newRunner(t, "bob")
		pc.networkLogin(t, b, bob)
		res = b.refused(t, "", []string{"access", "stdio", "127.0.0.1", only.port}, "(bob@contoso.com) are not assigned to the application alices")
		if res.code != 1 {
			t.Errorf("exit code %d, want 1", res.code)
		}
		bs := b.start(t, "access socks (bob)", "access", "socks", "--listen", "127.0.0.1:0")
		m, ok := bs.waitOutput(socksRe, readyTimeout)
		if !ok {
			t.Fatalf("access socks does not listen:\n%s", bs.out.String())
		}
		if got := socksConnectReply(t, m[1], "127.0.0.1", port(only.port)); got != 2 {
			t.Errorf("SOCKS5 reply for an unassigned user: %d, want 2", got)
		}
		if !eventually(readyTimeout, func() bool { return strings.Contains(bs.out.String(), "not assigned to the application alices") }) {
			t.Errorf("access socks did not print the refusal's sentence:\n%s", bs.out.String())
		}
		if n := only.accepted.Load(); n != 0 {
			t.Errorf("the destination was dialled %d times for an unassigned user", n)
		}

		// Unsigned: no sign-in on this machine.
		u := newRunner(t, "nobody")
		for _, args := range [][]string{{"access", "stdio", "127.0.0.1", only.port}, {"access", "tcp", "alices"}, {"access", "udp", "dns"}, {"access", "socks", "--listen", "127.0.0.1:0"}} {
			if res := u.refused(t, "", args, "not signed in", "--user NAME@DOMAIN"); res.code != 1 {
				t.Errorf("%v: exit code %d, want 1", args, res.code)
			}
		}
	})
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// grepLines are the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// TestPrivateAccessManyStreams: 1 000 TCP streams at once (200 with
// -short) through the real path — 'access tcp' → cloud → one connector →
// an echo service — every byte back intact, each stream with its own
// data; then one more stream whose reader stops while the service keeps
// sending (its windows fill) does not keep the others from completing
// their transfers. The throughput of the others with and without the
// stalled stream is logged, not asserted.
func TestPrivateAccessManyStreams(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	const size = 64 << 10 // bytes each way per stream and round
	// One user opens them all: lift the per-user rate and count, and the
	// cloud's connections per client address.
	pc := startPreauthCloud(t, "--access-stream-rate", "5000", "--access-stream-burst", "5000",
		"--access-max-streams-per-user", "5000", "--access-max-streams-per-tenant", "10000", "--max-conns-per-source", "8192")
	a := newRunner(t, "alice")
	pc.networkLogin(t, a, alice)

	var stalledSent atomic.Int64
	echo := serveTCP(t, func(c *net.TCPConn) {
		var mode [1]byte
		if _, err := io.ReadFull(c, mode[:]); err != nil {
			return
		}
		switch mode[0] {
		case 'E': // echo until the client's end, then end
			io.Copy(c, c)
			c.CloseWrite()
		case 'S': // send until the connection breaks
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Write(buf)
				stalledSent.Add(int64(n))
				if err != nil {
					return
				}
			}
		}
	})
	pc.admin.ok(t, "", "admin", "app", "create", "echo", "--type", "tcp", "--internal-address", echo.addr)
	pc.admin.ok(t, "", "admin", "app", "assign", "echo", "--user", alice)
	tcp := a.start(t, "access tcp echo", "access", "tcp", "echo", "--listen", "127.0.0.1:0")
	m, ok := tcp.waitOutput(listeningRe, readyTimeout)
	if !ok {
		t.Fatalf("access tcp does not listen:\n%s", tcp.out.String())
	}
	local := m[1]

	block := make([]byte, 1<<20)
	rand.Read(block)
	dataOf := func(i, round int) []byte { // each stream's own bytes
		off := (i*7919 + round*104729) % (len(block) - size)
		return block[off : off+size]
	}

	// Open them all (64 at a time), each proven open by a first echo.
	conns := make([]net.Conn, n)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	start := time.Now()
	if err := parallel(n, 64, func(i int) error {
		c, err := net.Dial("tcp", local)
		if err != nil {
			return err
		}
		conns[i] = c
		c.SetDeadline(time.Now().Add(2 * cmdTimeout))
		if _, err := io.WriteString(c, "Eping"); err != nil {
			return err
		}
		var b [4]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || string(b[:]) != "ping" {
			return fmt.Errorf("stream %d: first echo %q, %v", i, b, err)
		}
		return nil
	}); err != nil {
		t.Fatalf("opening %d streams: %v\naccess tcp:\n%s", n, err, tail(tcp.out.String(), 20))
	}
	t.Logf("%d streams open in %v", n, time.Since(start).Round(time.Millisecond))

	// A round: every stream sends its data and reads it back at once;
	// the last round ends each stream (half-close, then the service's
	// end). It must complete within the deadline; its throughput is
	// logged.
	round := func(name string, r int, last bool) {
		t.Helper()
		start := time.Now()
		err := parallel(n, n, func(i int) error {
			c := conns[i]
			c.SetDeadline(time.Now().Add(2 * cmdTimeout))
			want := dataOf(i, r)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(want)
				if err == nil && last {
					err = c.(*net.TCPConn).CloseWrite()
				}
				werr <- err
			}()
			got := make([]byte, size)
			_, rerr := io.ReadFull(c, got)
			if err := <-werr; err != nil {
				return fmt.Errorf("stream %d: sending: %v", i, err)
			}
			if rerr != nil {
				return fmt.Errorf("stream %d: receiving: %v", i, rerr)
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("stream %d: the data came back changed (sha256 %x, sent %x)", i, sha256.Sum256(got), sha256.Sum256(want))
			}
			if last {
				if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
					return fmt.Errorf("stream %d: after the echo, %d bytes and %v instead of the end", i, len(rest), err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v\naccess tcp:\n%s", name, err, tail(tcp.out.String(), 20))
		}
		d := time.Since(start)
		t.Logf("%s: %d streams × %d KiB each way in %v: %.1f MB/s each way in all", name, n, size>>10, d.Round(time.Millisecond), float64(n*size)/d.Seconds()/1e6)
	}
	round("without a stalled stream", 1, false)

	// One more stream stops reading while the service keeps sending.
	stalled, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := io.WriteString(stalled, "S"); err != nil {
		t.Fatal(err)
	}
	// Its windows are full when the service can send no more: the count
	// stays the same over half a second of polls.
	last, same := int64(-1), 0
	if !eventually(readyTimeout, func() bool {
		cur := stalledSent.Load()
		if cur > 0 && cur == last {
			same++
		} else {
			same = 0
		}
		last = cur
		return same >= 10
	}) {
		t.Fatalf("the stalled stream's service never stopped sending (%d bytes sent)", stalledSent.Load())
	}
	t.Logf("the stalled stream holds %d KiB on its way (service → connector → cloud → access tcp → client)", stalledSent.Load()>>10)
	round("beside the stalled stream", 2, true)
	if stalledSent.Load() != last {
		t.Logf("the stalled stream's service sent %d more bytes meanwhile", stalledSent.Load()-last)
	}
	stalled.Close()
	if out := tcp.out.String(); strings.Contains(out, "A connection from") {
		t.Errorf("access tcp reported failed connections:\n%s", tail(out, 20))
	}
}

// parallel runs f(0..n-1) with at most width at once and returns the
// first error.
func parallel(n, width int, f func(i int) error) error {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// connectorMetric is the sum of the samples of metric at a connector's
// metrics address (-1 when it does not answer).
func connectorMetric(addr, metric string) float64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, metric+"{") || strings.HasPrefix(line, metric+" ") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// TestPrivateAccessFailover: two connectors in the application's group;
// the one holding an established 'access tcp' stream is killed: the
// stream ends, 'access tcp' says it ended abruptly, and a new connection
// goes through the other connector.
func TestPrivateAccessFailover(t *testing.T) {
	skipUnlessLinux(t)
	pc := startPreauthCloud(t)
	a := newRunner(t, "alice")
	pc.networkLogin(t, a, alice)
	echo := serveTCP(t, func(c *net.TCPConn) { io.Copy(c, c) })
	pc.admin.ok(t, "", "admin", "group", "create", "ha")
	site := newRunner(t, "site")
	type conn struct {
		p       *proc
		metrics string
	}
	var cs []conn
	for i := range 2 {
		st, res := pc.register(t, site, filepath.Join(site.dir, fmt.Sprintf("connector%d", i+1)), contosoAdmin, contosoPW, "--ca-file", pc.caFile, "--group", "ha")
		if res.code != 0 || st.id == "" {
			t.Fatalf("registering a connector in group ha:\n%s", res)
		}
		metrics := "127.0.0.1:" + freePort(t)
		cs = append(cs, conn{p: pc.runConnector(t, pc.admin, st, "--metrics-listen", metrics), metrics: metrics})
	}
	pc.admin.ok(t, "", "admin", "app", "create", "held", "--type", "tcp", "--internal-address", echo.addr, "--group", "ha")
	pc.admin.ok(t, "", "admin", "app", "assign", "held", "--user", alice)
	tcp := a.start(t, "access tcp held", "access", "tcp", "held", "--listen", "127.0.0.1:0")
	m, ok := tcp.waitOutput(listeningRe, readyTimeout)
	if !ok {
		t.Fatalf("access tcp does not listen:\n%s", tcp.out.String())
	}
	local := m[1]
	echoed := func(c net.Conn, line string) error {
		c.SetDeadline(time.Now().Add(cmdTimeout))
		if _, err := io.WriteString(c, line); err != nil {
			return err
		}
		got := make([]byte, len(line))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != line {
			return fmt.Errorf("echo of %q: %q, %v", line, got, err)
		}
		return nil
	}

	c1, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if err := echoed(c1, "before\n"); err != nil {
		t.Fatal(err)
	}
	// Which connector holds it: the one with a connection open.
	holder := -1
	if !eventually(readyTimeout, func() bool {
		for i, c := range cs {
			if connectorMetric(c.metrics, "sallyport_connector_network_connections_open") == 1 {
				holder = i
				return true
			}
		}
		return false
	}) {
		t.Fatal("no connector reports the open connection")
	}
	cs[holder].p.signal(syscall.SIGKILL)
	if _, ok := cs[holder].p.waitExit(readyTimeout); !ok {
		t.Fatal("the killed connector did not end")
	}

	// The established stream ends; access tcp says why.
	c1.SetDeadline(time.Now().Add(cmdTimeout))
	n, err := io.Copy(io.Discard, c1)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the stream of the killed connector: %d bytes, %v (want its end)", n, err)
	}
	if _, ok := tcp.waitOutput(regexp.MustCompile(`The stream to \S+ ended abruptly: its connector or the cloud went away`), readyTimeout); !ok {
		t.Fatalf("access tcp did not say the stream ended abruptly:\n%s", tcp.out.String())
	}

	// A new connection goes through the other connector.
	c2, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := echoed(c2, "after\n"); err != nil {
		t.Fatalf("a new connection after the failover: %v\naccess tcp:\n%s", err, tcp.out.String())
	}
	other := cs[1-holder]
	if got := connectorMetric(other.metrics, "sallyport_connector_network_connections_open"); got != 1 {
		t.Errorf("the surviving connector has %v connections open, want 1", got)
	}
}
