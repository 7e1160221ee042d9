package cloud

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/testnet"
)

// renewalWait bounds the wait for a renewal: Pebble's certificates live
// renewalValidity, renewed once less than 60% of it remains.
const (
	renewalValidity = 30 * time.Second
	renewalWait     = 3 * renewalValidity
)

// TestACMERenewal: with certificates that live 30 seconds at Pebble,
// certmagic renews the cloud name's certificate in the background and an
// application host's at a handshake, with no restart: a connection opened
// before the renewal keeps working (and keeps its certificate), a new
// handshake sees a new serial, and event 2990 says the name's was renewed.
func TestACMERenewal(t *testing.T) {
	c := startACMECloudWith(t, acmeCloudOptions{validity: renewalValidity, renewCheck: 200 * time.Millisecond, renewalRatio: 0.6})
	roots := c.pebble.Roots(t)
	var first *x509.Certificate
	testnet.WaitUntil(t, "the cloud's name presents an ACME certificate", func() bool {
		cert, err := c.handshake(t, acmeCloudName, roots)
		first = cert
		return err == nil
	})
	old := c.dialHTTP(t, acmeCloudName, roots)
	defer old.Close()
	if code := old.get(t, CRLPath); code != http.StatusOK {
		t.Fatalf("GET %s on the cloud's name: %d", CRLPath, code)
	}

	tok := login(t, c.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, c.srv, "POST", "/apps", tok, api.CreateAppRequest{Name: "web", InternalURL: "http://127.0.0.1:1", PreAuth: "passthrough"}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	app := "web-contoso." + acmeCloudName
	testnet.WaitUntil(t, "the route table has the app", func() bool { return c.srv.acmeDecision(app) == nil })
	appFirst, err := c.handshake(t, app, roots)
	if err != nil {
		t.Fatalf("the app's host presents no ACME certificate: %v", err)
	}

	for _, tc := range []struct {
		name  string
		first *x509.Certificate
	}{{acmeCloudName, first}, {app, appFirst}} {
		var err error
		if !testnet.Eventually(renewalWait, throttled(func() bool {
			var cert *x509.Certificate
			cert, err = c.handshake(t, tc.name, roots)
			return err == nil && cert.SerialNumber.Cmp(tc.first.SerialNumber) != 0
		})) {
			t.Fatalf("%s: no renewed certificate within %v (last handshake: %v)", tc.name, renewalWait, err)
		}
	}

	if code := old.get(t, CRLPath); code != http.StatusOK {
		t.Errorf("the connection opened before the renewal: GET %s = %d", CRLPath, code)
	}
	if got := old.conn.ConnectionState().PeerCertificates[0]; !got.Equal(first) {
		t.Errorf("the connection opened before the renewal changed certificate")
	}
	testnet.WaitUntil(t, "event 2990 says the cloud's name's certificate was renewed", func() bool {
		b, _ := os.ReadFile(filepath.Join(c.dir, datadir.EventsFile))
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, `"id":2990`) && strings.Contains(line, `"renewal":"true"`) {
				return true
			}
		}
		return false
	})
}

// throttled tries cond at most every 100 ms (a TLS handshake each
// millisecond for half a minute would take the machine's CPU).
func throttled(cond func() bool) func() bool {
	var next time.Time
	return func() bool {
		if time.Now().Before(next) {
			return false
		}
		next = time.Now().Add(100 * time.Millisecond)
		return cond()
	}
}

// httpConn is one HTTP/1.1 connection kept open across a test.
type httpConn struct {
	conn *tls.Conn
	r    *bufio.Reader
	host string
}

// dialHTTP opens a browser's connection (ALPN http/1.1) to name, trusting
// only roots.
func (c *acmeCloud) dialHTTP(t *testing.T, name string, roots *x509.CertPool) *httpConn {
	t.Helper()
	d := &net.Dialer{Timeout: time.Minute}
	conn, err := tls.DialWithDialer(d, "tcp", c.tlsAddr, &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("connect to %s: %v", name, err)
	}
	return &httpConn{conn: conn, r: bufio.NewReader(conn), host: name}
}

// get sends GET path on the connection and returns the answer's status.
func (h *httpConn) get(t *testing.T, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+h.host+path, nil)
	if err := req.Write(h.conn); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(h.r, req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatalf("GET %s: the cloud closes the connection", path)
	}
	return resp.StatusCode
}

func (h *httpConn) Close() error { return h.conn.Close() }

