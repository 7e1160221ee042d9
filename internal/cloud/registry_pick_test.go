package cloud

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestPickConcurrentLimit: picks from many goroutines at once (pick takes
// no lock) never reserve more than the per-connector limit, and every
// reservation is accounted for.
func TestPickConcurrentLimit(t *testing.T) {
	const limit = 3
	f := newFakeGroup(t, limit, "c_a", "c_b")
	var held [2]atomic.Int64 // reservations held now, by connector
	var over atomic.Bool
	var picked, refused atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				lt, why := f.reg.pick(testGroupID, "", nil)
				if lt == nil {
					if why != saturated {
						t.Errorf("pick found %v, want saturated", why)
						return
					}
					refused.Add(1)
					continue
				}
				i := 0
				if lt.conn.ID == "c_b" {
					i = 1
				}
				if held[i].Add(1) > limit {
					over.Store(true)
				}
				picked.Add(1)
				held[i].Add(-1)
				lt.conn.active.Add(-1)
			}
		}()
	}
	wg.Wait()
	if over.Load() {
		t.Error("a connector held more reservations than its limit")
	}
	for _, id := range []string{"c_a", "c_b"} {
		if n := f.reg.connectors[id].active.Load(); n != 0 {
			t.Errorf("connector %s has %d reservations left, want 0", id, n)
		}
	}
	if picked.Load()+refused.Load() != 16*500 || picked.Load() == 0 {
		t.Errorf("%d picked and %d refused of %d", picked.Load(), refused.Load(), 16*500)
	}
}

// TestPickSkipsUnusableTunnel: a connector whose tunnels are all closed is
// not picked; one with one tunnel left is.
func TestPickSkipsUnusableTunnel(t *testing.T) {
	f := newFakeGroup(t, 1000, "c_a", "c_b")
	for _, c := range f.clients["c_a"] {
		c.Close()
	}
	f.clients["c_b"][0].Close()
	for range 20 {
		lt, _ := f.reg.pick(testGroupID, "c_a", nil)
		if lt == nil || lt.conn.ID != "c_b" || lt.c != f.clients["c_b"][1] {
			t.Fatalf("picked %v, want c_b's open tunnel", lt)
		}
		lt.conn.active.Add(-1)
	}
	if lt, why := f.reg.pick(testGroupID, "", []string{"c_b"}); lt != nil || why != none {
		t.Fatalf("with c_b excluded: %v, %v; want none", lt, why)
	}
}
