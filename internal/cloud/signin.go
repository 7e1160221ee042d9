package cloud

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// Sign-in and registration with a password are guarded in four steps,
// cheapest first, so that one source cannot take the sign-in away from the
// others (docs/architecture.md, "Sign-in fairness"):
//
//  1. a token bucket per source (an IPv4 address, or an IPv6 /64: whoever
//     has one address of a /64 usually has all of them);
//  2. a backoff per source after failed passwords, and one per account
//     name: each failure past the free ones doubles the wait (1 s up to
//     1 min), and failures are forgotten one per minute, so nobody can
//     lock an account for good;
//  3. a bounded, fair wait for the argon2id hashing slots: the waiting
//     requests are served round-robin over their sources, with at most a
//     few per source, and a full queue is answered at once;
//  4. the hash itself, for unknown users too (the same answer, the same
//     cost).
//
// Steps 1–3 answer 429 with Retry-After. The client address is the TCP
// peer's (RemoteAddr): headers such as X-Forwarded-For are not trusted.

// signinLimits are the guard's parameters.
type signinLimits struct {
	Slots          int     // argon2id hashes computed at once (64 MiB each)
	Queue          int     // requests waiting for a slot, all sources together
	QueuePerSource int     // of which from one source
	SourceRate     float64 // attempts per second per source, sustained
	SourceBurst    int     // attempts per source at once
	SourceFree     int     // failed passwords per source before its backoff
	AccountFree    int     // failed passwords per account name before its backoff
	FailureDecay   time.Duration
	BackoffBase    time.Duration // the first wait; each further failure doubles it
	BackoffMax     time.Duration
	TableSize      int // entries per table (sources, account names), all shards
}

var defaultSigninLimits = signinLimits{
	Slots: 2, Queue: 64, QueuePerSource: 4,
	SourceRate: 5, SourceBurst: 30,
	SourceFree: 10, AccountFree: 5, FailureDecay: time.Minute,
	BackoffBase: time.Second, BackoffMax: time.Minute,
	TableSize: 1 << 16,
}

// signinGuard holds the sign-in limits' state for one server.
type signinGuard struct {
	lim      signinLimits
	now      func() time.Time
	gate     *hashGate
	sources  *limitTable[sourceEntry]
	accounts *limitTable[failureRecord]
	events   func() *eventlog.Log

	busyMu     sync.Mutex
	busyLogged time.Time
	busyCount  int
}

func newSigninGuard(lim signinLimits, now func() time.Time, events func() *eventlog.Log) *signinGuard {
	g := &signinGuard{lim: lim, now: now, events: events, gate: newHashGate(lim.Slots, lim.Queue, lim.QueuePerSource)}
	g.sources = newLimitTable(lim.TableSize, func(e *sourceEntry, t time.Time) bool {
		return e.tokensAt(t, lim) >= float64(lim.SourceBurst) && e.fail.idle(t, lim.FailureDecay)
	})
	g.accounts = newLimitTable(lim.TableSize, func(f *failureRecord, t time.Time) bool { return f.idle(t, lim.FailureDecay) })
	return g
}

// sourceOf is the source a request comes from: its peer's IPv4 address,
// or the /64 of its IPv6 address.
func sourceOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// retryError is a refusal that tells the client when to try again.
type retryError struct {
	*problem.Problem
	after time.Duration
}

func (e *retryError) Unwrap() error { return e.Problem }

// retrySeconds is the whole seconds of Retry-After for d (at least 1).
func retrySeconds(d time.Duration) int {
	return int(math.Max(1, math.Ceil(d.Seconds())))
}

func rateLimited(after time.Duration, message, why string) error {
	n := retrySeconds(after)
	return &retryError{after: time.Duration(n) * time.Second, Problem: problem.Newf(http.StatusTooManyRequests, "signin_rate_limited",
		fmt.Sprintf("wait %d s and try again%s", n, why), "%s", message)}
}

// admit charges an attempt to the source's bucket and refuses it while
// the source is backing off.
func (g *signinGuard) admit(src string) error {
	now := g.now()
	var err error
	g.sources.with(src, now, func(e *sourceEntry) {
		if until := e.fail.until; now.Before(until) {
			err = rateLimited(until.Sub(now), "Too many failed sign-ins from this address",
				"; each further failure doubles the wait, up to "+waitText(g.lim.BackoffMax))
			return
		}
		tokens := e.tokensAt(now, g.lim)
		if tokens < 1 {
			err = rateLimited(time.Duration((1-tokens)/g.lim.SourceRate*float64(time.Second)),
				"Too many sign-in or registration attempts from this address", "")
			return
		}
		e.tokens, e.last = tokens-1, now
	})
	return err
}

