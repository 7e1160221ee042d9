package cloud

import (
	"sync"
	"testing"
	"time"
)

var historyT0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func TestLatencyBucket(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{5 * time.Millisecond, 0},
		{5*time.Millisecond + 1, 1},
		{99 * time.Millisecond, 4},
		{time.Second, 7},
		{90 * time.Second, len(latencyBounds) - 1},
		{91 * time.Second, len(latencyBounds)},
		{time.Hour, len(latencyBounds)},
	} {
		if got := latencyBucket(tc.d); got != tc.want {
			t.Errorf("latencyBucket(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestHistoryMinutes: samples land in the bucket of their minute; the
// snapshot shows the last 60 minutes, oldest first, the current minute
// last; a minute older than an hour is gone, and a bucket reused by a
// later minute starts from zero.
func TestHistoryMinutes(t *testing.T) {
	type sample struct {
		at     time.Duration // after historyT0
		failed bool
	}
	k := historyKey{appSeries, "t1", "a1"}
	for _, tc := range []struct {
		name     string
		samples  []sample
		at       time.Duration // of the snapshot
		requests int
		errors   int
		// minutes: index in the snapshot → requests, errors
		minutes map[int][2]int
	}{
		{name: "nothing", at: 0, minutes: map[int][2]int{59: {0, 0}}},
		{name: "one minute", samples: []sample{{0, false}, {10 * time.Second, true}, {59 * time.Second, false}},
			at: 59 * time.Second, requests: 3, errors: 1, minutes: map[int][2]int{59: {3, 1}, 58: {0, 0}}},
		{name: "rollover to the next minute", samples: []sample{{59 * time.Second, true}, {60 * time.Second, false}},
			at: 61 * time.Second, requests: 2, errors: 1, minutes: map[int][2]int{59: {1, 0}, 58: {1, 1}}},
		{name: "an hour later the first minute is gone", samples: []sample{{0, true}, {30 * time.Minute, false}},
			at: 60 * time.Minute, requests: 1, errors: 0, minutes: map[int][2]int{29: {1, 0}, 0: {0, 0}}},
		{name: "59 minutes later the first minute is still there", samples: []sample{{0, true}, {30 * time.Minute, false}},
			at: 59 * time.Minute, requests: 2, errors: 1, minutes: map[int][2]int{0: {1, 1}, 30: {1, 0}}},
		{name: "a reused bucket starts from zero", samples: []sample{{0, true}, {0, true}, {60 * time.Minute, false}},
			at: 60 * time.Minute, requests: 1, errors: 0, minutes: map[int][2]int{59: {1, 0}}},
		{name: "a sample an hour late does not clear the newer minute",
			samples: []sample{{60 * time.Minute, false}, {0, true}, {60 * time.Minute, false}},
			at:      60 * time.Minute, requests: 2, errors: 0, minutes: map[int][2]int{59: {2, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h history
			for _, s := range tc.samples {
				h.record(k, historySample{failed: s.failed, latency: time.Millisecond}, historyT0.Add(s.at))
			}
			st := h.snapshot(k, historyT0.Add(tc.at))
			if len(st.minutes) != historyMinutes {
				t.Fatalf("%d minutes, want %d", len(st.minutes), historyMinutes)
			}
			if want := historyT0.Add(tc.at).Truncate(time.Minute); !st.minutes[59].start.Equal(want) {
				t.Errorf("the last minute starts at %v, want %v", st.minutes[59].start, want)
			}
			if got := st.minutes[59].start.Sub(st.minutes[0].start); got != 59*time.Minute {
				t.Errorf("the minutes span %v, want 59m", got)
			}
			if st.requests != tc.requests || st.errors != tc.errors {
				t.Errorf("hour: %d requests, %d errors; want %d, %d", st.requests, st.errors, tc.requests, tc.errors)
			}
			for i, want := range tc.minutes {
				if got := [2]int{st.minutes[i].requests, st.minutes[i].errors}; got != want {
					t.Errorf("minute %d: %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestHistoryP95(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name      string
		latencies map[time.Duration]int // latency → count
		want      time.Duration
		over, ok  bool
	}{
		{name: "no request", latencies: nil},
		{name: "one fast request", latencies: map[time.Duration]int{ms: 1}, want: 5 * ms, ok: true},
		{name: "all in one bucket", latencies: map[time.Duration]int{70 * ms: 100}, want: 100 * ms, ok: true},
		{name: "95 fast, 5 slow: p95 is fast", latencies: map[time.Duration]int{ms: 95, 3 * time.Second: 5}, want: 5 * ms, ok: true},
		{name: "94 fast, 6 slow: p95 is slow", latencies: map[time.Duration]int{ms: 94, 3 * time.Second: 6}, want: 5 * time.Second, ok: true},
		{name: "past the last bound", latencies: map[time.Duration]int{2 * time.Minute: 10}, want: 90 * time.Second, over: true, ok: true},
		{name: "unmeasured attempts only", latencies: map[time.Duration]int{-1: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h history
			k := historyKey{connectorSeries, "t1", "c1"}
			for d, n := range tc.latencies {
				for range n {
					h.record(k, historySample{latency: d}, historyT0)
				}
			}
			st := h.snapshot(k, historyT0)
			d, over, ok := st.p95()
			if d != tc.want || over != tc.over || ok != tc.ok {
				t.Errorf("p95 = %v, over %v, ok %v; want %v, %v, %v", d, over, ok, tc.want, tc.over, tc.ok)
			}
		})
	}
}

// TestHistoryForget: deleted applications' and connectors' series go
// (forget, keepOnly of their tenant, leaving other tenants' alone), and
// a series idle for an hour goes when a new series comes.
func TestHistoryForget(t *testing.T) {
	var h history
	a1, a2 := historyKey{appSeries, "t1", "a1"}, historyKey{appSeries, "t1", "a2"}
	c1, other := historyKey{connectorSeries, "t1", "c1"}, historyKey{appSeries, "t2", "a9"}
	for _, k := range []historyKey{a1, a2, c1, other} {
		h.record(k, historySample{}, historyT0)
	}
	has := func(k historyKey) bool { _, ok := h.series.Load(k); return ok }
	h.forget(a2)
	h.keepOnly("t1", map[historyKey]bool{a1: true})
	for k, want := range map[historyKey]bool{a1: true, a2: false, c1: false, other: true} {
		if has(k) != want {
			t.Errorf("series %v kept: %v, want %v", k, has(k), want)
		}
	}
	if h.n != 2 {
		t.Errorf("%d series counted, want 2", h.n)
	}
	h.record(a1, historySample{}, historyT0.Add(30*time.Minute))
	h.record(c1, historySample{}, historyT0.Add(61*time.Minute)) // a new series: sweeps
	for k, want := range map[historyKey]bool{a1: true, other: false, c1: true} {
		if has(k) != want {
			t.Errorf("after an hour, series %v kept: %v, want %v", k, has(k), want)
		}
	}
	if h.n != 2 {
		t.Errorf("%d series counted, want 2", h.n)
	}
}

// TestHistoryConcurrentWriters: writers of the same and of different
// series, across a minute's rollover, with readers and forgets, lose no
// sample of a series that stays (run with -race).
func TestHistoryConcurrentWriters(t *testing.T) {
	var h history
	const writers, each = 8, 500
	shared := historyKey{appSeries, "t1", "shared"}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := historyKey{connectorSeries, "t1", string(rune('a' + w))}
			for i := range each {
				at := historyT0.Add(time.Duration(i%2) * time.Minute) // two minutes, interleaved
				h.record(shared, historySample{failed: i%10 == 0, latency: time.Duration(i) * time.Millisecond}, at)
				h.record(own, historySample{}, at)
				if i%50 == 0 {
					h.snapshot(shared, at)
					h.forget(historyKey{appSeries, "t1", "gone"})
					h.keepOnly("t2", nil)
				}
			}
		}()
	}
	wg.Wait()
	st := h.snapshot(shared, historyT0.Add(time.Minute))
	if st.requests != writers*each || st.errors != writers*each/10 {
		t.Errorf("shared series: %d requests, %d errors; want %d, %d", st.requests, st.errors, writers*each, writers*each/10)
	}
	if got := st.minutes[58].requests + st.minutes[59].requests; got != writers*each || st.minutes[58].requests != writers*each/2 {
		t.Errorf("the two minutes hold %d and %d requests", st.minutes[58].requests, st.minutes[59].requests)
	}
	if h.n != writers+1 {
		t.Errorf("%d series counted, want %d", h.n, writers+1)
	}
}

// BenchmarkHistoryRecord is the cost on the request path: many
// goroutines recording to a few applications' series at once (run with
// -cpu 1,4,16 to see the per-series lock's contention).
func BenchmarkHistoryRecord(b *testing.B) {
	var h history
	keys := []historyKey{{appSeries, "t1", "a1"}, {appSeries, "t1", "a2"}, {connectorSeries, "t1", "c1"}}
	now := historyT0
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			h.record(keys[i%len(keys)], historySample{latency: time.Duration(i) * time.Microsecond}, now)
			i++
		}
	})
}
