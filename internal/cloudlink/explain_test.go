package cloudlink

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
)

// TestExplainCauses: a certificate without the URL's IP address and a
// plain-HTTP port get their true cause and step, not the firewall advice
// (issue 20, defect 5), on both ways to the cloud: a raw TLS handshake
// (the tunnel) and the HTTPS client (register, admin).
func TestExplainCauses(t *testing.T) {
	cloudCA, _ := pki.NewCA("Sallyport cloud CA", time.Hour)
	named, _ := cloudCA.IssueServer([]string{"cloud.localhost"}, time.Hour)
	tlsOnly := tlsServer(t, named, 0)
	_, tlsPort, _ := net.SplitHostPort(tlsOnly.Addr)
	byIP, err := ParseURL("https://127.0.0.1:" + tlsPort)
	if err != nil {
		t.Fatal(err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
	defer plain.Close()
	plainTarget, err := ParseURL("https://" + plain.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		target   Target
		code     string
		contains []string
	}{
		{"certificate without the IP address", byIP, "cloud_name_mismatch",
			[]string{"not valid for the IP address 127.0.0.1: it holds only cloud.localhost", "https://cloud.localhost:" + tlsPort, "hosts file"}},
		{"plain-HTTP port", plainTarget, "not_tls",
			[]string{"answered without TLS", "check the port in https://" + plain.Listener.Addr().String()}},
	}
	for _, tt := range tests {
		for _, way := range []string{"handshake", "https client"} {
			t.Run(tt.name+", "+way, func(t *testing.T) {
				var err error
				if way == "handshake" {
					err = handshake(t, tt.target, TLSConfig(tt.target.Host, cloudCA.Cert))
				} else {
					hc := HTTPClient(tt.target, cloudCA.Cert)
					defer hc.CloseIdleConnections()
					var out struct{}
					err = Explain(DoJSON(context.Background(), hc, tt.target, "GET", "/v1/status", "", nil, &out), tt.target)
				}
				if code(err) != tt.code {
					t.Fatalf("error = %v (code %q), want code %q", err, code(err), tt.code)
				}
				for _, s := range tt.contains {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%q lacks %q", err.Error(), s)
					}
				}
				if strings.Contains(err.Error(), "firewall") {
					t.Errorf("%q blames the firewall", err.Error())
				}
			})
		}
	}
}

// TestExplainNoALPN: a TLS server that speaks none of the protocols the
// connector offers (its alert no_application_protocol, read by type) is
// not the Sallyport cloud, and the message says so.
func TestExplainNoALPN(t *testing.T) {
	cloudCA, _ := pki.NewCA("Sallyport cloud CA", time.Hour)
	good, _ := cloudCA.IssueServer([]string{"cloud.localhost"}, time.Hour)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*good}, NextProtos: []string{"h2"}}).Handshake()
	}()
	defer func() { ln.Close(); <-done }()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tg, err := ParseURL("https://cloud.localhost:" + port)
	if err != nil {
		t.Fatal(err)
	}
	cfg := TLSConfig(tg.Host, cloudCA.Cert)
	cfg.NextProtos = []string{"sallyport-connector/2"}
	err = handshake(t, tg, cfg)
	if code(err) != "not_sallyport" || !strings.Contains(err.Error(), "does not speak the Sallyport connector protocol") {
		t.Fatalf("error = %v (code %q), want not_sallyport", err, code(err))
	}
}
