package mux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/testnet"
)

// testWait bounds every wait of these tests: what should happen at once
// fails the test after it instead of hanging.
const testWait = testnet.Wait

// muxTransports are the connections a Session is tested over: net.Pipe
// (synchronous, no buffering at all) and TCP on loopback.
var muxTransports = []struct {
	name string
	pair func(t testing.TB) (net.Conn, net.Conn)
}{
	{"pipe", func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", testnet.Pair},
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sessionPair starts an opener and an accepting Session over a new pair.
func sessionPair(t *testing.T, pair func(t testing.TB) (net.Conn, net.Conn), ocfg, acfg SessionConfig) (opener, acceptor *Session) {
	t.Helper()
	a, b := pair(t)
	opener = NewSession(a, true, ocfg)
	acceptor = NewSession(b, false, acfg)
	t.Cleanup(func() {
		opener.Close()
		acceptor.Close()
	})
	return opener, acceptor
}

// acceptStream accepts one stream, failing t if none arrives in time.
func acceptStream(t *testing.T, s *Session) *Stream {
	t.Helper()
	type res struct {
		st  *Stream
		err error
	}
	ch := make(chan res, 1)
	go func() {
		st, err := s.Accept()
		ch <- res{st, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		return r.st
	case <-time.After(testWait):
		t.Fatal("Accept: no stream arrived")
		return nil
	}
}

// openStreams opens a stream at o and accepts it at a. Both ends get a
// deadline, so that a test that goes wrong fails instead of hanging.
func openStreams(t *testing.T, o, a *Session, msg string) (ost, ast *Stream) {
	t.Helper()
	ost, err := o.Open([]byte(msg))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ast = acceptStream(t, a)
	if got := string(ast.OpenMessage()); got != msg {
		t.Fatalf("OpenMessage = %q, want %q", got, msg)
	}
	if ast.ID() != ost.ID() {
		t.Fatalf("accepted stream %d, opened %d", ast.ID(), ost.ID())
	}
	dl := time.Now().Add(testWait)
	ost.SetDeadline(dl)
	ast.SetDeadline(dl)
	return ost, ast
}

// unreadOf and sendWinOf look inside a stream's flow control.
func unreadOf(st *Stream) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.unread
}

func sendWinOf(st *Stream) int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sendWin
}

// readAllAsync reads st to its end in a goroutine.
func readAllAsync(st *Stream) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		b, err := io.ReadAll(st)
		if err != nil {
			b = append(b, fmt.Sprintf("<read error: %v>", err)...)
		}
		ch <- b
	}()
	return ch
}

// TestMuxOrderedDelivery writes messages of many sizes (0 to 3 MiB, across
// the frame size) both ways at once on one stream; each side receives
// every byte, in order.
func TestMuxOrderedDelivery(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 100, 4095, 4096, 4097, maxFramePayload - 1, maxFramePayload, maxFramePayload + 1,
		2*maxFramePayload + 5, 200 << 10, 1 << 20, 0, 3 << 20, 7, 1}
	for _, tr := range muxTransports {
		t.Run(tr.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
			ost, ast := openStreams(t, o, a, "ordered")
			send := func(st *Stream, seed byte) ([]byte, <-chan error) {
				var want []byte
				var msgs [][]byte
				for i, n := range sizes {
					m := testnet.RandBytes(n, seed+byte(i))
					msgs = append(msgs, m)
					want = append(want, m...)
				}
				errc := make(chan error, 1)
				go func() {
					for _, m := range msgs {
						n, err := st.Write(m)
						if err != nil || n != len(m) {
							errc <- fmt.Errorf("Write(%d bytes) = %d, %v", len(m), n, err)
							return
						}
					}
					errc <- st.CloseWrite()
				}()
				return want, errc
			}
			wantA, errO := send(ost, 1) // opener → acceptor
			wantO, errA := send(ast, 101)
			gotA := readAllAsync(ast)
			gotO := readAllAsync(ost)
			testnet.SameBytes(t, "opener → acceptor", testnet.RecvWithin(t, "the acceptor's bytes", gotA), wantA)
			testnet.SameBytes(t, "acceptor → opener", testnet.RecvWithin(t, "the opener's bytes", gotO), wantO)
			for _, errc := range []<-chan error{errO, errA} {
				if err := testnet.RecvWithin(t, "the writer", errc); err != nil {
					t.Fatal(err)
				}
			}
			// Both directions ended cleanly: both ends forgot the stream.
			testnet.WaitUntil(t, "both sessions forgot the stream", func() bool { return o.NumStreams() == 1 && a.NumStreams() == 1 })
			if err := errors.Join(o.Err(), a.Err()); err != nil {
				t.Fatalf("session ended: %v", err)
			}
		})
	}
}

