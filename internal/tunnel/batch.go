package tunnel

import (
	"crypto/tls"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// BatchConn is a connection under TLS that makes fewer system calls.
// crypto/tls makes one write system call per record (16 KiB at most) and
// reads about one record per call.
//
// On a tunnel (batching on), writes are gathered and sent by a goroutine
// of its own: what callers write while one write system call runs goes
// out together in the next one. The records of a large HTTP/2 frame, and
// the HEADERS of many requests (the HTTP/2 client flushes each request
// while holding the connection's write lock), become one system call per
// batch, and writers no longer wait for the system call. Reads ask for
// 64 KiB at once. Serve and NewClient switch batching on when they find a
// BatchConn under the *tls.Conn they are given; until then (the TLS
// handshake, a connection that turns out not to be a tunnel) reads and
// writes go straight through.
//
// With batching on, writes return before the bytes reach the kernel: an
// error is returned by a later Write, and Close sends what is pending
// first (see Close).
//
// On other connections (batching off), Cork and Uncork send the records
// of one large write together (the edge's HTTP/1.1 responses).
type BatchConn struct {
	net.Conn
	on     atomic.Bool
	corked atomic.Int32 // Cork depth

	mu       sync.Mutex
	cond     sync.Cond // the flusher took a batch, or stopped
	buf      []byte    // waiting to be written
	spare    []byte    // the other buffer, while the flusher does not write it
	flushing bool      // a flusher goroutine is running
	err      error     // the first write error: later writes fail with it
	expired  bool      // a write deadline in the past was set
	closed   bool

	cbuf []byte // written while corked

	// Reads, once batching is on or while reading ahead, go through rbuf:
	// crypto/tls asks for about one record per read, and a busy tunnel (an
	// upload) has more waiting.
	rbuf      []byte
	rr, rw    int // rbuf[rr:rw] is unread
	readAhead atomic.Int32
	// whileBusy (ReadAheadWhileBusy): read ahead while the last read
	// brought at least a record's worth (busy), not while trickling.
	whileBusy atomic.Bool
	busy      bool // only the reader touches it
}

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// ReadAhead makes reads ask for 64 KiB at once until the matching
// EndReadAhead (the edge, while it reads a large request body: crypto/tls
// would read it one 16 KiB record per system call). The buffer goes back
// to a pool once drained after the end, so an idle connection holds none.
func (c *BatchConn) ReadAhead() { c.readAhead.Add(1) }

// EndReadAhead ends a ReadAhead.
func (c *BatchConn) EndReadAhead() { c.readAhead.Add(-1) }

// busyRead: a read that brings this much (half a record) means more is
// probably waiting.
const busyRead = 8 << 10

// ReadAheadWhileBusy makes conn (a BatchConn, or a *tls.Conn over one)
// read 64 KiB at once while its peer sends fast — a read brought at least
// 8 KiB — and read as asked again once it trickles, when the buffer goes
// back to its pool (an idle private access stream holds none). It
// reports whether conn is such a connection.
func ReadAheadWhileBusy(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	bc, ok := conn.(*BatchConn)
	if ok {
		bc.whileBusy.Store(true)
	}
	return ok
}

// Batching limits: a writer waits while maxBatch bytes are pending, and
// buffers up to maxKeep bytes are kept for reuse. Reads ask for
// readBufSize bytes at once.
const (
	readBufSize = 64 << 10
	maxBatch    = 256 << 10
	maxKeep     = maxBatch + 64<<10
	// closeFlushWait bounds how long Close waits for pending bytes to go
	// out before it closes the connection anyway.
	closeFlushWait = 5 * time.Second
)

// NewBatchConn wraps conn; batching is off until EnableBatching.
func NewBatchConn(conn net.Conn) *BatchConn {
	c := &BatchConn{Conn: conn}
	c.cond.L = &c.mu
	return c
}

// EnableBatching switches batching on for conn if conn is a BatchConn or a
// *tls.Conn over one; it reports whether it did. Call it before using the
// connection from more than one goroutine.
func EnableBatching(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	bc, ok := conn.(*BatchConn)
	if ok {
		bc.on.Store(true)
	}
	return ok
}

// Write queues p (or writes it at once while batching is off and the
// connection is not corked).
func (c *BatchConn) Write(p []byte) (int, error) {
	if !c.on.Load() {
		if c.corked.Load() == 0 {
			return c.Conn.Write(p)
		}
		c.mu.Lock()
		if c.corked.Load() > 0 {
			if c.cbuf == nil {
				c.cbuf = (*corkBuffers.Get().(*[]byte))[:0]
			}
			c.cbuf = append(c.cbuf, p...)
			c.mu.Unlock()
			return len(p), nil
		}
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.buf) >= maxBatch && c.err == nil && !c.expired && !c.closed {
		c.cond.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closed:
		return 0, net.ErrClosed
	case c.expired:
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
	}
	if c.buf == nil && c.spare != nil {
		c.buf, c.spare = c.spare, nil
	}
	c.buf = append(c.buf, p...)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	return len(p), nil
}

// Read reads through the read buffer while batching is on. Only one
// goroutine reads at a time (crypto/tls holds its input lock).
func (c *BatchConn) Read(p []byte) (int, error) {
	if c.rr == c.rw {
		ahead := c.on.Load() || c.readAhead.Load() > 0 || (c.busy && c.whileBusy.Load())
		if !ahead && c.rbuf != nil && !c.on.Load() {
			b := c.rbuf // a read-ahead ended: an idle connection keeps no buffer
			readBufs.Put(&b)
			c.rbuf = nil
		}
		if !ahead || len(p) >= readBufSize {
			n, err := c.Conn.Read(p)
			c.busy = n >= busyRead
			return n, err
		}
		if c.rbuf == nil {
			c.rbuf = *(readBufs.Get().(*[]byte))
		}
		n, err := c.Conn.Read(c.rbuf)
		c.busy = n >= busyRead
		c.rr, c.rw = 0, n
		if n == 0 {
			return 0, err
		}
		// An error comes again with the next read.
	}
	n := copy(p, c.rbuf[c.rr:c.rw])
	c.rr += n
	return n, nil
}

// Cork holds back writes (while batching is off) until the matching
// Uncork, which sends them with one system call: around one large write
// of an HTTP/1.1 response, the TLS records it becomes (16 KiB each) leave
// together. Only the goroutine that corked may write meanwhile (other
// writers' bytes join the batch).
func (c *BatchConn) Cork() {
	if c.on.Load() {
		return // batched anyway
	}
	c.mu.Lock()
	c.corked.Add(1)
	c.mu.Unlock()
}

// Uncork ends a Cork; the last one sends what was held back and returns
// the write's error.
func (c *BatchConn) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked.Load() == 0 {
		return nil
	}
	var err error
	if c.corked.Load() == 1 && len(c.cbuf) > 0 {
		// Still corked while writing: other writers queue behind.
		_, err = c.Conn.Write(c.cbuf)
		if cap(c.cbuf) <= maxKeep {
			b := c.cbuf[:0]
			corkBuffers.Put(&b)
		}
		c.cbuf = nil // an idle connection holds no buffer
	}
	c.corked.Add(-1)
	return err
}

