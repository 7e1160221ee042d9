package connector

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/sallyport/sallyport/internal/neterr"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// The four serving paths (backend.go): the tunnel version and whether the
// request asks to upgrade choose one.
type servingPath struct {
	name    string
	version int  // 1: stream 0 only (serveProxied, serveUpgrade); 2: relay streams (serveDirect, serveDirectUpgrade)
	upgrade bool // the request asks to upgrade to "echo"
}

var servingPaths = []servingPath{
	{"proxied", 1, false},
	{"upgrade", 1, true},
	{"direct", 2, false},
	{"direct upgrade", 2, true},
}

// startVersion1 is startDirect for a tunnel that chose version 1 by ALPN:
// every request comes on stream 0 (HTTP/2), none on a relay stream.
func startVersion1(t *testing.T, apps ...tunnel.AppConfig) *directEnv {
	t.Helper()
	c, cloud, dir := newTestConnector(t, apps...)
	env := &directEnv{c: c, dir: dir}
	connEnd, cloudEnd := directTLSPair(t, cloud, tunnel.ALPN)
	env.serveTunnel(t, connEnd, cloudEnd, 1, "Serve", tunnel.Serve, c.handler)
	return env
}

// pathsBackend records each request and answers as its path says:
//
//	…/ws     an upgrade to "echo" is switched (101, then "welcome\n")
//	…/big    300 header fields (beyond respLimits' count)
//	…/switch a 101 whatever was asked
//	other    "answer" with headers a backend must not pass on: 200, or
//	         403 to an upgrade (not switched)
func pathsBackend(t *testing.T, seen chan<- *http.Request) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		hijack101 := func() {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nSallyport-Error: forged\r\n\r\nwelcome\n")
			brw.Flush()
			io.Copy(io.Discard, brw) // until the connector closes
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/ws") && strings.EqualFold(r.Header.Get("Upgrade"), "echo"):
			hijack101()
		case strings.HasSuffix(r.URL.Path, "/switch"):
			hijack101()
		case strings.HasSuffix(r.URL.Path, "/big"):
			for i := range 300 {
				w.Header().Set(fmt.Sprintf("X-Many-%d", i), "v")
			}
			io.WriteString(w, "too many")
		default:
			w.Header().Set("Sallyport-Error", "forged")
			w.Header()["Sallyport_connector"] = []string{"forged, as CGI reads it"}
			w.Header().Set("Connection", "X-Hop")
			w.Header().Set("X-Hop", "hop-by-hop")
			w.Header().Set("Proxy-Authenticate", "Basic")
			w.Header().Set("X-Kept", "yes")
			status := http.StatusOK
			if r.Header.Get("Upgrade") != "" {
				status = http.StatusForbidden // an upgrade not switched
			}
			w.WriteHeader(status)
			io.WriteString(w, "answer")
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestServingPaths runs each behaviour the four serving paths share
// through every path it applies to.
func TestServingPaths(t *testing.T) {
	testnet.CheckLeaks(t)
	seen := make(chan *http.Request, 16)
	backend := pathsBackend(t, seen)
	internalHost := strings.TrimPrefix(backend.URL, "http://")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()
	tlsBackend := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsBackend.Config.ErrorLog = log.New(io.Discard, "", 0) // "TLS handshake error: bad certificate"
	tlsBackend.StartTLS()
	t.Cleanup(tlsBackend.Close)

	apps := []tunnel.AppConfig{
		appAt("a_app", "app", backend.URL+"/base/?fixed=1"),
		appAt("a_refused", "refused-app", refusedURL),
		appAt("a_tls", "tls-app", tlsBackend.URL+"/"),
	}
	envs := map[int]*directEnv{1: startVersion1(t, apps...), 2: startDirect(t, apps...)}

	type result struct {
		resp *http.Response
		body string
	}
	// send sends a request for app and path on p, reading the answer (a
	// switched one's first line).
	send := func(t *testing.T, p servingPath, app, path string, set func(http.Header)) result {
		t.Helper()
		env := envs[p.version]
		ctx, cancel := context.WithTimeout(context.Background(), directWait)
		defer cancel()
		req := env.req(t, ctx, "GET", app, path, nil)
		req.Header["User-Agent"] = nil
		if p.upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "echo")
		}
		if set != nil {
			set(req.Header)
		}
		resp, err := env.client.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusSwitchingProtocols {
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil {
				t.Fatalf("reading the switched connection: %v", err)
			}
			return result{resp, line}
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the body: %v", err)
		}
		return result{resp, string(b)}
	}
	backendGot := func(t *testing.T) *http.Request {
		t.Helper()
		return testnet.RecvWithin(t, "the backend's request", (<-chan *http.Request)(seen))
	}
	// wsPath is the path the backend switches on, for upgrade paths.
	wsPath := func(p servingPath, path string) string {
		if p.upgrade {
			return path + "/ws"
		}
		return path
	}
	wantError := func(t *testing.T, r result, code string, contains ...string) {
		t.Helper()
		if r.resp.StatusCode != http.StatusBadGateway || r.resp.Header.Get(tunnel.HeaderError) != code {
			t.Fatalf("got %d %q (%s), want 502 %s", r.resp.StatusCode, r.resp.Header.Get(tunnel.HeaderError), r.body, code)
		}
		var eb tunnel.ErrorBody
		if err := json.Unmarshal([]byte(r.body), &eb); err != nil || eb.Error.Code != code || eb.Error.Step == "" {
			t.Fatalf("error body %q (%v), want code %s and a step", r.body, err, code)
		}
		for _, s := range contains {
			if !strings.Contains(eb.Error.Message+" "+eb.Error.Step, s) {
				t.Errorf("%+v lacks %q", eb.Error, s)
			}
		}
	}

	behaviours := []struct {
		name string
		// on reports whether the behaviour applies to path p.
		on  func(p servingPath) bool
		run func(t *testing.T, p servingPath)
	}{
		{"internal URL joined: host, base path, query", all, func(t *testing.T, p servingPath) {
			send(t, p, "a_app", wsPath(p, "/x/y")+"?q=a%20b", nil)
			got := backendGot(t)
			if want := wsPath(p, "/base/x/y") + "?fixed=1&q=a%20b"; got.RequestURI != want {
				t.Errorf("the backend got %s, want %s", got.RequestURI, want)
			}
			if got.Host != internalHost {
				t.Errorf("the backend got Host %q, want the internal host %q", got.Host, internalHost)
			}
		}},
		{"tunnel headers in any spelling dropped from the request", all, func(t *testing.T, p servingPath) {
			send(t, p, "a_app", wsPath(p, "/h"), func(h http.Header) {
				h.Set("Sallyport-Foo", "tunnel header")
				h["Sallyport_connector"] = []string{"forged, as CGI reads it"}
			})
			got := backendGot(t)
			for k := range got.Header {
				if tunnel.IsProtocolHeader(k) {
					t.Errorf("the backend got the tunnel header %s: %q", k, got.Header[k])
				}
			}
		}},
		{"X-Forwarded-* and X-Real-IP passed as the edge set them; no Forwarded, no User-Agent of Go's", all, func(t *testing.T, p servingPath) {
			send(t, p, "a_app", wsPath(p, "/f"), func(h http.Header) {
				h.Set("X-Forwarded-For", "203.0.113.7")
				h.Set("X-Forwarded-Host", "web.example")
				h.Set("X-Forwarded-Proto", "https")
				h.Set("X-Real-Ip", "203.0.113.7")
				h.Set("Forwarded", "for=198.51.100.1")
			})
			got := backendGot(t)
			for k, want := range map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": "web.example", "X-Forwarded-Proto": "https", "X-Real-Ip": "203.0.113.7"} {
				if v := got.Header.Get(k); v != want {
					t.Errorf("the backend got %s %q, want %q", k, v, want)
				}
			}
			if ua, ok := got.Header["User-Agent"]; ok {
				t.Errorf("the backend got User-Agent %q from a client that sent none", ua)
			}
			if v, ok := got.Header["Forwarded"]; ok {
				t.Errorf("the backend got Forwarded %q", v)
			}
		}},
		{"hop-by-hop request headers dropped", all, func(t *testing.T, p servingPath) {
			send(t, p, "a_app", wsPath(p, "/hop"), func(h http.Header) {
				h.Set("Proxy-Authorization", "Basic c2VjcmV0")
				if p.version == 2 && !p.upgrade { // HTTP/2 (stream 0) carries no connection headers
					h.Set("Connection", "X-Hop")
					h.Set("X-Hop", "hop-by-hop")
					h.Set("Keep-Alive", "timeout=5")
				}
			})
			got := backendGot(t)
			for _, k := range []string{"Proxy-Authorization", "X-Hop", "Keep-Alive"} {
				if v, ok := got.Header[k]; ok {
					t.Errorf("the backend got the hop-by-hop header %s %q", k, v)
				}
			}
			if p.upgrade && (!strings.EqualFold(got.Header.Get("Connection"), "upgrade") || got.Header.Get("Upgrade") != "echo") {
				t.Errorf("the backend got Connection %q, Upgrade %q: want an upgrade to echo", got.Header.Get("Connection"), got.Header.Get("Upgrade"))
			}
		}},
		{"response: tunnel and hop-by-hop headers dropped, others kept", all, func(t *testing.T, p servingPath) {
			r := send(t, p, "a_app", "/r", nil) // an upgrade is not switched: an ordinary answer
			backendGot(t)
			want := http.StatusOK
			if p.upgrade {
				want = http.StatusForbidden
			}
			if r.resp.StatusCode != want || r.body != "answer" {
				t.Fatalf("got %d %q, want %d %q", r.resp.StatusCode, r.body, want, "answer")
			}
			for k := range r.resp.Header {
				if tunnel.IsProtocolHeader(k) {
					t.Errorf("the cloud got the backend's %s: %q", k, r.resp.Header[k])
				}
			}
			for _, k := range []string{"X-Hop", "Proxy-Authenticate"} {
				if v := r.resp.Header.Get(k); v != "" {
					t.Errorf("the cloud got the hop-by-hop header %s %q", k, v)
				}
			}
			if r.resp.Header.Get("X-Kept") != "yes" {
				t.Errorf("the cloud lacks the backend's X-Kept (headers %v)", r.resp.Header)
			}
		}},
		{"101: switched, the backend's first bytes passed, its tunnel headers not", upgrades, func(t *testing.T, p servingPath) {
			r := send(t, p, "a_app", "/ws", nil)
			backendGot(t)
			if r.resp.StatusCode != http.StatusSwitchingProtocols || r.body != "welcome\n" {
				t.Fatalf("got %d %q, want 101 and the backend's greeting", r.resp.StatusCode, r.body)
			}
			if v := r.resp.Header.Get(tunnel.HeaderError); v != "" {
				t.Errorf("the cloud got the backend's forged %s %q", tunnel.HeaderError, v)
			}
		}},
		{"101 to a request that did not ask to upgrade: 502", requests, func(t *testing.T, p servingPath) {
			r := send(t, p, "a_app", "/switch", nil)
			backendGot(t)
			wantError(t, r, "backend_failed", "'app'", "switched protocols")
		}},
		{"response headers beyond the limits: 502 backend_headers_too_large", all, func(t *testing.T, p servingPath) {
			r := send(t, p, "a_app", "/big", nil) // an upgrade is not switched: an ordinary answer
			backendGot(t)
			wantError(t, r, "backend_headers_too_large", "'app'", "smaller response headers")
		}},
		{"backend refused: 502 backend_refused", all, func(t *testing.T, p servingPath) {
			wantError(t, send(t, p, "a_refused", "/x", nil), "backend_refused", "'refused-app'", "refused the connection", "test-host")
		}},
		{"backend TLS certificate untrusted: 502 backend_tls", all, func(t *testing.T, p servingPath) {
			wantError(t, send(t, p, "a_tls", "/x", nil), "backend_tls", "'tls-app'", "TLS handshake", "trust store")
		}},
	}
	for _, b := range behaviours {
		for _, p := range servingPaths {
			if !b.on(p) {
				continue
			}
			t.Run(b.name+"/"+p.name, func(t *testing.T) { b.run(t, p) })
		}
	}
	// Every request the backend got was checked.
	select {
	case r := <-seen:
		t.Errorf("the backend got an unchecked request %s", r.RequestURI)
	default:
	}
}