// TestMuxConcurrentStreams runs 64 streams at once, each echoed by the
// accepting end after its open message. The streams are opened one after
// the other, or by 64 goroutines at once (as the cloud's requests do).
func TestMuxConcurrentStreams(t *testing.T) {
	const streams = 64
	for _, tr := range muxTransports {
		for _, concurrentOpen := range []bool{false, true} {
			name := tr.name + "/sequential-open"
			if concurrentOpen {
				name = tr.name + "/concurrent-open"
			}
			t.Run(name, func(t *testing.T) {
				testnet.CheckLeaks(t)
				o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
				var echoes sync.WaitGroup
				echoes.Add(1)
				go func() {
					defer echoes.Done()
					for {
						st, err := a.Accept()
						if err != nil {
							return
						}
						echoes.Add(1)
						go func() {
							defer echoes.Done()
							defer st.Close()
							st.SetDeadline(time.Now().Add(testWait))
							if _, err := st.Write(st.OpenMessage()); err != nil {
								return
							}
							io.Copy(st, st)
							st.CloseWrite()
						}()
					}
				}()
				var opened [streams]*Stream
				if !concurrentOpen {
					for i := range opened {
						st, err := o.Open([]byte(fmt.Sprintf("stream %d", i)))
						if err != nil {
							t.Fatal(err)
						}
						opened[i] = st
					}
				}
				var wg sync.WaitGroup
				ids := make(chan uint32, streams)
				errs := make(chan error, streams)
				start := make(chan struct{}) // all at once
				for i := range streams {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						msg := fmt.Sprintf("stream %d", i)
						st := opened[i]
						if st == nil {
							var err error
							if st, err = o.Open([]byte(msg)); err != nil {
								errs <- err
								return
							}
						}
						defer st.Close()
						ids <- st.ID()
						st.SetDeadline(time.Now().Add(testWait))
						payload := testnet.RandBytes(1+(i*4099)%(300<<10), byte(i))
						got := readAllAsync(st)
						if _, err := st.Write(payload); err != nil {
							errs <- fmt.Errorf("stream %d: Write: %w", i, err)
							return
						}
						st.CloseWrite()
						b := <-got
						if want := append([]byte(msg), payload...); !bytes.Equal(b, want) {
							errs <- fmt.Errorf("stream %d: echo of %d bytes came back as %d bytes, different", i, len(want), len(b))
						}
					}()
				}
				close(start)
				wg.Wait()
				close(errs)
				close(ids)
				if err := errors.Join(o.Err(), a.Err()); err != nil {
					t.Fatalf("session ended: %v", err)
				}
				for err := range errs {
					t.Error(err)
				}
				seen := map[uint32]bool{}
				for id := range ids {
					if id%2 != 1 || seen[id] {
						t.Errorf("stream id %d: not odd, or used twice", id)
					}
					seen[id] = true
				}
				testnet.WaitUntil(t, "both sessions forgot every stream", func() bool { return o.NumStreams() == 1 && a.NumStreams() == 1 })
				o.Close()
				a.Close()
				echoes.Wait()
			})
		}
	}
}

// TestMuxFlowControl: a writer stops once streamWindow bytes are unread at
// the receiver, and goes on once the receiver reads.
func TestMuxFlowControl(t *testing.T) {
	for _, tr := range muxTransports {
		t.Run(tr.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
			ost, ast := openStreams(t, o, a, "flow")
			total := streamWindow + 3*maxFramePayload + 123
			data := testnet.RandBytes(total, 7)
			done := make(chan error, 1)
			go func() {
				n, err := ost.Write(data)
				if err == nil && n != total {
					err = fmt.Errorf("wrote %d of %d bytes", n, total)
				}
				done <- err
			}()
			testnet.WaitUntil(t, "the writer used up its window", func() bool {
				return sendWinOf(ost) == 0 && unreadOf(ast) == streamWindow
			})
			select {
			case err := <-done:
				t.Fatalf("Write returned (%v) while the receiver had a full window unread", err)
			default:
			}
			// Reading a quarter of the window returns that much credit: the
			// writer, with less than that left, finishes.
			got := make([]byte, total)
			if _, err := io.ReadFull(ast, got[:streamWindow/4]); err != nil {
				t.Fatal(err)
			}
			if err := testnet.RecvWithin(t, "the writer to finish after the reader read", done); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(ast, got[streamWindow/4:]); err != nil {
				t.Fatal(err)
			}
			testnet.SameBytes(t, "flow-controlled stream", got, data)
			if err := errors.Join(o.Err(), a.Err()); err != nil {
				t.Fatalf("session ended: %v", err)
			}
		})
	}
}

// TestMuxReceiveBufferBounded: a receiver that always reads while more has
// arrived (a slow consumer that never quite catches up) must not hold more
// than about a window of memory, however many bytes go through.
func TestMuxReceiveBufferBounded(t *testing.T) {
	testnet.CheckLeaks(t)
	o, a := sessionPair(t, muxTransports[0].pair, SessionConfig{}, SessionConfig{})
	ost, ast := openStreams(t, o, a, "slow consumer")
	const total = 8 * streamWindow
	const chunk = 64 << 10
	go func() {
		buf := make([]byte, 1<<20)
		for sent := 0; sent < total; sent += len(buf) {
			if _, err := ost.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, chunk)
	maxCap := 0
	for read := 0; read < total; {
		if total-read > chunk {
			testnet.WaitUntil(t, "more than a chunk is unread", func() bool { return unreadOf(ast) > chunk })
		}
		n, err := ast.Read(buf[:min(chunk, total-read)])
		if err != nil {
			t.Fatalf("after %d bytes: %v", read, err)
		}
		read += n
		ast.mu.Lock()
		maxCap = max(maxCap, len(ast.q)*chunkSize)
		ast.mu.Unlock()
	}
	t.Logf("largest receive buffer: %d bytes", maxCap)
	if limit := 2*streamWindow + maxFramePayload; maxCap > limit {
		t.Errorf("the receive buffer grew to %d bytes for a window of %d (limit %d): bytes already read are kept until the buffer drains completely", maxCap, streamWindow, limit)
	}
}

// TestMuxCloseWrite: CloseWrite ends one direction (the peer reads io.EOF)
// while the other goes on.
func TestMuxCloseWrite(t *testing.T) {
	for _, tr := range muxTransports {
		t.Run(tr.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
			ost, ast := openStreams(t, o, a, "half close")
			if _, err := ost.Write([]byte("request")); err != nil {
				t.Fatal(err)
			}
			if err := ost.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := ost.CloseWrite(); err != nil {
				t.Errorf("second CloseWrite: %v", err)
			}
			if _, err := ost.Write([]byte("more")); err == nil {
				t.Error("Write after CloseWrite succeeded")
			}
			b, err := io.ReadAll(ast)
			if err != nil || string(b) != "request" {
				t.Fatalf("acceptor read %q, %v; want %q and io.EOF", b, err, "request")
			}
			if n, err := ast.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
			}
			// The other direction still works.
			if _, err := ast.Write([]byte("response after the request's end")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len("response after the request's end"))
			if _, err := io.ReadFull(ost, got); err != nil || string(got) != "response after the request's end" {
				t.Fatalf("opener read %q, %v", got, err)
			}
			if o.NumStreams() != 2 {
				t.Errorf("opener has %d streams with one direction open, want 2", o.NumStreams())
			}
			if err := ast.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if n, err := ost.Read(got); n != 0 || err != io.EOF {
				t.Errorf("opener Read after the peer's CloseWrite = %d, %v; want 0, io.EOF", n, err)
			}
			testnet.WaitUntil(t, "both sessions forgot the stream", func() bool { return o.NumStreams() == 1 && a.NumStreams() == 1 })
			// A stream that ended cleanly closes without a RESET: nothing
			// fails on either end.
			if err := errors.Join(ost.Close(), ast.Close(), o.Err(), a.Err()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMuxCloseGraceful: Close is a TCP close: the peer reads what was
// written, then io.EOF; its own direction, still open, is reset, so its
// writes fail instead of waiting for a reader that is gone.
func TestMuxCloseGraceful(t *testing.T) {
	for _, tr := range muxTransports {
		for _, byOpener := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/opener=%v", tr.name, byOpener), func(t *testing.T) {
				testnet.CheckLeaks(t)
				o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
				ost, ast := openStreams(t, o, a, "close")
				closer, peer := ost, ast
				if !byOpener {
					closer, peer = ast, ost
				}
				want := testnet.RandBytes(200<<10, 9)
				got := readAllAsync(peer)
				if _, err := closer.Write(want); err != nil {
					t.Fatal(err)
				}
				if err := closer.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				testnet.SameBytes(t, "what the peer read before io.EOF", testnet.RecvWithin(t, "the peer's read to EOF", got), want)
				testnet.RecvWithin(t, "the peer's stream to end", peer.Done())
				var se *StreamError
				if _, err := peer.Write([]byte("x")); !errors.As(err, &se) || se.Code != ResetCancel {
					t.Errorf("peer Write after Close = %v, want a *StreamError with ResetCancel", err)
				}
				if _, err := closer.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Read on the closed stream = %v, want net.ErrClosed", err)
				}
				testnet.WaitUntil(t, "both sessions forgot the stream", func() bool { return o.NumStreams() == 1 && a.NumStreams() == 1 })
				if err := errors.Join(o.Err(), a.Err()); err != nil {
					t.Fatalf("Close ended the session: %v", err)
				}
			})
		}
	}
}

