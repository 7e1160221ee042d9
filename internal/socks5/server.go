// Package socks5 is a SOCKS5 server (RFC 1928) for `sallyport access
// socks`: method "no authentication" only, CONNECT and UDP ASSOCIATE (BIND
// is refused), destinations handed to a Dialer as given — a domain name is
// never resolved here, so the far end (the connector) resolves it — and
// the Dialer's errors turned into reply codes. Standard library only.
package socks5

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Dialer opens the streams the server relays to. host is a domain name as
// the client gave it, or an IP address in text (IPv6 without brackets).
// A UDP conn carries one datagram per Write and per Read.
type Dialer interface {
	DialTCP(ctx context.Context, host string, port uint16) (net.Conn, error)
	DialUDP(ctx context.Context, host string, port uint16) (net.Conn, error)
}

// Replier is an error that chooses its reply code: ReplyNotAllowed,
// ReplyNetworkUnreachable, ReplyHostUnreachable, ReplyConnectionRefused…
type Replier interface{ SOCKSReply() byte }

// ReplyError is an error with the reply code to answer it with.
type ReplyError struct {
	Code byte
	Err  error
}

func (e *ReplyError) Error() string    { return e.Err.Error() }
func (e *ReplyError) Unwrap() error    { return e.Err }
func (e *ReplyError) SOCKSReply() byte { return e.Code }

// ReplyCode is the reply code for a dial error: the code of the first
// error in its chain that implements Replier, else ReplyGeneralFailure.
func ReplyCode(err error) byte {
	var r Replier
	if errors.As(err, &r) {
		return r.SOCKSReply()
	}
	return ReplyGeneralFailure
}

// Config configures a Server.
type Config struct {
	Dialer Dialer
	// HandshakeTimeout bounds the greeting and the request (default 10 s).
	HandshakeTimeout time.Duration
	// DialTimeout bounds one dial of the Dialer (default 30 s).
	DialTimeout time.Duration
	// MaxConns bounds the connections served at once (default 256): the
	// server accepts no more until one ends.
	MaxConns int
	// MaxUDPFlows bounds the destinations of one UDP association (default
	// 64); a datagram to one more is dropped.
	MaxUDPFlows int
	// UDPIdleTimeout ends a UDP flow (one destination of an association)
	// that carried no datagram for that long (default 2 minutes).
	UDPIdleTimeout time.Duration
	// Logf, when set, is told of dial failures and dropped datagrams.
	Logf func(format string, args ...any)
}

// Server serves SOCKS5 on listeners.
type Server struct {
	cfg   Config
	slots chan struct{}
	ctx   context.Context
	stop  context.CancelFunc

	mu     sync.Mutex
	closed bool
	lns    map[net.Listener]bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

// New returns a server with cfg (zero fields take their defaults).
func New(cfg Config) *Server {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	if cfg.MaxUDPFlows <= 0 {
		cfg.MaxUDPFlows = 64
	}
	if cfg.UDPIdleTimeout <= 0 {
		cfg.UDPIdleTimeout = 2 * time.Minute
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Server{cfg: cfg, slots: make(chan struct{}, cfg.MaxConns), ctx: ctx, stop: stop,
		lns: map[net.Listener]bool{}, conns: map[net.Conn]bool{}}
}

// ErrServerClosed is what Serve returns after Close.
var ErrServerClosed = errors.New("socks5: server closed")

// Serve accepts connections on ln until Close (ErrServerClosed) or an
// accept error. It takes a slot before each Accept, so at most MaxConns
// connections are served at once.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns[ln] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return ErrServerClosed
		}
		c, err := ln.Accept()
		if err != nil {
			<-s.slots
			if s.ctx.Err() != nil {
				return ErrServerClosed
			}
			return err
		}
		if !s.track(c) {
			<-s.slots
			c.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			defer s.untrack(c)
			s.serveConn(c)
		}()
	}
}

// Active is the number of connections served now.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = true
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops the listeners, ends every connection (and its relays) and
// waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.stop()
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// serveConn serves one client connection: greeting, request, then the
// command.
func (s *Server) serveConn(c net.Conn) {
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if !s.greet(c) {
		return
	}
	req, err := readRequest(c)
	if err != nil {
		var re *replyError
		if errors.As(err, &re) {
			c.Write(appendReply(nil, re.code, Addr{}))
		}
		return
	}
	switch req.cmd {
	case cmdConnect:
		s.connect(c, req.dst)
	case cmdUDPAssociate:
		s.associate(c, req.dst)
	default: // BIND, and anything else
		c.Write(appendReply(nil, ReplyCommandNotSupported, Addr{}))
	}
}

// greet reads the client's methods and chooses "no authentication", or
// answers that none is acceptable (0xFF) and ends.
func (s *Server) greet(c net.Conn) bool {
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil || h[0] != version5 {
		return false
	}
	methods := make([]byte, h[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return false
	}
	for _, m := range methods {
		if m == methodNoAuth {
			_, err := c.Write([]byte{version5, methodNoAuth})
			return err == nil
		}
	}
	c.Write([]byte{version5, methodNoAcceptable})
	return false
}

// dialContext is the context of one dial: the server's (ended by
// Close), bounded by DialTimeout.
func (s *Server) dialContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.cfg.DialTimeout)
}

// connect serves CONNECT: dial, reply, relay both ways with half-close.
func (s *Server) connect(c net.Conn, dst Addr) {
	ctx, cancel := s.dialContext()
	remote, err := s.cfg.Dialer.DialTCP(ctx, dst.Host(), dst.Port)
	cancel()
	if err != nil {
		s.logf("socks5: CONNECT %s failed: %v", dst, err)
		c.Write(appendReply(nil, ReplyCode(err), Addr{}))
		return
	}
	defer remote.Close()
	if _, err := c.Write(appendReply(nil, ReplySucceeded, bound(remote.LocalAddr()))); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	relay(c, remote)
}

// bound is the BND.ADDR of a reply: a's IP and port when it has them,
// else 0.0.0.0:0.
func bound(a net.Addr) Addr {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	if !ap.Addr().IsValid() {
		return Addr{IP: netip.IPv4Unspecified()}
	}
	return Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
}

type closeWriter interface{ CloseWrite() error }

// relay copies both ways until both directions end; the end of one
// direction is passed on as a half-close (CloseWrite) where the other
// side can take it, else the connections are closed. An error ends both.
func relay(client, remote net.Conn) {
	done := make(chan struct{})
	half := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(closeWriter); ok && err == nil {
			if cw.CloseWrite() == nil {
				return
			}
		}
		client.Close()
		remote.Close()
	}
	go func() {
		defer close(done)
		half(remote, client)
	}()
	half(client, remote)
	<-done
}
