package connector

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
)

// TestRegisterRefusals: registration failures found on this machine, each
// with its code, its sentence and the registration log named.
func TestRegisterRefusals(t *testing.T) {
	ca, _ := pki.NewCA("Sallyport cloud CA", time.Hour)
	cert, _ := ca.IssueServer([]string{"cloud.localhost"}, time.Hour)
	// A TLS server with the right certificate but no Sallyport protocol.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFileT(t, caFile, ca.CertPEM)
	url := "https://cloud.localhost:" + port
	tests := []struct {
		name string
		o    RegisterOptions
		code string
		want string
	}{
		{"no credentials", RegisterOptions{CloudURL: url, CAFile: caFile}, "no_credentials", "Connector registration failed: no credentials were given"},
		{"bad cloud URL", RegisterOptions{CloudURL: "http://cloud.localhost", User: "a@b.c", Password: "x"}, "bad_cloud_url", "only https:// is allowed"},
		{"CA file missing", RegisterOptions{CloudURL: url, User: "a@b.c", Password: "x", CAFile: "/nonexistent/ca.pem"}, "ca_file", "cannot be read"},
		{"CA file not PEM", RegisterOptions{CloudURL: url, User: "a@b.c", Password: "x", CAFile: filepath.Join(t.TempDir(), "x")}, "ca_file", ""},
	}
	writeFileT(t, tests[3].o.CAFile, []byte("not a certificate"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Dir = t.TempDir()
			_, err := Register(context.Background(), tt.o)
			p, ok := problem.As(err)
			if !ok || p.Code != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register = %v, want code %s with %q", err, tt.code, tt.want)
			}
			if !strings.Contains(err.Error(), filepath.Join(tt.o.Dir, statedir.RegisterLogFile)) {
				t.Errorf("the refusal does not name the registration log: %v", err)
			}
		})
	}
	// A TLS server that is not a Sallyport cloud (no ALPN) is named.
	id := cloudlink.Identity{Target: mustTarget(t, url), CA: ca.Cert}
	_, err = cloudlink.DialIdentified(context.Background(), id, cloudlink.DialContext, "sallyport-connector/1")
	if p, ok := problem.As(err); !ok || p.Code != "not_sallyport" {
		t.Fatalf("dial to a plain TLS server = %v, want not_sallyport", err)
	}
}

func writeFileT(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustTarget(t *testing.T, raw string) cloudlink.Target {
	t.Helper()
	tg, err := cloudlink.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}
