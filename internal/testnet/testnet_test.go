package testnet

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT records what a helper fails with; Fatal ends the goroutine as
// testing's does.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeT) Fatal(args ...any) {
	f.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

// run calls fn with a fakeT on its own goroutine and returns what it
// failed with ("" for nothing).
func run(fn func(t testing.TB)) string {
	f := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.failed
}

func TestPair(t *testing.T) {
	CheckLeaks(t)
	client, server := Pair(t)
	if client.LocalAddr().String() != server.RemoteAddr().String() || server.LocalAddr().String() != client.RemoteAddr().String() {
		t.Fatalf("not the two ends of one connection: client %v→%v, server %v→%v",
			client.LocalAddr(), client.RemoteAddr(), server.LocalAddr(), server.RemoteAddr())
	}
	if ip := client.RemoteAddr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Errorf("connected to %v, want loopback", ip)
	}
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"client to server", client, server}, {"server to client", server, client}} {
		msg := []byte(dir.name)
		if _, err := dir.from.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir.to, got); err != nil {
			t.Fatal(err)
		}
		SameBytes(t, dir.name, got, msg)
	}
}

// TestPairClosedAtCleanup: the ends Pair returns are closed when the test
// that asked for them ends.
func TestPairClosedAtCleanup(t *testing.T) {
	var client net.Conn
	t.Run("inner", func(t *testing.T) { client, _ = Pair(t) })
	if _, err := client.Write([]byte("x")); err == nil {
		t.Error("Write after the test's end succeeded; want the connection closed")
	}
}

func TestEventually(t *testing.T) {
	tests := []struct {
		name    string
		holdsAt int // the call of cond that first returns true; 0: never
		d       time.Duration
		want    bool
	}{
		{"at once", 1, Wait, true},
		{"on the third poll", 3, Wait, true},
		{"never, past the deadline", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			cond := func() bool {
				calls++
				return tc.holdsAt != 0 && calls >= tc.holdsAt
			}
			if got := Eventually(tc.d, cond); got != tc.want {
				t.Errorf("Eventually = %v, want %v", got, tc.want)
			}
			if tc.holdsAt != 0 && calls != tc.holdsAt {
				t.Errorf("cond called %d times, want %d", calls, tc.holdsAt)
			}
		})
	}
}

func TestWaitUntil(t *testing.T) {
	calls := 0
	if got := run(func(t testing.TB) { WaitUntil(t, "the thing", func() bool { calls++; return calls == 2 }) }); got != "" {
		t.Errorf("a condition that holds failed with %q", got)
	}
	if calls != 2 {
		t.Errorf("cond called %d times, want 2", calls)
	}
}

func TestRecvWithin(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := RecvWithin(t, "seven", ch); got != 7 {
		t.Errorf("RecvWithin = %d, want 7", got)
	}
	expired := make(chan time.Time, 1)
	expired <- time.Time{}
	if got := run(func(t testing.TB) { recvBefore(t, "nothing", make(chan int), expired) }); got != "timed out waiting for nothing" {
		t.Errorf("on a timeout failed with %q, want %q", got, "timed out waiting for nothing")
	}
}

func TestRandBytes(t *testing.T) {
	a := RandBytes(1000, 1)
	if len(a) != 1000 {
		t.Fatalf("len = %d, want 1000", len(a))
	}
	if !bytes.Equal(a, RandBytes(1000, 1)) {
		t.Error("two calls with the same n and seed differ")
	}
	if bytes.Equal(a, RandBytes(1000, 2)) {
		t.Error("two seeds give the same bytes")
	}
	if bytes.Equal(a[:999], RandBytes(999, 1)) {
		t.Error("two lengths give the same bytes")
	}
	if len(RandBytes(0, 1)) != 0 {
		t.Error("RandBytes(0) is not empty")
	}
}

func TestSameBytes(t *testing.T) {
	tests := []struct {
		name      string
		got, want string
		failed    string // "" for none
	}{
		{"equal", "abc", "abc", ""},
		{"both empty", "", "", ""},
		{"differ inside", "abXd", "abcd", "body: got 4 bytes, want 4; first difference at offset 2"},
		{"got shorter", "ab", "abc", "body: got 2 bytes, want 3; first difference at offset 2"},
		{"got longer", "abcd", "abc", "body: got 4 bytes, want 3; first difference at offset 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := run(func(t testing.TB) { SameBytes(t, "body", []byte(tc.got), []byte(tc.want)) })
			if got != tc.failed {
				t.Errorf("failed with %q, want %q", got, tc.failed)
			}
		})
	}
}

func TestCheckLeaks(t *testing.T) {
	var leaked *fakeLeakT
	stop := make(chan struct{})
	t.Run("leaks", func(t *testing.T) {
		leaked = &fakeLeakT{TB: t}
		CheckLeaks(leaked)
		go func() { <-stop }()
	})
	close(stop)
	if !strings.Contains(leaked.errs, "found unexpected goroutines") {
		t.Errorf("a goroutine outliving the test was not reported: %q", leaked.errs)
	}
}

// fakeLeakT passes everything to the real test but what goleak reports.
type fakeLeakT struct {
	testing.TB
	errs string
}

func (f *fakeLeakT) Error(args ...any) { f.errs += fmt.Sprint(args...) }

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if got := WriteFile(t, path, "content", 0o600); got != path {
		t.Errorf("WriteFile returned %q, want %q", got, path)
	}
	if raw, err := os.ReadFile(path); err != nil || string(raw) != "content" {
		t.Errorf("the file holds %q, %v; want \"content\"", raw, err)
	}
	if got := run(func(t testing.TB) { WriteFile(t, filepath.Join(path, "under a file"), "", 0o600) }); got == "" {
		t.Error("writing below a file did not fail the test")
	}
}

// TestBalancer: connections go to the targets in turn, both ways.
func TestBalancer(t *testing.T) {
	CheckLeaks(t)
	var names []string
	for _, name := range []string{"one", "two"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, name)
				c.Close()
			}
		}()
		names = append(names, ln.Addr().String())
	}
	b := StartBalancer(t)
	b.SetTargets(names...)
	for _, want := range []string{"one", "two", "one"} {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(b.Port()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	if n := b.Conns(); n != 3 {
		t.Errorf("Conns = %d, want 3", n)
	}
}
