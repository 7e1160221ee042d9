package mux

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Stream is one byte stream of a Session. It is a net.Conn and keeps its
// contract (x/net/nettest's TestConn checks it): one Read and one Write
// may run at once with each other and with Close and the deadline
// setters; a deadline passed fails Reads and Writes with
// os.ErrDeadlineExceeded, pending ones included; Close unblocks both.
// Close ends both directions as a TCP close does, CloseWrite only this
// end's, Abort both at once for both ends.
type Stream struct {
	s    *Session
	id   uint32
	open []byte // the open message, at the accepting end

	mu      sync.Mutex
	q       [][]byte // received, unread: q[0][qr:], q[1], …; pooled chunks
	qr      int
	unread  int // bytes in q not read yet
	unacked int // bytes read but not yet returned to the sender's window
	window  int // what the receiver allows: the limit of len(buf)-r
	sendWin int64
	// Auto-tuning of the receive window (maxWindow > 0, see autoTune);
	// budget, if set, pays for what it grew beyond its start.
	maxWindow  int
	initWindow int
	readRun    int  // bytes read since the window last grew
	starved    bool // the reader waited for data after reading some
	// readerWaits, if set (by tests, before the stream is used), is
	// called each time Read is about to wait for data, without st.mu.
	readerWaits func()
	grown       int // bytes of window taken from budget
	budget      *WindowBudget
	rfin        bool // the peer sent FIN
	wfin        bool // this end sent FIN
	err         error
	closed      bool // Close or Abort was called here
	removed     bool
	rdl, wdl    time.Time

	rwake chan struct{} // data, FIN, error or deadline for the reader
	wwake chan struct{} // window, error or deadline for the writer
	done  chan struct{} // closed when the stream fails or is closed
	once  sync.Once

	ctx    context.Context
	cancel context.CancelFunc
}

