package mux

import "sync/atomic"

// Windows: how many bytes a stream's sender may have unread at the
// receiver. Stream 0 carries the tunnel's HTTP/2 connection, whose own
// flow control bounds it further; the values are those of that
// connection's stream and connection windows (4 MiB, 16 MiB).
const (
	streamWindow  = 4 << 20
	stream0Window = 16 << 20

	// SmallWindow is a receive window to open a stream with (OpenWindow)
	// when it should hold little at this end until it is read: it grows
	// while the stream is read (autoTune), up to 4 MiB. A stream with a
	// window this small keeps its bytes in small buffers.
	SmallWindow = 16 << 10
)

// autoTune grows the window after the reader read n bytes (st.mu held)
// and returns the credit the growth adds: fourfold, once the reader has
// read a whole window since the last growth, emptied the buffer, and
// waited for data meanwhile (it is faster than the window lets the sender
// be). A reader that stopped — a response whose client does not read —
// never waits, so its stream keeps its window.
func (st *Stream) autoTune(n int) int {
	st.readRun += n
	if st.unread > 0 || !st.starved || st.readRun < st.window || st.window >= st.maxWindow || st.err != nil {
		return 0
	}
	add := st.budget.take(min(3*st.window, st.maxWindow-st.window))
	st.starved = false
	st.window += add
	st.grown += add
	st.readRun = 0
	return add
}

// SetBudget makes budget pay for the stream's window growth from now on,
// and gives what the previous budget paid back to it (nil: growth is not
// bounded by a budget).
func (st *Stream) SetBudget(b *WindowBudget) {
	st.mu.Lock()
	old, grown := st.budget, st.grown
	st.budget = b
	if old != b {
		st.grown = 0
	}
	st.mu.Unlock()
	if old != b {
		old.give(grown)
	}
}

// Grown reports whether the stream's receive window grew beyond the one it
// was opened with.
func (st *Stream) Grown() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.maxWindow > 0 && st.window > st.initWindow
}

// SetSendWindow sets the window the peer opened the stream with (the
// acceptor, from the open message), before anything was written.
func (st *Stream) SetSendWindow(n int) {
	if n <= 0 || n >= streamWindow {
		return
	}
	st.mu.Lock()
	st.sendWin -= int64(streamWindow - n)
	st.mu.Unlock()
}

// A WindowBudget bounds how far the receive windows of the streams it pays
// for may grow altogether: the cloud gives one to each client connection
// (with a parent shared by all), so that the streams of a client that
// stops reading hold no more than it at the cloud. The nil budget is
// unbounded.
type WindowBudget struct {
	left   atomic.Int64
	parent *WindowBudget
}

// NewWindowBudget returns a budget of n bytes, each also taken from parent
// (if not nil).
func NewWindowBudget(n int64, parent *WindowBudget) *WindowBudget {
	b := &WindowBudget{parent: parent}
	b.left.Store(n)
	return b
}

// take takes up to n bytes (what is left, if less) and returns how many
// it took.
func (b *WindowBudget) take(n int) int {
	if b == nil || n <= 0 {
		return n
	}
	for {
		left := b.left.Load()
		k := min(int64(n), left)
		if k <= 0 {
			return 0
		}
		if b.left.CompareAndSwap(left, left-k) {
			if b.parent != nil {
				got := int64(b.parent.take(int(k)))
				if got < k {
					b.left.Add(k - got)
				}
				k = got
			}
			return int(k)
		}
	}
}

// give returns n bytes taken earlier.
func (b *WindowBudget) give(n int) {
	if b == nil || n <= 0 {
		return
	}
	b.left.Add(int64(n))
	b.parent.give(n)
}

// Left is what is left of the budget.
func (b *WindowBudget) Left() int64 { return b.left.Load() }
