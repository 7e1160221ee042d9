package accessclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/socks5"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// SOCKSOptions configure `sallyport access socks`.
type SOCKSOptions struct {
	Options
	Listen string // default 127.0.0.1:1080
	// Ready, when set, is called with the listener's address.
	Ready func(addr string)
}

// SOCKS serves SOCKS5 (CONNECT and UDP ASSOCIATE) on a local address
// until ctx ends: each connection or UDP flow is one stream to the
// destination as the client named it (a name is resolved by the
// connector), through the application of the user's tenant that covers
// it. Refusals become SOCKS reply codes.
func SOCKS(ctx context.Context, o SOCKSOptions) error {
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:1080"
	}
	// Fail at once when there is no usable sign-in.
	if _, _, err := networkToken(ctx, &o.Options); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return problem.Newf(400, "listen", "choose another address with --listen 127.0.0.1:PORT", "Cannot listen on %s (%v)", listen, err)
	}
	srv := socks5.New(socks5.Config{Dialer: socksDialer{o.Options}, Logf: func(format string, args ...any) {
		fmt.Fprintf(o.out(), format+"\n", args...)
	}})
	fmt.Fprintf(o.out(), "SOCKS5 on %s: connections go through %s to your organisation's network applications.\n", ln.Addr(), o.AppURL)
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, socks5.ErrServerClosed) {
		return err
	}
	return nil
}

// socksDialer opens streams for the SOCKS5 server.
type socksDialer struct{ o Options }

func (d socksDialer) dial(ctx context.Context, network, host string, port uint16) (*Stream, error) {
	s, err := Open(ctx, StreamOptions{Options: d.o, Network: network, Dest: net.JoinHostPort(host, strconv.Itoa(int(port)))})
	if err != nil {
		return nil, &socks5.ReplyError{Code: socksReply(err), Err: err}
	}
	return s, nil
}

func (d socksDialer) DialTCP(ctx context.Context, host string, port uint16) (net.Conn, error) {
	return d.dial(ctx, tunnel.NetworkTCP, host, port)
}

func (d socksDialer) DialUDP(ctx context.Context, host string, port uint16) (net.Conn, error) {
	s, err := d.dial(ctx, tunnel.NetworkUDP, host, port)
	if err != nil {
		return nil, err
	}
	return &datagramConn{Stream: s, buf: make([]byte, tunnel.MaxDatagram)}, nil
}

// socksReply is the SOCKS5 reply code of a refusal.
func socksReply(err error) byte {
	p, ok := problem.As(err)
	if !ok {
		return socks5.ReplyGeneralFailure
	}
	switch p.Code {
	case tunnel.AccessNotAssigned, tunnel.AccessNotCovered, tunnel.AccessNotSignedIn, tunnel.AccessNoApp:
		return socks5.ReplyNotAllowed
	case tunnel.AccessRefused:
		return socks5.ReplyConnectionRefused
	case tunnel.AccessUnreachable:
		return socks5.ReplyHostUnreachable
	case tunnel.AccessNoConnector:
		return socks5.ReplyNetworkUnreachable
	}
	return socks5.ReplyGeneralFailure
}

// datagramConn is a udp stream: each Write one datagram, each Read one.
type datagramConn struct {
	*Stream
	rmu sync.Mutex
	buf []byte
}

func (c *datagramConn) Write(p []byte) (int, error) {
	if err := tunnel.WriteDatagram(c.Stream.Conn, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *datagramConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	d, err := tunnel.ReadDatagram(c.Stream.br, c.buf)
	if err != nil {
		return 0, err
	}
	return copy(p, d), nil
}