func newStream(s *Session, id uint32, window int) *Stream {
	return &Stream{s: s, id: id, window: window, sendWin: int64(window),
		rwake: make(chan struct{}, 1), wwake: make(chan struct{}, 1), done: make(chan struct{})}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Context is done once the stream is closed or reset, or its session ends.
func (st *Stream) Context() context.Context {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ctx == nil {
		st.ctx, st.cancel = context.WithCancel(context.Background())
		select {
		case <-st.done:
			st.cancel()
		default:
		}
	}
	return st.ctx
}

// Ended reports whether the stream has been closed or reset, or its session
// ended.
func (st *Stream) Ended() bool {
	select {
	case <-st.done:
		return true
	default:
		return false
	}
}

// OpenMessage is the message the opener sent with the stream.
func (st *Stream) OpenMessage() []byte { return st.open }

// ID is the stream's id.
func (st *Stream) ID() uint32 { return st.id }

// Done is closed once the stream is closed or reset, or its session ends.
func (st *Stream) Done() <-chan struct{} { return st.done }

// deliver appends received bytes; false if they exceed the window.
func (st *Stream) deliver(p []byte, fin bool) bool {
	st.mu.Lock()
	if st.err != nil || st.rfin {
		st.mu.Unlock()
		return true // closed here: dropped
	}
	if st.unread+len(p) > st.window {
		st.mu.Unlock()
		return false
	}
	st.unread += len(p)
	for len(p) > 0 {
		if n := len(st.q); n > 0 {
			last := st.q[n-1]
			if room := cap(last) - len(last); room > 0 {
				k := min(room, len(p))
				st.q[n-1] = append(last, p[:k]...)
				p = p[k:]
				continue
			}
		}
		st.q = append(st.q, getChunk(st.window))
	}
	if fin {
		st.rfin = true
	}
	both := st.rfin && st.wfin
	st.mu.Unlock()
	wake(st.rwake)
	if both {
		st.remove()
	}
	return true
}

func (st *Stream) addWindow(n int64) {
	st.mu.Lock()
	st.sendWin += n
	st.mu.Unlock()
	wake(st.wwake)
}

// fail ends the stream with err (first error wins) and wakes its users.
//
// The error, Done and the Context change together under the stream's lock:
// whoever sees the error also sees Done closed and the Context done.
// (Functions the Context's end starts run in goroutines of their own.)
func (st *Stream) fail(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.once.Do(func() { close(st.done) })
	if st.cancel != nil {
		st.cancel()
	}
	b, grown := st.budget, st.grown
	st.budget, st.grown = nil, 0
	st.mu.Unlock()
	b.give(grown)
	wake(st.rwake)
	wake(st.wwake)
}

// remove forgets the stream at its session.
func (st *Stream) remove() {
	st.mu.Lock()
	already := st.removed
	st.removed = true
	st.mu.Unlock()
	if already {
		return
	}
	st.s.mu.Lock()
	if st.s.streams[st.id] == st {
		delete(st.s.streams, st.id)
	}
	st.s.mu.Unlock()
}

var errDeadline = os.ErrDeadlineExceeded

// Read reads received bytes; io.EOF once the peer closed its direction.
func (st *Stream) Read(p []byte) (int, error) {
	for {
		st.mu.Lock()
		if st.closed {
			st.mu.Unlock()
			return 0, net.ErrClosed
		}
		if !st.rdl.IsZero() && !time.Now().Before(st.rdl) {
			// As on a TCP connection, a deadline passed fails Read even
			// when bytes are waiting.
			st.mu.Unlock()
			return 0, errDeadline
		}
		if st.unread > 0 {
			n := 0
			for n < len(p) && len(st.q) > 0 {
				c := st.q[0]
				k := copy(p[n:], c[st.qr:])
				n += k
				st.qr += k
				if st.qr < len(c) || len(st.q) == 1 {
					break // p is full, or this is the chunk being filled
				}
				putChunk(c)
				st.q[0] = nil
				st.q, st.qr = st.q[1:], 0
			}
			st.unread -= n
			if st.unread == 0 && len(st.q) == 1 {
				putChunk(st.q[0]) // an idle stream holds no buffer
				st.q[0] = nil
				st.q, st.qr = st.q[:0], 0
			}
			st.unacked += n
			var credit int
			if st.maxWindow > 0 {
				credit += st.autoTune(n)
			}
			if st.unacked >= st.window/4 || (st.unread == 0 && st.unacked >= 16<<10) {
				credit, st.unacked = credit+st.unacked, 0
			}
			open := st.err == nil && !st.rfin
			st.mu.Unlock()
			if credit > 0 && open {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], uint32(credit))
				st.s.writeFrame(frameWindow, 0, st.id, b[:])
			}
			return n, nil
		}
		if st.rfin {
			st.mu.Unlock()
			return 0, io.EOF
		}
		if st.err != nil {
			err := st.err
			st.mu.Unlock()
			return 0, err
		}
		if len(p) == 0 {
			st.mu.Unlock()
			return 0, nil
		}
		if st.readRun > 0 {
			st.starved = true
		}
		dl, waits := st.rdl, st.readerWaits
		st.mu.Unlock()
		if waits != nil {
			waits()
		}
		if err := waitWake(st.rwake, dl); err != nil {
			return 0, err
		}
	}
}

// Received bytes wait in chunks of one frame's size, from a pool: a busy
// stream holds at most its window (plus one chunk), an idle one nothing.
// A stream with a small window (a relay stream at the cloud before it
// grew) takes small chunks, so that a stream nobody reads holds little.
const (
	chunkSize      = maxFramePayload
	smallChunkSize = SmallWindow
)

var (
	chunks      = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}
	smallChunks = sync.Pool{New: func() any { b := make([]byte, 0, smallChunkSize); return &b }}
)

func getChunk(window int) []byte {
	if window <= smallChunkSize {
		return (*smallChunks.Get().(*[]byte))[:0]
	}
	return (*chunks.Get().(*[]byte))[:0]
}

func putChunk(c []byte) {
	switch cap(c) {
	case chunkSize:
		c = c[:0]
		chunks.Put(&c)
	case smallChunkSize:
		c = c[:0]
		smallChunks.Put(&c)
	}
}

// waitWake waits for ch, or until deadline dl (zero: none).
func waitWake(ch chan struct{}, dl time.Time) error {
	if dl.IsZero() {
		<-ch
		return nil
	}
	d := time.Until(dl)
	if d <= 0 {
		return errDeadline
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return errDeadline
	}
}

