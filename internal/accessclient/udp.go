package accessclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Limits of `sallyport access udp`.
const (
	// UDPIdle is how long a flow lives without a datagram either way: the
	// cloud's idle timeout of a udp stream (docs/private-access.md).
	UDPIdle = 2 * time.Minute
	// udpMaxFlows is the most flows (client addresses) at once: the
	// cloud's streams per user.
	udpMaxFlows = 256
	// udpQueue is how many datagrams of a flow wait while its stream
	// opens or while the stream is slower than the client; more are
	// dropped, as a full socket buffer would.
	udpQueue = 64
)

// udpRefusalBackoff is how long datagrams from a client address whose
// flow could not open are dropped before the next attempt: a client
// that retries (a resolver asks every second or so) does not turn each
// datagram into a refused stream and a printed line. A variable for
// the tests.
var udpRefusalBackoff = 5 * time.Second

// UDPOptions configure `sallyport access udp APP`.
type UDPOptions struct {
	Options
	App    string
	Dest   string // "": the application's one internal address
	Listen string // "": 127.0.0.1 and the destination's port
	// Idle ends a flow without a datagram either way for this long
	// (0: UDPIdle).
	Idle time.Duration
	// Ready, when set, is called with the socket's address once it
	// listens.
	Ready func(addr string)
}

// UDP listens on a local UDP socket until ctx ends: each client address
// is one flow, one udp stream to the application's destination through
// its connector, carrying the client's datagrams one by one and bringing
// the answers back to that address. A flow ends after opts.Idle without a
// datagram, or when its stream ends (the connector ends a flow idle for
// 60 s). Like TCP, it checks first that a stream would be admitted, and
// finds the network's cloud once.
func UDP(ctx context.Context, o UDPOptions) error {
	chk, listen, err := prepareLocal(ctx, &o.Options, tunnel.NetworkUDP, o.App, o.Dest, o.Listen)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return problem.Newf(400, "listen", "choose another address with --listen 127.0.0.1:PORT", "Cannot listen on %s (udp) (%v)", listen, err)
	}
	defer pc.Close()
	idle := o.Idle
	if idle <= 0 {
		idle = UDPIdle
	}
	r := &udpRelay{o: o, app: chk.App, dest: chk.Dest, pc: pc, idle: idle, flows: map[string]*udpFlow{}}
	r.printf("Listening on %s (udp): each client address is one flow to %s through the application %s, ended after %s without a datagram.\n", pc.LocalAddr(), chk.Dest, chk.App, idle)
	if o.Ready != nil {
		o.Ready(pc.LocalAddr().String())
	}
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	defer r.closeAll()
	buf := make([]byte, tunnel.MaxDatagram)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return problem.Newf(500, "listen", "start it again", "Reading from %s (udp) failed (%v)", pc.LocalAddr(), err)
		}
		r.datagram(ctx, from, append([]byte(nil), buf[:n]...))
	}
}

// udpRelay is the state of one `access udp`.
type udpRelay struct {
	o    UDPOptions
	app  string
	dest string
	pc   net.PacketConn
	idle time.Duration

	outMu sync.Mutex // serialises what the user reads
	mu    sync.Mutex
	flows map[string]*udpFlow // client address → its flow
	// refused holds, per client address whose flow could not open, until
	// when its datagrams are dropped (udpRefusalBackoff).
	refused map[string]time.Time
	full    bool // the flow limit was reported
	wg      sync.WaitGroup
}

// udpFlow is one client address's stream.
type udpFlow struct {
	from  net.Addr
	queue chan []byte // datagrams to the destination
	done  chan struct{}
	once  sync.Once
	timer *time.Timer // the idle timeout
	mu    sync.Mutex
	conn  io.Closer // the stream once open
}

func (f *udpFlow) end() {
	f.once.Do(func() {
		close(f.done)
		f.mu.Lock()
		if f.conn != nil {
			f.conn.Close()
		}
		f.mu.Unlock()
	})
}

func (r *udpRelay) printf(format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.o.out(), format, args...)
}

