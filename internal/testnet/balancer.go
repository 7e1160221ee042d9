package testnet

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Balancer is a TCP load balancer on 127.0.0.1, as in front of several
// cloud instances: each connection goes to the next target in turn.
type Balancer struct {
	ln      net.Listener
	mu      sync.Mutex
	targets []string
	open    map[net.Conn]bool
	conns   atomic.Int64
	wg      sync.WaitGroup
}

// StartBalancer listens on a free port of 127.0.0.1; it forwards nothing
// (closes what it accepts) until SetTargets. It is closed, with every
// connection it forwards, when the test ends.
func StartBalancer(t testing.TB) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Balancer{ln: ln, open: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for c := range b.open {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

// Port is the port it listens on.
func (b *Balancer) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// Conns is how many connections it has accepted.
func (b *Balancer) Conns() int64 { return b.conns.Load() }

// SetTargets sets the HOST:PORT addresses connections go to, in turn.
func (b *Balancer) SetTargets(addrs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.targets = addrs
}

// track records c as open (closed when the test ends), or forgets it.
func (b *Balancer) track(c net.Conn, open bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if open {
		b.open[c] = true
	} else {
		delete(b.open, c)
	}
}

func (b *Balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		n := b.conns.Add(1)
		b.mu.Lock()
		targets := b.targets
		b.mu.Unlock()
		if len(targets) == 0 {
			c.Close()
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			up, err := net.Dial("tcp", targets[int(n-1)%len(targets)])
			if err != nil {
				return
			}
			defer up.Close()
			b.track(c, true)
			b.track(up, true)
			defer b.track(c, false)
			defer b.track(up, false)
			done := make(chan struct{})
			go func() {
				io.Copy(up, c)
				up.Close()
				close(done)
			}()
			io.Copy(c, up)
			c.Close()
			<-done
		}()
	}
}
