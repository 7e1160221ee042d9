package cloud

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/testnet"
)

func TestSourceOf(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:5000", "127.0.0.1"},
		{"[::ffff:192.0.2.7]:443", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:1", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:1", "2001:db8:1:3::/64"},
		{"[fe80::1%eth0]:1", "fe80::/64"},
		{"192.0.2.9", "192.0.2.9"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := sourceOf(tt.addr); got != tt.want {
			t.Errorf("sourceOf(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestHashGateFair: freed slots go round-robin over the sources waiting;
// a source queues at most perSource requests, all at most queue; a
// cancelled wait leaves the queue.
func TestHashGateFair(t *testing.T) {
	g := newHashGate(1, 6, 3)
	ctx := context.Background()
	if err := g.acquire(ctx, "A"); err != nil { // A runs
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queued := func(n int) func() bool {
		return func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.waiting == n }
	}
	wait := func(name string, n int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.acquire(ctx, name[:1]); err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			g.release()
		}()
		waitFor(t, name+" queued", queued(n))
	}
	wait("A1", 1)
	wait("A2", 2)
	wait("A3", 3)
	if err := g.acquire(ctx, "A"); !errors.Is(err, errGateFull) {
		t.Fatalf("a 4th waiter of A: %v, want errGateFull", err)
	}
	wait("B1", 4)
	wait("C1", 5)
	// A cancelled wait leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- g.acquire(cctx, "D") }()
	waitFor(t, "D queued", queued(6))
	if err := g.acquire(ctx, "E"); !errors.Is(err, errGateFull) {
		t.Fatalf("a 7th waiter: %v, want errGateFull", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	waitFor(t, "D gone", queued(5))
	g.release() // A's first request is done
	wg.Wait()
	if got, want := fmt.Sprint(order), "[A1 B1 C1 A2 A3]"; got != want {
		t.Errorf("slots went to %s, want %s (round-robin over sources)", got, want)
	}
	if g.running != 0 || g.waiting != 0 || len(g.queues) != 0 || len(g.ring) != 0 {
		t.Errorf("gate not empty: %+v", g)
	}
}

// TestSigninBackoff: failures past the free ones back a source and an
// account name off, doubling up to the cap, forgotten one per decay
// period; a clean source still gets through to a backing-off account.
func TestSigninBackoff(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	lim := defaultSigninLimits
	lim.SourceFree, lim.AccountFree = 3, 2
	g := newSigninGuard(lim, clk.Now, func() *eventlog.Log { return nil })
	retry := func(err error) time.Duration {
		var re *retryError
		if !errors.As(err, &re) || re.Code != "signin_rate_limited" || re.Status != 429 {
			t.Fatalf("got %v, want a signin_rate_limited retryError", err)
		}
		return re.after
	}
	// The account backs off from its 3rd failure, for sources that failed.
	for range 2 {
		g.failed("198.51.100.1", "ann@contoso.com")
	}
	if err := g.checkAccount("198.51.100.1", "ann@contoso.com"); err != nil {
		t.Fatalf("after 2 failures: %v", err)
	}
	g.failed("198.51.100.1", "ann@contoso.com")
	if d := retry(g.checkAccount("198.51.100.1", "ann@contoso.com")); d != time.Second {
		t.Errorf("account after 3 failures: Retry-After %s, want 1s", d)
	}
	if err := g.checkAccount("203.0.113.5", "ann@contoso.com"); err != nil {
		t.Errorf("a clean source was refused for a backing-off account: %v", err)
	}
	if err := g.checkAccount("198.51.100.1", "bob@contoso.com"); err != nil {
		t.Errorf("another account was refused: %v", err)
	}
	// A source backs off from its 4th failure, doubling up to the cap.
	steps := []struct {
		failures int
		want     time.Duration
	}{{4, time.Second}, {1, 2 * time.Second}, {1, 4 * time.Second}, {10, time.Minute}}
	for _, st := range steps {
		for i := range st.failures {
			g.failed("198.51.100.9", fmt.Sprintf("x%d@contoso.com", i))
		}
		if d := retry(g.admit("198.51.100.9")); d != st.want {
			t.Errorf("source Retry-After %s, want %s", d, st.want)
		}
	}
	if err := g.admit("198.51.100.2"); err != nil {
		t.Errorf("another source was refused: %v", err)
	}
	// After the wait one attempt is let through; the failures decay.
	clk.Advance(time.Minute)
	if err := g.admit("198.51.100.9"); err != nil {
		t.Errorf("after the backoff: %v", err)
	}
	clk.Advance(20 * lim.FailureDecay)
	g.failed("198.51.100.9", "x@contoso.com")
	if err := g.admit("198.51.100.9"); err != nil {
		t.Errorf("one failure after the others decayed: %v", err)
	}
	// A success forgets the account's failures.
	for range 3 {
		g.failed("198.51.100.3", "cy@contoso.com")
	}
	g.succeeded("cy@contoso.com")
	if err := g.checkAccount("198.51.100.3", "cy@contoso.com"); err != nil {
		t.Errorf("after a success: %v", err)
	}
	// The bucket: burst, then refused with the time to the next token.
	for i := range lim.SourceBurst {
		if err := g.admit("192.0.2.1"); err != nil {
			t.Fatalf("attempt %d of the burst: %v", i+1, err)
		}
	}
	if d := retry(g.admit("192.0.2.1")); d != time.Second {
		t.Errorf("bucket Retry-After %s, want 1s", d)
	}
}

// TestLimitTableBounded: many distinct keys never grow a table past its
// bound, and each call looks at no more than sweepBatch other entries.
func TestLimitTableBounded(t *testing.T) {
	var looked atomic.Int64
	busy := func(*failureRecord, time.Time) bool { looked.Add(1); return false }
	idle := func(*failureRecord, time.Time) bool { looked.Add(1); return true }
	tests := []struct {
		name string
		idle func(*failureRecord, time.Time) bool
		max  int // entries at most after the run
	}{
		{"entries in use: evicted at the bound", busy, 4096},
		{"idle entries: swept as new keys come", idle, tableShards * (sweepBatch + 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newLimitTable(4096, tt.idle)
			now := time.Now()
			const keys = 200_000
			worst := int64(0)
			for i := range keys {
				before := looked.Load()
				tab.with(fmt.Sprintf("2001:db8:%x::/64", i), now, func(f *failureRecord) { f.n++ })
				worst = max(worst, looked.Load()-before)
			}
			if n := tab.len(); n > tt.max {
				t.Errorf("%d entries after %d distinct keys, want at most %d", n, keys, tt.max)
			}
			if worst > sweepBatch {
				t.Errorf("one call looked at %d entries, want at most %d", worst, sweepBatch)
			}
		})
	}
}

// signinCloud is a cloud served over TLS on 127.0.0.1 with the given
// sign-in limits.
type signinCloud struct {
	addr  string
	caPEM []byte
}

func startSigninCloud(t *testing.T, lim signinLimits) *signinCloud {
	t.Helper()
	dir := initDataDirNamed(t, "sallyport.localhost")
	_, ln := serveTestCloud(t, Config{DataDir: dir, Listen: "127.0.0.1:0"}, func(s *Server) {
		s.signin = newSigninGuard(lim, s.now, func() *eventlog.Log { return s.events })
	})
	pemCA, err := os.ReadFile(filepath.Join(dir, datadir.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return &signinCloud{addr: ln.Addr().String(), caPEM: pemCA}
}

// client returns an HTTPS client whose connections come from local
// address from (127.0.0.x: Linux routes all of 127/8 to lo).
func (c *signinCloud) client(from string, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", c.addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "sallyport.localhost"},
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
	}}
}

// login signs in and returns the status, the Retry-After header and the
// error code.
func (c *signinCloud) login(hc *http.Client, user, pw string) (int, string, string, error) {
	js, _ := json.Marshal(api.LoginRequest{User: user, Password: pw})
	resp, err := hc.Post("https://sallyport.localhost"+api.Prefix+"/login", "application/json", bytes.NewReader(js))
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	json.Unmarshal(b, &eb)
	return resp.StatusCode, resp.Header.Get("Retry-After"), eb.Error.Code, nil
}

// TestSigninFairUnderFlood: while one source (127.0.0.1) floods the
// sign-in with 40 concurrent wrong passwords in a loop, another source's
// (127.0.0.2) valid sign-in takes at most 2 s (the target of issue 14;
// it took 8.4 s with two shared slots and an unbounded queue). Measured
// with all limits on (the flood is soon answered by the source's backoff)
// and with the fair queue alone (rates and backoffs out of the way).
func TestSigninFairUnderFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of argon2id hashes takes seconds")
	}
	if raceEnabled {
		t.Skip("the race detector slows argon2id down tenfold: the 2 s target is measured without it (TestHashGateFair checks the gate under it)")
	}
	queueOnly := defaultSigninLimits
	queueOnly.SourceRate, queueOnly.SourceBurst = 1e6, 1e6
	queueOnly.SourceFree, queueOnly.AccountFree = 1e6, 1e6
	tests := []struct {
		name      string
		lim       signinLimits
		floodCode string // what the flood gets, mostly
	}{
		{"all limits", defaultSigninLimits, "signin_rate_limited"},
		{"fair queue alone", queueOnly, "signin_busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startSigninCloud(t, tt.lim)
			victim := c.client("127.0.0.2", 2)
			signIn := func() time.Duration {
				start := time.Now()
				status, _, code, err := c.login(victim, "admin@contoso.com", testPassword)
				if err != nil || status != 200 {
					t.Fatalf("the valid sign-in from 127.0.0.2: %d %s %v", status, code, err)
				}
				return time.Since(start)
			}
			signIn() // the first connection's handshake is not measured
			baseline := signIn()

			flood := startFlood(t, c, "127.0.0.1", 40)
			var each []time.Duration
			for range 3 {
				each = append(each, signIn().Round(time.Millisecond))
			}
			res := flood.stop(t)
			t.Logf("valid sign-in from 127.0.0.2: %s alone, %v (3 tries) while 127.0.0.1 floods with %d concurrent wrong passwords from another process; the flood got %v",
				baseline.Round(time.Millisecond), each, floodConns, res.Codes)
			// The target is 2 s on an idle machine (a sign-in alone
			// takes about 0.1 s there). When the machine is busy with other
			// tests, every hash is slower: the bound is then six sign-ins
			// measured alone in this same run — a flood that queued the
			// victim behind its own hashes (8.4 s before the fix) still
			// exceeds it many times over. The median of three tries keeps
			// one scheduling hiccup from deciding.
			slices.Sort(each)
			flooded, bound := each[1], max(2*time.Second, 6*baseline)
			if flooded > bound {
				t.Errorf("the valid sign-in took %s (median of 3) during the flood, want at most %s (2 s, or six sign-ins alone: %s)", flooded, bound, baseline)
			}
			if res.Codes[tt.floodCode] == 0 {
				t.Errorf("the flood got no %s", tt.floodCode)
			}
			if res.BadRetry != "" {
				t.Errorf("the flood got %s", res.BadRetry)
			}
		})
	}
}

const floodConns = 40

// flood is a process flooding a cloud's sign-in: TestSigninFloodHelper
// in a copy of this test binary, so that its goroutines do not share
// the cloud's processors as they would in one process (an attacker's
// client runs elsewhere).
type flood struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

type floodResult struct {
	Codes    map[string]int `json:"codes"`
	BadRetry string         `json:"bad_retry"`
}

func startFlood(t *testing.T, c *signinCloud, from string, conns int) *flood {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, c.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSigninFloodHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "SALLYPORT_FLOOD="+fmt.Sprintf("%s,%s,%s,%d", c.addr, ca, from, conns))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &flood{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(out)}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	for f.lines.Scan() { // the flood is on once each connection was answered
		if f.lines.Text() == "flood: on" {
			return f
		}
	}
	t.Fatalf("the flood process ended before it was on: %v", f.lines.Err())
	return nil
}

// stop ends the flood and returns what it got.
func (f *flood) stop(t *testing.T) floodResult {
	t.Helper()
	f.stdin.Close()
	var res floodResult
	for f.lines.Scan() {
		if js, ok := strings.CutPrefix(f.lines.Text(), "flood: result "); ok {
			if err := json.Unmarshal([]byte(js), &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.cmd.Wait(); err != nil {
		t.Fatalf("the flood process: %v", err)
	}
	return res
}

// TestSigninFloodHelper is the flood process of TestSigninFairUnderFlood
// (skipped otherwise): conns concurrent wrong-password sign-ins in a loop,
// until its standard input closes.
func TestSigninFloodHelper(t *testing.T) {
	spec := os.Getenv("SALLYPORT_FLOOD")
	if spec == "" {
		t.Skip("the flood process of TestSigninFairUnderFlood")
	}
	var addr, caFile, from string
	var conns int
	parts := strings.Split(spec, ",")
	if len(parts) != 4 {
		t.Fatalf("SALLYPORT_FLOOD=%q", spec)
	}
	addr, caFile, from = parts[0], parts[1], parts[2]
	conns, _ = strconv.Atoi(parts[3])
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &signinCloud{addr: addr, caPEM: caPEM}
	hc := c.client(from, conns)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	res := floodResult{Codes: map[string]int{}}
	var answered atomic.Int64
	var on sync.Once
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				status, retry, code, err := c.login(hc, "admin@contoso.com", "wrong password!")
				if err != nil {
					continue
				}
				mu.Lock()
				if n, _ := strconv.Atoi(retry); status == 429 && n < 1 {
					res.BadRetry = fmt.Sprintf("429 %s with Retry-After %q", code, retry)
				}
				res.Codes[code]++
				mu.Unlock()
				if answered.Add(1) >= int64(conns) {
					on.Do(func() { fmt.Println("flood: on") })
				}
			}
		}()
	}
	io.Copy(io.Discard, os.Stdin)
	stop()
	wg.Wait()
	hc.CloseIdleConnections()
	js, _ := json.Marshal(res)
	fmt.Println("flood: result " + string(js))
}

// waitFor waits until cond holds, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !testnet.Eventually(30*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}
