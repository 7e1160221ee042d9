// Package cloudlink is how a machine on a site reaches the cloud service:
// the connector (registration and tunnels) and the admin CLI share it. It
// owns name resolution rules, TLS with the cloud CA pinned, discovery of
// the CA by fingerprint, and turning every way of not reaching the cloud
// into one sentence that says why and what to do. A registered
// connector's authenticated connections start here too (DialIdentified):
// its tunnels, and the client of the cloud's control API (ControlCall,
// ControlDownload, FetchStatus) that the connector and the updater use.
//
// It must not import the cloud's packages.
package cloudlink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// DialTimeout bounds the TCP connect and the TLS handshake to the cloud.
const DialTimeout = 10 * time.Second

// Target is a parsed cloud URL.
type Target struct {
	URL  string // as given, normalised: https://host[:port]
	Host string // host name or IP, no port
	Addr string // host:port to dial
	// Proxy, when set, is the outbound proxy every connection to the cloud
	// goes through (unless its NoProxy rules exempt the host).
	Proxy *Proxy
}

// Dial connects to the cloud, through the proxy when one applies.
func (t Target) Dial(ctx context.Context) (net.Conn, error) {
	return (&Dialer{Proxy: t.Proxy}).DialContext(ctx, "tcp", t.Addr)
}

// ParseURL parses and checks a cloud URL ("https://HOST[:PORT]"; 443 by default).
func ParseURL(raw string) (Target, error) {
	bad := func(why string) error {
		return problem.Newf(400, "bad_cloud_url",
			"give the cloud's address as https://HOST[:PORT], for example https://sallyport.example.com",
			"The cloud URL %q is not usable: %s", raw, why)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return Target{}, bad("it does not parse as a URL")
	}
	if u.Scheme != "https" {
		return Target{}, bad("only https:// is allowed")
	}
	if u.Hostname() == "" {
		return Target{}, bad("it has no host name")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return Target{}, bad("it must not contain a path, query or user name")
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	host := strings.ToLower(u.Hostname())
	t := Target{Host: host, Addr: net.JoinHostPort(host, port)}
	t.URL = "https://" + t.Addr
	if port == "443" {
		t.URL = "https://" + hostForURL(host)
	}
	return t, nil
}

func hostForURL(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// IsLoopbackName reports whether host is "localhost" or a name under
// ".localhost", which RFC 6761 reserves for the loopback interface.
func IsLoopbackName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// DialContext dials like net.Dialer but resolves "localhost" and every
// name under ".localhost" to 127.0.0.1 itself (as browsers and curl do),
// since Go's resolver leaves *.localhost to DNS.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && IsLoopbackName(host) {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	d := net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, network, addr)
}

// TLSConfig returns a client TLS configuration that trusts only the pinned
// cloud CA for host. A certificate for host issued by anybody else is
// reported as TLS inspection (InspectionError), never as a bare x509 error.
func TLSConfig(host string, ca *x509.Certificate, alpn ...string) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &tls.Config{
		MinVersion:   pki.MinTLSVersion,
		CipherSuites: pki.CipherSuites(), // the cloud's own profile: forward-secret AEAD only
		ServerName:   host,
		NextProtos:   alpn,
		// Verification is done in VerifyConnection, which can say why it failed.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs, roots, ca, host)
		},
	}
}

// InspectionError means the cloud's certificate was not issued by the
// pinned cloud CA: something between this machine and the cloud
// terminates TLS, or the name leads to another server.
type InspectionError struct {
	Host   string
	Issuer string
}

func (e *InspectionError) Error() string {
	return fmt.Sprintf("TLS inspection detected between this machine and the cloud: the certificate for %s was issued by '%s', not by the Sallyport cloud CA; exclude the cloud's address from TLS inspection (or check that %s leads to the Sallyport cloud)",
		e.Host, e.Issuer, e.Host)
}

func verifyPinned(cs tls.ConnectionState, roots *x509.CertPool, ca *x509.Certificate, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the cloud presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if leaf.CheckSignatureFrom(ca) != nil && !bytes.Equal(leaf.Raw, ca.Raw) {
		return &InspectionError{Host: host, Issuer: issuerName(leaf)}
	}
	if now := time.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return &ClockError{Host: host, Now: now, NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       host,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("the cloud's certificate for %s does not verify against the pinned cloud CA: %w", host, err)
	}
	return nil
}