// TestMuxCloseResets: Abort sends a RESET that the peer reads as a
// *StreamError with code ResetCancel; CloseWithCode carries code and text.
func TestMuxCloseResets(t *testing.T) {
	long := strings.Repeat("x", 2*maxResetText)
	cases := []struct {
		name        string
		byOpener    bool
		close       func(st *Stream) error
		code        uint32
		msg         string
		errContains string
	}{
		{"opener Abort", true, (*Stream).Abort, ResetCancel, "", "code 0"},
		{"acceptor Abort", false, (*Stream).Abort, ResetCancel, "", "code 0"},
		{"CloseWithCode refused", true, func(st *Stream) error { return st.CloseWithCode(ResetRefused, "msg") }, ResetRefused, "msg", "msg"},
		{"acceptor CloseWithCode", false, func(st *Stream) error { return st.CloseWithCode(ResetUnsupported, "no such kind") }, ResetUnsupported, "no such kind", "no such kind"},
		{"long message truncated", true, func(st *Stream) error { return st.CloseWithCode(ResetProtocol, long) }, ResetProtocol, long[:maxResetText], "xxx"},
	}
	for _, tr := range muxTransports {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				testnet.CheckLeaks(t)
				o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
				ost, ast := openStreams(t, o, a, "reset")
				closer, peer := ost, ast
				if !tc.byOpener {
					closer, peer = ast, ost
				}
				// Bytes the peer has not read yet do not matter.
				if _, err := closer.Write([]byte("unread")); err != nil {
					t.Fatal(err)
				}
				testnet.WaitUntil(t, "the peer received the bytes", func() bool { return unreadOf(peer) == len("unread") })
				if err := tc.close(closer); err != nil {
					t.Fatalf("close: %v", err)
				}
				var err error
				for err == nil {
					_, err = peer.Read(make([]byte, 64))
				}
				var se *StreamError
				if !errors.As(err, &se) {
					t.Fatalf("peer Read error = %v (%T), want a *StreamError", err, err)
				}
				if se.Code != tc.code || se.Message != tc.msg {
					t.Errorf("StreamError{Code: %d, Message: %d bytes %.20q}, want code %d, message %.20q", se.Code, len(se.Message), se.Message, tc.code, tc.msg)
				}
				if !strings.Contains(se.Error(), tc.errContains) {
					t.Errorf("Error() = %q, want it to contain %q", se.Error(), tc.errContains)
				}
				if _, err := peer.Write([]byte("x")); !errors.As(err, &se) {
					t.Errorf("peer Write after the RESET = %v, want the *StreamError", err)
				}
				select {
				case <-peer.Done():
				default:
					t.Error("peer's Done not closed after the RESET")
				}
				if peer.Context().Err() == nil {
					t.Error("peer's Context not done after the RESET")
				}
				if _, err := closer.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Read on the closed stream = %v, want net.ErrClosed", err)
				}
				if _, err := closer.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Write on the closed stream = %v, want net.ErrClosed", err)
				}
				testnet.WaitUntil(t, "both sessions forgot the stream", func() bool { return o.NumStreams() == 1 && a.NumStreams() == 1 })
				if err := errors.Join(o.Err(), a.Err()); err != nil {
					t.Fatalf("a RESET ended the session: %v", err)
				}
			})
		}
	}
}

