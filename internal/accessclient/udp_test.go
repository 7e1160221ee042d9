package accessclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// fakeAccess is a cloud's access endpoint (ALPN sallyport-access/1) for
// one udp application: each stream echoes its datagrams, prefixed.
type fakeAccess struct {
	srv    *httptest.Server
	caFile string
	opened atomic.Int32 // streams (not checks)
	tried  atomic.Int32 // streams asked for (not checks), refused ones too
	refuse atomic.Int32 // streams still to refuse (the connector refused)
	ended  atomic.Int32
	mu     sync.Mutex
	reqs   []tunnel.AccessRequest
}

func startFakeAccess(t *testing.T) *fakeAccess {
	t.Helper()
	f := &fakeAccess{}
	f.srv = httptest.NewUnstartedServer(http.NotFoundHandler())
	f.srv.TLS = &tls.Config{NextProtos: []string{tunnel.AccessALPN}}
	f.srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){
		tunnel.AccessALPN: func(_ *http.Server, c *tls.Conn, _ http.Handler) {
			defer c.Close()
			br := bufio.NewReader(c)
			line, err := tunnel.ReadAccessLine(br)
			if err != nil {
				return
			}
			req, err := tunnel.ParseAccessRequest(line)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.reqs = append(f.reqs, req)
			f.mu.Unlock()
			if req.Network != tunnel.NetworkUDP || (req.App != "dns" && req.App != "") {
				tunnel.WriteAccessLine(c, tunnel.AccessAnswer{Code: tunnel.AccessNoApp, Message: "contoso.com has no " + req.Network + " application named " + req.App})
				return
			}
			if !req.Check {
				f.tried.Add(1)
				if f.refuse.Add(-1) >= 0 {
					tunnel.WriteAccessLine(c, tunnel.AccessAnswer{Code: tunnel.AccessRefused, Message: "The connector of group 'Default' reached dns.corp:53 but it refused"})
					return
				}
			}
			tunnel.WriteAccessLine(c, tunnel.AccessAnswer{OK: true, App: "dns", Dest: "dns.corp:53"})
			if req.Check {
				return
			}
			f.opened.Add(1)
			defer f.ended.Add(1)
			buf := make([]byte, tunnel.MaxDatagram)
			for {
				p, err := tunnel.ReadDatagram(br, buf)
				if err != nil {
					return
				}
				if tunnel.WriteDatagram(c, append([]byte("echo:"), p...)) != nil {
					return
				}
			}
		},
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	testnet.WriteFile(t, f.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})), 0o600)
	return f
}

// TestUDP: access udp makes each client address one flow (one stream),
// carries datagrams both ways, ends a flow idle for --idle (the next
// datagram opens another), refuses an unknown application at once, and
// leaves no goroutine behind.
func TestUDP(t *testing.T) {
	f := startFakeAccess(t)
	dir := t.TempDir()
	cloud := f.srv.URL + "/"
	a, err := parseApp(cloud)
	if err != nil {
		t.Fatal(err)
	}
	if err := save(dir, a.key, &saved{App: cloud, Network: true, CAFile: f.caFile, TokenURL: f.srv.URL + "/oauth/token",
		AccessToken: "spa_x", AccessExpires: time.Now().Add(time.Hour), RefreshToken: "spr_x", RefreshExpires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	o := Options{Dir: dir, AppURL: cloud}

	if err := UDP(t.Context(), UDPOptions{Options: o, App: "nosuch"}); err == nil || !strings.Contains(err.Error(), "no udp application named nosuch") {
		t.Fatalf("an unknown application: %v", err)
	}

	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan string, 1)
	out := &testnet.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- UDP(ctx, UDPOptions{Options: Options{Dir: dir, AppURL: cloud, Out: out}, App: "dns", Listen: "127.0.0.1:0",
			Idle: 300 * time.Millisecond, Ready: func(addr string) { ready <- addr }})
	}()
	addr := testnet.RecvWithin(t, "access udp listens", ready)
	ask := func(c net.Conn, q string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(testnet.Wait))
		if _, err := c.Write([]byte(q)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "echo:"+q {
			t.Fatalf("answer to %q: %q, %v", q, buf[:n], err)
		}
	}
	var clients []net.Conn
	for range 2 {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	ask(clients[0], "one")
	ask(clients[0], "two") // the same flow
	ask(clients[1], "three")
	if n := f.opened.Load(); n != 2 {
		t.Errorf("%d streams for two client addresses, want 2", n)
	}
	testnet.WaitUntil(t, "both flows end when idle", func() bool { return f.ended.Load() == 2 })
	ask(clients[0], "four") // a new flow
	if n := f.opened.Load(); n != 3 {
		t.Errorf("%d streams after an idle flow's address sent again, want 3", n)
	}
	// A flow that cannot open: the address's next datagrams are dropped
	// for a while, not each one a refused stream.
	udpRefusalBackoff = time.Minute
	defer func() { udpRefusalBackoff = 5 * time.Second }()
	f.refuse.Store(1)
	tried := f.tried.Load()
	c3, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.Write([]byte("refused"))
	testnet.WaitUntil(t, "the refusal is printed", func() bool {
		return strings.Contains(out.String(), "from "+c3.LocalAddr().String()+" was dropped (its datagrams are dropped for")
	})
	c3.Write([]byte("again"))
	ask(clients[1], "five") // after c3's "again" was read and dropped
	if n := f.tried.Load() - tried; n != 2 {
		t.Errorf("%d streams asked for after a refusal and a datagram in its backoff (and another client's), want 2", n)
	}
	cancel()
	if err := testnet.RecvWithin(t, "access udp ends", done); err != nil {
		t.Errorf("access udp ended with %v", err)
	}
	mustHave(t, out.String(), "Listening on 127.0.0.1:", "(udp): each client address is one flow to dns.corp:53 through the application dns")
	testnet.WaitUntil(t, "the fake's streams end", func() bool { return f.ended.Load() == f.opened.Load() })
	if err := goleak.Find(ignore); err != nil {
		t.Error(err)
	}
}

func mustHave(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%q lacks %q", s, w)
		}
	}
}
