package tunnel

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/sallyport/sallyport/internal/testnet"
)

// TestBatchConnOrderAndCompleteness: many writers at once, each writing
// numbered lines; the reader gets every line once, each writer's lines in
// order, and the connection's Close sends what is still pending.
func TestBatchConnOrderAndCompleteness(t *testing.T) {
	a, b := testnet.Pair(t)
	defer b.Close()
	bc := NewBatchConn(a)
	if !EnableBatching(bc) {
		t.Fatal("EnableBatching did not recognise a BatchConn")
	}
	const writers, lines = 8, 2000
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex // lines are written whole, as TLS records are
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				mu.Lock()
				_, err := fmt.Fprintf(bc, "%d %d %s\n", w, i, bytes.Repeat([]byte{'x'}, i%300))
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, line := range bytes.Split(bytes.TrimSuffix(<-got, []byte("\n")), []byte("\n")) {
		var w, i int
		f := bytes.Fields(line)
		if len(f) < 2 {
			t.Fatalf("bad line %q", line)
		}
		fmt.Sscan(string(f[0]), &w)
		fmt.Sscan(string(f[1]), &i)
		if pad := len(line) - len(f[0]) - len(f[1]) - 2; pad != i%300 {
			t.Fatalf("line %q damaged", line)
		}
		if i != next[w] {
			t.Fatalf("writer %d: line %d after %d", w, i, next[w]-1)
		}
		next[w]++
	}
	for w, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines arrived, want %d", w, n, lines)
		}
	}
}

// TestBatchConnWriteError: once the peer is gone, writes fail (a later
// one at the latest) and Close returns.
func TestBatchConnWriteError(t *testing.T) {
	a, b := testnet.Pair(t)
	bc := NewBatchConn(a)
	EnableBatching(bc)
	b.Close()
	chunk := make([]byte, 64<<10)
	var err error
	// Writers wait while 256 KiB are pending, so the flusher meets the
	// peer's reset long before this ends.
	for range 100000 {
		if _, err = bc.Write(chunk); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
	bc.Close()
	if _, err := bc.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// TestBatchConnPassThrough: until batching is on, writes are the
// connection's own (a *tls.Conn handshake over it works either way), and
// EnableBatching finds a BatchConn under a *tls.Conn.
func TestBatchConnPassThrough(t *testing.T) {
	a, b := testnet.Pair(t)
	ba, bb := NewBatchConn(a), NewBatchConn(b)
	ca, cb := tlsOver(t, ba, bb)
	defer ca.Close()
	defer cb.Close()
	if ba.on.Load() || bb.on.Load() {
		t.Fatal("batching on before EnableBatching")
	}
	if !EnableBatching(ca) || !EnableBatching(cb) {
		t.Fatal("EnableBatching did not find the BatchConn under the TLS connection")
	}
	if EnableBatching(a) {
		t.Error("EnableBatching reported a plain TCP connection as batched")
	}
	msg := bytes.Repeat([]byte("0123456789abcdef"), 10000) // ten TLS records
	go func() {
		ca.Write(msg)
	}()
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(cb, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, msg) {
		t.Fatal("message corrupted through TLS over BatchConns")
	}
	// A close_notify sets a past write deadline after the alert: the alert
	// and everything before it still go out.
	ca.Write([]byte("last"))
	ca.Close()
	last := make([]byte, 4)
	if _, err := io.ReadFull(cb, last); err != nil || string(last) != "last" {
		t.Fatalf("read %q, %v before close_notify", last, err)
	}
	if _, err := cb.Read(last); !errors.Is(err, io.EOF) {
		t.Errorf("after the peer's Close: %v, want io.EOF (close_notify received)", err)
	}
}

var (
	_ net.Conn = (*BatchConn)(nil)
	_ net.Conn = (*tls.Conn)(nil)
)

// writeCounter counts the writes that reach a connection.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	w.mu.Unlock()
	return w.Conn.Write(p)
}

// TestBatchConnCork: the TLS records of one large write made while corked
// reach the connection in one write, intact; uncorked, each record is its
// own write.
func TestBatchConnCork(t *testing.T) {
	a, b := testnet.Pair(t)
	wc := &writeCounter{Conn: a}
	ba := NewBatchConn(wc)
	ca, cb := tlsOver(t, ba, b)
	defer ca.Close()
	defer cb.Close()
	msg := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB: eight or more records
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 2*len(msg))
		_, err := io.ReadFull(cb, buf)
		if err != nil {
			t.Error(err)
		}
		got <- buf
	}()
	wc.mu.Lock()
	wc.writes = 0
	wc.mu.Unlock()
	ba.Cork()
	if _, err := ca.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := ba.Uncork(); err != nil {
		t.Fatal(err)
	}
	wc.mu.Lock()
	corked := wc.writes
	wc.writes = 0
	wc.mu.Unlock()
	if _, err := ca.Write(msg); err != nil {
		t.Fatal(err)
	}
	wc.mu.Lock()
	uncorked := wc.writes
	wc.mu.Unlock()
	if corked != 1 {
		t.Errorf("a corked write reached the connection in %d writes, want 1", corked)
	}
	if uncorked < 8 {
		t.Errorf("an uncorked write of 128 KiB reached the connection in %d writes, want one per record", uncorked)
	}
	if all := <-got; !bytes.Equal(all[:len(msg)], msg) || !bytes.Equal(all[len(msg):], msg) {
		t.Error("data corrupted")
	}
}

// TestBatchConnReadAhead: while reading ahead, small reads are served from
// 64 KiB reads of the connection, in order and complete; after the end
// the buffer is given back once drained, and reads go straight through.
func TestBatchConnReadAhead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		chunk int
	}{
		{"small reads of a large body", 1 << 20, 100},
		{"record-sized reads", 1 << 20, 16 << 10},
		{"reads larger than the buffer", 1 << 20, 128 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := testnet.Pair(t)
			defer b.Close()
			bc := NewBatchConn(a)
			defer bc.Close()
			want := make([]byte, tc.size)
			for i := range want {
				want[i] = byte(i * 7)
			}
			go func() {
				b.Write(want)
				b.Write([]byte("tail"))
			}()
			bc.ReadAhead()
			got := make([]byte, 0, tc.size)
			buf := make([]byte, tc.chunk)
			for len(got) < tc.size {
				n, err := bc.Read(buf[:min(tc.chunk, tc.size-len(got))])
				if err != nil {
					t.Fatalf("after %d bytes: %v", len(got), err)
				}
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the bytes read ahead differ from those written")
			}
			bc.EndReadAhead()
			tail, err := io.ReadAll(io.LimitReader(bc, 4))
			if err != nil || string(tail) != "tail" {
				t.Fatalf("after the read-ahead: %q, %v", tail, err)
			}
			if bc.rr != bc.rw {
				t.Fatalf("%d bytes left unread in the buffer", bc.rw-bc.rr)
			}
			// The next read finds the buffer drained and gives it back.
			b.Write([]byte("x"))
			one := make([]byte, 1)
			if _, err := bc.Read(one); err != nil || one[0] != 'x' {
				t.Fatalf("read after the end: %q, %v", one, err)
			}
			if bc.rbuf != nil {
				t.Fatal("a connection no longer reading ahead still holds its read buffer")
			}
		})
	}
}
