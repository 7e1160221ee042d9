package connector

import (
	"sync"
	"time"
)

// throttle lets one event per key through per second and counts the
// ones it held back.
type throttle struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// allow reports whether an event for key may be written now, and how many
// were held back since the last one.
func (t *throttle) allow(key string) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last, t.held = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(t.last[key]) < time.Second {
		t.held[key]++
		return 0, false
	}
	n := t.held[key]
	t.last[key], t.held[key] = now, 0
	return n, true
}
