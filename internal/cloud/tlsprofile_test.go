package cloud

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestTLSProfile: every configuration of the cloud's port (edge and admin
// API, connector tunnels, control) speaks TLS 1.3 by default, and on TLS
// 1.2 only forward-secret AEAD suites; CBC suites, RSA key exchange and
// TLS 1.1 are refused, and no session ticket is issued. (e2e/TestTestssl
// scans the same with testssl.sh.)
func TestTLSProfile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.localhost", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ln := serveLive(t, s)

	// Any client certificate passes the handshake of a connector's
	// configuration (it is checked after it).
	self, err := pki.NewCA("test client", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientCert := &tls.Certificate{Certificate: [][]byte{self.Cert.Raw}, PrivateKey: self.Key}
	tls12 := func(suites ...uint16) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites}
	}
	tests := []struct {
		name    string
		cfg     *tls.Config
		ok      bool
		version uint16
	}{
		{"default: TLS 1.3", &tls.Config{}, true, tls.VersionTLS13},
		{"1.2 ECDHE-ECDSA-AES128-GCM", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256), true, tls.VersionTLS12},
		{"1.2 ECDHE-ECDSA-AES256-GCM", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384), true, tls.VersionTLS12},
		{"1.2 ECDHE-ECDSA-CHACHA20", tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256), true, tls.VersionTLS12},
		{"1.2 ECDHE-ECDSA-AES128-CBC-SHA", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA), false, 0},
		{"1.2 ECDHE-ECDSA-AES256-CBC-SHA", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA), false, 0},
		{"1.2 RSA-AES128-GCM (no forward secrecy)", tls12(tls.TLS_RSA_WITH_AES_128_GCM_SHA256), false, 0},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false, 0},
	}
	for _, alpn := range [][]string{{"h2", "http/1.1"}, {tunnel.ALPN2}, {tunnel.ControlALPN}} {
		for _, tc := range tests {
			t.Run(alpn[0]+" "+tc.name, func(t *testing.T) {
				cfg := tc.cfg.Clone()
				cfg.ServerName, cfg.NextProtos, cfg.InsecureSkipVerify = "sallyport.localhost", alpn, true // #nosec: only the handshake is tested
				tickets := &ticketRecorder{}
				cfg.ClientSessionCache = tickets
				if alpn[0] != "h2" {
					cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return clientCert, nil }
				}
				d := &net.Dialer{Timeout: 10 * time.Second}
				conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cfg)
				if !tc.ok {
					if err == nil {
						conn.Close()
						t.Fatalf("handshake succeeded with %s", tls.CipherSuiteName(conn.ConnectionState().CipherSuite))
					}
					return
				}
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				defer conn.Close()
				if v := conn.ConnectionState().Version; v != tc.version {
					t.Errorf("version %s, want %s", tls.VersionName(v), tls.VersionName(tc.version))
				}
				if alpn[0] == "h2" {
					// A TLS 1.3 ticket would come after the handshake: read
					// the server's first frames to let it arrive.
					conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
					conn.Read(make([]byte, 64))
					if tickets.n.Load() > 0 {
						t.Error("the cloud issued a session ticket")
					}
				}
			})
		}
	}
	for _, id := range pki.CipherSuites() {
		var found bool
		for _, cs := range tls.CipherSuites() {
			found = found || cs.ID == id
		}
		if !found {
			t.Errorf("pki.CipherSuites has %s, which Go counts insecure", tls.CipherSuiteName(id))
		}
	}
}

// ticketRecorder is a client session cache that counts the tickets a
// server issued.
type ticketRecorder struct{ n atomic.Int32 }

func (r *ticketRecorder) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (r *ticketRecorder) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		r.n.Add(1)
	}
}
