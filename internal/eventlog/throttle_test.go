package eventlog

import (
	"fmt"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	var th Throttle
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		key      string
		at       time.Duration
		wantOK   bool
		wantHeld int
	}{
		{"a", 0, true, 0},
		{"a", 100 * time.Millisecond, false, 0},
		{"a", 900 * time.Millisecond, false, 0},
		{"b", 900 * time.Millisecond, true, 0}, // keys are apart
		{"a", 1100 * time.Millisecond, true, 2},
		{"a", 1200 * time.Millisecond, false, 0},
		{"a", 3 * time.Second, true, 1},
		{"a", 5 * time.Second, true, 0},
	}
	for i, s := range steps {
		held, ok := th.allowAt(s.key, t0.Add(s.at))
		if ok != s.wantOK || held != s.wantHeld {
			t.Errorf("step %d (%s at %v): got (%d, %v), want (%d, %v)", i, s.key, s.at, held, ok, s.wantHeld, s.wantOK)
		}
	}
}

// TestThrottleBounded: a flood of distinct keys (request paths, deleted
// applications) keeps the table at ThrottleKeys, and a busy key keeps
// being throttled meanwhile in most cases.
func TestThrottleBounded(t *testing.T) {
	var th Throttle
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for i := range 10 * ThrottleKeys {
		th.allowAt(fmt.Sprint("key-", i), t0.Add(time.Duration(i)*time.Millisecond))
		if n := len(th.keys); n > ThrottleKeys {
			t.Fatalf("after %d keys the throttle holds %d, want at most %d", i+1, n, ThrottleKeys)
		}
	}
}
