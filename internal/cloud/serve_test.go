package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/pki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServeInProcess runs the whole path in one process — cloud,
// registration, connector, edge — and checks that stopping the cloud and
// the connector leaves no goroutine behind.
func TestServeInProcess(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "internal "+r.Header.Get("X-Forwarded-Host"))
	}))
	defer backend.Close()

	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := Init(ctx, InitOptions{DataDir: dir, Name: "sallyport.localhost", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	sctx, stopCloud := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.Serve(sctx, ln) }()

	cdir := filepath.Join(t.TempDir(), "connector")
	cloudURL := "https://sallyport.localhost:" + itoa(port)
	if _, err := connector.Register(ctx, connector.RegisterOptions{CloudURL: cloudURL, Dir: cdir, User: "admin@contoso.com",
		Password: testPassword, CAFile: filepath.Join(dir, CACertFile), Hostname: "host1", Version: "test"}); err != nil {
		t.Fatal(err)
	}
	c, err := connector.New(connector.Config{Dir: cdir})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConnector := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- c.Run(cctx) }()

	tok := login(t, s, "admin@contoso.com", testPassword)
	if rec, eb := call(t, s, "POST", "/apps", tok, api.CreateAppRequest{Name: "web", InternalURL: backend.URL}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	ca, _ := pki.ParseCertPEM(caPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	defer client.CloseIdleConnections()
	url := "https://web-contoso.sallyport.localhost:" + itoa(port) + "/"
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if want := "internal web-contoso.sallyport.localhost:" + itoa(port); string(body) != want {
					t.Fatalf("body = %q, want %q", body, want)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not answer through the connector within 15s (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopConnector()
	if err := <-ran; err != nil {
		t.Fatalf("connector Run = %v", err)
	}
	stopCloud()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	client.CloseIdleConnections()
}

func itoa(n int) string { return strconv.Itoa(n) }
