package eventlog

import (
	"sync"
	"time"
)

// Throttle lets one event per key through per second and counts the ones
// it held back, so a flood of the same failure writes one event a second
// that says how many it stands for. The zero value is ready; it is safe
// for concurrent use.
//
// It holds at most ThrottleKeys keys. A new key beyond that evicts an idle
// one among a few it looks at (or, when all are busy, the first of them),
// so no call sweeps the whole table under the lock: a flood of distinct
// keys costs O(1) per call and bounded memory.
type Throttle struct {
	mu   sync.Mutex
	keys map[string]*throttled
}

// ThrottleKeys bounds the keys a Throttle remembers.
const ThrottleKeys = 4096

// throttleLook is how many entries a new key beyond ThrottleKeys looks at.
const throttleLook = 8

type throttled struct {
	last time.Time
	held int
}

// Allow reports whether an event for key may be written now and, if so,
// how many were held back since the last one.
func (t *Throttle) Allow(key string) (held int, ok bool) {
	return t.allowAt(key, time.Now())
}

func (t *Throttle) allowAt(key string, now time.Time) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.keys[key]
	if e == nil {
		if t.keys == nil {
			t.keys = map[string]*throttled{}
		}
		if len(t.keys) >= ThrottleKeys {
			t.evict(now)
		}
		t.keys[key] = &throttled{last: now}
		return 0, true
	}
	if now.Sub(e.last) < time.Second {
		e.held++
		return 0, false
	}
	n := e.held
	e.last, e.held = now, 0
	return n, true
}

// evict drops the idle entries among a few (map order is random), or the
// first of them when none is idle.
func (t *Throttle) evict(now time.Time) {
	looked, dropped := 0, false
	first := ""
	for k, e := range t.keys {
		if looked == 0 {
			first = k
		}
		if now.Sub(e.last) >= time.Second && e.held == 0 {
			delete(t.keys, k)
			dropped = true
		}
		if looked++; looked == throttleLook {
			break
		}
	}
	if !dropped {
		delete(t.keys, first)
	}
}
