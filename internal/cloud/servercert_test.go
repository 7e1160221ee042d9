package cloud

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/testnet"
)

// cloudCA reads the cloud CA certificate of a data directory.
func cloudCA(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, datadir.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.ParseCertPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fetchCRL makes a new TLS connection to the cloud at addr for its name,
// pinning its CA, and GETs the CRL over it. It returns the certificate the
// handshake presented and the parsed CRL, whose signature it checks.
func fetchCRL(t *testing.T, addr, name string, ca *x509.Certificate) (*x509.Certificate, *x509.RevocationList) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	var peer *x509.Certificate
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: name},
		DisableKeepAlives: true, // a new handshake every time
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + name + CRLPath)
	if err != nil {
		t.Fatalf("GET %s: %v", CRLPath, err)
	}
	defer resp.Body.Close()
	peer = resp.TLS.PeerCertificates[0]
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET %s = %d %s: %.200s", CRLPath, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "public, max-age=") || cc == "public, max-age=0" {
		t.Errorf("Cache-Control = %q, want the time until the CRL's next update", cc)
	}
	crl, err := x509.ParseRevocationList(body)
	if err != nil {
		t.Fatalf("the CRL does not parse: %v", err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("the CRL's signature does not check against the cloud CA: %v", err)
	}
	return peer, crl
}

// listed is whether the CRL lists the serial.
func listed(crl *x509.RevocationList, serial *big.Int) bool {
	return slices.ContainsFunc(crl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
		return e.SerialNumber.Cmp(serial) == 0 && e.ReasonCode == pki.ReasonSuperseded
	})
}

// TestServerCertRotation: the cloud's own server certificate lives 90
// days and carries the CRL's address; once less than 62 days remain (after
// 4 weeks, on an injected clock) the running server re-issues it with a new key, new
// handshakes get the new one, the CRL (served without authentication over
// real TLS, signed by the cloud CA) lists the previous serial with a
// higher number, and the connector keeps its tunnels and reconnects
// through the new certificate. Before that, at 27 days, the CRL (valid 7
// days) was re-signed with a higher number. Before, the certificate lived 365 days and no CRL existed.
func TestServerCertRotation(t *testing.T) {
	clk := &clock{now: time.Now()} // moves only when the test says (connector certificates are issued on it)
	lc := startLiveCloud(t, Config{Now: clk.Now, TunnelCheckInterval: 100 * time.Millisecond}, 2, 2)
	const name = "sallyport.localhost"
	ca := cloudCA(t, lc.dir)

	first, crl1 := fetchCRL(t, lc.addr, name, ca)
	if life := first.NotAfter.Sub(first.NotBefore); life > 90*24*time.Hour+2*time.Hour || life < 90*24*time.Hour {
		t.Errorf("the server certificate lives %s, want 90 days", life)
	}
	if want := []string{"https://" + name + CRLPath}; !slices.Equal(first.CRLDistributionPoints, want) {
		t.Errorf("CRLDistributionPoints = %v, want %v", first.CRLDistributionPoints, want)
	}
	if len(crl1.RevokedCertificateEntries) != 0 {
		t.Errorf("a new cloud's CRL lists %d certificates", len(crl1.RevokedCertificateEntries))
	}
	if got := crl1.NextUpdate.Sub(crl1.ThisUpdate); got != 7*24*time.Hour {
		t.Errorf("the CRL is valid for %s, want 7 days", got)
	}

	steps := []struct {
		name     string
		advance  time.Duration
		reissued bool
	}{
		{"27 days: more than 62 days remain", 27 * 24 * time.Hour, false},
		{"28 days and a minute: less than 62 days remain", 24*time.Hour + time.Minute, true},
	}
	cur, curCRL := first, crl1
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			passes := lc.srv.tunnelChecks.Load()
			clk.Advance(st.advance)
			// Two passes of the check loop after the clock moved.
			if !testnet.Eventually(10*time.Second, func() bool { return lc.srv.tunnelChecks.Load() >= passes+2 }) {
				t.Fatal("the maintain loop did not run")
			}
			peer, crl := fetchCRL(t, lc.addr, name, ca)
			if got := peer.SerialNumber.Cmp(cur.SerialNumber) != 0; got != st.reissued {
				t.Fatalf("re-issued = %v, want %v (serial %x, before %x)", got, st.reissued, peer.SerialNumber, cur.SerialNumber)
			}
			if crl.Number.Cmp(curCRL.Number) <= 0 {
				t.Errorf("CRL number %v after %v: did not grow", crl.Number, curCRL.Number)
			}
			if st.reissued {
				if !listed(crl, cur.SerialNumber) {
					t.Errorf("the CRL does not list the previous serial %x as superseded", cur.SerialNumber)
				}
				if listed(crl, peer.SerialNumber) {
					t.Errorf("the CRL lists the current serial %x", peer.SerialNumber)
				}
				if bytes.Equal(peer.RawSubjectPublicKeyInfo, cur.RawSubjectPublicKeyInfo) {
					t.Error("the re-issued certificate has the same key")
				}
				// The connector's tunnels stayed up; closing them makes it
				// dial again, through the new certificate.
				lc.waitTunnels(t, 2, "the tunnels to stay up across the re-issue")
				lc.srv.registry.disconnect(lc.id)
				lc.waitTunnels(t, 2, "the connector to reconnect through the new certificate")
			}
			cur, curCRL = peer, crl
		})
	}
}

