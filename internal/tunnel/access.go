package tunnel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// AccessALPN is the TLS application protocol of private access
// (docs/protocol.md, "Private access"): `sallyport access tcp|stdio|socks`
// opens one connection to the cloud's one TLS port per stream, sends one
// AccessRequest line, reads one AccessAnswer line, then the connection
// carries the stream's bytes (tcp) or its datagrams (udp, each with a
// 2-byte length before it), half-close included.
const AccessALPN = "sallyport-access/1"

// Limits of the access exchange.
const (
	// MaxAccessLine bounds a request or answer line, its newline included.
	MaxAccessLine = 4096
	// MaxDatagram is the largest UDP payload carried (2-byte length).
	MaxDatagram = 65535
)

// Networks of private access.
const (
	NetworkTCP = "tcp"
	NetworkUDP = "udp"
)

// AccessRequest is the client's first line: a JSON object and "\n".
type AccessRequest struct {
	// Token is the network sign-in's access token (spa_…).
	Token string `json:"token"`
	// Network is "tcp" or "udp".
	Network string `json:"network"`
	// App names the network application; "" lets the cloud choose the
	// application of the user's tenant whose segments cover Dest.
	App string `json:"app,omitempty"`
	// Dest is HOST:PORT as the user gave it (a name is resolved by the
	// connector); "" with App: the application's one internal address.
	Dest string `json:"dest,omitempty"`
	// Check asks only whether the stream would be admitted (signed in,
	// assigned, covered): the answer names the destination, no stream is
	// opened (`sallyport access tcp` checks before it listens).
	Check bool `json:"check,omitempty"`
}

// Refusal codes of an AccessAnswer (docs/protocol.md).
const (
	AccessBadRequest  = "bad_request"
	AccessNotSignedIn = "not_signed_in"
	AccessNoApp       = "no_app"
	AccessNotAssigned = "not_assigned"
	AccessNotCovered  = "not_covered"
	AccessNoConnector = "no_connector"
	AccessRefused     = "refused"
	AccessUnreachable = "unreachable"
	AccessUnsupported = "unsupported"
	AccessBusy        = "busy"
	AccessRateLimited = "rate_limited"
	AccessInternal    = "internal"
)

// AccessAnswer is the cloud's one line: OK, or a refusal with its code and
// one sentence for the user.
type AccessAnswer struct {
	OK      bool   `json:"ok"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// App is the application that serves the stream (useful when the
	// request named none), Dest the destination (the application's when
	// the request named none).
	App  string `json:"app,omitempty"`
	Dest string `json:"dest,omitempty"`
}

// AccessError is a refusal as the client sees it.
type AccessError struct {
	Code    string
	Message string
}

func (e *AccessError) Error() string { return e.Message }

// ParseAccessRequest reads one request line (without or with its
// newline) and checks every field: an error says which one is wrong.
func ParseAccessRequest(line []byte) (AccessRequest, error) {
	var r AccessRequest
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) >= MaxAccessLine {
		return r, errors.New("the request line is longer than 4 KiB")
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, errors.New("the request line is not a JSON object")
	}
	switch {
	case r.Token == "" || len(r.Token) > 200:
		return r, errors.New("the request has no token, or one longer than 200 bytes")
	case r.Network != NetworkTCP && r.Network != NetworkUDP:
		return r, fmt.Errorf("the network %.20q is neither tcp nor udp", r.Network)
	case len(r.App) > 63:
		return r, errors.New("the application name is longer than 63 bytes")
	}
	if r.Dest == "" && r.App != "" {
		return r, nil
	}
	if _, _, err := SplitDest(r.Dest); err != nil {
		return r, err
	}
	return r, nil
}

// SplitDest checks HOST:PORT: a DNS name (lower-cased, no trailing dot)
// or an IP address, and a port 1–65535.
func SplitDest(dest string) (string, uint16, error) {
	host, port, err := ParseDest(dest)
	if err != nil {
		return "", 0, err
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return "", 0, fmt.Errorf("the destination %.80q has no valid host", dest)
	}
	if net.ParseIP(host) == nil {
		for _, c := range host {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
				return "", 0, fmt.Errorf("the destination's host %.80q is neither a DNS name nor an IP address", host)
			}
		}
	}
	return host, port, nil
}

// ReadAccessLine reads one line of at most MaxAccessLine bytes.
func ReadAccessLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errors.New("the line is longer than 4 KiB")
	}
	if err != nil {
		return nil, err
	}
	return line, nil
}

// WriteAccessLine writes v as one JSON line.
func WriteAccessLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) >= MaxAccessLine {
		return errors.New("the line is longer than 4 KiB")
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadAccessAnswer reads the cloud's answer line; a refusal is an
// *AccessError.
func ReadAccessAnswer(br *bufio.Reader) (AccessAnswer, error) {
	var a AccessAnswer
	line, err := ReadAccessLine(br)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(bytes.TrimSuffix(line, []byte("\n")), &a); err != nil {
		return a, errors.New("the cloud's answer is not a JSON object")
	}
	if !a.OK {
		if a.Message == "" {
			a.Message = "The cloud refused the stream (" + a.Code + ")"
		}
		return a, &AccessError{Code: a.Code, Message: a.Message}
	}
	return a, nil
}

// WriteDatagram writes one datagram with its 2-byte length (the framing
// of a raw udp stream, §15.5).
func WriteDatagram(w io.Writer, p []byte) error {
	if len(p) > MaxDatagram {
		return errors.New("the datagram is larger than 65535 bytes")
	}
	_, err := w.Write(appendDatagram(make([]byte, 0, 2+len(p)), p))
	return err
}

// ReadDatagram reads one length-prefixed datagram into buf (which must
// hold MaxDatagram bytes) and returns its payload.
func ReadDatagram(r io.Reader, buf []byte) ([]byte, error) {
	n, err := readDatagram(r, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
