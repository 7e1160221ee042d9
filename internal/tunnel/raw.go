package tunnel

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel/mux"
)

// Raw streams (private access, docs/protocol.md §15.5): a relay stream of
// kind "tcp" or "udp" asks the connector to dial a destination of one of
// its network applications; the connector answers with a status line,
// then the stream carries the connection's bytes (tcp) or its datagrams,
// each behind a 2-byte length (udp).

// Relay stream kinds of private access.
const (
	RelayKindTCP = "tcp"
	RelayKindUDP = "udp"
)

// Refusal codes of a raw stream (RawError.Code).
const (
	RawNotCovered  = "not_covered" // the destination is outside the application's segments
	RawUnreachable = "unreachable" // DNS failed, no route, or the dial timed out
	RawRefused     = "refused"     // the destination refused the connection
	RawUnsupported = "unsupported" // the connector does not serve raw streams (older), or not this one
	RawBusy        = "busy"        // the connector takes no more streams now
)

// RawError is a raw stream the connector (or the cloud, for an older
// connector) refused. Message is one sentence for the user, naming the
// destination.
type RawError struct {
	Code    string
	Message string
}

func (e *RawError) Error() string { return e.Message }

// RawConn is a raw stream at the cloud: a TCP connection's bytes, or for
// udp one datagram per Write and per Read. CloseWrite ends the cloud's
// direction (the destination sees the end of its input, for tcp).
type RawConn interface {
	net.Conn
	CloseWrite() error
}

// MaxRawDatagram is the largest datagram a RawConn of network udp sends:
// the largest payload of an IPv4 UDP datagram. (The framing's 2-byte
// length allows up to 65 535: the connector passes a longer one to its
// socket, which may refuse it, and the datagram is lost, as UDP's are.)
const MaxRawDatagram = 65507

// rawFrameMax is the longest datagram the framing can carry.
const rawFrameMax = 1<<16 - 1

// RawDialTimeout bounds the connector's dial of a raw stream's
// destination (DNS included).
const RawDialTimeout = 10 * time.Second

// DefaultUDPIdleTimeout is how long a udp stream may carry no datagram,
// either way, before the connector ends it.
const DefaultUDPIdleTimeout = 60 * time.Second

// maxStatusLine bounds the status line of a raw stream, "\n" included.
const maxStatusLine = 2048

// maxRawMessage bounds a refusal's message.
const maxRawMessage = 1024

// rawStatus is the status line the connector answers a raw stream with:
// {"ok":true} then the bytes, or {"ok":false,"error":CODE,"message":TEXT}
// then the end of the stream.
type rawStatus struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

// RawRequest is a raw stream's open message as the connector's dialer
// gets it: Dest is HOST:PORT, already checked for form (Host is not
// empty, Port is 1 … 65535).
type RawRequest struct {
	Network string // "tcp" or "udp"
	App     string
	Dest    string
	Host    string
	Port    uint16
	User    string
	Remote  net.Addr // the tunnel connection's peer (the cloud)
}

// ParseDest checks a raw stream's destination HOST:PORT: a host name of at
// most 253 characters or an IP address, and a port 1 … 65535.
func ParseDest(dest string) (host string, port uint16, err error) {
	h, p, err := net.SplitHostPort(dest)
	if err != nil {
		return "", 0, fmt.Errorf("the destination %q is not HOST:PORT", dest)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("the destination %q has no valid port (1 to 65535)", dest)
	}
	if h == "" || len(h) > 253 {
		return "", 0, fmt.Errorf("the destination %q has no valid host", dest)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			return "", 0, fmt.Errorf("the destination %q has no valid host", dest)
		}
	}
	return h, uint16(n), nil
}

