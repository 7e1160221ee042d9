package socks5

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest datagram relayed (a UDP payload).
const maxDatagram = 65535

// flowQueue is how many datagrams a flow holds while it dials or writes;
// more are dropped, as a network would.
const flowQueue = 64

// association is one UDP ASSOCIATE: a relay socket on the control
// connection's local address, the client's address, and one flow per
// destination.
type association struct {
	s      *Server
	pc     *net.UDPConn
	ctx    context.Context
	cancel context.CancelFunc
	// clientIP is the control connection's peer: datagrams from any other
	// address are dropped. client is its full address, fixed by the
	// request's port or else by the first datagram; read only by the
	// goroutine that reads pc, and by flows it starts after fixing it.
	clientIP netip.Addr
	client   netip.AddrPort

	mu    sync.Mutex
	flows map[Addr]*flow
	wg    sync.WaitGroup
}

// associate serves UDP ASSOCIATE: a relay socket, the reply naming it,
// then relaying until the control connection ends.
func (s *Server) associate(c net.Conn, req Addr) {
	local := bound(c.LocalAddr()).IP
	if !local.IsValid() || local.IsUnspecified() {
		local = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		s.logf("socks5: UDP ASSOCIATE: no relay socket on %s: %v", local, err)
		c.Write(appendReply(nil, ReplyGeneralFailure, Addr{}))
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	a := &association{s: s, pc: pc, ctx: ctx, cancel: cancel, clientIP: bound(c.RemoteAddr()).IP, flows: map[Addr]*flow{}}
	if req.Port != 0 {
		a.client = netip.AddrPortFrom(a.clientIP, req.Port)
	}
	defer a.close()
	if _, err := c.Write(appendReply(nil, ReplySucceeded, bound(pc.LocalAddr()))); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.readClient()
	}()
	// The association lasts as long as its control connection.
	io.Copy(io.Discard, c)
}

func (a *association) close() {
	a.cancel()
	a.pc.Close()
	a.wg.Wait()
}

// readClient reads the client's datagrams and hands each to the flow of
// its destination.
func (a *association) readClient() {
	buf := make([]byte, maxDatagram+1)
	for {
		n, from, err := a.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if a.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				a.s.logf("socks5: UDP relay: %v", err)
			}
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from.Addr() != a.clientIP {
			continue // not the client's
		}
		if !a.client.IsValid() {
			a.client = from
		} else if from != a.client {
			continue
		}
		h, data, err := parseUDP(buf[:n])
		if err != nil || h.frag != 0 {
			continue // malformed, or a fragment: fragmentation is not supported (RFC 1928 §7)
		}
		a.send(h.dst, data)
	}
}

// send queues a copy of data for dst's flow, starting the flow.
func (a *association) send(dst Addr, data []byte) {
	a.mu.Lock()
	f := a.flows[dst]
	if f == nil {
		if len(a.flows) >= a.s.cfg.MaxUDPFlows {
			a.mu.Unlock()
			a.s.logf("socks5: UDP datagram to %s dropped: the association already has %d destinations", dst, a.s.cfg.MaxUDPFlows)
			return
		}
		ctx, cancel := context.WithCancel(a.ctx)
		f = &flow{a: a, dst: dst, q: make(chan []byte, flowQueue), ctx: ctx, cancel: cancel}
		f.touch() // before its reader can look at it
		a.flows[dst] = f
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			f.run()
		}()
	}
	// Touched and queued under the lock, so that an idle flow ending
	// (readBack) either sees this datagram or is gone from the map first.
	f.touch()
	select {
	case f.q <- append([]byte(nil), data...):
	default: // the flow is behind: dropped
	}
	a.mu.Unlock()
}

// flow relays one destination's datagrams of an association.
type flow struct {
	a      *association
	dst    Addr
	q      chan []byte
	ctx    context.Context
	cancel context.CancelFunc
	last   atomic.Int64 // unix nanoseconds of the last datagram either way
}

func (f *flow) touch() { f.last.Store(time.Now().UnixNano()) }

// run dials the destination, then writes its queued datagrams until the
// association ends or the flow is idle.
func (f *flow) run() {
	defer f.remove()
	defer f.cancel()
	ctx, cancel := context.WithTimeout(f.ctx, f.a.s.cfg.DialTimeout)
	conn, err := f.a.s.cfg.Dialer.DialUDP(ctx, f.dst.Host(), f.dst.Port)
	cancel()
	if err != nil {
		f.a.s.logf("socks5: UDP flow to %s failed: %v", f.dst, err)
		return
	}
	defer conn.Close()
	f.a.wg.Add(1)
	go func() {
		defer f.a.wg.Done()
		defer f.cancel()
		f.readBack(conn)
	}()
	for {
		select {
		case d := <-f.q:
			if _, err := conn.Write(d); err != nil {
				return
			}
		case <-f.ctx.Done():
			return
		}
	}
}

// readBack sends the destination's datagrams to the client, each with
// the header naming the destination as the client named it; it ends when
// the flow has been idle for UDPIdleTimeout.
func (f *flow) readBack(conn net.Conn) {
	idle := f.a.s.cfg.UDPIdleTimeout
	buf := make([]byte, maxDatagram)
	out := make([]byte, 0, maxDatagram+4+1+MaxDomain+2)
	for {
		conn.SetReadDeadline(time.Unix(0, f.last.Load()).Add(idle))
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				f.a.mu.Lock()
				if time.Since(time.Unix(0, f.last.Load())) < idle {
					f.a.mu.Unlock()
					continue // a datagram went out meanwhile
				}
				f.removeLocked() // the next datagram to f.dst starts a new flow
				f.a.mu.Unlock()
				f.a.s.logf("socks5: UDP flow to %s ended: idle for %s", f.dst, idle)
			}
			return
		}
		f.touch()
		out = appendUDP(out[:0], f.dst, buf[:n])
		if _, err := f.a.pc.WriteToUDPAddrPort(out, f.a.client); err != nil {
			return
		}
	}
}

// remove takes the flow out of its association: the next datagram to
// its destination starts a new one.
func (f *flow) remove() {
	f.a.mu.Lock()
	f.removeLocked()
	f.a.mu.Unlock()
}

func (f *flow) removeLocked() {
	if f.a.flows[f.dst] == f {
		delete(f.a.flows, f.dst)
	}
}
