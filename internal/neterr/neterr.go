// Package neterr classifies network errors — of dials, TLS handshakes,
// reads and writes — into the few kinds callers act on (refused, timed
// out, name not found, certificate not trusted, ...), by the errors'
// types (errors.Is, errors.As), never by their message text. It is the
// one such classifier: the connector, the doctor and the cloud link
// explain failures from its Kind. HTTP/2's own errors are internal/h2's.
//
// It imports nothing of ours.
package neterr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"syscall"
)

// Kind is what a failure means to a caller.
type Kind int

const (
	// Other is an error that is none of the kinds below (also nil).
	Other Kind = iota
	// Canceled: the operation's context was canceled.
	Canceled
	// DNS: the name did not resolve (*net.DNSError, also when the
	// look-up itself timed out).
	DNS
	// Refused: nothing listens there (ECONNREFUSED).
	Refused
	// Timeout: a deadline passed (os.ErrDeadlineExceeded,
	// context.DeadlineExceeded, ETIMEDOUT, a net.Error that says so).
	Timeout
	// Closed: the peer closed or reset the connection (io.EOF,
	// io.ErrUnexpectedEOF, net.ErrClosed, ECONNRESET, EPIPE,
	// ECONNABORTED).
	Closed
	// NotTLS: the peer answered a TLS handshake without TLS, e.g. a
	// plain-HTTP port (tls.RecordHeaderError, http.ErrSchemeMismatch).
	NotTLS
	// CertHostname: the certificate does not name the host dialled
	// (x509.HostnameError).
	CertHostname
	// CertUnknownAuthority: the certificate's issuer is not trusted
	// (x509.UnknownAuthorityError).
	CertUnknownAuthority
	// CertInvalid: any other certificate failure: expired, not valid
	// yet, not for this use (x509.CertificateInvalidError, or a
	// *tls.CertificateVerificationError of another cause).
	CertInvalid
	// TLSVersion: the two sides share no TLS version (alert
	// protocol_version, or this side refused the version the server
	// chose).
	TLSVersion
	// NoALPN: the peer refused every application protocol offered
	// (alert no_application_protocol).
	NoALPN
	// TLS: another TLS handshake failure: an alert, or an error wrapped
	// with Handshake.
	TLS
	// Network: another network error (a net.Error).
	Network
)

var kindNames = [...]string{"other", "canceled", "dns", "refused", "timeout", "closed", "not_tls",
	"cert_hostname", "cert_unknown_authority", "cert_invalid", "tls_version", "no_alpn", "tls", "network"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

// IsTLS reports whether k is a failure of the TLS handshake (the
// certificate, the version, the protocol, or the peer not speaking TLS).
func (k Kind) IsTLS() bool {
	switch k {
	case NotTLS, CertHostname, CertUnknownAuthority, CertInvalid, TLSVersion, NoALPN, TLS:
		return true
	}
	return false
}

// TLS alert codes (RFC 8446 §6).
const (
	alertProtocolVersion       = 70
	alertNoApplicationProtocol = 120
)

// Classify returns err's Kind. The checks run from the most specific to
// the most general, so that e.g. a DNS look-up that timed out is DNS and
// a certificate error is never Network.
func Classify(err error) Kind {
	if err == nil {
		return Other
	}
	var (
		hostErr   x509.HostnameError
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		dnsErr    *net.DNSError
		hs        *HandshakeError
		netErr    net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.As(err, &hostErr):
		return CertHostname
	case errors.As(err, &unknownCA):
		return CertUnknownAuthority
	case errors.As(err, &invalid) || errors.As(err, &verify):
		return CertInvalid
	case errors.As(err, &record) || errors.Is(err, http.ErrSchemeMismatch):
		return NotTLS
	}
	if a, ok := Alert(err); ok {
		switch a {
		case alertProtocolVersion:
			return TLSVersion
		case alertNoApplicationProtocol:
			return NoALPN
		}
		return TLS
	}
	switch {
	case refusedVersion(err):
		return TLSVersion
	case errors.As(err, &dnsErr):
		return DNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT):
		return Timeout
	case isNetError(err, &netErr) && netErr.Timeout():
		return Timeout
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED):
		return Closed
	case errors.As(err, &hs):
		return TLS
	case isNetError(err, &netErr):
		return Network
	}
	return Other
}

// isNetError is errors.As for a net.Error other than *url.Error, which
// only passes on what it wraps (net/http wraps every client error in one).
func isNetError(err error, target *net.Error) bool {
	for errors.As(err, target) {
		u, ok := (*target).(*url.Error)
		if !ok {
			return true
		}
		err = u.Err
	}
	return false
}

// Alert returns the TLS alert err carries: one the peer sent (a
// *net.OpError "remote error" wrapping crypto/tls's unexported alert
// type), one this side sent ("local error"), or a tls.AlertError (QUIC,
// and handshakes that wrap it).
func Alert(err error) (uint8, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	var op *net.OpError
	for e := err; errors.As(e, &op); e = op.Err {
		if (op.Op == "remote error" || op.Op == "local error") && op.Err != nil {
			// crypto/tls's alert is an unexported uint8 type: read its
			// value by reflection rather than by its text.
			v := reflect.ValueOf(op.Err)
			if v.Kind() == reflect.Uint8 && v.Type().PkgPath() == "crypto/tls" {
				return uint8(v.Uint()), true
			}
		}
		if op.Err == nil {
			break
		}
	}
	return 0, false
}

// refusedVersion reports the one handshake failure crypto/tls returns
// with no type of its own: the client refusing the version a server
// chose ("tls: server selected unsupported protocol version 301",
// handshake_client.go), which old servers that ignore the client's
// supported_versions cause. Its text is the only thing to go by.
func refusedVersion(err error) bool {
	return strings.Contains(err.Error(), "tls: server selected unsupported protocol version")
}

// HandshakeError marks an error as a TLS handshake's, for the failures
// crypto/tls returns without a type (a cipher suite or curve it refuses,
// a malformed message). Wrap the error of tls.Conn.Handshake with
// Handshake where it happens; Classify then says TLS unless the error is
// something more specific (a timeout, a reset, a certificate).
type HandshakeError struct{ Err error }

func (e *HandshakeError) Error() string { return e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// Handshake wraps err (nil stays nil) as a TLS handshake failure.
func Handshake(err error) error {
	if err == nil {
		return nil
	}
	return &HandshakeError{Err: err}
}
