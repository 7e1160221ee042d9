package connector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Tests of private access at the connector (raw.go): raw streams on a
// real version 2 session (TLS on loopback) to a Connector's handler, whose
// configuration holds network applications.

// netAppConfig is a network application's configuration.
func netAppConfig(id, name, typ string, segs ...string) tunnel.AppConfig {
	return tunnel.AppConfig{ID: id, Name: name, Type: typ, Segments: segs}
}

// startRawEnv starts a connector with apps and a version 2 tunnel to it.
func startRawEnv(t *testing.T, apps ...tunnel.AppConfig) *directEnv {
	t.Helper()
	c, cloud, dir := newTestConnector(t, apps...)
	env := &directEnv{c: c, dir: dir}
	connEnd, cloudEnd := directTLSPair(t, cloud, tunnel.ALPN2, tunnel.ALPN)
	env.serveTunnel(t, connEnd, cloudEnd, 2, "ServeSession", tunnel.ServeSession, rawHandler{Handler: c.handler, d: c.handler})
	return env
}

// echoServer echoes each connection on loopback and ends its direction
// after the client's; it returns its port.
func echoServer(t *testing.T) string {
	return portOf(testnet.ServeTCP(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	}))
}

// TestRawDestinations: the connector dials a destination only when the
// application's segments cover it — refusals for every way one can be
// outside them, with their code and a message naming the destination,
// event 1500 and the metrics.
func TestRawDestinations(t *testing.T) {
	testnet.CheckLeaks(t)
	port := echoServer(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := portOf(closed.Addr().String())
	closed.Close()
	env := startRawEnv(t,
		netAppConfig("a_name", "db", "tcp", "db.corp:5432", "localhost:"+port),
		netAppConfig("a_wild", "wild", "tcp", "*.corp.contoso.com:443"),
		netAppConfig("a_ip", "ip", "tcp", "10.1.0.5:22", "127.0.0.1:"+port, "127.0.0.1:"+closedPort),
		netAppConfig("a_prefix", "prefix", "tcp", "10.2.0.0/16:22"),
		netAppConfig("a_dnsout", "dnsout", "tcp", "10.0.0.0/8:"+port),
		netAppConfig("a_dnsin", "dnsin", "tcp", "127.0.0.0/8:"+port, "[::1]:"+port),
		netAppConfig("a_udp", "dns", "udp", "127.0.0.1:53"),
		appAt("a_web", "web", "http://127.0.0.1:1"),
	)
	for _, tc := range []struct {
		name, network, app, dest string
		code                     string // "" for a connection that echoes
	}{
		{"name", "tcp", "a_name", "other.corp:5432", tunnel.RawNotCovered},
		{"name, other port", "tcp", "a_name", "db.corp:5433", tunnel.RawNotCovered},
		{"an IP is not its name's segment", "tcp", "a_name", "127.0.0.1:" + port, tunnel.RawNotCovered},
		{"name covered", "tcp", "a_name", "LOCALHOST.:" + port, ""},
		{"wildcard apex", "tcp", "a_wild", "corp.contoso.com:443", tunnel.RawNotCovered},
		{"wildcard, other domain", "tcp", "a_wild", "db.contoso.com:443", tunnel.RawNotCovered},
		{"IP", "tcp", "a_ip", "10.1.0.6:22", tunnel.RawNotCovered},
		{"IP covered", "tcp", "a_ip", "127.0.0.1:" + port, ""},
		{"IP covered, nothing listens", "tcp", "a_ip", "127.0.0.1:" + closedPort, tunnel.RawRefused},
		{"prefix", "tcp", "a_prefix", "10.3.0.1:22", tunnel.RawNotCovered},
		{"prefix, a name without IP segments for it", "tcp", "a_wild", "localhost:443", tunnel.RawNotCovered},
		{"DNS answer outside the prefix", "tcp", "a_dnsout", "localhost:" + port, tunnel.RawNotCovered},
		{"DNS answer inside the prefix", "tcp", "a_dnsin", "localhost:" + port, ""},
		{"unknown app", "tcp", "a_none", "db.corp:5432", tunnel.RawNotCovered},
		{"web app", "tcp", "a_web", "127.0.0.1:1", tunnel.RawNotCovered},
		{"udp to a tcp app", "udp", "a_ip", "127.0.0.1:" + port, tunnel.RawNotCovered},
		{"tcp to a udp app", "tcp", "a_udp", "127.0.0.1:53", tunnel.RawNotCovered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), directWait)
			defer cancel()
			rc, err := env.client.OpenRaw(ctx, tc.network, tc.app, tc.dest, "ada@example.com")
			if tc.code != "" {
				var re *tunnel.RawError
				if !errors.As(err, &re) || re.Code != tc.code {
					if err == nil {
						rc.Close()
					}
					t.Fatalf("OpenRaw = %v; want a RawError %s", err, tc.code)
				}
				if tc.app != "a_none" && !strings.Contains(re.Message, tc.dest) {
					t.Errorf("message %q does not name %s", re.Message, tc.dest)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			rc.SetDeadline(time.Now().Add(directWait))
			io.WriteString(rc, "ping")
			rc.CloseWrite()
			if b, err := io.ReadAll(rc); err != nil || string(b) != "ping" {
				t.Fatalf("echo = %q, %v", b, err)
			}
		})
	}
	// Event 1500 (at most one a second per application: db's three
	// refusals may write one to three).
	perApp := map[string]int{}
	for _, e := range env.events(t, eventlog.RawRefused) {
		perApp[e.Fields["app"]]++
		if e.Fields["dest"] == "" || e.Fields["user"] != "ada@example.com" {
			t.Errorf("event 1500 without its destination and user: %v", e.Fields)
		}
	}
	if perApp["db"] < 1 || perApp["db"] > 3 || perApp["prefix"] != 1 || perApp["a_none"] != 1 {
		t.Errorf("events 1500 per application = %v, want 1–3 for db, one for prefix and a_none", perApp)
	}
	if len(env.events(t, eventlog.RawDialFailed)) != 1 {
		t.Errorf("events 1501: want one (the refused connection)")
	}
	m := env.c.metrics
	if n := testutil.ToFloat64(m.rawConns.WithLabelValues("db", "not_covered")); n != 3 {
		t.Errorf("network_connections_total{db,not_covered} = %v, want 3", n)
	}
	if n := testutil.ToFloat64(m.rawConns.WithLabelValues("ip", "refused")); n != 1 {
		t.Errorf("network_connections_total{ip,refused} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.bytesIn.WithLabelValues("dnsin")); n != 4 {
		t.Errorf("received_bytes_total{dnsin} = %v, want 4", n)
	}
	// A network application is never served over HTTP.
	ctx, cancel := context.WithTimeout(context.Background(), directWait)
	defer cancel()
	if resp, _ := env.do(t, env.req(t, ctx, "GET", "a_ip", "/", nil)); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("GET for a network application = %d, want 421", resp.StatusCode)
	}
	testnet.WaitUntil(t, "the connections counted out", func() bool {
		return testutil.ToFloat64(m.rawOpen.WithLabelValues("ip")) == 0 && testutil.ToFloat64(m.rawOpen.WithLabelValues("db")) == 0
	})
}

// TestRawUDPApp: a udp application's datagrams go to its destination and
// back.
func TestRawUDPApp(t *testing.T) {
	testnet.CheckLeaks(t)
	addr := testnet.ServeUDP(t, func(d []byte) []byte { return append([]byte("re: "), d...) })
	env := startRawEnv(t, netAppConfig("a_dns", "dns", "udp", addr))
	ctx, cancel := context.WithTimeout(context.Background(), directWait)
	defer cancel()
	rc, err := env.client.OpenRaw(ctx, "udp", "a_dns", addr, "ada")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetDeadline(time.Now().Add(directWait))
	buf := make([]byte, 2048)
	for i := range 3 {
		q := fmt.Sprintf("query %d", i)
		rc.Write([]byte(q))
		n, err := rc.Read(buf)
		if err != nil || string(buf[:n]) != "re: "+q {
			t.Fatalf("answer %q, %v", buf[:n], err)
		}
	}
}
