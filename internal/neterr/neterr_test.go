package neterr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestClassify: errors made by real operations on loopback are
// classified by their types, bare and wrapped as callers wrap them.
func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T) error
		want Kind
	}{
		{"nil", func(*testing.T) error { return nil }, Other},
		{"a plain error", func(*testing.T) error { return errors.New("something else") }, Other},
		{"a refused port", refusedDial, Refused},
		{"a name under .invalid", dnsFailure, DNS},
		{"a read past its deadline", pastDeadline, Timeout},
		{"a dial whose context expired", expiredDial, Timeout},
		{"a dial whose context was canceled", canceledDial, Canceled},
		{"a connection reset (SO_LINGER 0)", resetRead, Closed},
		{"a connection closed by the peer", eofRead, Closed},
		{"a write on a closed connection", closedWrite, Closed},
		{"a TLS handshake the server hangs up on", handshakeHangUp, Closed},
		{"a certificate from an untrusted CA", untrustedTLS, CertUnknownAuthority},
		{"a certificate for another name", wrongNameTLS, CertHostname},
		{"an expired certificate", expiredTLS, CertInvalid},
		{"a plain-HTTP port answering a TLS hello", plainHTTPPort, NotTLS},
		{"an HTTPS request to a plain-HTTP port", httpsToHTTP, NotTLS},
		{"a server that speaks only TLS 1.0", oldTLSServer, TLSVersion},
		{"a server choosing TLS 1.0 after a 1.2+ hello", serverChoosesTLS10, TLSVersion},
		{"no common application protocol", noALPN, NoALPN},
		{"a TLS server refusing the handshake", handshakeAlert, TLS},
		{"an invalid port", invalidPort, Network},
		{"a handshake error without a type", func(*testing.T) error { return Handshake(errors.New("tls: no cipher suite supported")) }, TLS},
	}
	wraps := []struct {
		name string
		wrap func(error) error
	}{
		{"bare", func(err error) error { return err }},
		{"fmt %w", func(err error) error { return fmt.Errorf("connecting to the cloud: %w", err) }},
		{"url.Error in fmt", func(err error) error {
			return fmt.Errorf("get: %w", &url.Error{Op: "Get", URL: "https://x.test/", Err: err})
		}},
		{"joined", func(err error) error { return errors.Join(errors.New("first"), err) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.make(t)
			t.Logf("%s: %v", tt.name, err)
			if err == nil && tt.want != Other {
				t.Fatal("the operation did not fail")
			}
			for _, w := range wraps {
				if err == nil && w.name != "bare" {
					continue
				}
				if got := Classify(w.wrap(err)); got != tt.want {
					t.Errorf("%s: Classify(%v) = %s, want %s", w.name, w.wrap(err), got, tt.want)
				}
			}
		})
	}
}