// TestMuxDeadlines: read and write deadlines, past and future, also for a
// Read or Write already waiting; a stream stays usable after a timeout.
func TestMuxDeadlines(t *testing.T) {
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
	}
	for _, tr := range muxTransports {
		t.Run(tr.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
			ost, ast := openStreams(t, o, a, "deadlines")
			ost.SetDeadline(time.Time{})
			ast.SetDeadline(time.Time{})
			buf := make([]byte, 16)

			// A deadline in the past.
			ast.SetReadDeadline(time.Now().Add(-time.Second))
			if _, err := ast.Read(buf); !isTimeout(err) {
				t.Errorf("Read past its deadline = %v, want os.ErrDeadlineExceeded", err)
			}
			// A deadline in the future, reached while waiting.
			start := time.Now()
			ast.SetReadDeadline(start.Add(50 * time.Millisecond))
			if _, err := ast.Read(buf); !isTimeout(err) {
				t.Errorf("Read until its deadline = %v, want os.ErrDeadlineExceeded", err)
			}
			if d := time.Since(start); d < 40*time.Millisecond {
				t.Errorf("Read returned %v before its deadline", 50*time.Millisecond-d)
			}
			// A waiting Read (no deadline, or a far one) woken by a new one.
			for _, first := range []time.Time{{}, time.Now().Add(time.Hour)} {
				ast.SetReadDeadline(first)
				errc := make(chan error, 1)
				go func() {
					_, err := ast.Read(buf)
					errc <- err
				}()
				ast.SetReadDeadline(time.Now())
				if err := testnet.RecvWithin(t, "a waiting Read to see its new deadline", errc); !isTimeout(err) {
					t.Errorf("waiting Read (first deadline %v) = %v, want os.ErrDeadlineExceeded", first, err)
				}
			}
			// Still usable.
			ast.SetReadDeadline(time.Time{})
			ost.Write([]byte("after"))
			if n, err := ast.Read(buf); err != nil || string(buf[:n]) != "after" {
				t.Errorf("Read after the deadline was cleared = %q, %v", buf[:n], err)
			}

			// Write deadlines bound waiting for window: use up the window
			// (the 5 bytes read above are not credited back yet).
			fill := int(sendWinOf(ost))
			if _, err := ost.Write(make([]byte, fill)); err != nil {
				t.Fatal(err)
			}
			ost.SetWriteDeadline(time.Now().Add(-time.Second))
			if n, err := ost.Write([]byte("y")); n != 0 || !isTimeout(err) {
				t.Errorf("Write past its deadline with no window = %d, %v; want 0, os.ErrDeadlineExceeded", n, err)
			}
			ost.SetWriteDeadline(time.Time{})
			errc := make(chan error, 1)
			go func() {
				_, err := ost.Write([]byte("z"))
				errc <- err
			}()
			ost.SetDeadline(time.Now())
			if err := testnet.RecvWithin(t, "a waiting Write to see its new deadline", errc); !isTimeout(err) {
				t.Errorf("waiting Write = %v, want os.ErrDeadlineExceeded", err)
			}
			// Once the reader catches up, writing works again.
			ost.SetDeadline(time.Time{})
			ast.SetReadDeadline(time.Now().Add(testWait))
			if _, err := io.ReadFull(ast, make([]byte, fill)); err != nil {
				t.Fatal(err)
			}
			ost.SetWriteDeadline(time.Now().Add(testWait))
			if _, err := ost.Write([]byte("again")); err != nil {
				t.Errorf("Write after the window came back: %v", err)
			}
			if n, err := io.ReadFull(ast, buf[:5]); err != nil || string(buf[:n]) != "again" {
				t.Errorf("read %q, %v; want %q", buf[:n], err, "again")
			}
		})
	}
}

// TestMuxSessionClose: closing a session fails its streams and Accept at
// once, on this end and (the connection gone) on the peer.
func TestMuxSessionClose(t *testing.T) {
	for _, tr := range muxTransports {
		t.Run(tr.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
			var opened, accepted []*Stream
			for i := range 3 {
				ost, ast := openStreams(t, o, a, fmt.Sprint(i))
				opened, accepted = append(opened, ost), append(accepted, ast)
			}
			acceptErr := make(chan error, 1)
			go func() {
				_, err := a.Accept()
				acceptErr <- err
			}()
			readErrs := make(chan error, len(opened))
			for _, st := range opened {
				go func() {
					_, err := st.Read(make([]byte, 1))
					readErrs <- err
				}()
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if err := testnet.RecvWithin(t, "Accept to fail", acceptErr); !errors.Is(err, ErrSessionClosed) {
				t.Errorf("Accept after Close = %v, want ErrSessionClosed", err)
			}
			if _, err := a.Accept(); !errors.Is(err, ErrSessionClosed) {
				t.Errorf("Accept on a closed session = %v, want ErrSessionClosed", err)
			}
			for _, st := range accepted {
				if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrSessionClosed) {
					t.Errorf("Read on a stream of a closed session = %v, want ErrSessionClosed", err)
				}
				if _, err := st.Write([]byte("x")); err == nil {
					t.Error("Write on a stream of a closed session succeeded")
				}
				select {
				case <-st.Done():
				default:
					t.Error("stream's Done not closed with its session")
				}
			}
			// The peer sees the connection end: its session ends, and so do
			// its streams and the Reads waiting on them.
			testnet.RecvWithin(t, "the peer session to end", o.Done())
			for range opened {
				if err := testnet.RecvWithin(t, "a waiting Read on the peer to fail", readErrs); err == nil {
					t.Error("a Read on the peer's stream succeeded")
				}
			}
			if _, err := o.Open(nil); err == nil {
				t.Error("Open on an ended session succeeded")
			}
			if err := o.Ping(context.Background()); err == nil {
				t.Error("Ping on an ended session succeeded")
			}
			if err := a.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if a.NumStreams() != 0 || o.NumStreams() != 0 {
				t.Errorf("NumStreams after the end = %d, %d; want 0", a.NumStreams(), o.NumStreams())
			}
		})
	}
}

// TestMuxSessionEndIsNotEOF: a stream whose session ends because the
// connection went away must not read as a stream the peer ended cleanly
// (io.EOF): its user would take a truncated byte stream for a whole one.
func TestMuxSessionEndIsNotEOF(t *testing.T) {
	for _, tr := range muxTransports {
		t.Run(tr.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
			ost, _ := openStreams(t, o, a, "cut")
			a.Close()
			testnet.RecvWithin(t, "the peer session to end", o.Done())
			_, err := ost.Read(make([]byte, 1))
			if err == nil || errors.Is(err, io.EOF) {
				t.Errorf("Read on a stream whose session lost its connection = %v, want an error other than io.EOF (session error: %v)", err, o.Err())
			}
		})
	}
}

