package cloud

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// accessEnv is a cloud with a connector (preauthEnv) whose tenant
// contoso.com has the network applications ssh (alice is assigned) and
// lonely (a group without connector), fabrikam.com the application fab;
// the connector's raw streams are played by rawFake.
type accessEnv struct {
	*preauthEnv
	addr string
}

// rawFake plays the connector: an echo service at echo.corp:22 (half-close
// passed on), refusals at refused.corp and unreach.corp.
func rawFake(t *testing.T) func(context.Context, *liveTunnel, string, string, string, string) (tunnel.RawConn, error) {
	return func(ctx context.Context, _ *liveTunnel, network, appID, dest, user string) (tunnel.RawConn, error) {
		switch dest {
		case "refused.corp:22":
			return nil, &tunnel.RawError{Code: tunnel.RawRefused, Message: "refused.corp:22 refused the connection"}
		case "unreach.corp:22":
			return nil, &tunnel.RawError{Code: tunnel.RawUnreachable, Message: "the name unreach.corp does not resolve"}
		case "broken.corp:22":
			return nil, errors.New("the tunnel closed")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			return nil, err
		}
		go func() {
			defer s.Close()
			io.Copy(s, s)
			s.(*net.TCPConn).CloseWrite()
		}()
		return c.(*net.TCPConn), nil
	}
}

