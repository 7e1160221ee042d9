package connector

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
)

// backoff is the wait between one tunnel slot's connection attempts:
// jittered exponential, a random wait in [d/2, d].
//
// Ordinary failures (the cloud refuses the TCP connection, a tunnel
// closed) double d from Config.MinBackoff up to Config.MaxBackoff (0.5 s
// to 5 s): a connector is back within seconds once the cloud is. A busy
// cloud (issue 17) is different: when it closed the connection before the
// TLS handshake (it was running as many handshakes as it allows) or the
// handshake did not finish in time, every connector that comes back
// within seconds adds to the storm. Each such failure multiplies d by 4
// instead of 2, up to Config.BusyMaxBackoff (60 s): 1, 4, 16, 60 s — so
// 10 000 connectors restarting at once spread their attempts over a
// minute and the cloud completes them at what its CPUs can do. A tunnel
// that stayed up a minute resets it.
type backoff struct {
	min, max, busyMax time.Duration
	n, busy           int // failures in a row, and of those the busy ones
	// rand returns a value in [0, n); rand.N by default.
	rand func(n time.Duration) time.Duration
}

func (c *Connector) newBackoff() *backoff {
	return &backoff{min: c.cfg.MinBackoff, max: c.cfg.MaxBackoff, busyMax: c.cfg.BusyMaxBackoff}
}

// fail counts a failed attempt (busy: the cloud closed it before TLS or
// the handshake timed out) and returns the wait before the next one.
func (b *backoff) fail(busy bool) time.Duration {
	b.n++
	if busy {
		b.busy++
	}
	limit := b.max
	if b.busy > 0 {
		limit = max(b.max, b.busyMax)
	}
	d := b.min
	for i := 1; i < b.n+b.busy && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	r := rand.N[time.Duration]
	if b.rand != nil {
		r = b.rand
	}
	return d/2 + r(d/2+1)
}

// reset starts over after a tunnel stayed up.
func (b *backoff) reset() { b.n, b.busy = 0, 0 }

// failures is the count of failed attempts in a row.
func (b *backoff) failures() int { return b.n }

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// cloudBusy reports whether a failed dial means a busy cloud: the TCP
// connection was made (connected) and then closed or timed out during the
// TLS handshake.
func cloudBusy(err error, connected bool) bool {
	if !connected || err == nil {
		return false
	}
	p, ok := problem.As(err)
	return ok && (p.Code == "cloud_timeout" || p.Code == "cloud_reset")
}
