package mux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// muxSeeds are frame sequences a peer might send, good and bad, for the
// fuzz targets' seed corpus.
func muxSeeds() [][]byte {
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	open := []byte(`{"kind":"http/1.1","app":"a_1"}`)
	return [][]byte{
		{},
		// A stream opened, written, ended; then reset.
		cat(frame(frameOpen, 0, 1, open), frame(frameData, 0, 1, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
			frame(frameData, flagFin, 1, nil), frame(frameReset, 0, 1, append(u32(ResetCancel), "bye"...))),
		// Pings, an answer to a ping never sent, window updates.
		cat(frame(framePing, 0, 0, pingPayload(1)), frame(framePing, flagAck, 0, pingPayload(7)),
			frame(frameWindow, 0, 0, u32(1<<20)), frame(frameOpen, 0, 1, nil), frame(frameWindow, 0, 1, u32(100))),
		// Stream 0's bytes.
		cat(frame(frameData, 0, 0, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), frame(frameData, flagFin, 0, nil)),
		// Many streams (over a small MaxStreams), some out of order.
		cat(frame(frameOpen, 0, 1, nil), frame(frameOpen, 0, 3, nil), frame(frameOpen, 0, 5, nil),
			frame(frameOpen, 0, 7, nil), frame(frameData, 0, 7, []byte("x")), frame(frameOpen, 0, 5, nil)),
		// Protocol errors.
		frame(frameOpen, 0, 2, nil),
		frame(9, 0, 0, nil),
		{0x01, 0x00, 0x01, frameData, 0, 0, 0, 0, 1}, // 64 KiB + 1 announced
		cat(frame(frameOpen, 0, 1, nil), frame(frameData, 0, 3, []byte("never opened"))),
		frame(frameWindow, 0, 0, u32(0)),
		frame(framePing, 0, 1, pingPayload(1)),
		frame(frameReset, 0, 0, []byte{1}),
		// A truncated frame.
		frame(frameData, 0, 0, []byte("truncated"))[:12],
		// The high bit of the stream id (reserved) set.
		{0, 0, 1, frameData, flagFin, 0x80, 0, 0, 0, 'x'},
	}
}

// FuzzMuxFrames feeds arbitrary bytes to a Session as its peer's side of
// the connection. Whatever they are, the session must not panic, and must
// end once the connection does.
func FuzzMuxFrames(f *testing.F) {
	for _, s := range muxSeeds() {
		f.Add(byte(0), s) // the connector's end (accepts streams)
		f.Add(byte(1), s) // the cloud's end (opens them)
	}
	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		a, b := net.Pipe()
		s := NewSession(a, mode&1 == 1, SessionConfig{MaxStreams: 1 + int(mode>>1)%4})
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, b) // what the session sends
		}()
		var users sync.WaitGroup
		users.Add(1)
		go func() {
			defer users.Done()
			for {
				st, err := s.Accept()
				if err != nil {
					return
				}
				users.Add(1)
				go func() {
					defer users.Done()
					io.Copy(io.Discard, st)
					st.Close()
				}()
			}
		}()
		// Stream 0 is read too, as the HTTP/2 layer would. (Taken before
		// any byte arrives: the session cannot have ended yet.)
		st0 := s.Stream0()
		users.Add(1)
		go func() {
			defer users.Done()
			io.Copy(io.Discard, st0)
		}()
		b.Write(data) // fails once the session closed its end
		b.Close()
		select {
		case <-s.Done():
		case <-time.After(testWait):
			t.Fatal("the session did not end when its connection did")
		}
		if s.Err() == nil {
			t.Fatal("the session ended without an error")
		}
		s.Close()
		ended := make(chan struct{})
		go func() {
			users.Wait()
			close(ended)
		}()
		select {
		case <-ended:
		case <-time.After(testWait):
			t.Fatal("a stream's reader still waits after its session ended")
		}
		<-drained
	})
}

// FuzzReadFrame: readFrame accepts only frames within the limits, of a
// known type, with a payload of the size their type requires.
func FuzzReadFrame(f *testing.F) {
	for _, s := range muxSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		hdr, buf := make([]byte, headerLen), make([]byte, maxFramePayload)
		for {
			before := r.Len()
			fh, p, err := readFrame(r, hdr, buf)
			if err != nil {
				if err == io.EOF && before != 0 {
					t.Fatalf("io.EOF in the middle of a frame (%d bytes left)", before)
				}
				if errors.Is(err, io.ErrUnexpectedEOF) && before >= headerLen+fh.Length && fh.Length <= maxFramePayload {
					t.Fatalf("unexpected EOF with the whole frame there: %+v, %d bytes", fh, before)
				}
				return
			}
			if fh.Length > maxFramePayload || len(p) != fh.Length {
				t.Fatalf("frame %+v with a payload of %d bytes accepted", fh, len(p))
			}
			if consumed := before - r.Len(); consumed != headerLen+fh.Length {
				t.Fatalf("frame %+v took %d bytes", fh, consumed)
			}
			if fh.Stream >= 1<<31 {
				t.Fatalf("stream id %d has the reserved bit", fh.Stream)
			}
			switch fh.Type {
			case frameData:
			case frameOpen:
				if fh.Stream == 0 || len(p) > maxOpenPayload {
					t.Fatalf("bad OPEN accepted: %+v", fh)
				}
			case frameWindow:
				if len(p) != 4 || p[0]|p[1]|p[2]|p[3] == 0 || p[0] > 0x40 || (p[0] == 0x40 && p[1]|p[2]|p[3] != 0) {
					t.Fatalf("bad WINDOW accepted: %+v %x", fh, p)
				}
			case frameReset:
				if len(p) < 4 || len(p) > 4+maxResetText {
					t.Fatalf("bad RESET accepted: %+v", fh)
				}
			case framePing:
				if len(p) != 8 || fh.Stream != 0 {
					t.Fatalf("bad PING accepted: %+v", fh)
				}
			default:
				t.Fatalf("frame of unknown type accepted: %+v", fh)
			}
			// The header is what putHeader writes for it (but for the
			// reserved bit, which is ignored).
			var again [headerLen]byte
			putHeader(again[:], fh.Length, fh.Type, fh.Flags, fh.Stream)
			orig := data[len(data)-before : len(data)-before+headerLen]
			if !bytes.Equal(again[:5], orig[:5]) || !bytes.Equal(again[6:], orig[6:]) || again[5] != orig[5]&0x7f {
				t.Fatalf("header %x parsed as %+v, which writes as %x", orig, fh, again)
			}
		}
	})
}
