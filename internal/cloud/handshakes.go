package cloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
)

// Admission control for TLS handshakes (issue 17). A handshake costs
// milliseconds of CPU (the key exchange, the signature, the client
// certificate's verification); 10 000 connectors redialling at once after
// a restart asked a 2-CPU cloud for far more than it completes (≈ 110–150
// a second there): every handshake slowed down, timed out at the client,
// was redialled, and the cloud kept working on handshakes nobody waited
// for (congestion collapse: 1 393 tunnels up after 5 minutes).
//
// handshakeListener bounds the handshakes in progress. A connection takes
// a slot before its first TLS byte is read and gives it back when its
// handshake ends (done, failed or past its deadline); one that finds no
// free slot within handshakeWait is closed before any TLS work: it cost
// one accept, and the connector backs off longer after such a close
// (connector/backoff.go). The handshakes admitted finish well within the
// client's 10 s, so the cloud's throughput stays at what its CPUs can do.
//
// Fairness: before the handshake the cloud does not know the tenant (only
// the source address), so slots go to the connections that arrive, as CPU
// time did before; one source (an IPv4 address or an IPv6 /64) may hold at
// most half the slots, so one tenant's network restarting its connectors
// cannot take them all, and the others' connections still get slots.
type handshakeListener struct {
	inner   net.Listener
	cfg     *tls.Config
	max     int           // handshakes in progress at once
	perSrc  int           // of which from one source
	wait    time.Duration // how long a connection waits for a slot
	timeout time.Duration // a handshake's deadline
	log     *slog.Logger
	events  *eventlog.Log // nil-safe
	now     func() time.Time

	slots    chan struct{}
	conns    chan net.Conn // handshaken, for Accept
	done     chan struct{}
	closeErr error
	ctx      context.Context // ends at Close: handshakes in progress stop
	cancel   context.CancelFunc
	once     sync.Once
	wg       sync.WaitGroup

	mu       sync.Mutex
	bySource map[string]int // source → handshakes in progress

	inProgress atomic.Int64
	refused    atomic.Uint64 // closed before TLS: no slot
	failed     atomic.Uint64 // handshakes that failed or timed out

	evMu        sync.Mutex
	lastEvent   time.Time
	heldRefused uint64 // refusals since the last event
}

const (
	// handshakesPerCPU is the default bound per CPU (GOMAXPROCS): at the
	// ≈ 65 handshakes a second one CPU completes, 64 in progress finish
	// in about a second, far within the client's 10 s.
	handshakesPerCPU = 64
	// handshakeWait is how long a connection waits for a slot before it
	// is closed: a handshake ends every few milliseconds on a busy cloud,
	// so a short wait smooths bursts without holding connections.
	handshakeWait = 250 * time.Millisecond
	// handshakeTimeout is a handshake's deadline (as http.Server's
	// ReadHeaderTimeout gave it before).
	handshakeTimeout = 10 * time.Second
	// handshakeEventEvery spaces event 2981.
	handshakeEventEvery = time.Minute
)

// DefaultMaxHandshakes is the default of Config.MaxHandshakes.
func DefaultMaxHandshakes() int { return handshakesPerCPU * runtime.GOMAXPROCS(0) }