// TestMuxStream0: stream 0 exists on both ends from the start, carries
// bytes both ways, and stays reachable (non-nil) after the session ends.
func TestMuxStream0(t *testing.T) {
	testnet.CheckLeaks(t)
	o, a := sessionPair(t, testnet.Pair, SessionConfig{}, SessionConfig{})
	s0o, s0a := o.Stream0(), a.Stream0()
	if s0o == nil || s0a == nil || s0o.ID() != 0 || s0a.ID() != 0 {
		t.Fatal("no stream 0")
	}
	s0o.SetDeadline(time.Now().Add(testWait))
	s0a.SetDeadline(time.Now().Add(testWait))
	big := testnet.RandBytes(stream0Window+100, 3) // more than stream 0's window: credit comes back as it is read
	go s0o.Write(big)
	got := make([]byte, len(big))
	if _, err := io.ReadFull(s0a, got); err != nil {
		t.Fatal(err)
	}
	testnet.SameBytes(t, "stream 0", got, big)
	o.Close()
	testnet.RecvWithin(t, "the peer session to end", a.Done())
	if o.Stream0() == nil || a.Stream0() == nil {
		t.Error("Stream0() is nil once the session ended: ServeSession and NewClient, which call it right after NewSession, would use a nil *Stream if the connection fails at once")
	}
}

// TestMuxStreamIDs: the opener's streams have odd ids, in order; the
// accepting end cannot open; open messages are bounded.
func TestMuxStreamIDs(t *testing.T) {
	testnet.CheckLeaks(t)
	o, a := sessionPair(t, muxTransports[0].pair, SessionConfig{}, SessionConfig{})
	for i := range 5 {
		ost, ast := openStreams(t, o, a, fmt.Sprintf("m%d", i))
		if want := uint32(2*i + 1); ost.ID() != want || ast.ID() != want {
			t.Errorf("stream %d: ids %d and %d, want %d", i, ost.ID(), ast.ID(), want)
		}
	}
	if _, err := a.Open(nil); err == nil {
		t.Error("the accepting end opened a stream")
	}
	if _, err := o.Open(make([]byte, maxOpenPayload+1)); err == nil {
		t.Error("Open with a message over the limit succeeded")
	}
	msg := strings.Repeat("m", maxOpenPayload)
	openStreams(t, o, a, msg) // the largest message arrives whole
}