// checkAccount refuses an attempt on an account name that is backing off,
// unless it comes from a source with no recent failure: so the real user,
// from an address that has not been failing, is still let in while an
// attacker elsewhere keeps failing. The name need not exist: unknown and
// known names are treated the same.
func (g *signinGuard) checkAccount(src, account string) error {
	now := g.now()
	var until time.Time
	g.accounts.with(accountKey(account), now, func(f *failureRecord) { until = f.until })
	if !now.Before(until) {
		return nil
	}
	clean := true
	g.sources.with(src, now, func(e *sourceEntry) { clean = e.fail.count(now, g.lim.FailureDecay) < 1 })
	if clean {
		return nil
	}
	return rateLimited(until.Sub(now), "Too many failed sign-ins for this user name",
		"; the wait ends sooner for an address that has not been failing")
}

// failed records a wrong password (or unknown user) for the source and
// the account name.
func (g *signinGuard) failed(src, account string) {
	now := g.now()
	var srcStarted, accStarted bool
	var srcWait, accWait time.Duration
	g.sources.with(src, now, func(e *sourceEntry) {
		srcStarted, srcWait = e.fail.add(now, g.lim.SourceFree, g.lim)
	})
	g.accounts.with(accountKey(account), now, func(f *failureRecord) {
		accStarted, accWait = f.add(now, g.lim.AccountFree, g.lim)
	})
	ev := g.events()
	if ev == nil {
		return
	}
	if srcStarted {
		ev.Event(eventlog.SignInSourceBackoff, fmt.Sprintf("Sign-ins from %s failed more than %d times in a row: its next attempts wait %s, doubling with each further failure up to %s",
			src, g.lim.SourceFree, waitText(srcWait), waitText(g.lim.BackoffMax)), "source", src, "wait", srcWait.String())
	}
	if accStarted {
		ev.Event(eventlog.SignInUserBackoff, fmt.Sprintf("Sign-ins as %s failed more than %d times in a row: its next attempts from addresses that have been failing wait %s, doubling with each further failure up to %s",
			tenancy.Truncate(account, 80), g.lim.AccountFree, waitText(accWait), waitText(g.lim.BackoffMax)), "user", tenancy.Truncate(account, 80), "source", src, "wait", accWait.String())
	}
}

// succeeded forgets the account's failures.
func (g *signinGuard) succeeded(account string) {
	g.accounts.with(accountKey(account), g.now(), func(f *failureRecord) { *f = failureRecord{} })
}

// hash runs f, a password hash, in a slot of the fair gate.
func (g *signinGuard) hash(ctx context.Context, src string, f func()) error {
	if err := g.gate.acquire(ctx, src); err != nil {
		if err == errGateFull {
			g.logBusy(src)
			return &retryError{after: time.Second, Problem: problem.New(http.StatusTooManyRequests, "signin_busy",
				"wait 1 s and try again", "The cloud is checking too many passwords at once, or too many sign-ins from this address are waiting")}
		}
		return err
	}
	defer g.gate.release()
	f()
	return nil
}

// logBusy logs a full queue at most once a minute, with the count.
func (g *signinGuard) logBusy(src string) {
	g.busyMu.Lock()
	g.busyCount++
	now := g.now()
	if now.Sub(g.busyLogged) < time.Minute {
		g.busyMu.Unlock()
		return
	}
	n := g.busyCount
	g.busyLogged, g.busyCount = now, 0
	g.busyMu.Unlock()
	if ev := g.events(); ev != nil {
		ev.Event(eventlog.SignInQueueFull, fmt.Sprintf("%d sign-in or registration attempt(s) were refused at once because the password hashing queue was full (the last from %s)", n, src),
			"source", src, "refused", strconv.Itoa(n))
	}
}

// waitText writes whole minutes as "1 min", else like 4s.
func waitText(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.String()
}

// accountKey is the table key of an account name (bounded in length).
func accountKey(name string) string { return tenancy.Truncate(name, 320) }

// sourceEntry is a source's token bucket and failure record.
type sourceEntry struct {
	tokens float64
	last   time.Time // zero: a full bucket
	fail   failureRecord
}

func (e *sourceEntry) tokensAt(now time.Time, lim signinLimits) float64 {
	if e.last.IsZero() {
		return float64(lim.SourceBurst)
	}
	return math.Min(float64(lim.SourceBurst), e.tokens+now.Sub(e.last).Seconds()*lim.SourceRate)
}

// failureRecord counts recent failures (one forgotten per decay period)
// and when the backoff they caused ends.
type failureRecord struct {
	n     float64
	at    time.Time
	until time.Time
}

func (f *failureRecord) count(now time.Time, decay time.Duration) float64 {
	if f.n == 0 {
		return 0
	}
	return math.Max(0, f.n-float64(now.Sub(f.at))/float64(decay))
}

func (f *failureRecord) idle(now time.Time, decay time.Duration) bool {
	return f.count(now, decay) == 0 && !now.Before(f.until)
}

// add counts a failure; past free ones it sets the backoff, and reports
// whether the backoff just started and how long it is.
func (f *failureRecord) add(now time.Time, free int, lim signinLimits) (started bool, wait time.Duration) {
	f.n, f.at = f.count(now, lim.FailureDecay)+1, now
	over := int(math.Ceil(f.n)) - free
	if over <= 0 {
		return false, 0
	}
	wait = lim.BackoffMax
	if over <= 30 {
		wait = min(lim.BackoffBase<<(over-1), lim.BackoffMax)
	}
	started = !now.Before(f.until) // not backing off until now
	f.until = now.Add(wait)
	return started, wait
}

