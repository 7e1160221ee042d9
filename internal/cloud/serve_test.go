package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// certmagic's rate limiters of ACME orders are package-global, one
		// per CA and account, and live as long as the process.
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"))
}

// TestServeInProcess runs the whole path in one process — cloud,
// registration, connector, edge — and checks that stopping the cloud and
// the connector leaves no goroutine behind.
// inProcess is a cloud and one connector running in this process with
// an application published at appURL.
type inProcess struct {
	client    *http.Client
	appURL    string
	srv       *Server
	stopCloud func()
	served    chan error
}

func startInProcess(t *testing.T, backendURL string) *inProcess {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.localhost", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", ShutdownGrace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	sctx, stopCloud := context.WithCancel(ctx)
	env := &inProcess{srv: s, stopCloud: stopCloud, served: make(chan error, 1)}
	go func() { env.served <- s.Serve(sctx, ln) }()
	t.Cleanup(stopCloud)

	cdir := filepath.Join(t.TempDir(), "connector")
	cloudURL := "https://sallyport.localhost:" + itoa(port)
	if _, err := connector.Register(ctx, connector.RegisterOptions{CloudURL: cloudURL, Dir: cdir, User: "admin@contoso.com",
		Password: testPassword, CAFile: filepath.Join(dir, datadir.CACertFile), Hostname: "host1", Version: "test"}); err != nil {
		t.Fatal(err)
	}
	c, err := connector.New(connector.Config{Dir: cdir})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConnector := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- c.Run(cctx) }()
	t.Cleanup(func() {
		stopConnector()
		if err := <-ran; err != nil {
			t.Errorf("connector Run = %v", err)
		}
		c.Close()
	})

	tok := login(t, s, "admin@contoso.com", testPassword)
	if rec, eb := call(t, s, "POST", "/apps", tok, api.CreateAppRequest{Name: "web", InternalURL: backendURL, PreAuth: "passthrough"}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, datadir.CACertFile))
	ca, _ := pki.ParseCertPEM(caPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	env.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	t.Cleanup(env.client.CloseIdleConnections)
	env.appURL = "https://web-contoso.sallyport.localhost:" + itoa(port) + "/"
	// Wait until the connector serves the app.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if s.registry.pickable(c.State().Trust.ConnectorID) {
			return env
		}
		if time.Now().After(deadline) {
			t.Fatal("the connector did not connect within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeInProcess runs the whole path in one process — cloud,
// registration, connector, edge — and checks that stopping the cloud and
// the connector leaves no goroutine behind.
func TestServeInProcess(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "internal "+r.Header.Get("X-Forwarded-Host")) // normalised: no port
	}))
	defer backend.Close()
	env := startInProcess(t, backend.URL)
	resp, err := env.client.Get(env.appURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	u, _ := url.Parse(env.appURL)
	if want := "internal " + u.Hostname(); resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
	}
	env.stopCloud()
	if err := <-env.served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestGracefulStop: stopping the cloud lets a request in flight finish
// before the tunnels close (guards against closing the tunnels first).
func TestGracefulStop(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "finished")
	}))
	defer backend.Close()
	env := startInProcess(t, backend.URL)
	type res struct {
		status int
		body   string
		err    error
	}
	done := make(chan res, 1)
	go func() {
		resp, err := env.client.Get(env.appURL)
		if err != nil {
			done <- res{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- res{status: resp.StatusCode, body: string(b)}
	}()
	<-entered
	env.stopCloud()
	// The cloud is stopping; the request is still in flight. Let it finish.
	close(release)
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("request in flight during the stop: %d %q %v", r.status, r.body, r.err)
	}
	if err := <-env.served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}