// TestMuxMaxStreams: streams beyond MaxStreams are refused with
// ResetRefused; once one ends, a new one is accepted.
func TestMuxMaxStreams(t *testing.T) {
	for _, tr := range muxTransports {
		t.Run(tr.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{MaxStreams: 2})
			s1, _ := openStreams(t, o, a, "1")
			_, a2 := openStreams(t, o, a, "2")
			s3, err := o.Open([]byte("3"))
			if err != nil {
				t.Fatal(err)
			}
			s3.SetDeadline(time.Now().Add(testWait))
			s3.Write([]byte("written before the refusal arrives"))
			_, err = s3.Read(make([]byte, 1))
			var se *StreamError
			if !errors.As(err, &se) || se.Code != ResetRefused {
				t.Fatalf("Read on a stream over MaxStreams = %v, want a *StreamError with ResetRefused", err)
			}
			s1.Close()
			testnet.WaitUntil(t, "the acceptor forgot the closed stream", func() bool { return a.NumStreams() == 2 })
			s4, a4 := openStreams(t, o, a, "4")
			s4.Write([]byte("ok"))
			b := make([]byte, 2)
			if _, err := io.ReadFull(a4, b); err != nil || string(b) != "ok" {
				t.Fatalf("new stream after one ended: %q, %v", b, err)
			}
			a2.Write([]byte("still"))
			if err := errors.Join(o.Err(), a.Err()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMuxPing: pings are answered both ways, many at once.
func TestMuxPing(t *testing.T) {
	for _, tr := range muxTransports {
		t.Run(tr.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := o
					if i%2 == 1 {
						s = a
					}
					errs <- s.Ping(ctx)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			o.Close()
			if err := o.Ping(ctx); !errors.Is(err, ErrSessionClosed) {
				t.Errorf("Ping after Close = %v, want ErrSessionClosed", err)
			}
		})
	}
}

// --- a hand-written peer, for protocol errors and keepalives ---

type rawFrame struct {
	hdr frameHeader
	p   []byte
}

// rawPeer is the far end of a Session over net.Pipe, speaking frames
// written by hand.
type rawPeer struct {
	conn   net.Conn
	frames chan rawFrame // frames the session sent (dropped if not read)
	acks   atomic.Int32  // PINGs answered
	done   chan struct{}
}

type rawOpts struct {
	noRead      bool // never read: the session's writes block
	answerPings bool
}

func newRawPeer(t *testing.T, opener bool, cfg SessionConfig, opts rawOpts) (*Session, *rawPeer) {
	t.Helper()
	a, b := net.Pipe()
	s := NewSession(a, opener, cfg)
	rp := &rawPeer{conn: b, frames: make(chan rawFrame, 1024), done: make(chan struct{})}
	if opts.noRead {
		close(rp.done)
	} else {
		go func() {
			defer close(rp.done)
			hdr, buf := make([]byte, headerLen), make([]byte, maxFramePayload)
			for {
				fh, p, err := readFrame(b, hdr, buf)
				if err != nil {
					return
				}
				if opts.answerPings && fh.Type == framePing && fh.Flags&flagAck == 0 {
					rp.send(framePing, flagAck, 0, p)
					rp.acks.Add(1)
				}
				select {
				case rp.frames <- rawFrame{fh, append([]byte(nil), p...)}:
				default:
				}
			}
		}()
	}
	t.Cleanup(func() {
		s.Close()
		b.Close()
		<-rp.done
	})
	return s, rp
}

func frame(typ, flags byte, id uint32, p []byte) []byte {
	b := make([]byte, headerLen+len(p))
	putHeader(b, len(p), typ, flags, id)
	copy(b[headerLen:], p)
	return b
}

func (rp *rawPeer) send(typ, flags byte, id uint32, p []byte) error {
	_, err := rp.conn.Write(frame(typ, flags, id, p))
	return err
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func pingPayload(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// expectFrame waits for the next frame of type typ the session sends.
func (rp *rawPeer) expectFrame(t *testing.T, typ byte) rawFrame {
	t.Helper()
	timeout := time.After(testWait)
	for {
		select {
		case f := <-rp.frames:
			if f.hdr.Type == typ {
				return f
			}
		case <-timeout:
			t.Fatalf("no frame of type %d from the session", typ)
		}
	}
}

// alive reports whether the session still runs after the frames sent so
// far: it answers a PING (frames are handled in order), or it ends.
func (rp *rawPeer) alive(t *testing.T, s *Session, seq uint64) bool {
	t.Helper()
	rp.send(framePing, 0, 0, pingPayload(seq)) // fails if the session closed the pipe
	timeout := time.After(testWait)
	for {
		select {
		case <-s.Done():
			return false
		case f := <-rp.frames:
			if f.hdr.Type == framePing && f.hdr.Flags&flagAck != 0 && binary.BigEndian.Uint64(f.p) == seq {
				return true
			}
		case <-timeout:
			t.Fatal("the session neither answered a PING nor ended")
		}
	}
}

// TestMuxProtocolErrors: each frame a correct peer never sends ends the
// session.
func TestMuxProtocolErrors(t *testing.T) {
	window := func() [][]byte { // exactly a relay window of DATA on stream 1
		var fs [][]byte
		for range streamWindow / maxFramePayload {
			fs = append(fs, frame(frameData, 0, 1, make([]byte, maxFramePayload)))
		}
		return fs
	}
	cases := []struct {
		name   string
		opener bool // the session under test opens streams (the cloud)
		frames [][]byte
	}{
		{"frame over 64 KiB", false, [][]byte{frame(frameData, 0, 0, make([]byte, maxFramePayload+1))}},
		{"frame of 16 MiB announced", false, [][]byte{{0xff, 0xff, 0xff, frameData, 0, 0, 0, 0, 0}}},
		{"unknown frame type", false, [][]byte{frame(5, 0, 0, nil)}},
		{"unknown frame type 255", true, [][]byte{frame(255, 0, 1, []byte("x"))}},
		{"DATA for a stream never opened", false, [][]byte{frame(frameData, 0, 1, []byte("abc"))}},
		{"DATA for an even stream never opened", false, [][]byte{frame(frameData, 0, 2, []byte("abc"))}},
		{"DATA for a stream the opener never opened", true, [][]byte{frame(frameData, 0, 3, []byte("abc"))}},
		{"WINDOW for a stream never opened", false, [][]byte{frame(frameWindow, 0, 7, u32(100))}},
		{"RESET for a stream never opened", false, [][]byte{frame(frameReset, 0, 9, u32(0))}},
		{"OPEN with an even id", false, [][]byte{frame(frameOpen, 0, 2, nil)}},
		{"OPEN on stream 0", false, [][]byte{frame(frameOpen, 0, 0, nil)}},
		{"OPEN of an id already used", false, [][]byte{frame(frameOpen, 0, 1, nil), frame(frameOpen, 0, 1, nil)}},
		{"OPEN of a lower id", false, [][]byte{frame(frameOpen, 0, 5, nil), frame(frameOpen, 0, 3, nil)}},
		{"OPEN over 4 KiB", false, [][]byte{frame(frameOpen, 0, 1, make([]byte, maxOpenPayload+1))}},
		{"OPEN to the opener, odd id", true, [][]byte{frame(frameOpen, 0, 1, nil)}},
		{"OPEN to the opener, even id", true, [][]byte{frame(frameOpen, 0, 2, nil)}},
		{"PING of 7 bytes", false, [][]byte{frame(framePing, 0, 0, make([]byte, 7))}},
		{"PING on stream 1", false, [][]byte{frame(frameOpen, 0, 1, nil), frame(framePing, 0, 1, make([]byte, 8))}},
		{"WINDOW of 0", false, [][]byte{frame(frameWindow, 0, 0, u32(0))}},
		{"WINDOW of 3 bytes", false, [][]byte{frame(frameWindow, 0, 0, []byte{0, 0, 1})}},
		{"RESET of 3 bytes", false, [][]byte{frame(frameOpen, 0, 1, nil), frame(frameReset, 0, 1, []byte{0, 0, 1})}},
		{"more DATA than the window", false, append(append([][]byte{frame(frameOpen, 0, 1, nil)}, window()...), frame(frameData, 0, 1, []byte{1}))},
		{"more DATA than stream 0's window", false, func() [][]byte {
			var fs [][]byte
			for range stream0Window/maxFramePayload + 1 {
				fs = append(fs, frame(frameData, 0, 0, make([]byte, maxFramePayload)))
			}
			return fs
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			s, rp := newRawPeer(t, tc.opener, SessionConfig{}, rawOpts{})
			if !rp.alive(t, s, 1) {
				t.Fatalf("session ended before the test began: %v", s.Err())
			}
			for _, f := range tc.frames {
				if _, err := rp.conn.Write(f); err != nil {
					break // the session closed its end
				}
			}
			if rp.alive(t, s, 2) {
				t.Fatalf("the session goes on after: %s", tc.name)
			}
			if s.Err() == nil {
				t.Fatal("session ended with no error")
			}
			t.Logf("session error: %v", s.Err())
		})
	}
}

// TestMuxWindowExactlyFull: a peer may fill the window to the last byte;
// reading it returns the whole window as credit, and a FIN then ends the
// stream.
func TestMuxWindowExactlyFull(t *testing.T) {
	testnet.CheckLeaks(t)
	s, rp := newRawPeer(t, false, SessionConfig{}, rawOpts{})
	rp.send(frameOpen, 0, 1, []byte("open"))
	for range streamWindow / maxFramePayload {
		if err := rp.send(frameData, 0, 1, make([]byte, maxFramePayload)); err != nil {
			t.Fatal(err)
		}
	}
	if !rp.alive(t, s, 1) {
		t.Fatalf("session ended: %v", s.Err())
	}
	st := acceptStream(t, s)
	st.SetDeadline(time.Now().Add(testWait))
	if _, err := io.ReadFull(st, make([]byte, streamWindow)); err != nil {
		t.Fatal(err)
	}
	var credit int
	for credit < streamWindow {
		f := rp.expectFrame(t, frameWindow)
		if f.hdr.Stream != 1 {
			t.Fatalf("WINDOW for stream %d", f.hdr.Stream)
		}
		credit += int(binary.BigEndian.Uint32(f.p))
	}
	if credit != streamWindow {
		t.Errorf("credit %d for %d bytes read", credit, streamWindow)
	}
	// With the credit, another full window is fine.
	for range streamWindow / maxFramePayload {
		rp.send(frameData, 0, 1, make([]byte, maxFramePayload))
	}
	rp.send(frameData, flagFin, 1, nil)
	if n, err := io.Copy(io.Discard, st); n != streamWindow || err != nil {
		t.Fatalf("read %d bytes, %v; want %d, nil", n, err, streamWindow)
	}
	if !rp.alive(t, s, 2) {
		t.Fatalf("session ended: %v", s.Err())
	}
}

// TestMuxRefusalFrames: an OPEN over MaxStreams is answered with a RESET
// (ResetRefused) and its DATA is dropped without ending the session.
func TestMuxRefusalFrames(t *testing.T) {
	testnet.CheckLeaks(t)
	s, rp := newRawPeer(t, false, SessionConfig{MaxStreams: 1}, rawOpts{})
	rp.send(frameOpen, 0, 1, nil)
	rp.send(frameOpen, 0, 3, nil)
	rp.send(frameData, 0, 3, []byte("dropped"))
	f := rp.expectFrame(t, frameReset)
	if f.hdr.Stream != 3 || binary.BigEndian.Uint32(f.p) != ResetRefused {
		t.Fatalf("RESET for stream %d with code %d, want stream 3, ResetRefused", f.hdr.Stream, binary.BigEndian.Uint32(f.p))
	}
	if !rp.alive(t, s, 1) {
		t.Fatalf("session ended: %v", s.Err())
	}
	if st := acceptStream(t, s); st.ID() != 1 {
		t.Fatalf("accepted stream %d, want 1", st.ID())
	}
}

// TestMuxKeepAlive: a session pings a silent peer; it stays up while the
// peer answers, and ends when the peer reads but never answers.
func TestMuxKeepAlive(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		testnet.CheckLeaks(t)
		s, rp := newRawPeer(t, false, SessionConfig{PingInterval: 20 * time.Millisecond, PingTimeout: time.Second}, rawOpts{answerPings: true})
		testnet.WaitUntil(t, "three keepalive PINGs were answered", func() bool { return rp.acks.Load() >= 3 })
		select {
		case <-s.Done():
			t.Fatalf("session with an answering peer ended: %v", s.Err())
		default:
		}
	})
	t.Run("unanswered", func(t *testing.T) {
		testnet.CheckLeaks(t)
		s, rp := newRawPeer(t, true, SessionConfig{PingInterval: 20 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, rawOpts{})
		rp.expectFrame(t, framePing)
		testnet.RecvWithin(t, "the session to give up on a silent peer", s.Done())
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), "PING") {
			t.Errorf("session error = %v, want one about an unanswered PING", err)
		}
	})
	t.Run("pipe pair stays up", func(t *testing.T) {
		testnet.CheckLeaks(t)
		cfg := SessionConfig{PingInterval: 10 * time.Millisecond, PingTimeout: 2 * time.Second}
		o, a := sessionPair(t, muxTransports[0].pair, cfg, cfg)
		// Each end answers the other's keepalives: both keep receiving
		// frames, interval after interval, and neither session ends.
		later := time.Now().Add(10 * cfg.PingInterval).UnixNano()
		testnet.WaitUntil(t, "keepalive frames arrived 10 intervals later", func() bool {
			return o.lastRead.Load() > later && a.lastRead.Load() > later
		})
		select {
		case <-o.Done():
			t.Fatal(o.Err())
		case <-a.Done():
			t.Fatal(a.Err())
		default:
		}
	})
}

// TestMuxKeepAlivePeerStopsReading: a peer that stops reading (and
// answering) is also one that stopped answering PINGs. With net.Pipe the
// PING cannot even be written, as over TCP once the send buffer is full.
func TestMuxKeepAlivePeerStopsReading(t *testing.T) {
	testnet.CheckLeaks(t)
	s, _ := newRawPeer(t, true, SessionConfig{PingInterval: 20 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, rawOpts{noRead: true})
	select {
	case <-s.Done():
	case <-time.After(3 * time.Second):
		t.Error("the session is still up 3s after its peer stopped reading (PingInterval 20ms, PingTimeout 50ms): keepAlive waits for the PING's write, which never completes")
	}
}

// TestMuxPingTimeout: Ping gives up with its context; the session goes on.
func TestMuxPingTimeout(t *testing.T) {
	testnet.CheckLeaks(t)
	s, rp := newRawPeer(t, false, SessionConfig{}, rawOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered Ping = %v, want context.DeadlineExceeded", err)
	}
	f := rp.expectFrame(t, framePing)
	if f.hdr.Flags&flagAck != 0 || f.hdr.Stream != 0 {
		t.Errorf("PING frame %+v", f.hdr)
	}
	// A late answer is ignored.
	rp.send(framePing, flagAck, 0, f.p)
	if !rp.alive(t, s, 99) {
		t.Fatalf("session ended: %v", s.Err())
	}
}

// TestMuxWindowAutoTune: a stream opened with a small window (the cloud's
// relay streams, issue 14) holds at most that window for a reader that
// does not read, grows to the protocol's 4 MiB while the reader keeps up,
// and grows no further than its budget allows, which it gives back when
// it ends.
func TestMuxWindowAutoTune(t *testing.T) {
	const total = 8 << 20
	tests := []struct {
		name    string
		read    bool
		first   bool // read the first window, then stop
		budget  func() *WindowBudget
		maxWin  int // the most the window may reach
		wantWin int // the window it must reach (0: not checked)
	}{
		{name: "a reader that does not read", read: false, maxWin: SmallWindow},
		{name: "a reader that reads the first window, then stops", first: true, maxWin: SmallWindow},
		{name: "a reader that keeps up", read: true, maxWin: streamWindow, wantWin: streamWindow},
		{name: "a small budget", read: true, budget: func() *WindowBudget { return NewWindowBudget(64<<10, nil) }, maxWin: SmallWindow + 64<<10, wantWin: SmallWindow + 64<<10},
		{name: "a small parent budget", read: true, budget: func() *WindowBudget { return NewWindowBudget(8<<20, NewWindowBudget(48<<10, nil)) }, maxWin: SmallWindow + 48<<10, wantWin: SmallWindow + 48<<10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testnet.CheckLeaks(t)
			o, a := sessionPair(t, muxTransports[0].pair, SessionConfig{}, SessionConfig{})
			ost, err := o.OpenWindow([]byte("small window"), SmallWindow)
			if err != nil {
				t.Fatal(err)
			}
			var b *WindowBudget
			if tc.budget != nil {
				b = tc.budget()
				ost.SetBudget(b)
			}
			ast := acceptStream(t, a)
			ast.SetSendWindow(SmallWindow)
			dl := time.Now().Add(testWait)
			ost.SetDeadline(dl)
			ast.SetDeadline(dl)
			wrote := make(chan error, 1)
			if tc.read {
				// A reader faster than its window: the sender sends a
				// small piece each time the reader waits for data, so
				// the reader empties the stream and waits whatever the
				// machine's load (a free-running sender on a busy machine
				// refilled the stream before every Read, and the window
				// never grew: CI saw it).
				waiting := make(chan struct{}, 1)
				ost.mu.Lock()
				ost.readerWaits = func() {
					select {
					case waiting <- struct{}{}:
					default:
					}
				}
				ost.mu.Unlock()
				go func() {
					piece := make([]byte, SmallWindow)
					for sent := 0; sent < total; sent += len(piece) {
						select {
						case <-waiting:
						case <-time.After(testWait):
							wrote <- errors.New("the reader never waited for data")
							return
						}
						if _, err := ast.Write(piece); err != nil {
							wrote <- err
							return
						}
					}
					wrote <- nil
				}()
			} else {
				go func() {
					_, err := ast.Write(make([]byte, total))
					wrote <- err
				}()
			}
			windowOf := func() int {
				ost.mu.Lock()
				defer ost.mu.Unlock()
				return ost.window
			}
			if !tc.read {
				full := func() bool { return unreadOf(ost) == SmallWindow && sendWinOf(ast) == 0 }
				testnet.WaitUntil(t, "the first window is full", full)
				if tc.first {
					if _, err := io.ReadFull(ost, make([]byte, SmallWindow)); err != nil {
						t.Fatal(err)
					}
					testnet.WaitUntil(t, "the window is full again", full)
				}
				if w := windowOf(); w != SmallWindow {
					t.Errorf("the window of a stream nobody reads grew to %d", w)
				}
				ost.mu.Lock()
				held := len(ost.q) * smallChunkSize
				for _, c := range ost.q {
					if cap(c) != smallChunkSize {
						t.Errorf("a stream with a %d-byte window holds a chunk of %d bytes", SmallWindow, cap(c))
					}
				}
				ost.mu.Unlock()
				if held > SmallWindow {
					t.Errorf("the stream holds %d bytes of buffers for a window of %d", held, SmallWindow)
				}
				ost.Close()
				ast.Close()
				<-wrote
				return
			}
			buf := make([]byte, 32<<10)
			maxWin := 0
			for read := 0; read < total; {
				n, err := ost.Read(buf)
				if err != nil {
					t.Fatalf("after %d bytes: %v", read, err)
				}
				read += n
				maxWin = max(maxWin, windowOf())
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			t.Logf("window reached %d bytes", maxWin)
			if maxWin > tc.maxWin || (tc.wantWin > 0 && maxWin < tc.wantWin) {
				t.Errorf("the window reached %d bytes, want %d (at most %d)", maxWin, tc.wantWin, tc.maxWin)
			}
			if !ost.Grown() {
				t.Error("Grown() = false after the window grew")
			}
			ost.Close()
			// What the window took from its budgets is given back.
			fresh := tc.budget
			for p, q := b, (*WindowBudget)(nil); p != nil; p = p.parent {
				if q == nil && fresh != nil {
					q = fresh()
				}
				if p.Left() != q.Left() {
					t.Errorf("a budget has %d bytes left after the stream ended, want %d", p.Left(), q.Left())
				}
				q = q.parent
			}
		})
	}
}

// TestMuxAbortKeepsReceived: after this end aborts a stream (a RESET to the
// peer), bytes it had already received are still read, then the error.
// The relay depends on it: a request-body write that fails aborts the
// stream while the response that explains why is arriving.
func TestMuxAbortKeepsReceived(t *testing.T) {
	for _, tr := range muxTransports {
		for _, abort := range []struct {
			name string
			fn   func(*Stream) error
		}{
			{"Abort", (*Stream).Abort},
			{"CloseWithCode", func(st *Stream) error { return st.CloseWithCode(ResetRefused, "no") }},
		} {
			t.Run(tr.name+"/"+abort.name, func(t *testing.T) {
				testnet.CheckLeaks(t)
				o, a := sessionPair(t, tr.pair, SessionConfig{}, SessionConfig{})
				ost, ast := openStreams(t, o, a, "abort")
				const answer = "HTTP/1.1 413 Request Entity Too Large\r\n\r\n"
				if _, err := ast.Write([]byte(answer)); err != nil {
					t.Fatal(err)
				}
				testnet.WaitUntil(t, "the answer arrived", func() bool { return unreadOf(ost) == len(answer) })
				if err := abort.fn(ost); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(ost)
				if string(got) != answer {
					t.Fatalf("read after %s: %q (%v), want the %d bytes received before it", abort.name, got, err, len(answer))
				}
				if err == nil {
					t.Fatalf("read after %s ended without an error", abort.name)
				}
			})
		}
	}
}