func newHandshakeListener(inner net.Listener, cfg *tls.Config, n int, log *slog.Logger, events *eventlog.Log) *handshakeListener {
	if n < 1 {
		n = DefaultMaxHandshakes()
	}
	l := &handshakeListener{
		inner: inner, cfg: cfg, max: n, perSrc: max(1, n/2), wait: handshakeWait, timeout: handshakeTimeout,
		log: log, events: events, now: time.Now,
		slots: make(chan struct{}, n), conns: make(chan net.Conn), done: make(chan struct{}),
		bySource: map[string]int{},
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// start runs the accept loop; Accept returns the handshaken connections.
func (l *handshakeListener) start() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var pause time.Duration
		for {
			c, err := l.inner.Accept()
			if err != nil {
				// Out of file descriptors (EMFILE) and the like pass: retry
				// after a pause growing to 1 s, as http.Server does.
				var ne net.Error
				if errors.As(err, &ne) && ne.Temporary() && !errors.Is(err, net.ErrClosed) { //nolint:staticcheck // Temporary is what Accept's errors still say
					pause = min(max(2*pause, 5*time.Millisecond), time.Second)
					l.log.Warn("accepting a connection failed; retrying", "error", err.Error(), "pause", pause.String())
					select {
					case <-time.After(pause):
						continue
					case <-l.done:
						return
					}
				}
				l.stop(err)
				return
			}
			pause = 0
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.handshake(c)
			}()
		}
	}()
}

// Accept returns the next connection whose TLS handshake is done (a
// *tls.Conn: http.Server's own handshake is then a no-op).
func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.closeErr
	}
}

func (l *handshakeListener) Addr() net.Addr { return l.inner.Addr() }

// Close stops accepting; handshakes in progress end at their deadline or
// when their connection is closed, and are closed rather than delivered.
func (l *handshakeListener) Close() error {
	err := l.inner.Close()
	l.stop(net.ErrClosed)
	return err
}

func (l *handshakeListener) stop(err error) {
	l.once.Do(func() {
		l.closeErr = err
		close(l.done)
		l.cancel()
	})
}

// handshake admits c (or closes it) and runs its handshake.
func (l *handshakeListener) handshake(c net.Conn) {
	src := sourceOf(c.RemoteAddr().String())
	if !l.acquire(src) {
		l.refuse(src) // counted before the close a client sees
		c.Close()
		return
	}
	l.inProgress.Add(1)
	tc := tls.Server(c, l.cfg)
	c.SetDeadline(l.now().Add(l.timeout))
	err := tc.HandshakeContext(l.ctx)
	l.inProgress.Add(-1)
	l.release(src)
	if err != nil {
		l.failed.Add(1)
		l.log.Debug("a TLS handshake failed", "source", src, "error", err.Error())
		tc.Close()
		return
	}
	c.SetDeadline(time.Time{})
	select {
	case l.conns <- tc:
	case <-l.done:
		tc.Close()
	}
}

// acquire takes a slot for a connection from src: at once, or within
// l.wait; never when src already holds its share.
func (l *handshakeListener) acquire(src string) bool {
	l.mu.Lock()
	if l.bySource[src] >= l.perSrc {
		l.mu.Unlock()
		return false
	}
	l.bySource[src]++
	l.mu.Unlock()
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-l.done:
	}
	l.unSource(src)
	return false
}

func (l *handshakeListener) release(src string) {
	<-l.slots
	l.unSource(src)
}

func (l *handshakeListener) unSource(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

// refuse counts a connection closed before TLS and writes event 2981 at
// most once a minute, with how many it stands for.
func (l *handshakeListener) refuse(src string) {
	l.refused.Add(1)
	l.evMu.Lock()
	l.heldRefused++
	now := l.now()
	if !l.lastEvent.IsZero() && now.Sub(l.lastEvent) < handshakeEventEvery {
		l.evMu.Unlock()
		return
	}
	n := l.heldRefused
	l.lastEvent, l.heldRefused = now, 0
	l.evMu.Unlock()
	l.events.Event(eventlog.HandshakesRefused,
		fmt.Sprintf("%d connection(s) were closed before their TLS handshake: the cloud was already running the %d handshakes it allows at once (--max-handshakes), or their address held its share (%d); connectors retry after a longer backoff", n, l.max, l.perSrc),
		"refused", fmt.Sprint(n), "limit", fmt.Sprint(l.max), "per_source", fmt.Sprint(l.perSrc), "last_source", src)
}

// waitClosed waits for the accept loop and the handshakes in progress
// (after Close).
func (l *handshakeListener) waitClosed() { l.wg.Wait() }
