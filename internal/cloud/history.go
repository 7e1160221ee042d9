package cloud

import (
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
)

// The overview's last hour (GET /api/v1/overview, docs/admin-center.md):
// per application and per connector, one bucket a minute with the
// requests, the errors and a small latency histogram, kept in memory by
// each cloud instance from what the edge already measures on the request
// path. It starts empty when the instance starts.

// historyMinutes is how many one-minute buckets a series keeps: an hour.
const historyMinutes = 60

// historyMaxSeries bounds the series an instance keeps (each about 4 KiB):
// applications and connectors are bounded by the store, this only stops a
// bug from growing the map without end.
const historyMaxSeries = 50000

// latencyBounds are the upper bounds of the latency histogram's buckets
// (the last bucket counts everything slower). Coarse on purpose: a p95
// read from them is an upper bound, good enough for "is it slow".
var latencyBounds = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second, 90 * time.Second,
}

// latencyBuckets is the histogram's size: one per bound, and the rest.
const latencyBuckets = len(latencyBounds) + 1

// seriesKind says whether a series is an application's or a connector's.
type seriesKind uint8

const (
	appSeries seriesKind = iota
	connectorSeries
)

type historyKey struct {
	kind     seriesKind
	tenantID string
	id       string // application or connector id
}

// minuteBucket is one minute of a series.
type minuteBucket struct {
	minute   int64 // Unix minute this bucket holds; another value: empty
	requests uint32
	errors   uint32
	latency  [latencyBuckets]uint32
}

// minuteRing is one series: the last historyMinutes minutes. Its own
// short lock: writers of different series never wait for each other.
type minuteRing struct {
	mu      sync.Mutex
	buckets [historyMinutes]minuteBucket
	last    int64 // the newest minute written
}

// history holds the series of every application and connector. Its zero
// value is ready. record may be called from any number of goroutines at
// once with snapshot, forget and keepOnly.
type history struct {
	series sync.Map // historyKey → *minuteRing; reads take no lock
	mu     sync.Mutex
	n      int   // series in the map (under mu)
	swept  int64 // the minute of the last sweep of idle series (under mu)
}

// historySample is one request (or one attempt on a connector).
type historySample struct {
	failed  bool
	latency time.Duration // to the response headers; <0: not measured
}

// record adds a sample to the series at now.
func (h *history) record(k historyKey, s historySample, now time.Time) {
	m := now.Unix() / 60
	v, ok := h.series.Load(k)
	if !ok {
		if v, ok = h.add(k, m); !ok {
			return
		}
	}
	r := v.(*minuteRing)
	r.mu.Lock()
	b := &r.buckets[m%historyMinutes]
	if b.minute > m {
		// A sample an hour late (a clock stepped back): its bucket holds
		// a newer minute now.
		r.mu.Unlock()
		return
	}
	if b.minute != m {
		*b = minuteBucket{minute: m}
	}
	b.requests++
	if s.failed {
		b.errors++
	}
	if s.latency >= 0 {
		b.latency[latencyBucket(s.latency)]++
	}
	if m > r.last {
		r.last = m
	}
	r.mu.Unlock()
}

// add creates the series k, after dropping the series idle for an hour
// (at most once a minute), unless the map is full.
func (h *history) add(k historyKey, m int64) (any, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.series.Load(k); ok {
		return v, true
	}
	if m != h.swept {
		h.swept = m
		h.series.Range(func(key, v any) bool {
			r := v.(*minuteRing)
			r.mu.Lock()
			idle := m-r.last >= historyMinutes
			r.mu.Unlock()
			if idle {
				h.series.Delete(key)
				h.n--
			}
			return true
		})
	}
	if h.n >= historyMaxSeries {
		return nil, false
	}
	r := &minuteRing{last: m}
	h.series.Store(k, r)
	h.n++
	return r, true
}

// forget drops the series k (its application or connector was deleted).
func (h *history) forget(k historyKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.series.LoadAndDelete(k); ok {
		h.n--
	}
}

