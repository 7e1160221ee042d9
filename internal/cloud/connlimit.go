package cloud

import (
	"log/slog"
	"net"
	"sync"

	"github.com/sallyport/sallyport/internal/eventlog"
)

// sourceLimitListener caps the connections one source (an IPv4 address,
// or an IPv6 /64, as sign-in counts them) holds open at once on the
// cloud's port. Each connection is bounded on its own (250 HTTP/2 streams,
// 8 MiB of window growth, header limits), but without this a single
// address could open connections until the process runs out of memory or
// file descriptors. A connection over the cap is closed at once, before
// its TLS handshake: it costs one accept.
//
// Accept is called by one goroutine (http.Server's loop); Close of the
// connections it returns may come from any goroutine.
type sourceLimitListener struct {
	net.Listener
	max      int
	log      *slog.Logger
	warnings eventlog.Throttle // one warning per source a second

	mu   sync.Mutex
	open map[string]int // source → open connections
}

func newSourceLimitListener(ln net.Listener, max int, log *slog.Logger) *sourceLimitListener {
	return &sourceLimitListener{Listener: ln, max: max, log: log, open: map[string]int{}}
}

func (l *sourceLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(c.RemoteAddr().String())
		l.mu.Lock()
		n := l.open[src]
		if n < l.max {
			l.open[src] = n + 1
		}
		l.mu.Unlock()
		if n < l.max {
			return &sourceConn{Conn: c, l: l, src: src}, nil
		}
		c.Close()
		if held, ok := l.warnings.Allow(src); ok {
			l.log.Warn("a connection was refused: its source holds the most connections allowed",
				"source", src, "open", n, "limit", l.max, "refused_since_last", held+1)
		}
	}
}

// openFrom is how many connections src holds (for tests).
func (l *sourceLimitListener) openFrom(src string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[src]
}

func (l *sourceLimitListener) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
}

// sourceConn gives its source's place back once, at its first Close.
type sourceConn struct {
	net.Conn
	l    *sourceLimitListener
	src  string
	once sync.Once
}

func (c *sourceConn) Close() error {
	c.once.Do(func() { c.l.release(c.src) })
	return c.Conn.Close()
}