func all(servingPath) bool        { return true }
func upgrades(p servingPath) bool { return p.upgrade }
func requests(p servingPath) bool { return !p.upgrade }

// timeoutErr is a dial timeout, as net.Dialer reports one.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestClassifyBackendError: the one function that tells what a backend
// error is, for the errors the paths meet (those a test cannot provoke
// without waiting, such as a timeout, made by hand).
func TestClassifyBackendError(t *testing.T) {
	op := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	cases := []struct {
		name string
		err  error
		want backendErr
	}{
		{"refused", op(os.NewSyscallError("connect", syscall.ECONNREFUSED)), errBackendRefused},
		{"dial timeout", op(timeoutErr{}), errBackendTimeout},
		{"deadline", os.ErrDeadlineExceeded, errBackendTimeout},
		{"no such host", op(&net.DNSError{Err: "no such host", Name: "app.invalid", IsNotFound: true}), errBackendDNS},
		{"headers too large", fmt.Errorf("reading: %w", tunnel.ErrResponseHeadersTooLarge), errBackendHeadersLarge},
		{"reset", op(os.NewSyscallError("read", syscall.ECONNRESET)), errBackendClosed},
		{"EOF", io.EOF, errBackendClosed},
		{"unexpected EOF", fmt.Errorf("reading the response: %w", io.ErrUnexpectedEOF), errBackendClosed},
		{"closed", op(net.ErrClosed), errBackendClosed},
		{"handshake", op(neterr.Handshake(errors.New("remote error: tls: bad certificate"))), errBackendTLS},
		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, errBackendTLS},
		{"x509", fmt.Errorf("wrapped: %w", x509.UnknownAuthorityError{}), errBackendTLS},
		{"other", errUnaskedSwitch, errBackendOther},
	}
	for _, tc := range cases {
		if got := classifyBackendError(tc.err); got != tc.want {
			t.Errorf("%s: classifyBackendError(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}
