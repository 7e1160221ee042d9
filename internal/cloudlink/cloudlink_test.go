package cloudlink

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// tlsServer serves TLS handshakes with cert on loopback until the test ends.
func tlsServer(t *testing.T, cert *tls.Certificate, maxVersion uint16, suites ...uint16) Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion, CipherSuites: suites}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tls.Server(c, cfg).Handshake()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tg, err := ParseURL("https://cloud.localhost:" + port)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func handshake(t *testing.T, tg Target, cfg *tls.Config) error {
	t.Helper()
	raw, err := DialContext(context.Background(), "tcp", tg.Addr)
	if err != nil {
		return Explain(err, tg)
	}
	defer raw.Close()
	return ExplainDial(context.Background(), tls.Client(raw, cfg).Handshake(), tg)
}

func code(err error) string {
	if p, ok := problem.As(err); ok {
		return p.Code
	}
	return ""
}

func TestPinnedTLS(t *testing.T) {
	cloudCA, _ := pki.NewCA("Sallyport cloud CA", time.Hour)
	mitmCA, _ := pki.NewCA("Corp Inspection CA", time.Hour)
	good, _ := cloudCA.IssueServer([]string{"cloud.localhost"}, time.Hour)
	mitm, _ := mitmCA.IssueServer([]string{"cloud.localhost"}, time.Hour)
	otherName, _ := cloudCA.IssueServer([]string{"elsewhere.localhost"}, time.Hour)
	tests := []struct {
		name     string
		cert     *tls.Certificate
		max      uint16
		code     string
		contains []string
	}{
		{"pinned CA", good, 0, "", nil},
		{"TLS inspection", mitm, 0, "tls_inspection", []string{"TLS inspection detected", "issued by 'Corp Inspection CA'", "exclude cloud.localhost:"}},
		{"wrong name", otherName, 0, "cloud_name_mismatch", []string{"not valid for the name cloud.localhost: it holds only elsewhere.localhost"}},
		{"TLS 1.1 only", good, tls.VersionTLS11, "tls_version", []string{"offers only TLS 1.1", "older than the TLS 1.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := tlsServer(t, tt.cert, tt.max)
			err := handshake(t, tg, TLSConfig(tg.Host, cloudCA.Cert))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				return
			}
			if code(err) != tt.code {
				t.Fatalf("error = %v (code %q), want code %q", err, code(err), tt.code)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err.Error(), s)
				}
			}
		})
	}
}

// TestClientTLSProfile: the connector and the admin client propose the
// cloud's own TLS 1.2 suites only (pki.CipherSuites): a server offering
// only CBC suites is refused, one offering an AEAD suite is not.
func TestClientTLSProfile(t *testing.T) {
	cloudCA, _ := pki.NewCA("Sallyport cloud CA", time.Hour)
	good, _ := cloudCA.IssueServer([]string{"cloud.localhost"}, time.Hour)
	tests := []struct {
		name  string
		suite uint16
		ok    bool
	}{
		{"ECDHE-ECDSA-AES128-GCM", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"ECDHE-ECDSA-CHACHA20", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{"ECDHE-ECDSA-AES128-CBC-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"ECDHE-ECDSA-AES256-CBC-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := tlsServer(t, good, tls.VersionTLS12, tt.suite)
			err := handshake(t, tg, TLSConfig(tg.Host, cloudCA.Cert))
			if (err == nil) != tt.ok {
				t.Fatalf("handshake with a TLS 1.2 server offering only %s: %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestDiscoverAndUntrusted(t *testing.T) {
	cloudCA, _ := pki.NewCA("Sallyport cloud CA", time.Hour)
	good, _ := cloudCA.IssueServer([]string{"cloud.localhost"}, time.Hour)
	tg := tlsServer(t, good, 0)
	ctx := context.Background()
	fp := pki.Fingerprint(cloudCA.Cert)
	ca, err := DiscoverCA(ctx, tg, strings.ToUpper(fp[:7])+fp[7:])
	if err != nil || !ca.Equal(cloudCA.Cert) {
		t.Fatalf("DiscoverCA = %v, %v", ca, err)
	}
	other, _ := pki.NewCA("other", time.Hour)
	if _, err := DiscoverCA(ctx, tg, pki.Fingerprint(other.Cert)); code(err) != "ca_fingerprint_mismatch" {
		t.Fatalf("wrong fingerprint: %v", err)
	}
	if _, err := DiscoverCA(ctx, tg, "sha256:nothex"); code(err) != "bad_fingerprint" {
		t.Fatalf("bad fingerprint: %v", err)
	}
	err = Untrusted(ctx, tg, "sallyport connector register")
	if code(err) != "cloud_ca_not_pinned" || !strings.Contains(err.Error(), fp) {
		t.Fatalf("Untrusted = %v, want the fingerprint %s shown", err, fp)
	}
}

func TestExplainNetwork(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	refused, _ := ParseURL("https://cloud.localhost:" + port)
	if _, err := DialContext(context.Background(), "tcp", refused.Addr); code(Explain(err, refused)) != "cloud_refused" {
		t.Errorf("refused: %v", Explain(err, refused))
	}
	unknown, _ := ParseURL("https://does-not-exist.invalid")
	_, err := DialContext(context.Background(), "tcp", unknown.Addr)
	if e := Explain(err, unknown); code(e) != "cloud_dns" || !strings.Contains(e.Error(), "does-not-exist.invalid") {
		t.Errorf("dns: %v", e)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, url, addr string
		ok            bool
	}{
		{"https://sallyport.example.com", "https://sallyport.example.com", "sallyport.example.com:443", true},
		{"https://Sallyport.Example.com:8443/", "https://sallyport.example.com:8443", "sallyport.example.com:8443", true},
		{"http://sallyport.example.com", "", "", false},
		{"https://user@sallyport.example.com", "", "", false},
		{"https://sallyport.example.com/path", "", "", false},
		{"sallyport.example.com", "", "", false},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (got.URL != tt.url || got.Addr != tt.addr)) {
			t.Errorf("ParseURL(%q) = %+v, %v", tt.in, got, err)
		}
	}
	for _, h := range []string{"localhost", "sallyport.localhost", "A.LOCALHOST."} {
		if !IsLoopbackName(h) {
			t.Errorf("IsLoopbackName(%q) = false", h)
		}
	}
	if IsLoopbackName("localhost.example.com") {
		t.Error("localhost.example.com taken for loopback")
	}
}