// corkBuffers hold corked writes.
var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// flush writes batches until none is pending.
func (c *BatchConn) flush() {
	c.mu.Lock()
	for len(c.buf) > 0 && c.err == nil {
		out := c.buf
		c.buf, c.spare = c.spare, nil
		if c.buf != nil {
			c.buf = c.buf[:0]
		}
		c.cond.Broadcast() // room for waiting writers
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		if cap(out) <= maxKeep {
			if c.buf == nil {
				c.buf = out[:0]
			} else {
				c.spare = out[:0]
			}
		}
		if err != nil {
			c.err = err
			c.buf = nil
		}
	}
	c.flushing = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Close sends what is pending, waiting at most closeFlushWait (and the
// write deadline, if any), then closes the connection.
func (c *BatchConn) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.flushing {
		t := time.AfterFunc(closeFlushWait, func() { c.Conn.Close() })
		for c.flushing {
			c.cond.Wait()
		}
		t.Stop()
	}
	c.buf, c.spare = nil, nil
	c.cond.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}

// SetDeadline sets the read deadline, and the write deadline as
// SetWriteDeadline does.
func (c *BatchConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetWriteDeadline bounds the write system calls from now on. A deadline
// already past (crypto/tls sets one after its close_notify alert) makes
// later writes fail at once, but lets what is pending go out, as it would
// have had it been written at once.
func (c *BatchConn) SetWriteDeadline(t time.Time) error {
	if !c.on.Load() {
		return c.Conn.SetWriteDeadline(t)
	}
	past := !t.IsZero() && !t.After(time.Now())
	c.mu.Lock()
	c.expired = past
	c.cond.Broadcast()
	c.mu.Unlock()
	if past {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// batchListener wraps accepted connections in BatchConns.
type batchListener struct{ net.Listener }

// NewBatchListener returns a listener whose connections are BatchConns
// (batching off): put it under tls.NewListener so that the tunnels among
// its connections batch their writes.
func NewBatchListener(ln net.Listener) net.Listener { return batchListener{ln} }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewBatchConn(c), nil
}
