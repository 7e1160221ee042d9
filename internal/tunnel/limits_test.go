package tunnel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// countingReader counts what is read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless repeats s forever (a backend that never ends its head).
type endless struct {
	s   string
	off int
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.s[e.off%len(e.s)]
		e.off++
	}
	return len(p), nil
}

// headOf is a response head with the given fields, then a body.
func headOf(status string, fields []string, body string) string {
	var b strings.Builder
	b.WriteString("HTTP/1.1 " + status + "\r\n")
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

func repeatFields(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestReadFinalResponseLimits(t *testing.T) {
	lim := DefaultResponseLimits
	// Content-Length counts as a field: 255 of ours plus it make 256.
	big := strings.Repeat("v", 64<<10-len("X-Big")-len("Content-Length")-len("2")) // "ok"
	tests := []struct {
		name    string
		in      io.Reader
		tooBig  bool
		body    string
		maxRead int64 // most bytes the head may take off the wire (0: not checked)
	}{
		{name: "ordinary", in: strings.NewReader(headOf("200 OK", []string{"Content-Type: text/plain"}, "hello")), body: "hello"},
		{name: "interim answers skipped", in: strings.NewReader("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + headOf("200 OK", nil, "ok")), body: "ok"},
		{name: "256 fields", in: strings.NewReader(headOf("200 OK", repeatFields(255, func(i int) string { return fmt.Sprintf("X-F%d: v", i) }), "ok")), body: "ok"},
		{name: "257 fields", in: strings.NewReader(headOf("200 OK", repeatFields(256, func(i int) string { return fmt.Sprintf("X-F%d: v", i) }), "ok")), tooBig: true},
		{name: "repeated field counts each value", in: strings.NewReader(headOf("200 OK", repeatFields(300, func(int) string { return "Set-Cookie: a=b" }), "")), tooBig: true},
		{name: "64 KiB of names and values", in: strings.NewReader(headOf("200 OK", []string{"X-Big: " + big}, "ok")), body: "ok"},
		{name: "one byte more", in: strings.NewReader(headOf("200 OK", []string{"X-Big: " + big + "v"}, "ok")), tooBig: true},
		{name: "a value that never ends", in: io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\nX-Huge: "), &endless{s: "a"}), tooBig: true, maxRead: lim.WireBytes()},
		{name: "fields that never end", in: io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), &endless{s: "A: b\r\n"}), tooBig: true, maxRead: lim.WireBytes()},
		{name: "interim answers that never end", in: &endless{s: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"}, tooBig: true, maxRead: lim.WireBytes()},
		{name: "a status line that never ends", in: io.MultiReader(strings.NewReader("HTTP/1.1 200 "), &endless{s: "x"}), tooBig: true, maxRead: lim.WireBytes()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: tc.in}
			hl := NewHeadLimiter(cr)
			br := bufio.NewReaderSize(hl, 4<<10)
			req, _ := http.NewRequest(http.MethodGet, "http://backend/", nil)
			resp, err := ReadFinalResponse(br, hl, req, lim)
			if tc.maxRead > 0 && cr.n > tc.maxRead {
				t.Errorf("the head took %d bytes off the wire, want at most %d", cr.n, tc.maxRead)
			}
			if tc.tooBig {
				if !errors.Is(err, ErrResponseHeadersTooLarge) || !IsHeadersTooLarge(err) {
					t.Fatalf("err = %v, want ErrResponseHeadersTooLarge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != tc.body {
				t.Errorf("body = %q, %v; want %q", b, err, tc.body)
			}
		})
	}
}

// TestReadFinalResponseBodyUnlimited: the limit applies to the head only;
// a body of any size reads through the limiter after it.
func TestReadFinalResponseBodyUnlimited(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	in := "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + string(body)
	lim := ResponseLimits{MaxHeaderBytes: 100, MaxHeaderCount: 2}
	hl := NewHeadLimiter(strings.NewReader(in + in))
	br := bufio.NewReaderSize(hl, 4<<10)
	req, _ := http.NewRequest(http.MethodGet, "http://backend/", nil)
	for i := range 2 { // two responses on one connection: the limit is armed again
		resp, err := ReadFinalResponse(br, hl, req, lim)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("response %d: body of %d bytes (%v), want %d", i, len(got), err, len(body))
		}
	}
}

func TestIsHeadersTooLarge(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("connection reset by peer"), false},
		{fmt.Errorf("x: %w", ErrResponseHeadersTooLarge), true},
		{errors.New("net/http: server response headers exceeded 70656 bytes; aborted"), true},
		{errors.New("http2: response header list larger than advertised limit"), true},
	} {
		if got := IsHeadersTooLarge(tc.err); got != tc.want {
			t.Errorf("IsHeadersTooLarge(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// FuzzReadFinalResponse: whatever a backend (or a connector) sends, the
// relay's response reading takes at most the limits' WireBytes off the
// wire for the head, returns a head within the limits or an error, and
// never panics.
func FuzzReadFinalResponse(f *testing.F) {
	f.Add([]byte(headOf("200 OK", []string{"Content-Type: text/plain"}, "hello")))
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + headOf("204 No Content", nil, "")))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"))
	f.Add([]byte(headOf("200 OK", repeatFields(20, func(i int) string { return fmt.Sprintf("X-%d: %s", i, strings.Repeat("v", i)) }), "")))
	f.Add([]byte("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200\r\n\r\nbody until the end"))
	f.Add([]byte("garbage"))
	lim := ResponseLimits{MaxHeaderBytes: 256, MaxHeaderCount: 8}
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		hl := NewHeadLimiter(cr)
		br := bufio.NewReaderSize(hl, 64)
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequest(method, "http://backend/", nil)
			cr.r, cr.n = bytes.NewReader(data), 0
			hl.Reset(cr)
			br.Reset(hl)
			resp, err := ReadFinalResponse(br, hl, req, lim)
			if cr.n > lim.WireBytes() {
				t.Fatalf("the head took %d bytes off the wire, over %d", cr.n, lim.WireBytes())
			}
			if err != nil {
				continue
			}
			if err := CheckResponseHeader(resp.Header, lim); err != nil {
				t.Fatalf("a response over the limits was returned: %v", err)
			}
			if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("an interim response %d was returned", resp.StatusCode)
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
	})
}