// ParseRawOpen reads the open message of a raw stream (kind tcp or udp).
func ParseRawOpen(msg []byte) (RawRequest, OpenMessage, error) {
	var om OpenMessage
	if err := json.Unmarshal(msg, &om); err != nil {
		return RawRequest{}, om, errors.New("the open message is not JSON")
	}
	if om.Kind != RelayKindTCP && om.Kind != RelayKindUDP {
		return RawRequest{}, om, fmt.Errorf("kind %q is not a raw stream", om.Kind)
	}
	if om.App == "" {
		return RawRequest{}, om, errors.New("the open message names no application")
	}
	host, port, err := ParseDest(om.Dest)
	if err != nil {
		return RawRequest{}, om, err
	}
	return RawRequest{Network: om.Kind, App: om.App, Dest: om.Dest, Host: host, Port: port, User: om.User}, om, nil
}

// readStatusLine reads the status line, byte by byte so that nothing
// after it is taken from the stream.
func readStatusLine(r io.Reader) ([]byte, error) {
	line := make([]byte, 0, 32)
	var b [1]byte
	for len(line) < maxStatusLine {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b[0] == '\n' {
			return line, nil
		}
		line = append(line, b[0])
	}
	return nil, errors.New("tunnel: the connector's status line is too long")
}

// parseRawStatus reads a status line (without its "\n"): nil for success,
// a *RawError for a refusal, another error for a malformed line.
func parseRawStatus(line []byte, dest string) error {
	var st rawStatus
	if err := json.Unmarshal(line, &st); err != nil {
		return errors.New("tunnel: the connector's status line is not JSON")
	}
	if st.OK {
		return nil
	}
	switch st.Error {
	case RawNotCovered, RawUnreachable, RawRefused, RawUnsupported, RawBusy:
	default:
		st.Error = RawUnreachable // a code of a later version: the destination was not reached
	}
	msg := st.Message
	if len(msg) > maxRawMessage {
		msg = msg[:maxRawMessage]
	}
	if msg == "" {
		msg = fmt.Sprintf("The connector did not connect to %s (%s).", dest, st.Error)
	}
	return &RawError{Code: st.Error, Message: msg}
}

// writeRawStatus writes the status line for err (nil: success).
func writeRawStatus(w io.Writer, err *RawError) error {
	st := rawStatus{OK: err == nil}
	if err != nil {
		st.Error, st.Message = err.Code, err.Message
		if len(st.Message) > maxRawMessage {
			st.Message = st.Message[:maxRawMessage]
		}
	}
	b, _ := json.Marshal(st)
	_, werr := w.Write(append(b, '\n'))
	return werr
}

// readDatagram reads one length-prefixed datagram into buf, which must
// hold rawFrameMax bytes; io.EOF at a clean end between datagrams.
func readDatagram(r io.Reader, buf []byte) (int, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return 0, errors.New("tunnel: a udp stream ended inside a datagram's length")
		}
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, errors.New("tunnel: a udp stream ended inside a datagram")
		}
		return 0, err
	}
	return n, nil
}

// appendDatagram appends p with its length before it.
func appendDatagram(b, p []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	return append(b, p...)
}