// keepOnly drops the series of tenantID whose application or connector is
// not in keep (deleted since, by this instance or another).
func (h *history) keepOnly(tenantID string, keep map[historyKey]bool) {
	h.series.Range(func(key, _ any) bool {
		k := key.(historyKey)
		if k.tenantID == tenantID && !keep[k] {
			h.forget(k)
		}
		return true
	})
}

// latencyBucket is the histogram bucket of d.
func latencyBucket(d time.Duration) int {
	for i, b := range latencyBounds {
		if d <= b {
			return i
		}
	}
	return len(latencyBounds)
}

// minuteStats is one minute of a series as the overview shows it.
type minuteStats struct {
	start    time.Time
	requests int
	errors   int
}

// seriesStats is the last hour of a series.
type seriesStats struct {
	minutes  []minuteStats // oldest first, historyMinutes of them, the last one the current minute
	requests int
	errors   int
	latency  [latencyBuckets]uint64
}

// snapshot returns the last hour of series k at now (all zero when the
// instance saw nothing of it).
func (h *history) snapshot(k historyKey, now time.Time) seriesStats {
	m := now.Unix() / 60
	st := seriesStats{minutes: make([]minuteStats, historyMinutes)}
	for i := range st.minutes {
		st.minutes[i].start = time.Unix((m-historyMinutes+1+int64(i))*60, 0).UTC()
	}
	v, ok := h.series.Load(k)
	if !ok {
		return st
	}
	r := v.(*minuteRing)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range st.minutes {
		want := m - historyMinutes + 1 + int64(i)
		b := &r.buckets[want%historyMinutes]
		if b.minute != want {
			continue
		}
		st.minutes[i].requests, st.minutes[i].errors = int(b.requests), int(b.errors)
		st.requests += int(b.requests)
		st.errors += int(b.errors)
		for j, n := range b.latency {
			st.latency[j] += uint64(n)
		}
	}
	return st
}

// p95 is an upper bound of the 95th percentile latency of the hour: the
// bound of the histogram bucket that holds it. ok is false without any
// measured request; over is true when it lies past the last bound (the
// latency is then "over" the last bound).
func (st *seriesStats) p95() (d time.Duration, over, ok bool) {
	var total uint64
	for _, n := range st.latency {
		total += n
	}
	if total == 0 {
		return 0, false, false
	}
	// The smallest rank r with r >= 0.95 total, in integers.
	rank := (total*95 + 99) / 100
	var seen uint64
	for i, n := range st.latency {
		seen += n
		if seen >= rank {
			if i == len(latencyBounds) {
				return latencyBounds[len(latencyBounds)-1], true, true
			}
			return latencyBounds[i], false, true
		}
	}
	return latencyBounds[len(latencyBounds)-1], true, true
}

// recordEdge feeds the overview's history with one edge request to an
// application: the application's series, and the series of the connector
// that answered it. A request fails when its answer is a 5xx: the
// backend's own, or the edge's (no connector, tunnel or backend failure,
// timeout). A client that went away (499) or a refusal (4xx) is no error
// of the application.
func (s *Server) recordEdge(o *edge.Outcome, code int, took time.Duration) {
	now := s.now()
	sample := historySample{failed: code >= 500, latency: took}
	s.history.record(historyKey{appSeries, o.App.TenantID, o.App.ID}, sample, now)
	if o.Connector != "" {
		s.history.record(historyKey{connectorSeries, o.App.TenantID, o.Connector}, sample, now)
	}
}

// recordFailedAttempts counts, on the series of each connector a failed
// request was sent to without an answer (its tunnel failed), a failed
// attempt: the connector's error rate shows it even when another
// connector of the group answered in the end.
func (s *Server) recordFailedAttempts(f *edge.Failure, now time.Time) {
	if f.Refused {
		return
	}
	for _, id := range f.Connectors {
		if id != f.Connector {
			s.history.record(historyKey{connectorSeries, f.App.TenantID, id}, historySample{failed: true, latency: -1}, now)
		}
	}
}