// ClockError means the cloud's certificate, issued by the pinned CA, is
// outside its validity by this machine's clock: the clock is wrong (or the
// cloud's certificate really expired).
type ClockError struct {
	Host                     string
	Now, NotBefore, NotAfter time.Time
}

func (e *ClockError) Error() string {
	return fmt.Sprintf("the cloud's certificate for %s is valid from %s to %s, but this machine's clock says %s", e.Host,
		e.NotBefore.UTC().Format(time.RFC3339), e.NotAfter.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// FetchChain connects to the cloud without trusting it and returns the
// certificates it presents for its cloud CA (offering pki.PinnedCAALPN).
// Used only to show or match a CA fingerprint.
func FetchChain(ctx context.Context, t Target) ([]*x509.Certificate, error) {
	raw, err := t.Dial(ctx)
	if err != nil {
		return nil, Explain(err, t)
	}
	defer raw.Close()
	conn := tls.Client(raw, &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.Host, InsecureSkipVerify: true,
		NextProtos: []string{"http/1.1", pki.PinnedCAALPN}})
	hctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		return nil, ExplainDial(ctx, err, t)
	}
	return conn.ConnectionState().PeerCertificates, nil
}

// DiscoverCA returns the CA certificate the cloud presents in its chain
// whose fingerprint is want ("sha256:..."), after checking the cloud's
// certificate for t.Host verifies against it.
func DiscoverCA(ctx context.Context, t Target, want string) (*x509.Certificate, error) {
	wantSum, err := pki.ParseFingerprint(want)
	if err != nil {
		return nil, problem.Newf(400, "bad_fingerprint",
			"give the fingerprint exactly as 'sallyport cloud init' printed it, for example sha256:3f1c...",
			"The CA fingerprint %q is not valid: %v", want, err)
	}
	chain, err := FetchChain(ctx, t)
	if err != nil {
		return nil, Explain(err, t)
	}
	wantStr := "sha256:" + fmt.Sprintf("%x", wantSum)
	for _, c := range chain {
		if pki.Fingerprint(c) == wantStr {
			cs := tls.ConnectionState{PeerCertificates: chain}
			roots := x509.NewCertPool()
			roots.AddCert(c)
			if err := verifyPinned(cs, roots, c, t.Host); err != nil {
				return nil, Explain(err, t)
			}
			return c, nil
		}
	}
	presented := "none"
	if len(chain) > 0 {
		presented = pki.Fingerprint(chain[len(chain)-1])
	}
	return nil, problem.Newf(495, "ca_fingerprint_mismatch",
		fmt.Sprintf("check the fingerprint printed by 'sallyport cloud init'; if something between this machine and the cloud inspects TLS, exclude %s from TLS inspection", t.Addr),
		"The cloud at %s does not present a CA with fingerprint %s (it presented %s, issued by '%s')",
		t.URL, want, presented, issuerOf(chain))
}

func issuerOf(chain []*x509.Certificate) string {
	if len(chain) == 0 {
		return "nobody"
	}
	return issuerName(chain[0])
}

// Untrusted builds the refusal for a cloud whose CA was not pinned, showing
// its fingerprint the way ssh shows a new host key.
func Untrusted(ctx context.Context, t Target, retry string) error {
	chain, err := FetchChain(ctx, t)
	if err != nil {
		return Explain(err, t)
	}
	top := chain[len(chain)-1]
	return problem.Newf(495, "cloud_ca_not_pinned",
		fmt.Sprintf("compare it with the fingerprint printed by 'sallyport cloud init' and, if it is the same, run again with %s --ca-fingerprint %s (or --ca-file with the cloud's cloud-ca.pem)", retry, pki.Fingerprint(top)),
		"The cloud at %s presents a certificate from '%s' that this machine does not trust yet: its CA fingerprint is %s",
		t.URL, issuerName(chain[0]), pki.Fingerprint(top))
}
