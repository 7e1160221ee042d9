package tunnel

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ResponseLimits bound the head of a response: what the connector reads
// from a backend, and what the cloud reads from a connector. Without them a
// backend answering with a 200 MiB header took both processes to 800 MB
// (issue 14). Zero fields take the defaults of DefaultResponseLimits.
type ResponseLimits struct {
	// MaxHeaderBytes is the most bytes of header names and values, counting
	// the name once per value (default 64 KiB).
	MaxHeaderBytes int
	// MaxHeaderCount is the most header fields, counting each value of a
	// repeated field (default 256).
	MaxHeaderCount int
}

// DefaultResponseLimits are the connector's limits on a backend's response
// head: the edge's limits on a request's (64 KiB, 256 fields).
var DefaultResponseLimits = ResponseLimits{MaxHeaderBytes: 64 << 10, MaxHeaderCount: 256}

func (l ResponseLimits) withDefaults() ResponseLimits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultResponseLimits.MaxHeaderBytes
	}
	if l.MaxHeaderCount <= 0 {
		l.MaxHeaderCount = DefaultResponseLimits.MaxHeaderCount
	}
	return l
}

// Relayed are the limits the cloud applies to a response from a
// connector that applied l to its backend: a little more, for the fields
// the connector adds (Transfer-Encoding, Connection, Trailer, its own).
func (l ResponseLimits) Relayed() ResponseLimits {
	l = l.withDefaults()
	return ResponseLimits{MaxHeaderBytes: l.MaxHeaderBytes + 1<<10, MaxHeaderCount: l.MaxHeaderCount + 16}
}

// WireBytes is the most bytes of response heads read off the wire for
// one response, interim (1xx) ones included: the names and values, with
// 4 bytes of framing per field (": " and CRLF), and 4 KiB for status lines
// and blank lines. It is what net/http's Transport.MaxResponseHeaderBytes
// gets on the connector's proxy path.
func (l ResponseLimits) WireBytes() int64 {
	l = l.withDefaults()
	return int64(l.MaxHeaderBytes) + 4*int64(l.MaxHeaderCount) + 4<<10
}

// HeaderListSize is the HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE matching l
// (RFC 9113 §6.5.2 counts 32 bytes per field besides its name and value;
// 1 KiB for the pseudo-header fields).
func (l ResponseLimits) HeaderListSize() uint32 {
	l = l.withDefaults()
	return uint32(l.MaxHeaderBytes + 32*l.MaxHeaderCount + 1<<10)
}

// ErrResponseHeadersTooLarge is the error (errors.Is) of a response whose
// head exceeds the limits.
var ErrResponseHeadersTooLarge = errors.New("the response headers exceed the limit")

// CheckResponseHeader reports an error wrapping ErrResponseHeadersTooLarge
// if h exceeds l.
func CheckResponseHeader(h http.Header, l ResponseLimits) error {
	l = l.withDefaults()
	count, size := 0, 0
	for k, vs := range h {
		count += len(vs)
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if count > l.MaxHeaderCount {
		return fmt.Errorf("%w: %d fields, at most %d", ErrResponseHeadersTooLarge, count, l.MaxHeaderCount)
	}
	if size > l.MaxHeaderBytes {
		return fmt.Errorf("%w: %d bytes of names and values, at most %d", ErrResponseHeadersTooLarge, size, l.MaxHeaderBytes)
	}
	return nil
}

// IsHeadersTooLarge reports whether err says a response head was over a
// limit: ErrResponseHeadersTooLarge, or the same from net/http's
// Transport (MaxResponseHeaderBytes) or x/net's HTTP/2 client
// (MaxHeaderListSize), which have no error value of their own.
func IsHeadersTooLarge(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrResponseHeadersTooLarge) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "server response headers exceeded") || strings.Contains(s, "response header list larger than advertised limit")
}

// A HeadLimiter sits between a connection and the bufio.Reader that reads
// responses from it: while ReadFinalResponse reads a response head it lets
// through at most the limits' WireBytes, so a head of any length costs no
// more memory than that (net/http's Transport bounds its reads the same
// way). Otherwise it passes reads through.
type HeadLimiter struct {
	r    io.Reader
	left int64 // bytes still allowed; negative: no limit
}

// NewHeadLimiter returns a HeadLimiter reading r.
func NewHeadLimiter(r io.Reader) *HeadLimiter { return &HeadLimiter{r: r, left: -1} }

// Reset makes h read r, with no limit.
func (h *HeadLimiter) Reset(r io.Reader) { h.r, h.left = r, -1 }

var errHeadBudget = errors.New("tunnel: response head read limit reached")

func (h *HeadLimiter) Read(p []byte) (int, error) {
	if h.left < 0 {
		return h.r.Read(p)
	}
	if h.left == 0 {
		return 0, errHeadBudget
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= int64(n)
	return n, err
}
