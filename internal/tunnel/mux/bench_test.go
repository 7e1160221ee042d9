package mux

import (
	"io"
	"testing"

	"github.com/sallyport/sallyport/internal/testnet"
)

// benchSessions is an opener and an acceptor over TCP on loopback.
func benchSessions(b *testing.B) (opener, acceptor *Session) {
	b.Helper()
	c1, c2 := testnet.Pair(b)
	opener = NewSession(c1, true, SessionConfig{})
	acceptor = NewSession(c2, false, SessionConfig{})
	b.Cleanup(func() {
		opener.Close()
		acceptor.Close()
	})
	return opener, acceptor
}

// BenchmarkStreamThroughput writes 1 MiB per operation on one stream,
// read at the other end as it arrives: the per-byte cost of framing,
// flow control and the read loop.
func BenchmarkStreamThroughput(b *testing.B) {
	const size = 1 << 20
	o, a := benchSessions(b)
	ost, err := o.Open([]byte("bench"))
	if err != nil {
		b.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		ast, err := a.Accept()
		if err != nil {
			read <- err
			return
		}
		_, err = io.Copy(io.Discard, ast)
		ast.Close()
		read <- err
	}()
	buf := make([]byte, size)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ost.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	ost.CloseWrite()
	if err := <-read; err != nil {
		b.Fatal(err)
	}
	ost.Close()
}

// BenchmarkStreamOpenClose opens a stream, sends one byte on it, and
// closes it once the other end read it: the per-stream cost (a relay
// stream is opened per client connection and application).
func BenchmarkStreamOpenClose(b *testing.B) {
	o, a := benchSessions(b)
	served := make(chan error, 1)
	go func() {
		for {
			st, err := a.Accept()
			if err != nil {
				served <- nil
				return
			}
			var p [1]byte
			if _, err := io.ReadFull(st, p[:]); err != nil {
				served <- err
				return
			}
			st.Close()
		}
	}()
	msg := []byte("bench")
	b.SetBytes(1)
	b.ReportAllocs()
	for b.Loop() {
		st, err := o.Open(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Write([]byte{1}); err != nil {
			b.Fatal(err)
		}
		// The acceptor's Close (a RESET) ends the stream here.
		if _, err := st.Read(make([]byte, 1)); err == nil {
			b.Fatal("Read after the peer's Close returned no error")
		}
		st.Close()
	}
	o.Close()
	if err := <-served; err != nil {
		b.Fatal(err)
	}
}
