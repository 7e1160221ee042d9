package tunnel

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
)

// Copying a stream's bytes (private access: the client, the cloud and the
// connector each copy both ways per stream). A copy reads into a small
// buffer while the stream trickles (an idle stream holds 16 KiB per
// direction) and into a large pooled one while it is busy (a read filled
// the buffer), until a read brings less than half of it: fewer, larger
// reads and writes — with corked TLS writes (CorkWrites), one system call
// for up to 16 records. A stream that stops right after a read of 128 KiB
// or more keeps the large buffer until its next read returns.

const (
	copySmall = 16 << 10
	copyLarge = 256 << 10
)

var (
	copySmallBufs = sync.Pool{New: func() any { b := make([]byte, copySmall); return &b }}
	copyLargeBufs = sync.Pool{New: func() any { b := make([]byte, copyLarge); return &b }}
)

// Copy copies from src to dst until src ends (io.EOF is not an error) or
// a read or write fails, like io.Copy, with buffers sized to the traffic.
// It never uses src's WriteTo or dst's ReadFrom.
func Copy(dst io.Writer, src io.Reader) (written int64, err error) {
	small := copySmallBufs.Get().(*[]byte)
	defer copySmallBufs.Put(small)
	var large *[]byte
	defer func() {
		if large != nil {
			copyLargeBufs.Put(large)
		}
	}()
	buf := *small
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			written += int64(w)
			if werr == nil && w != n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return written, werr
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				rerr = nil
			}
			return written, rerr
		}
		switch {
		case n == len(buf) && large == nil: // busy: read more at once
			large = copyLargeBufs.Get().(*[]byte)
			buf = *large
		case n < copyLarge/2 && large != nil: // drained: wait with the small one
			copyLargeBufs.Put(large)
			large, buf = nil, *small
		}
	}
}

// CorkWrites returns a writer to c that sends the TLS records of each
// Write with one system call when c is a *tls.Conn over a BatchConn
// (Cork/Uncork; nothing is held between writes), else c itself. Only one
// goroutine may write through it at a time.
func CorkWrites(c net.Conn) io.Writer {
	if tc, ok := c.(*tls.Conn); ok {
		if bc, ok := tc.NetConn().(*BatchConn); ok {
			return &corkWriter{tc: tc, bc: bc}
		}
	}
	return c
}

type corkWriter struct {
	tc *tls.Conn
	bc *BatchConn
}

func (w *corkWriter) Write(p []byte) (int, error) {
	if len(p) <= 16<<10 { // one record: nothing to join
		return w.tc.Write(p)
	}
	w.bc.Cork()
	n, err := w.tc.Write(p)
	if uerr := w.bc.Uncork(); err == nil && uerr != nil {
		err = uerr
		n = 0
	}
	return n, err
}
