package tunnel

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// chunkReader returns its data in reads of the given sizes (the last
// repeated), as a stream that trickles and then bursts does.
type chunkReader struct {
	data  []byte
	sizes []int
	reads []int // buffer sizes offered
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.reads = append(r.reads, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := r.sizes[0]
	if len(r.sizes) > 1 {
		r.sizes = r.sizes[1:]
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func TestCopy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		sizes     []int
		wantLarge bool // a large buffer was offered at some point
		wantSmall bool // the last read was offered the small buffer again
	}{
		{"empty", 0, []int{1}, false, true},
		{"trickle", 100 << 10, []int{1000}, false, true},
		{"burst", 4 << 20, []int{1 << 30}, true, false},
		{"burst then trickle", 2 << 20, []int{copySmall, copyLarge, copyLarge, 10, 10}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, tc.size)
			rand.Read(data)
			src := &chunkReader{data: data, sizes: tc.sizes}
			var dst bytes.Buffer
			n, err := Copy(&dst, src)
			if err != nil || n != int64(tc.size) || !bytes.Equal(dst.Bytes(), data) {
				t.Fatalf("Copy: %d, %v; the bytes equal: %v", n, err, bytes.Equal(dst.Bytes(), data))
			}
			large := false
			for _, r := range src.reads {
				large = large || r == copyLarge
			}
			if large != tc.wantLarge || (src.reads[len(src.reads)-1] == copySmall) != tc.wantSmall {
				t.Errorf("buffers offered: %v", src.reads)
			}
		})
	}
}

func TestCopyErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		dst  io.Writer
		src  io.Reader
		want error
	}{
		{"read error", io.Discard, iotest.ErrReader(boom), boom},
		{"write error", errWriter{boom}, bytes.NewReader([]byte("abc")), boom},
		{"short write", shortWriter{}, bytes.NewReader([]byte("abc")), io.ErrShortWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Copy(tc.dst, tc.src); !errors.Is(err, tc.want) {
				t.Errorf("Copy: %v, want %v", err, tc.want)
			}
		})
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) - 1, nil }