// datagram passes p from the client address from to its flow, starting
// the flow when it is the address's first.
func (r *udpRelay) datagram(ctx context.Context, from net.Addr, p []byte) {
	key := from.String()
	r.mu.Lock()
	f := r.flows[key]
	if f != nil {
		select {
		case <-f.done: // ending: the datagram starts a new flow
			f = nil
			delete(r.flows, key)
		default:
		}
	}
	if f == nil {
		if until, ok := r.refused[key]; ok {
			if time.Now().Before(until) {
				r.mu.Unlock()
				return
			}
			delete(r.refused, key)
		}
		if len(r.flows) >= udpMaxFlows {
			report := !r.full
			r.full = true
			r.mu.Unlock()
			if report {
				r.printf("A datagram from %s was dropped: %d flows are open, the most one user may have; others are dropped until one ends.\n", from, udpMaxFlows)
			}
			return
		}
		f = &udpFlow{from: from, queue: make(chan []byte, udpQueue), done: make(chan struct{})}
		f.timer = time.AfterFunc(r.idle, f.end)
		r.flows[key] = f
		r.wg.Add(1)
		go r.run(ctx, key, f)
	}
	r.mu.Unlock()
	f.timer.Reset(r.idle)
	select {
	case f.queue <- p:
	default: // the flow is behind: drop, as a full socket buffer would
	}
}

// run opens the flow's stream, then carries datagrams both ways until the
// flow ends (idle, the stream's end, or ctx).
func (r *udpRelay) run(ctx context.Context, key string, f *udpFlow) {
	defer r.wg.Done()
	defer func() {
		f.end()
		f.timer.Stop()
		r.mu.Lock()
		if r.flows[key] == f {
			delete(r.flows, key)
		}
		if len(r.flows) < udpMaxFlows {
			r.full = false
		}
		r.mu.Unlock()
	}()
	// Opening ends early when the flow does (idle) or ctx ends.
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-f.done:
			cancel()
		case <-octx.Done():
		}
	}()
	s, err := Open(octx, StreamOptions{Options: r.o.Options, Network: tunnel.NetworkUDP, App: r.app, Dest: r.dest})
	if err != nil {
		if ctx.Err() == nil {
			select {
			case <-f.done:
			default:
				r.backOff(key)
				r.printf("A flow from %s was dropped (its datagrams are dropped for %s, then tried again): %v\n", f.from, udpRefusalBackoff, err)
			}
		}
		return
	}
	defer s.Close()
	dc := &datagramConn{Stream: s, buf: make([]byte, tunnel.MaxDatagram)}
	f.mu.Lock()
	f.conn = s
	f.mu.Unlock()
	select {
	case <-f.done: // ended while opening
		return
	default:
	}
	// Answers, to the client's address.
	answers := make(chan error, 1)
	go func() {
		buf := make([]byte, tunnel.MaxDatagram)
		for {
			n, err := dc.Read(buf)
			if err != nil {
				answers <- err
				return
			}
			f.timer.Reset(r.idle)
			if _, err := r.pc.WriteTo(buf[:n], f.from); err != nil {
				answers <- nil // the local socket closed: ctx ended
				return
			}
		}
	}()
	for {
		select {
		case p := <-f.queue:
			if _, err := dc.Write(p); err != nil {
				f.end()
				err = <-answers
				r.flowEnded(ctx, f, err)
				return
			}
		case err := <-answers:
			r.flowEnded(ctx, f, err)
			return
		case <-f.done:
			s.Close()
			<-answers
			return
		}
	}
}

// flowEnded says why a flow's stream ended, unless it ended cleanly (the
// connector's idle timeout) or the command is stopping.
func (r *udpRelay) flowEnded(ctx context.Context, f *udpFlow, err error) {
	if err == nil || ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	select {
	case <-f.done:
		return
	default:
	}
	r.printf("The flow from %s: %v\n", f.from, streamEnded(r.dest, err))
}

// backOff drops the datagrams of client address key for
// udpRefusalBackoff. The map is bounded: when it holds more addresses
// than flows may be open, the expired ones go (all of them, past twice).
func (r *udpRelay) backOff(key string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refused == nil {
		r.refused = map[string]time.Time{}
	}
	if len(r.refused) >= udpMaxFlows {
		for k, until := range r.refused {
			if now.After(until) {
				delete(r.refused, k)
			}
		}
		if len(r.refused) >= 2*udpMaxFlows {
			clear(r.refused)
		}
	}
	r.refused[key] = now.Add(udpRefusalBackoff)
}

// closeAll ends every flow and waits for them.
func (r *udpRelay) closeAll() {
	r.mu.Lock()
	for _, f := range r.flows {
		f.end()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
