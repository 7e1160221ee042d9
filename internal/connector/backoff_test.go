package connector

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
)

// TestBackoff: the wait before the next attempt, at the top of its jitter
// range (and at the bottom: half of it). Ordinary failures double it up to
// MaxBackoff; a busy cloud's (closed before TLS, handshake timed out)
// quadruple it up to BusyMaxBackoff; a tunnel that stayed up resets it.
func TestBackoff(t *testing.T) {
	const s = time.Second
	type step struct {
		busy  bool
		reset bool // the tunnel stayed up before this failure
		want  time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"ordinary failures: 0.5 s doubling to 5 s", []step{{want: s / 2}, {want: s}, {want: 2 * s}, {want: 4 * s}, {want: 5 * s}, {want: 5 * s}}},
		{"a busy cloud: 1, 4, 16 s, capped at 60 s", []step{{busy: true, want: s}, {busy: true, want: 4 * s}, {busy: true, want: 16 * s}, {busy: true, want: 60 * s}, {busy: true, want: 60 * s}}},
		{"busy once, then ordinary failures: above 5 s, up to 60 s", []step{{want: s / 2}, {busy: true, want: 2 * s}, {want: 4 * s}, {want: 8 * s}, {want: 16 * s}, {want: 32 * s}, {want: 60 * s}}},
		{"a tunnel that stayed up resets it", []step{{busy: true, want: s}, {busy: true, want: 4 * s}, {reset: true, want: s / 2}, {want: s}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := &backoff{min: s / 2, max: 5 * s, busyMax: time.Minute, rand: func(n time.Duration) time.Duration { return n - 1 }}
			bottom := &backoff{min: s / 2, max: 5 * s, busyMax: time.Minute, rand: func(time.Duration) time.Duration { return 0 }}
			for i, st := range tt.steps {
				if st.reset {
					top.reset()
					bottom.reset()
				}
				if got := top.fail(st.busy); got != st.want {
					t.Fatalf("failure %d: wait %s at most, want %s", i+1, got, st.want)
				}
				if got := bottom.fail(st.busy); got != st.want/2 {
					t.Fatalf("failure %d: wait %s at least, want %s", i+1, got, st.want/2)
				}
			}
		})
	}
}

// TestCloudBusy: a dial failure counts as a busy cloud only when the TCP
// connection was made and the cloud then closed it or let the handshake
// time out.
func TestCloudBusy(t *testing.T) {
	p := func(code string) error { return problem.New(502, code, "", "x") }
	tests := []struct {
		name      string
		err       error
		connected bool
		want      bool
	}{
		{"closed before the handshake", p("cloud_reset"), true, true},
		{"handshake timed out", p("cloud_timeout"), true, true},
		{"TCP connect timed out", p("cloud_timeout"), false, false},
		{"TCP refused", p("cloud_refused"), false, false},
		{"certificate refused", p("tls_inspection"), true, false},
		{"no error", nil, true, false},
	}
	for _, tt := range tests {
		if got := cloudBusy(tt.err, tt.connected); got != tt.want {
			t.Errorf("%s: cloudBusy = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestBusyCloudBackoff: a cloud that closes the connector's first
// connections before their TLS handshake (a busy cloud) gets event 1210
// once, not once per attempt, and the tunnel comes up at the next attempt
// after them: attempts are counted, not timed.
func TestBusyCloudBackoff(t *testing.T) {
	cloud := newFakeCloud(t)
	cloud.closeFirst.Store(3)
	cloud.start(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	c, err := New(Config{Dir: dir, Connections: 1, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, BusyMaxBackoff: 5 * time.Millisecond, Hostname: "test-host"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The dial reports the TCP connection made and the failure as busy
	// (the first of the 3 closed connections; Run gets the other 2).
	_, connected, err := c.dial(t.Context(), "")
	if err == nil || !connected || !cloudBusy(err, connected) {
		t.Fatalf("dial to a cloud closing before TLS: connected %v, busy %v, error %v; want a busy cloud", connected, cloudBusy(err, connected), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	tc := nextTunnel(t, cloud)
	defer tc.Close()
	if got := cloud.closed.Load(); got != 3 {
		t.Fatalf("the cloud closed %d connections before TLS, want 3", got)
	}
	evs, err := eventlog.Read(filepath.Join(dir, statedir.EventsFile), eventlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.ID == eventlog.CloudBusyBackoff {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("event 1210 written %d times for 2 busy attempts, want once", n)
	}
}