// OpenRaw opens a raw stream of network ("tcp" or "udp") to dest
// (HOST:PORT) through the connector, for application appID and the
// signed-in user (informational). It returns once the connector answered:
// a refusal is a *RawError (so is an older connector: RawUnsupported);
// an error for which NotSent holds (the connection draining or closed)
// means another connector may be asked. ctx bounds the wait for the
// answer only; its window budget (WithWindowBudget), if any, pays for the
// stream's window growth for its whole life. Close the RawConn when done
// (it counts in InFlight until then).
func (c *Client) OpenRaw(ctx context.Context, network, appID, dest, user string) (RawConn, error) {
	if network != RelayKindTCP && network != RelayKindUDP {
		return nil, fmt.Errorf("tunnel: network %q is not tcp or udp", network)
	}
	if _, _, err := ParseDest(dest); err != nil {
		return nil, &RawError{Code: RawUnreachable, Message: "Cannot connect: " + err.Error() + "."}
	}
	if c.sess == nil {
		return nil, &RawError{Code: RawUnsupported, Message: fmt.Sprintf(
			"Cannot connect to %s: the connector serving this application is too old for private access (tunnel version 1); update it.", dest)}
	}
	st, err := c.openRelayMsg(OpenMessage{Kind: network, App: appID, Dest: dest, User: user})
	if err != nil {
		return nil, err
	}
	st.SetBudget(WindowBudgetOf(ctx))
	stop := context.AfterFunc(ctx, func() { st.Abort() })
	line, err := readStatusLine(st)
	if !stop() {
		st.Abort()
		return nil, ctx.Err()
	}
	if err != nil {
		st.Abort()
		var se *mux.StreamError
		if errors.As(err, &se) {
			switch se.Code {
			case mux.ResetUnsupported:
				return nil, &RawError{Code: RawUnsupported, Message: fmt.Sprintf(
					"Cannot connect to %s: the connector serving this application does not know private access yet; update it.", dest)}
			case mux.ResetRefused:
				return nil, &RawError{Code: RawBusy, Message: fmt.Sprintf(
					"Cannot connect to %s: the connector takes no more connections right now; try again shortly.", dest)}
			}
		}
		return nil, fmt.Errorf("tunnel: no answer from the connector for %s: %w", dest, err)
	}
	if err := parseRawStatus(line, dest); err != nil {
		st.Abort()
		return nil, err
	}
	c.inFlight.Add(1)
	rc := &rawConn{Stream: st, c: c}
	if network == RelayKindUDP {
		return &rawUDPConn{rawConn: rc, rbuf: make([]byte, rawFrameMax)}, nil
	}
	return rc, nil
}

// openRelayMsg opens a relay stream with om (its window set here).
func (c *Client) openRelayMsg(om OpenMessage) (*mux.Stream, error) {
	if !c.Available() {
		// Told to drain (GOAWAY), or closed: no new stream (§15.4).
		return nil, fmt.Errorf("%w: the connection takes no new request", ErrNotSent)
	}
	if c.openWindow.Load() {
		om.Window = RelayInitialWindow
	}
	msg, _ := json.Marshal(om)
	st, err := c.sess.OpenWindow(msg, om.Window)
	if err != nil {
		if errors.Is(err, mux.ErrIDsExhausted) {
			c.retire()
		}
		return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return st, nil
}

// rawConn is a tcp raw stream at the cloud: the stream itself, counted in
// InFlight until closed.
type rawConn struct {
	*mux.Stream
	c      *Client
	closed atomic.Bool
}

func (r *rawConn) Close() error {
	err := r.Stream.Close()
	if r.closed.CompareAndSwap(false, true) {
		r.c.inFlight.Add(-1)
	}
	return err
}

// rawUDPConn is a udp raw stream at the cloud: datagrams behind their
// length.
type rawUDPConn struct {
	*rawConn
	rmu  sync.Mutex
	rbuf []byte
	wmu  sync.Mutex
	wbuf []byte
}

// Read returns one datagram; one longer than p is cut to p's length, as a
// UDP socket does.
func (u *rawUDPConn) Read(p []byte) (int, error) {
	u.rmu.Lock()
	defer u.rmu.Unlock()
	n, err := readDatagram(u.Stream, u.rbuf)
	if err != nil {
		return 0, err
	}
	return copy(p, u.rbuf[:n]), nil
}

// Write sends p as one datagram.
func (u *rawUDPConn) Write(p []byte) (int, error) {
	if len(p) > MaxRawDatagram {
		return 0, fmt.Errorf("tunnel: a datagram of %d bytes is over %d", len(p), MaxRawDatagram)
	}
	u.wmu.Lock()
	defer u.wmu.Unlock()
	u.wbuf = appendDatagram(u.wbuf[:0], p)
	if _, err := u.Stream.Write(u.wbuf); err != nil {
		return 0, err
	}
	return len(p), nil
}