// limitTable is a bounded table of per-key limiter state, in shards so
// that no request waits on a lock held for the whole table. Nothing ever
// sweeps it whole: each new key looks at a few entries of its shard and
// drops the idle ones, and a shard at its bound drops one entry to make
// room. So each call does O(1) work, and the table never holds more than
// its bound.
type limitTable[V any] struct {
	seed     maphash.Seed
	perShard int
	idle     func(v *V, now time.Time) bool
	shards   [tableShards]tableShard[V]
}

const (
	tableShards = 64
	sweepBatch  = 8 // entries a new key looks at
)

type tableShard[V any] struct {
	mu sync.Mutex
	m  map[string]*V
}

func newLimitTable[V any](size int, idle func(*V, time.Time) bool) *limitTable[V] {
	t := &limitTable[V]{seed: maphash.MakeSeed(), perShard: max(1, size/tableShards), idle: idle}
	for i := range t.shards {
		t.shards[i].m = map[string]*V{}
	}
	return t
}

// with runs f on key's entry (made if missing) under its shard's lock.
func (t *limitTable[V]) with(key string, now time.Time, f func(*V)) {
	sh := &t.shards[maphash.String(t.seed, key)%tableShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v, ok := sh.m[key]
	if !ok {
		t.sweep(sh, now)
		v = new(V)
		sh.m[key] = v
	}
	f(v)
}

// sweep drops the idle entries among a few of the shard's, and one more
// if the shard is still full (the oldest-looking is as good as any: map
// order is random).
func (t *limitTable[V]) sweep(sh *tableShard[V], now time.Time) {
	seen := 0
	var victim string
	for k, v := range sh.m {
		if seen == sweepBatch {
			break
		}
		seen++
		if t.idle(v, now) {
			delete(sh.m, k)
		} else if victim == "" {
			victim = k
		}
	}
	if len(sh.m) >= t.perShard && victim != "" {
		delete(sh.m, victim)
	}
}

// len is the number of entries (for tests and metrics).
func (t *limitTable[V]) len() int {
	n := 0
	for i := range t.shards {
		t.shards[i].mu.Lock()
		n += len(t.shards[i].m)
		t.shards[i].mu.Unlock()
	}
	return n
}

// hashGate hands out the hashing slots: a request runs at once when a
// slot is free and nobody waits; else it waits in its source's queue, and
// each freed slot goes to the next source in turn (round-robin), so a
// source flooding the gate delays another's request by at most one hash
// per slot. The wait is bounded: at most queue requests, at most
// perSource from one source; beyond, acquire fails at once.
type hashGate struct {
	mu                      sync.Mutex
	slots, queue, perSource int
	running, waiting        int
	queues                  map[string][]chan struct{} // by source, FIFO
	ring                    []string                   // sources with waiters, in turn order
	next                    int                        // the ring index served next
}

var errGateFull = fmt.Errorf("the hashing queue is full")

func newHashGate(slots, queue, perSource int) *hashGate {
	return &hashGate{slots: slots, queue: queue, perSource: perSource, queues: map[string][]chan struct{}{}}
}

func (g *hashGate) acquire(ctx context.Context, src string) error {
	g.mu.Lock()
	if g.running < g.slots && g.waiting == 0 {
		g.running++
		g.mu.Unlock()
		return nil
	}
	q := g.queues[src]
	if g.waiting >= g.queue || len(q) >= g.perSource {
		g.mu.Unlock()
		return errGateFull
	}
	ch := make(chan struct{})
	if len(q) == 0 {
		g.ring = append(g.ring, src)
	}
	g.queues[src] = append(q, ch)
	g.waiting++
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		removed := g.remove(src, ch)
		g.mu.Unlock()
		if !removed {
			g.release() // granted meanwhile: pass the slot on
		}
		return ctx.Err()
	}
}

// remove takes a waiter out of its queue; false if it was granted.
func (g *hashGate) remove(src string, ch chan struct{}) bool {
	q := g.queues[src]
	i := slices.Index(q, ch)
	if i < 0 {
		return false
	}
	g.waiting--
	if len(q) > 1 {
		g.queues[src] = slices.Delete(q, i, i+1)
		return true
	}
	delete(g.queues, src)
	j := slices.Index(g.ring, src)
	g.ring = slices.Delete(g.ring, j, j+1)
	if j < g.next {
		g.next--
	}
	return true
}

// release frees a slot, or hands it to the next source's first waiter.
func (g *hashGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting == 0 {
		g.running--
		return
	}
	if g.next >= len(g.ring) {
		g.next = 0
	}
	src := g.ring[g.next]
	q := g.queues[src]
	ch := q[0]
	if len(q) == 1 {
		delete(g.queues, src)
		g.ring = slices.Delete(g.ring, g.next, g.next+1)
	} else {
		g.queues[src] = slices.Delete(q, 0, 1)
		g.next++
	}
	g.waiting--
	close(ch)
}
