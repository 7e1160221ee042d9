package connector

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// upgradeBackend answers upgrades of paths ending in /ws to "echo": after its 101 (and, in the
// same write, a greeting) it echoes lines in upper case. Anything else
// gets 403. It reports each request it was given.
func upgradeBackend(t *testing.T) (*httptest.Server, chan *http.Request) {
	t.Helper()
	seen := make(chan *http.Request, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		if !strings.HasSuffix(r.URL.Path, "/ws") || !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
			http.Error(w, "no upgrade here", http.StatusForbidden)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nSallyport-Error: forged\r\n\r\nwelcome\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

// TestDirectUpgrade: an upgrade on a relay stream goes to a backend
// connection of its own; after the backend's 101 the stream and that
// connection are one, the backend's first bytes included.
func TestDirectUpgrade(t *testing.T) {
	srv, seen := upgradeBackend(t)
	env := startDirect(t, appAt("a_ws", "ws-app", srv.URL+"/base/"))
	ctx, cancel := context.WithTimeout(context.Background(), directWait)
	defer cancel()

	t.Run("switched", func(t *testing.T) {
		req := env.req(t, ctx, "GET", "a_ws", "/ws?room=1", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "echo")
		resp, err := env.client.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get(tunnel.HeaderError) != "" {
			t.Fatalf("answer %d %v, want 101 without the backend's forged header", resp.StatusCode, resp.Header)
		}
		r := <-seen
		if r.URL.RequestURI() != "/base/ws?room=1" {
			t.Errorf("the backend got %s", r.URL.RequestURI())
		}
		if r.Header.Get(tunnel.HeaderApp) != "" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			t.Errorf("the backend got headers %v: want Connection: Upgrade and no tunnel headers", r.Header)
		}
		rw := resp.Body.(io.ReadWriteCloser)
		br := bufio.NewReader(rw)
		for _, want := range []string{"welcome", "HELLO", "SALLY"} {
			if want != "welcome" {
				fmt.Fprintf(rw, "%s\n", strings.ToLower(want))
			}
			got, err := br.ReadString('\n')
			if err != nil || got != want+"\n" {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
		}
		rw.Close()
	})

	t.Run("not switched", func(t *testing.T) {
		req := env.req(t, ctx, "GET", "a_ws", "/other", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "echo")
		resp, body := env.do(t, req)
		<-seen
		if resp.StatusCode != http.StatusForbidden || string(body) != "no upgrade here\n" {
			t.Fatalf("answer %d %q, want the backend's 403", resp.StatusCode, body)
		}
	})

	// An upgrade is counted when its handler returns, once the connection
	// has ended at the connector too.
	deadline := time.Now().Add(directWait)
	for env.served("ws-app", http.StatusSwitchingProtocols) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := env.served("ws-app", http.StatusSwitchingProtocols); got != 1 {
		t.Errorf("requests_total{ws-app,101} = %v, want 1", got)
	}
}

// TestDirectUpgradeBackendDown: an upgrade to a backend that refuses the
// connection gets the same error page and event 1400 as a request.
func TestDirectUpgradeBackendDown(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()
	env := startDirect(t, appAt("a_down", "down-app", closedURL))
	ctx, cancel := context.WithTimeout(context.Background(), directWait)
	defer cancel()
	req := env.req(t, ctx, "GET", "a_down", "/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	id := req.Header.Get(tunnel.HeaderRequestID)
	resp, body := env.do(t, req)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(tunnel.HeaderError) != "backend_refused" {
		t.Fatalf("answer %d %q %s, want 502 backend_refused", resp.StatusCode, resp.Header.Get(tunnel.HeaderError), body)
	}
	var found bool
	for _, e := range env.events(t, 1400) {
		found = found || (e.Fields["app"] == "down-app" && e.Fields["request_id"] == id && e.Fields["code"] == "backend_refused")
	}
	if !found {
		t.Errorf("no event 1400 for the upgrade %s", id)
	}
}
