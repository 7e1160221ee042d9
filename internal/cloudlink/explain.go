package cloudlink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/neterr"
	"github.com/sallyport/sallyport/internal/problem"
)

// Explain turns an error met while reaching the cloud at t into a Problem
// that says what failed, why, and what to do. Errors that already are
// Problems pass through.
func Explain(err error, t Target) error {
	if err == nil {
		return nil
	}
	if _, ok := problem.As(err); ok {
		return err
	}
	fw := fmt.Sprintf("allow outbound TCP from this machine to %s in the firewall, and check that the cloud service is running", t.Addr)
	var insp *InspectionError
	var clock *ClockError
	var pe *ProxyError
	var dnsErr *net.DNSError
	var hostErr x509.HostnameError
	kind := neterr.Classify(err)
	switch {
	case kind == neterr.CertHostname && errors.As(err, &hostErr):
		return explainHostname(hostErr, t).Wrap(err)
	case kind == neterr.NotTLS:
		return problem.Newf(502, "not_tls",
			fmt.Sprintf("check the port in %s: give the port 'sallyport cloud serve' listens on (its --listen), which speaks HTTPS", t.URL),
			"The server at %s answered without TLS (a plain-HTTP port, or another service): it is not the Sallyport cloud's HTTPS port", t.Addr).Wrap(err)
	case errors.As(err, &pe):
		return explainProxy(pe, t)
	case errors.As(err, &clock):
		return problem.Newf(495, "clock_skew",
			"set this machine's clock right (enable NTP); if the clock is right, the cloud's certificate has expired and its operator must restart it",
			"The TLS handshake with the cloud failed because of the time: %v", clock).Wrap(err)
	case kind == neterr.NoALPN:
		return problem.Newf(502, "not_sallyport",
			fmt.Sprintf("check that %s is the Sallyport cloud and that no proxy in between strips TLS ALPN", t.Addr),
			"The server at %s does not speak the Sallyport connector protocol (it refused the TLS application protocol)", t.Addr).Wrap(err)
	case errors.As(err, &insp):
		return problem.Newf(495, "tls_inspection",
			fmt.Sprintf("exclude %s from TLS inspection in the proxy or firewall (or check that %s leads to the Sallyport cloud)", t.Addr, insp.Host),
			"TLS inspection detected between this machine and the cloud: the certificate for %s was issued by '%s', not by the Sallyport cloud CA",
			insp.Host, insp.Issuer).Wrap(err)
	case kind == neterr.DNS && errors.As(err, &dnsErr):
		return problem.Newf(502, "cloud_dns",
			"check the cloud's name and this machine's DNS servers or hosts file",
			"Unable to connect to the service at %s: the name %s does not resolve (%s)", t.URL, t.Host, dnsErr.Err).Wrap(err)
	case kind == neterr.Refused:
		return problem.Newf(502, "cloud_refused", fw,
			"Unable to connect to the service at %s: the connection to %s was refused", t.URL, t.Addr).Wrap(err)
	case kind == neterr.Timeout:
		return problem.Newf(504, "cloud_timeout", fw,
			"Unable to connect to the service at %s: %s did not answer within %s", t.URL, t.Addr, DialTimeout).Wrap(err)
	case kind == neterr.TLSVersion:
		return problem.Newf(526, "tls_version",
			fmt.Sprintf("make the server at %s (or the proxy in front of it) accept TLS 1.2 or 1.3", t.Addr),
			"The TLS handshake with %s failed: the other side offers only a TLS version older than 1.2, which Sallyport refuses", t.Addr).Wrap(err)
	case kind == neterr.CertUnknownAuthority:
		return problem.Newf(495, "cloud_untrusted",
			"pin the cloud CA with --ca-file or --ca-fingerprint",
			"The cloud's certificate at %s is not trusted", t.URL).Wrap(err)
	case kind == neterr.Closed:
		return problem.Newf(502, "cloud_reset", fw+"; a proxy or firewall may be cutting the connection",
			"Unable to connect to the service at %s: the connection was closed during the TLS handshake", t.URL).Wrap(err)
	}
	if kind == neterr.Network {
		return problem.Newf(502, "cloud_network", fw,
			"Unable to connect to the service at %s because of a networking error (%v)", t.URL, err).Wrap(err)
	}
	return problem.Newf(502, "cloud_unreachable", fw,
		"Unable to connect to the service at %s (%v)", t.URL, err).Wrap(err)
}

// explainHostname: the cloud's certificate, from the pinned CA, is not
// for the name or address in the cloud's URL — typically --cloud
// https://127.0.0.1:PORT while the certificate holds only names.
func explainHostname(e x509.HostnameError, t Target) *problem.Problem {
	var names []string
	if e.Certificate != nil {
		names = append(names, e.Certificate.DNSNames...)
		for _, ip := range e.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
	}
	holds := "no name"
	step := "give the cloud a certificate for the name in its URL"
	if len(names) > 0 {
		holds = strings.Join(names, ", ")
		_, port, _ := net.SplitHostPort(t.Addr)
		step = fmt.Sprintf("use a name the certificate holds in the cloud's URL, e.g. https://%s, and make that name lead to the cloud from this machine (DNS or the hosts file)",
			net.JoinHostPort(names[0], port))
	}
	what := "name"
	if net.ParseIP(t.Host) != nil {
		what = "IP address"
	}
	return problem.Newf(495, "cloud_name_mismatch", step,
		"The cloud's certificate at %s is not valid for the %s %s: it holds only %s", t.URL, what, t.Host, holds)
}

// ExplainDial is Explain for a failed connection to t, and when the
// failure is an old TLS version it finds out which version the other side
// speaks (a second handshake allowing TLS 1.0 and 1.1, closed at once,
// carrying no data) so that the message can name it.
func ExplainDial(ctx context.Context, err error, t Target) error {
	err = Explain(err, t)
	p, ok := problem.As(err)
	if !ok || p.Code != "tls_version" {
		return err
	}
	if v := probeOldTLS(ctx, t); v != "" {
		q := *p
		q.Message = fmt.Sprintf("The TLS handshake with %s failed: the other side offers only %s, older than the TLS 1.2 that Sallyport requires", t.Addr, v)
		return &q
	}
	return err
}

// probeOldTLS returns the name of the TLS version (1.0 or 1.1) the server
// at t negotiates when offered only those, or "".
func probeOldTLS(ctx context.Context, t Target) string {
	raw, err := t.Dial(ctx)
	if err != nil {
		return ""
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(DialTimeout))
	c := tls.Client(raw, &tls.Config{ServerName: t.Host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}) // #nosec: probe only, closed before any data
	if c.HandshakeContext(ctx) != nil {
		return ""
	}
	return tls.VersionName(c.ConnectionState().Version)
}