func TestIsTLS(t *testing.T) {
	for k := Other; k <= Network; k++ {
		want := k >= NotTLS && k <= TLS
		if k.IsTLS() != want {
			t.Errorf("%s.IsTLS() = %v", k, !want)
		}
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func refusedDial(t *testing.T) error {
	_, err := net.Dial("tcp", closedPort(t))
	return err
}

func dnsFailure(t *testing.T) error {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := (&net.Dialer{}).DialContext(ctx, "tcp", "sallyport-neterr-test.invalid:80")
	return err
}

func pastDeadline(t *testing.T) error {
	c, _ := testnet.Pair(t)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := c.Read(make([]byte, 1))
	return err
}

func expiredDial(t *testing.T) error {
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := (&net.Dialer{}).DialContext(ctx, "tcp", closedPort(t))
	return err
}

func canceledDial(t *testing.T) error {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := (&net.Dialer{}).DialContext(ctx, "tcp", closedPort(t))
	return err
}

func resetRead(t *testing.T) error {
	c, s := testnet.Pair(t)
	s.(*net.TCPConn).SetLinger(0)
	s.Close() // sends RST
	_, err := c.Read(make([]byte, 1))
	return err
}

func eofRead(t *testing.T) error {
	c, s := testnet.Pair(t)
	s.Close()
	_, err := c.Read(make([]byte, 1))
	return err
}

func closedWrite(t *testing.T) error {
	c, _ := testnet.Pair(t)
	c.Close()
	_, err := c.Write([]byte("x"))
	return err
}

func handshakeHangUp(t *testing.T) error {
	c, s := testnet.Pair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		hdr := make([]byte, 5) // the ClientHello, read whole so that Close sends FIN, not RST
		if _, err := io.ReadFull(s, hdr); err == nil {
			io.ReadFull(s, make([]byte, int(hdr[3])<<8|int(hdr[4])))
		}
		s.Close()
	}()
	err := tls.Client(c, &tls.Config{ServerName: "x.test"}).Handshake()
	<-done
	return err
}

// tlsServer is an HTTPS test server; its certificate names example.com
// and 127.0.0.1 and lives until 2084.
func tlsServer(t *testing.T, cfg *tls.Config) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = cfg
	srv.Config.ErrorLog = discardLog // the handshakes made to fail
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func dialTLS(srv *httptest.Server, cfg *tls.Config) error {
	c, err := tls.Dial("tcp", srv.Listener.Addr().String(), cfg)
	if err == nil {
		c.Close()
	}
	return err
}

func trusting(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

func untrustedTLS(t *testing.T) error {
	return dialTLS(tlsServer(t, nil), &tls.Config{ServerName: "example.com", RootCAs: x509.NewCertPool()})
}

func wrongNameTLS(t *testing.T) error {
	srv := tlsServer(t, nil)
	return dialTLS(srv, &tls.Config{ServerName: "other.test", RootCAs: trusting(srv)})
}

func expiredTLS(t *testing.T) error {
	srv := tlsServer(t, nil)
	return dialTLS(srv, &tls.Config{ServerName: "example.com", RootCAs: trusting(srv),
		Time: func() time.Time { return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) }})
}

func plainHTTPPort(t *testing.T) error {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return tls.Client(c, &tls.Config{ServerName: "x.test"}).Handshake()
}

func httpsToHTTP(t *testing.T) error {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + srv.Listener.Addr().String() + "/")
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func oldTLSServer(t *testing.T) error {
	srv := tlsServer(t, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10})
	return dialTLS(srv, &tls.Config{ServerName: "example.com", RootCAs: trusting(srv), MinVersion: tls.VersionTLS12})
}

// serverChoosesTLS10 answers any ClientHello with a ServerHello for TLS
// 1.0, as old servers that ignore supported_versions do.
func serverChoosesTLS10(t *testing.T) error {
	c, s := testnet.Pair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(s, hdr); err != nil {
			return
		}
		io.ReadFull(s, make([]byte, int(hdr[3])<<8|int(hdr[4])))
		body := append([]byte{0x03, 0x01}, make([]byte, 32)...) // version 1.0, random
		body = append(body, 0, 0x00, 0x2f, 0)                   // no session id, TLS_RSA_WITH_AES_128_CBC_SHA, no compression
		hs := append([]byte{2, 0, 0, byte(len(body))}, body...)
		s.Write(append([]byte{22, 3, 1, 0, byte(len(hs))}, hs...))
		io.Copy(io.Discard, s)
	}()
	err := tls.Client(c, &tls.Config{ServerName: "x.test"}).Handshake()
	c.Close()
	s.Close()
	<-done
	return err
}

func noALPN(t *testing.T) error {
	srv := tlsServer(t, &tls.Config{NextProtos: []string{"h2"}})
	return dialTLS(srv, &tls.Config{ServerName: "example.com", RootCAs: trusting(srv), NextProtos: []string{"sallyport-test/1"}})
}

// handshakeAlert: the server wants a client certificate and gets none.
func handshakeAlert(t *testing.T) error {
	srv := tlsServer(t, &tls.Config{ClientAuth: tls.RequireAnyClientCert, MaxVersion: tls.VersionTLS12})
	return dialTLS(srv, &tls.Config{ServerName: "example.com", RootCAs: trusting(srv)})
}

func invalidPort(t *testing.T) error {
	_, err := net.Dial("tcp", "127.0.0.1:99999")
	return err
}

var discardLog = log.New(io.Discard, "", 0)
