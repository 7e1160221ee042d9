package tunnel

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Helpers shared by the tests of this package (the mux package has its
// own copies: test files do not cross packages).

// testWait bounds every wait of these tests: what should happen at once
// fails the test after it instead of hanging.
const testWait = 10 * time.Second

// checkLeaks fails t if a goroutine started during t outlives it (its
// cleanups included: it runs after every cleanup registered later).
func checkLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// waitUntil polls cond until it holds, failing t after testWait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// randBytes returns n pseudo-random bytes, the same for the same n and seed.
func randBytes(n int, seed byte) []byte {
	var s [32]byte
	s[0], s[1], s[2], s[3] = seed, byte(n), byte(n>>8), byte(n>>16)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// sameBytes reports where got and want differ, if they do.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Fatalf("%s: got %d bytes, want %d; first difference at offset %d", what, len(got), len(want), i)
}

func recvWithin[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testWait):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
