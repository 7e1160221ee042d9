// Package acmetest runs a real ACME server for tests: Let's Encrypt's
// Pebble on free ports of 127.0.0.1, its validation authority resolving
// names through a DNS server the caller gives (internal/dnstest, which
// answers A 127.0.0.1 for the test's names), so challenges reach the
// program under test on loopback.
//
// The pebble binary is built by .ci/run from the tools module
// (tools/go.mod) and named by SALLYPORT_PEBBLE; locally, run
//
//	(cd tools && go build -o bin/pebble github.com/letsencrypt/pebble/v2/cmd/pebble)
//
// (the tests find tools/bin/pebble), or set SALLYPORT_PEBBLE, or put a
// pebble on PATH. Without one a test is skipped, except under CI=true,
// where it fails.
//
// It is for tests only: nothing outside _test.go files imports it.
package acmetest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
)

// EnvBinary names the pebble binary to run.
const EnvBinary = "SALLYPORT_PEBBLE"

// Binary is the path of the pebble binary: $SALLYPORT_PEBBLE, else
// tools/bin/pebble in the repository, else pebble on PATH. Without one the
// test is skipped, or fails under CI=true (.ci/run always builds it).
func Binary(t testing.TB) string {
	t.Helper()
	return testnet.Tool{
		Env: EnvBinary, Names: []string{builtPebble(), "pebble"},
		CI: fmt.Sprintf("Pebble is not built: .ci/run builds it from tools/go.mod and sets %s", EnvBinary),
		Skip: fmt.Sprintf("Pebble is not built, so the test against a real ACME server is skipped: "+
			"(cd tools && go build -o bin/pebble github.com/letsencrypt/pebble/v2/cmd/pebble), or set %s", EnvBinary),
	}.Path(t)
}

// builtPebble is tools/bin/pebble in the repository (the nearest directory
// up from here with tools/go.mod), or "" outside one.
func builtPebble() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "tools", "go.mod")); err == nil {
			return filepath.Join(dir, "tools", "bin", "pebble")
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// Options are what the program under test listens on: the ports Pebble's
// validation authority connects to on 127.0.0.1 for HTTP-01 and
// TLS-ALPN-01, and the DNS server (HOST:PORT) it resolves names with.
type Options struct {
	HTTPPort, TLSPort int
	DNSServer         string
	// Validity is the certificates' lifetime (Pebble's default profile);
	// zero: 90 days.
	Validity time.Duration
	// OCSP runs an OCSP responder for the certificates Pebble issues
	// (their OCSP URL names it). Without it the certificates have no OCSP
	// URL, as Let's Encrypt's have had since 2025.
	OCSP bool
}

// Server is a running Pebble.
type Server struct {
	// Directory is the ACME directory URL (of a proxy in front of
	// Pebble that counts the orders: Orders, OrdersFor).
	Directory string
	// APICertFile is the PEM file of the certificate Pebble's HTTPS API
	// presents (self-signed here): what an ACME client must trust to talk
	// to it (the cloud's --acme-ca-root).
	APICertFile string
	// API trusts APICertFile.
	API *http.Client
	// Log is Pebble's output (each order and validation).
	Log *testnet.Buffer

	mgmt    string // https://127.0.0.1:PORT of the management API
	counter *orderCounter
	ocsp    *ocspResponder // with Options.OCSP
}

// Start starts Pebble; it is stopped (killed and waited for) when the test
// ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	ca := testnet.NewCA(t)
	certPEM, keyPEM := ca.PEM(t, "127.0.0.1", "localhost")
	certFile := testnet.WriteFile(t, filepath.Join(dir, "api-cert.pem"), string(certPEM), 0o600)
	keyFile := testnet.WriteFile(t, filepath.Join(dir, "api-key.pem"), string(keyPEM), 0o600)
	rootFile := testnet.WriteFile(t, filepath.Join(dir, "api-root.pem"),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})), 0o644)
	validity := o.Validity
	if validity == 0 {
		validity = 90 * 24 * time.Hour
	}
	listen, mgmt := freePort(t), freePort(t)
	s := &Server{
		APICertFile: rootFile,
		Log:         &testnet.Buffer{},
		mgmt:        fmt.Sprintf("https://127.0.0.1:%d", mgmt),
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Root)
	s.API = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(s.API.CloseIdleConnections)
	apiCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var origin string
	s.counter, origin = startOrderCounter(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(listen)), pool, apiCert)
	s.Directory = origin + "/dir"
	ocspURL, keyAlgorithm := "", "ecdsa"
	if o.OCSP {
		s.ocsp, ocspURL = startOCSPResponder(t, s)
		keyAlgorithm = "rsa" // Pebble hands out its intermediate's key only if RSA
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  net.JoinHostPort("127.0.0.1", strconv.Itoa(listen)),
		"managementListenAddress":        net.JoinHostPort("127.0.0.1", strconv.Itoa(mgmt)),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        o.TLSPort,
		"ocspResponderURL":               ocspURL,
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   keyAlgorithm,
		"profiles": map[string]any{"default": map[string]any{
			"description": "sallyport tests", "validityPeriod": int(validity / time.Second)}},
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := testnet.WriteFile(t, filepath.Join(dir, "pebble-config.json"), string(b), 0o600)
	args := []string{"-config", cfgFile}
	if o.DNSServer != "" {
		args = append(args, "-dnsserver", o.DNSServer)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("pebble's output:\n%s", s.Log.String())
		}
	})
	testnet.WaitUntil(t, "pebble answers at "+s.Directory, func() bool {
		select {
		case <-exited:
			t.Fatalf("pebble exited before answering:\n%s", s.Log.String())
		default:
		}
		resp, err := s.API.Get(s.Directory)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// Roots is the pool of Pebble's issuing root, the only root a client
// checking the issued certificates should trust (fetched from the
// management API: Pebble makes a new root each run).
func (s *Server) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := s.API.Get(s.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble's root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble's root: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble's root is not PEM: %q", b)
	}
	return pool
}

// freePort is a port of 127.0.0.1 free a moment ago (Pebble takes
// addresses, not listeners).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