// TestServerCertRestart: at each start the previous run's certificate
// (whose key went with its process) is listed in the CRL, the CRL number
// keeps growing across restarts, the record is 0600, and certificates past
// their expiry leave the list.
func TestServerCertRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cloud")
	if _, err := datadir.Init(context.Background(), datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	ca := cloudCA(t, dir)
	later := time.Now().Add(91 * 24 * time.Hour) // every certificate so far has expired
	runs := []struct {
		name       string
		now        func() time.Time
		wantListed int // serials of earlier runs listed
	}{
		{"first start", time.Now, 0},
		{"restart", time.Now, 1},
		{"second restart", time.Now, 2},
		{"restart after they expired", func() time.Time { return later }, 0},
	}
	var serials []*big.Int
	last := big.NewInt(0)
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", Now: run.now})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			crl, err := x509.ParseRevocationList(s.certs.crl.Load().der)
			if err != nil {
				t.Fatal(err)
			}
			if err := crl.CheckSignatureFrom(ca); err != nil {
				t.Fatal(err)
			}
			if crl.Number.Cmp(last) <= 0 {
				t.Errorf("CRL number %v after %v", crl.Number, last)
			}
			last = crl.Number
			if n := len(crl.RevokedCertificateEntries); n != run.wantListed {
				t.Errorf("the CRL lists %d certificates, want %d", n, run.wantListed)
			}
			for _, prev := range serials[len(serials)-run.wantListed:] {
				if !listed(crl, prev) {
					t.Errorf("the CRL does not list the previous run's serial %x", prev)
				}
			}
			serials = append(serials, s.serverCert().Leaf.SerialNumber)
			fi, err := os.Stat(filepath.Join(dir, ServerCertsFile))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", ServerCertsFile, fi.Mode().Perm())
			}
		})
	}
}

// TestServerCertRecordDamaged: a damaged server-certs.json stops the
// start with a sentence that names the file and the way out, rather than
// silently unlisting the certificates it retired.
func TestServerCertRecordDamaged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cloud")
	if _, err := datadir.Init(context.Background(), datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ServerCertsFile), []byte(`{"crl_number": "x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err == nil {
		s.Close()
		t.Fatal("New started with a damaged server-certs.json")
	}
	p, ok := problem.As(err)
	if !ok || p.Code != "data_dir" || !strings.Contains(p.Message, ServerCertsFile) || !strings.Contains(p.Step, "remove it") {
		t.Errorf("New = %v, want data_dir naming %s", err, ServerCertsFile)
	}
}