func startAccess(t *testing.T) *accessEnv {
	prev := rawOpen
	t.Cleanup(func() { rawOpen = prev })
	rawOpen = rawFake(t)
	env := &accessEnv{preauthEnv: startPreauth(t)}
	u, _ := url.Parse(env.appURL)
	env.addr = "127.0.0.1:" + u.Port()
	ctx := t.Context()
	st := env.srv.store
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/groups", tok, map[string]any{"name": "empty"}); rec.Code != 201 {
		t.Fatalf("create group: %d %s", rec.Code, eb.Error.Message)
	}
	for _, a := range []api.CreateAppRequest{
		{Name: "ssh", Type: "tcp", InternalAddresses: []string{"echo.corp:22", "refused.corp:22", "unreach.corp:22", "broken.corp:22"}},
		{Name: "lonely", Type: "tcp", InternalAddresses: []string{"10.9.0.0/24:2222", "10.9.0.1:2222", "lonely.corp:22"}, Group: "empty"},
	} {
		if rec, eb := call(t, env.srv, "POST", "/apps", tok, a); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", a.Name, rec.Code, eb.Error.Message)
		}
		app, err := st.AppByName(ctx, env.tenant.ID, a.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Assign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: app.ID, UserID: env.alice.ID, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := datadir.AddTenant(ctx, st, "fabrikam.com", "", "admin@fabrikam.com", testPassword); err != nil {
		t.Fatal(err)
	}
	ftok := login(t, env.srv, "admin@fabrikam.com", testPassword)
	if rec, eb := call(t, env.srv, "POST", "/apps", ftok, api.CreateAppRequest{Name: "fab", Type: "tcp", InternalAddresses: []string{"fab.corp:22"}}); rec.Code != 201 {
		t.Fatalf("create fab: %d %s", rec.Code, eb.Error.Message)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return env
}

// networkLogin runs the device flow for the cloud itself as user.
func (env *accessEnv) networkLogin(t *testing.T, user string) oauthAnswer {
	t.Helper()
	a := env.oauthPost(t, "/oauth/device_authorization", url.Values{"client_id": {DeviceClientID}, "resource": {deviceCloud + "/"}, "login_hint": {user}})
	if a.status != 200 {
		t.Fatalf("network device authorization: %d %v", a.status, a.body)
	}
	b := env.browser(t)
	resp, page := b.signInForDevice(a.str("verification_uri_complete"), user)
	if resp.StatusCode != 200 || !strings.Contains(page, "every network application of contoso.com") {
		t.Fatalf("approval page: %s\n%s", resp.Status, page)
	}
	if resp, page = b.decide(page, a.str("user_code"), "approve"); resp.StatusCode != 200 {
		t.Fatalf("approve: %s\n%s", resp.Status, page)
	}
	tok := env.pollNow(t, a.str("device_code"))
	if tok.status != 200 || tok.str("app") != networkAppsName || tok.str("user") != user {
		t.Fatalf("token: %d %v", tok.status, tok.body)
	}
	return tok
}

// open sends one access request and returns the answer and the
// connection (nil when refused).
func (env *accessEnv) open(t *testing.T, req tunnel.AccessRequest) (*tls.Conn, *bufio.Reader, error) {
	c, br, _, err := env.exchange(t, req)
	return c, br, err
}

// exchange sends one access request and returns the answer too.
func (env *accessEnv) exchange(t *testing.T, req tunnel.AccessRequest) (*tls.Conn, *bufio.Reader, tunnel.AccessAnswer, error) {
	t.Helper()
	cfg := env.client.Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.ServerName, cfg.NextProtos = "sallyport.localhost", []string{tunnel.AccessALPN}
	c, err := tls.Dial("tcp", env.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.ConnectionState().NegotiatedProtocol != tunnel.AccessALPN {
		t.Fatalf("ALPN %q", c.ConnectionState().NegotiatedProtocol)
	}
	if err := tunnel.WriteAccessLine(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	ans, err := tunnel.ReadAccessAnswer(br)
	return c, br, ans, err
}

func TestPrivateAccess(t *testing.T) {
	env := startAccess(t)
	alice := env.networkLogin(t, "alice@contoso.com").str("access_token")
	bob := env.networkLogin(t, "bob@contoso.com").str("access_token")
	web := env.deviceLogin(t, env.webURL, "alice@contoso.com").str("access_token")

	// An assigned user reaches the echo service; a half-close reaches it
	// and the rest of the answer still comes back.
	for _, app := range []string{"ssh", ""} {
		c, br, err := env.open(t, tunnel.AccessRequest{Token: alice, Network: "tcp", App: app, Dest: "echo.corp:22"})
		if err != nil {
			t.Fatalf("app %q: %v", app, err)
		}
		io.WriteString(c, "hello through the connector")
		c.CloseWrite()
		got, err := io.ReadAll(br)
		if err != nil || string(got) != "hello through the connector" {
			t.Fatalf("app %q: echo %q, %v", app, got, err)
		}
	}

	// A check names the application's one address and opens nothing.
	c, br, ans, err := env.exchange(t, tunnel.AccessRequest{Token: alice, Network: "tcp", App: "lonely", Check: true})
	if err != nil || ans.Dest != "10.9.0.1:2222" || ans.App != "lonely" {
		t.Fatalf("check of lonely: %+v, %v", ans, err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after a check: %q, %v; want the end", rest, err)
	}
	c.Close()

	tests := []struct {
		name, token, app, dest, code, says string
	}{
		{"no token of this cloud", "spa_" + strings.Repeat("x", 43), "ssh", "echo.corp:22", tunnel.AccessNotSignedIn, "sallyport access login https://sallyport.localhost"},
		{"a web application's token", web, "ssh", "echo.corp:22", tunnel.AccessNotSignedIn, "one web application only"},
		{"not assigned, by name", bob, "ssh", "echo.corp:22", tunnel.AccessNotAssigned, "bob@contoso.com) are not assigned to the application ssh"},
		{"not assigned, by segment", bob, "", "echo.corp:22", tunnel.AccessNotAssigned, "not assigned to the application ssh"},
		{"outside the application's segments", alice, "ssh", "db.corp:5432", tunnel.AccessNotCovered, "outside every internal address of the application ssh"},
		{"outside every segment", alice, "", "db.corp:5432", tunnel.AccessNotCovered, "outside every tcp segment of contoso.com"},
		{"a segment of another tenant", alice, "", "fab.corp:22", tunnel.AccessNotCovered, "outside every tcp segment of contoso.com"},
		{"an application of another tenant", alice, "fab", "fab.corp:22", tunnel.AccessNoApp, "contoso.com has no tcp application named fab"},
		{"no connector in the group", alice, "lonely", "lonely.corp:22", tunnel.AccessNoConnector, "No connector is active in group 'empty'"},
		{"refused at the connector", alice, "ssh", "refused.corp:22", tunnel.AccessRefused, "connection was refused there"},
		{"unreachable from the connector", alice, "ssh", "unreach.corp:22", tunnel.AccessUnreachable, "cannot reach unreach.corp:22"},
		{"the connector fails to open", alice, "ssh", "broken.corp:22", tunnel.AccessNoConnector, "the tunnel closed"},
		{"no single address", alice, "ssh2", "", tunnel.AccessNoApp, "no tcp application named ssh2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := env.open(t, tunnel.AccessRequest{Token: tt.token, Network: "tcp", App: tt.app, Dest: tt.dest})
			var ae *tunnel.AccessError
			if !errors.As(err, &ae) || ae.Code != tt.code || !strings.Contains(ae.Message, tt.says) || !strings.HasSuffix(ae.Message, ".") {
				t.Fatalf("answer %v, want %s saying %q", err, tt.code, tt.says)
			}
		})
	}
	wantEvents(t, env.srv, eventlog.NetAccessRefused, eventlog.NetAccessRetried)
}

// TestAccessLimits: a user's rate and open streams are bounded; a
// released stream frees its place.
func TestAccessLimits(t *testing.T) {
	var l accessLimits
	now := time.Unix(1e9, 0)
	for i := range accessBurst {
		if ar := l.admit("t1", "contoso.com", "u1", now); ar != nil {
			t.Fatalf("stream %d refused: %v", i, ar)
		}
	}
	if ar := l.admit("t1", "contoso.com", "u1", now); ar == nil || ar.Code != tunnel.AccessRateLimited {
		t.Fatalf("past the burst: %v", ar)
	}
	// A second later the rate allows more, up to the streams per user.
	for i := accessBurst; i < accessUserStreams; i++ {
		now = now.Add(time.Second / accessRate)
		if ar := l.admit("t1", "contoso.com", "u1", now); ar != nil {
			t.Fatalf("stream %d refused: %v", i, ar)
		}
	}
	now = now.Add(time.Second)
	if ar := l.admit("t1", "contoso.com", "u1", now); ar == nil || !strings.Contains(ar.Message, "256 streams open") {
		t.Fatalf("past the streams per user: %v", ar)
	}
	l.release("t1", "u1")
	if ar := l.admit("t1", "contoso.com", "u1", now); ar != nil {
		t.Fatalf("after a release: %v", ar)
	}
	if !l.refusalDue("k", now) || l.refusalDue("k", now.Add(time.Second)) || !l.refusalDue("k", now.Add(accessRefusalEvery)) {
		t.Error("refusal events are not one a minute")
	}
}

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// TestRelayAccess: the relay passes bytes and half-close both ways (tcp)
// and datagrams with their framing (udp), counts the bytes, ends an idle
// stream, and leaves no goroutine behind.
func TestRelayAccess(t *testing.T) {
	testnet.CheckLeaks(t)
	t.Run("tcp", func(t *testing.T) {
		client, cloudSide := tcpPair(t)
		connectorSide, dest := tcpPair(t)
		done := make(chan [2]int64, 1)
		go func() {
			in, out := relayAccess(t.Context(), cloudSide, bufio.NewReader(cloudSide), connectorSide, "tcp", time.Minute)
			done <- [2]int64{in, out}
		}()
		io.WriteString(client, "question")
		client.CloseWrite()
		got, _ := io.ReadAll(dest) // the client's half-close reached the destination
		if string(got) != "question" {
			t.Fatalf("the destination read %q", got)
		}
		io.WriteString(dest, "the longer answer")
		dest.CloseWrite()
		got, _ = io.ReadAll(client)
		if string(got) != "the longer answer" {
			t.Fatalf("the client read %q", got)
		}
		if n := <-done; n != [2]int64{8, 17} {
			t.Errorf("bytes in, out = %v, want [8 17]", n)
		}
	})
	t.Run("udp", func(t *testing.T) {
		client, cloudSide := tcpPair(t)
		connectorSide, dest := tcpPair(t) // the connector's side: one Write, one datagram
		done := make(chan struct{})
		go func() {
			defer close(done)
			relayAccess(t.Context(), cloudSide, bufio.NewReader(cloudSide), connectorSide, "udp", time.Minute)
		}()
		tunnel.WriteDatagram(client, []byte("query"))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(dest, buf); err != nil || string(buf) != "query" {
			t.Fatalf("the destination read %q, %v", buf, err)
		}
		dest.Write([]byte("reply"))
		p, err := tunnel.ReadDatagram(client, make([]byte, tunnel.MaxDatagram))
		if err != nil || string(p) != "reply" {
			t.Fatalf("the client read %q, %v", p, err)
		}
		client.Close()
		dest.Close()
		<-done
	})
	t.Run("the connector's side fails", func(t *testing.T) {
		client, cloudSide := tcpPair(t)
		connectorSide, dest := tcpPair(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			relayAccess(t.Context(), cloudSide, bufio.NewReader(cloudSide), connectorSide, "tcp", time.Minute)
		}()
		io.WriteString(dest, "partial")
		buf := make([]byte, 7)
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
		dest.SetLinger(0)
		dest.Close() // a reset: the connector's read fails
		io.Copy(io.Discard, client)
		client.Close()
		<-done
	})
	t.Run("idle", func(t *testing.T) {
		_, cloudSide := tcpPair(t)
		connectorSide, _ := tcpPair(t)
		// Nothing passes: the relay ends by itself after the idle time.
		relayAccess(t.Context(), cloudSide, bufio.NewReader(cloudSide), connectorSide, "tcp", 50*time.Millisecond)
	})
}