// TestACMEAppDeleted: once an application is deleted, a handshake for its
// host gets the cloud CA's certificate and makes no order — not even when
// its ACME certificate is due for renewal — and names no application is
// published at never make one.
func TestACMEAppDeleted(t *testing.T) {
	c := startACMECloudWith(t, acmeCloudOptions{validity: renewalValidity, renewCheck: 200 * time.Millisecond, renewalRatio: 0.6})
	roots := c.pebble.Roots(t)
	tok := login(t, c.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, c.srv, "POST", "/apps", tok, api.CreateAppRequest{Name: "web", InternalURL: "http://127.0.0.1:1", PreAuth: "passthrough"}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	app := "web-contoso." + acmeCloudName
	testnet.WaitUntil(t, "the route table has the app", func() bool { return c.srv.acmeDecision(app) == nil })
	cert, err := c.handshake(t, app, roots)
	if err != nil {
		t.Fatalf("the app's host presents no ACME certificate: %v", err)
	}
	if rec, eb := call(t, c.srv, "DELETE", "/apps/web", tok, nil); rec.Code != 204 {
		t.Fatalf("delete app: %d %s", rec.Code, eb.Error.Message)
	}
	testnet.WaitUntil(t, "the route table no longer has the app", func() bool { return c.srv.acmeDecision(app) != nil })
	testnet.WaitUntil(t, "the ACME cache forgets the deleted app's certificate", func() bool {
		return len(c.srv.acmeName.Load().cache.AllMatchingCertificates(app)) == 0
	})

	// The clock, read at the CA: wait until Pebble has issued the cloud's
	// name a certificate after the app's was due for renewal.
	due := cert.NotBefore.Add(time.Duration(float64(cert.NotAfter.Sub(cert.NotBefore)) * (1 - 0.6)))
	if !testnet.Eventually(renewalWait, throttled(func() bool {
		name, err := c.handshake(t, acmeCloudName, roots)
		return err == nil && name.NotBefore.After(due)
	})) {
		t.Fatalf("the cloud's name got no certificate issued after %v within %v", due, renewalWait)
	}

	for _, name := range []string{app, app, "random-" + strconv.Itoa(int(time.Now().UnixNano()%1e6)) + "." + acmeCloudName, "random.example"} {
		if _, err := c.handshake(t, name, roots); err == nil {
			t.Errorf("%s presents an ACME certificate", name)
		}
		if name != "random.example" {
			if _, err := c.handshake(t, name, c.cloudCA); err != nil {
				t.Errorf("%s: want the cloud CA's certificate: %v", name, err)
			}
		}
		if want := map[bool]int{true: 1, false: 0}[name == app]; c.pebble.OrdersFor(name) != want {
			t.Errorf("%d orders for %s, want %d", c.pebble.OrdersFor(name), name, want)
		}
	}
}

// TestACMEOCSPStapling: with an OCSP responder for Pebble's certificates
// (their OCSP URL naming it), the cloud staples a good OCSP response to the
// certificates of its name and of an application's host.
func TestACMEOCSPStapling(t *testing.T) {
	c := startACMECloudWith(t, acmeCloudOptions{ocsp: true})
	roots := c.pebble.Roots(t)
	testnet.WaitUntil(t, "the cloud's name presents an ACME certificate", func() bool {
		_, err := c.handshake(t, acmeCloudName, roots)
		return err == nil
	})
	tok := login(t, c.srv, "admin@contoso.com", testPassword)
	if rec, eb := call(t, c.srv, "POST", "/apps", tok, api.CreateAppRequest{Name: "web", InternalURL: "http://127.0.0.1:1", PreAuth: "passthrough"}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	app := "web-contoso." + acmeCloudName
	testnet.WaitUntil(t, "the route table has the app", func() bool { return c.srv.acmeDecision(app) == nil })
	for _, name := range []string{acmeCloudName, app} {
		cs, err := c.handshakeALPN(t, name, roots, "http/1.1")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(cs.PeerCertificates[0].OCSPServer) == 0 || len(cs.PeerCertificates) < 2 {
			t.Fatalf("%s: the certificate names no OCSP responder, or comes without its issuer", name)
		}
		if cs.OCSPResponse == nil {
			t.Fatalf("%s: no OCSP staple (%d answers from the responder)", name, c.pebble.OCSPAnswers())
		}
		r, err := ocsp.ParseResponseForCert(cs.OCSPResponse, cs.PeerCertificates[0], cs.PeerCertificates[1])
		if err != nil || r.Status != ocsp.Good {
			t.Errorf("%s: the staple does not say good for the certificate (%v)", name, err)
		}
	}
}
