package cloud

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
)

// TestHandshakeSlots: the cloud's listener runs at most max TLS handshakes
// at once (issue 17, the handshake storm). With every slot held by a
// connection that never sends its ClientHello, another connection waits
// for a slot and is closed before any TLS work when none frees (counted as
// refused), or gets the slot once the held connection goes (queued); one
// source may hold at most half the slots, another source is not affected.
func TestHandshakeSlots(t *testing.T) {
	ca := testnet.NewCA(t)
	cert := ca.Cert(t, "127.0.0.1")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	tests := []struct {
		name string
		max  int
		hold []string // sources of the connections that hold a slot, silent
		wait time.Duration
		from string // source of the connection under test
		// served: its handshake completes once the held connections are
		// closed (it waited for a slot); else it is refused.
		served bool
	}{
		{name: "every slot held: refused", max: 1, hold: []string{"127.0.0.1"}, wait: time.Millisecond, from: "127.0.0.2"},
		{name: "every slot held: queued until one frees", max: 1, hold: []string{"127.0.0.1"}, wait: time.Hour, from: "127.0.0.2", served: true},
		{name: "its source holds half the slots: refused at once", max: 4, hold: []string{"127.0.0.1", "127.0.0.1"}, wait: time.Hour, from: "127.0.0.1"},
		{name: "another source holds half the slots: served", max: 4, hold: []string{"127.0.0.1", "127.0.0.1"}, wait: time.Hour, from: "127.0.0.2", served: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := newHandshakeListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, tt.max, slog.New(slog.DiscardHandler), nil)
			l.wait = tt.wait
			l.start()
			accepted := make(chan net.Conn, 4)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- c
				}
			}()
			t.Cleanup(func() {
				l.Close()
				for c := range accepted {
					c.Close()
				}
				l.waitClosed()
			})
			dial := func(from string) net.Conn {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				c, err := d.Dial("tcp", inner.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			var held []net.Conn
			for _, src := range tt.hold {
				held = append(held, dial(src))
			}
			testnet.WaitUntil(t, "the silent connections hold their slots", func() bool { return l.inProgress.Load() == int64(len(tt.hold)) })

			result := make(chan error, 1)
			c := tls.Client(dial(tt.from), &tls.Config{ServerName: "127.0.0.1", RootCAs: roots})
			go func() { result <- c.Handshake() }()
			if !tt.served {
				if err := testnet.RecvWithin(t, "the refused handshake's end", result); err == nil {
					t.Fatal("the handshake completed, want the connection closed before TLS")
				}
				if got := l.refused.Load(); got != 1 {
					t.Fatalf("refused = %d, want 1", got)
				}
				if got := l.inProgress.Load(); got != int64(len(tt.hold)) {
					t.Fatalf("handshakes in progress = %d after the refusal, want %d", got, len(tt.hold))
				}
				return
			}
			if tt.max > len(tt.hold) {
				// A free slot: served at once.
			} else {
				testnet.WaitUntil(t, "the connection waits for a slot", func() bool {
					l.mu.Lock()
					defer l.mu.Unlock()
					return l.bySource[tt.from] == 1
				})
				for _, h := range held {
					h.Close()
				}
			}
			if err := testnet.RecvWithin(t, "the handshake", result); err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if sc := testnet.RecvWithin(t, "the accepted connection", accepted); sc == nil {
				t.Fatal("Accept returned no connection")
			} else if _, ok := sc.(*tls.Conn); !ok {
				t.Fatalf("Accept returned a %T, want a *tls.Conn", sc)
			} else {
				sc.Close()
			}
			if got := l.refused.Load(); got != 0 {
				t.Fatalf("refused = %d, want 0", got)
			}
			c.Close()
		})
	}
}

// TestHandshakeRefusedEvent: refusals write event 2981 at most once a
// minute, with how many it stands for.
func TestHandshakeRefusedEvent(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	l := newHandshakeListener(nil, nil, 1, slog.New(slog.DiscardHandler), nil)
	l.now = func() time.Time { return now }
	steps := []struct {
		after     time.Duration
		wantEvent bool
		wantHeld  uint64 // refusals not yet written after the step
	}{
		{0, true, 0},
		{time.Second, false, 1},
		{10 * time.Second, false, 2},
		{time.Minute, true, 0},
		{time.Second, false, 1},
	}
	for i, st := range steps {
		now = now.Add(st.after)
		before := l.lastEvent
		l.refuse("127.0.0.1")
		if wrote := l.lastEvent != before; wrote != st.wantEvent {
			t.Fatalf("step %d: event written = %v, want %v", i, wrote, st.wantEvent)
		}
		if l.heldRefused != st.wantHeld {
			t.Fatalf("step %d: refusals held = %d, want %d", i, l.heldRefused, st.wantHeld)
		}
	}
	if got := l.refused.Load(); got != uint64(len(steps)) {
		t.Fatalf("refused = %d, want %d", got, len(steps))
	}
}

// tempErrListener fails its first Accept with a temporary error (as
// accept does when the process is out of file descriptors).
type tempErrListener struct {
	net.Listener
	failed bool
}

type tempErr struct{}

func (tempErr) Error() string   { return "accept: too many open files" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

func (l *tempErrListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

// TestHandshakeListenerTemporaryError: a temporary accept error (EMFILE)
// does not stop the cloud's listener: the next connection is served.
func TestHandshakeListenerTemporaryError(t *testing.T) {
	testnet.CheckLeaks(t)
	ca := testnet.NewCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newHandshakeListener(&tempErrListener{Listener: inner}, &tls.Config{Certificates: []tls.Certificate{ca.Cert(t, "127.0.0.1")}}, 1, slog.New(slog.DiscardHandler), nil)
	l.start()
	t.Cleanup(func() { l.Close(); l.waitClosed() })
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := tls.Dial("tcp", inner.Addr().String(), &tls.Config{ServerName: "127.0.0.1", RootCAs: roots})
	if err != nil {
		t.Fatalf("after a temporary accept error: %v", err)
	}
	c.Close()
	if err := testnet.RecvWithin(t, "Accept", accepted); err != nil {
		t.Fatalf("Accept: %v", err)
	}
}
