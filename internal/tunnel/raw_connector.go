package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel/mux"
)

// RawDialer is what the handler given to ServeSession implements to serve
// raw streams (kinds tcp and udp): DialRaw checks the request against the
// application's configuration and dials the destination within ctx (which
// ends after RawDialTimeout). A refusal is a *RawError; any other error
// is answered as RawUnreachable with its text. For tcp the connection
// should have CloseWrite (a *net.TCPConn has), for udp it is a connected
// UDP socket (one datagram per Read and Write). A handler that does not
// implement it answers raw streams with RESET 3, as an older connector.
type RawDialer interface {
	DialRaw(ctx context.Context, req RawRequest) (net.Conn, error)
}

// serveRaw serves a raw stream: dial, status line, then the bytes.
func serveRaw(st *mux.Stream, h any, cfg ServerConfig) {
	defer st.Abort() // nothing once both directions ended cleanly
	req, om, err := ParseRawOpen(st.OpenMessage())
	if err != nil {
		st.CloseWithCode(mux.ResetProtocol, "bad raw stream: "+err.Error())
		return
	}
	st.SetSendWindow(om.Window)
	d, ok := h.(RawDialer)
	if !ok {
		st.CloseWithCode(mux.ResetUnsupported, fmt.Sprintf("this connector does not serve relay streams of kind %q", om.Kind))
		return
	}
	req.Remote = st.RemoteAddr()
	ctx, cancel := context.WithTimeout(st.Context(), RawDialTimeout)
	conn, err := d.DialRaw(ctx, req)
	cancel()
	if err != nil {
		re := DialError(req.Dest, err)
		// The refusal, then the end: FIN, and RESET 0 for the cloud's
		// direction (the cloud reads the line before the reset).
		writeRawStatus(st, re)
		st.Close()
		return
	}
	defer conn.Close()
	// A stream reset by the cloud (or its session's end) ends the
	// connection, whichever direction is waiting.
	stop := context.AfterFunc(st.Context(), func() { conn.Close() })
	defer stop()
	if err := writeRawStatus(st, nil); err != nil {
		return
	}
	if req.Network == RelayKindUDP {
		serveUDP(st, conn, cfg.UDPIdleTimeout)
		return
	}
	serveTCP(st, conn)
}

// DialError is the refusal for a failed dial of dest: err itself if it is
// a *RawError, RawRefused for a refused connection, RawUnreachable for
// anything else (DNS, no route, timeout).
func DialError(dest string, err error) *RawError {
	var re *RawError
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, syscall.ECONNREFUSED):
		return &RawError{Code: RawRefused, Message: fmt.Sprintf("%s refused the connection from the connector.", dest)}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return &RawError{Code: RawUnreachable, Message: fmt.Sprintf("The connector could not reach %s within %s.", dest, RawDialTimeout)}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &RawError{Code: RawUnreachable, Message: fmt.Sprintf("The connector could not resolve %s (%s).", dest, dnsErr.Err)}
	}
	return &RawError{Code: RawUnreachable, Message: fmt.Sprintf("The connector could not reach %s (%v).", dest, errText(err))}
}

// errText is err's innermost text (a net.OpError's cause, without the
// addresses the message already names).
func errText(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// serveTCP copies both ways, passing each direction's end on as a
// half-close: the cloud's FIN becomes CloseWrite on the destination, the
// destination's end a FIN. A failure either way ends both.
func serveTCP(st *mux.Stream, conn net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := Copy(conn, st)
		if err != nil {
			conn.Close()
			st.Abort()
			return
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			conn.Close()
		}
	}()
	_, err := Copy(st, conn)
	if err != nil {
		st.Abort()
		conn.Close()
	} else {
		st.CloseWrite()
	}
	<-done
}

// serveUDP forwards datagrams both ways until the flow has been idle for
// idle (either way), or either side fails. The cloud's FIN stops the
// datagrams towards the destination; its answers still come back until
// the flow is idle.
func serveUDP(st *mux.Stream, conn net.Conn, idle time.Duration) {
	if idle <= 0 {
		idle = DefaultUDPIdleTimeout
	}
	var mu sync.Mutex
	last := time.Now()
	touch := func() {
		mu.Lock()
		last = time.Now()
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, rawFrameMax)
		for {
			n, err := readDatagram(st, buf)
			if err == io.EOF {
				return
			}
			if err != nil {
				st.Abort()
				conn.Close()
				return
			}
			touch()
			conn.Write(buf[:n]) // lost like any datagram if it fails
		}
	}()
	buf := make([]byte, 2+rawFrameMax)
	for {
		mu.Lock()
		deadline := last.Add(idle)
		mu.Unlock()
		if !time.Now().Before(deadline) {
			st.CloseWrite() // idle: the end of the flow
			st.Close()
			break
		}
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf[2:])
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // an ICMP port unreachable for an earlier datagram
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			st.Abort()
			break
		}
		touch()
		buf[0], buf[1] = byte(n>>8), byte(n)
		if _, err := st.Write(buf[:2+n]); err != nil {
			break
		}
	}
	conn.Close()
	<-done
}
