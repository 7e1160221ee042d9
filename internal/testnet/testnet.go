// Package testnet holds the helpers that the tests of several packages
// share: a connected pair of TCP connections on 127.0.0.1, waiting for a
// condition or a value with a deadline, reproducible pseudo-random bytes,
// a comparison of byte slices that says where they differ, a check that
// a test leaves no goroutine behind, writing a file a test needs, a
// buffer for a process's output, a test CA with its server certificates,
// and finding the program a test harness runs.
//
// It is for tests only: nothing outside _test.go files (and the test
// harnesses idptest and browsertest) imports it, and it imports no
// package of this module (like internal/dnstest), so that any package's
// tests may use it.
package testnet

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Wait bounds every wait of these helpers: what should happen at once
// fails the test after it instead of hanging.
const Wait = 10 * time.Second

// Pair returns the two ends of a new TCP connection on 127.0.0.1: the end
// that dialled and the end that was accepted. Both are closed when the
// test ends (closing them sooner is fine).
func Pair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err) // the listener's Close ends the Accept
	}
	r := <-ch
	if r.err != nil {
		client.Close()
		t.Fatal(r.err)
	}
	t.Cleanup(func() {
		client.Close()
		r.c.Close()
	})
	return client, r.c
}

// ServeTCP serves each connection accepted on a new 127.0.0.1 listener
// with serve (which may leave the connection open: it is closed after)
// and returns the listener's address. The test's cleanup closes the
// listener and waits for every serve to return.
func ServeTCP(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// ServeUDP answers each datagram received on a new 127.0.0.1 socket with
// answer(datagram) and returns the socket's address. The test's cleanup
// closes it and waits for its goroutine.
func ServeUDP(t testing.TB, answer func([]byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(answer(buf[:n]), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

// WaitUntil polls cond until it holds, failing t after Wait with "timed
// out waiting until " and what.
func WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Eventually(Wait, cond) {
		t.Fatalf("timed out waiting until %s", what)
	}
}

// Eventually polls cond until it holds (true) or d has passed (false), for
// a test that says itself what it was waiting for.
func Eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	return true
}

// RecvWithin receives a value from ch, failing t after Wait with "timed
// out waiting for " and what.
func RecvWithin[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(Wait)
	defer timer.Stop()
	return recvBefore(t, what, ch, timer.C)
}

func recvBefore[T any](t testing.TB, what string, ch <-chan T, timeout <-chan time.Time) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-timeout:
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// RandBytes returns n pseudo-random bytes, the same for the same n and
// seed.
func RandBytes(n int, seed byte) []byte {
	var s [32]byte
	s[0], s[1], s[2], s[3] = seed, byte(n), byte(n>>8), byte(n>>16)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// SameBytes fails t, saying where they first differ, unless got and want
// are equal.
func SameBytes(t testing.TB, what string, got, want []byte) {
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

// CheckLeaks fails t if a goroutine started during t outlives it and its
// cleanups (it runs after every cleanup registered later).
func CheckLeaks(t testing.TB) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// WriteFile writes content to path with mode, failing t if it cannot, and
// returns path.
func WriteFile(t testing.TB, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}
