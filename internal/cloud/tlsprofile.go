package cloud

import (
	"crypto/tls"
	"slices"

	"github.com/mholt/acmez/v3"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// tlsConfigFor picks the TLS configuration by ALPN: connectors present a
// client certificate (verified after the handshake, so a refusal can be
// explained to the connector); everybody else gets the edge's.
func (s *Server) tlsConfigFor(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if slices.Contains(hello.SupportedProtos, tunnel.ALPN) || slices.Contains(hello.SupportedProtos, tunnel.ALPN2) || slices.Contains(hello.SupportedProtos, tunnel.ControlALPN) {
		return tlsProfile(&tls.Config{
			Certificates: []tls.Certificate{*s.serverCert()},
			ClientAuth:   tls.RequireAnyClientCert,
			NextProtos:   []string{tunnel.ALPN2, tunnel.ALPN, tunnel.ControlALPN}, // version 2 when offered
		}), nil
	}
	if slices.Contains(hello.SupportedProtos, tunnel.AccessALPN) {
		// Private access (accessnet.go): the client authenticates with its
		// token inside, and checks the cloud's certificate as a browser would.
		return tlsProfile(&tls.Config{
			GetCertificate: s.certificateFor,
			NextProtos:     []string{tunnel.AccessALPN},
		}), nil
	}
	if s.acme != nil && slices.Contains(hello.SupportedProtos, acmez.ACMETLS1Protocol) {
		// The CA's TLS-ALPN-01 validation: certmagic answers with the
		// challenge certificate of an order in progress, or fails.
		return tlsProfile(&tls.Config{
			GetCertificate: s.acme.getCertificate,
			NextProtos:     []string{acmez.ACMETLS1Protocol},
		}), nil
	}
	return tlsProfile(&tls.Config{
		GetCertificate: s.certificateFor,
		NextProtos:     []string{"h2", "http/1.1"},
	}), nil
}

// tlsProfile sets what every TLS configuration of the cloud's port shares
// (edge, admin API, tunnels, control): TLS 1.2 or later (1.3 whenever the
// client has it), only forward-secret AEAD suites on 1.2 (pki.CipherSuites),
// and no session tickets: Go's tickets live 7 days under keys rotated only
// daily, so a stolen ticket key would open a week of recorded sessions;
// without them every connection makes a full handshake, whose cost is small
// next to a connection's life here (tunnels and HTTP/2 connections last).
func tlsProfile(c *tls.Config) *tls.Config {
	c.MinVersion = pki.MinTLSVersion
	c.CipherSuites = pki.CipherSuites()
	c.SessionTicketsDisabled = true
	return c
}

// certificateFor is the edge certificate for hello's server name, by
// chooseCertificate (certchoice.go); a name that is not valid gets the
// cloud's server certificate. The cloud CA never issues a certificate for
// any other name: a name nobody gave a certificate for gets a name
// mismatch, never a certificate for it.
func (s *Server) certificateFor(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host, ok := edge.NormalizeHost(hello.ServerName)
	if !ok {
		return s.serverCert(), nil
	}
	if host == s.settings.Name {
		return s.nameCertificate(hello), nil // acmename.go
	}
	covers := func(c *tls.Certificate) bool { return hello.SupportsCertificate(c) == nil }
	// An ACME certificate is obtained now if not held (the handshake waits).
	return s.chooseCertificate(host, covers, func() (*tls.Certificate, error) { return s.acme.getCertificate(hello) }).cert, nil
}