// Write sends p, waiting for window as needed.
func (st *Stream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		st.mu.Lock()
		if st.closed {
			st.mu.Unlock()
			return written, net.ErrClosed
		}
		if st.err != nil {
			err := st.err
			st.mu.Unlock()
			return written, err
		}
		if !st.wdl.IsZero() && !time.Now().Before(st.wdl) {
			st.mu.Unlock()
			return written, errDeadline
		}
		if st.wfin {
			st.mu.Unlock()
			return written, errors.New("tunnel: write after CloseWrite")
		}
		if st.sendWin <= 0 {
			dl := st.wdl
			st.mu.Unlock()
			if err := waitWake(st.wwake, dl); err != nil {
				return written, err
			}
			continue
		}
		n := min(int64(len(p)), st.sendWin, maxFramePayload)
		st.sendWin -= n
		st.mu.Unlock()
		if err := st.s.writeFrame(frameData, 0, st.id, p[:n]); err != nil {
			return written, err
		}
		written += int(n)
		p = p[n:]
	}
	return written, nil
}

// CloseWrite ends this end's direction (FIN); reading goes on.
func (st *Stream) CloseWrite() error {
	st.mu.Lock()
	if st.wfin || st.err != nil {
		st.mu.Unlock()
		return nil
	}
	st.wfin = true
	both := st.rfin
	st.mu.Unlock()
	err := st.s.writeFrame(frameData, flagFin, st.id, nil)
	if both {
		st.remove()
	}
	return err
}

// Close ends the stream as closing a TCP connection does: what was
// written reaches the peer, then the end of this direction (FIN), so the
// peer reads it all and then io.EOF; if the peer's direction has not
// ended, a RESET follows, so that the peer's writes fail instead of
// waiting for window. Reads and Writes pending here, and later ones, fail
// with net.ErrClosed. Abort and CloseWithCode end the stream for the peer
// too, without the FIN.
func (st *Stream) Close() error {
	if st.id == 0 {
		return st.CloseWithCode(ResetCancel, "")
	}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	fin := !st.wfin && st.err == nil
	reset := !st.rfin && st.err == nil
	st.wfin = true
	st.mu.Unlock()
	var err error
	if fin {
		err = st.s.writeFrame(frameData, flagFin, st.id, nil)
	}
	st.fail(net.ErrClosed)
	st.remove()
	if reset {
		if rerr := st.s.reset(st.id, ResetCancel, ""); err == nil {
			err = rerr
		}
	}
	return err
}

// Abort ends the stream at once, for both ends: a RESET (ResetCancel) to
// the peer, unless both directions had ended, so that the peer's Reads
// and Writes fail with a *StreamError; bytes still in flight may be lost.
func (st *Stream) Abort() error { return st.CloseWithCode(ResetCancel, "") }

// CloseWithCode is Abort with the RESET's code and message.
func (st *Stream) CloseWithCode(code uint32, msg string) error {
	if st.id == 0 {
		// Stream 0 lives as long as its session; closing it ends this
		// end's direction, which the peer's HTTP/2 reads as the end of the
		// connection.
		err := st.CloseWrite()
		st.fail(net.ErrClosed)
		return err
	}
	// Unlike Close, the stream is not marked closed: bytes already
	// received can still be read (then the error), as before an Abort that
	// a failed request-body write makes while the response is arriving.
	st.mu.Lock()
	clean := st.rfin && st.wfin
	had := st.err
	st.mu.Unlock()
	st.fail(net.ErrClosed)
	st.remove()
	if clean || had != nil {
		return nil
	}
	return st.s.reset(st.id, code, msg)
}

// LocalAddr and RemoteAddr are the session connection's.
func (st *Stream) LocalAddr() net.Addr  { return st.s.conn.LocalAddr() }
func (st *Stream) RemoteAddr() net.Addr { return st.s.conn.RemoteAddr() }

// SetDeadline sets both deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

// SetReadDeadline bounds Reads from now on, including one waiting now.
func (st *Stream) SetReadDeadline(t time.Time) error {
	st.mu.Lock()
	st.rdl = t
	st.mu.Unlock()
	wake(st.rwake) // a waiting Read looks at the new deadline
	return nil
}

// SetWriteDeadline bounds Writes waiting for window.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.mu.Lock()
	st.wdl = t
	st.mu.Unlock()
	wake(st.wwake)
	return nil
}
