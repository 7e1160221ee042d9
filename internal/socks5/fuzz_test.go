package socks5

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadRequest: the request parser never panics, reads no more than
// the request, and what it accepts it writes back the same (a name that
// is an IP in text aside, which comes back as the IP).
func FuzzReadRequest(f *testing.F) {
	for _, s := range [][]byte{
		{5, 1, 0, 1, 10, 0, 0, 1, 0, 22},
		append(append([]byte{5, 1, 0, 3, 8}, "db.corp."...), 0x15, 0x38),
		{5, 3, 0, 4, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53},
		{5, 1, 0, 3, 0, 0, 22},
		{5, 2, 0, 7},
		{4, 1, 0, 1},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := readRequest(r)
		if err != nil {
			var re *replyError
			if errors.As(err, &re) && re.code == ReplySucceeded {
				t.Fatalf("a refusal with the code of success: %v", err)
			}
			return
		}
		used := append([]byte(nil), b[:len(b)-r.Len()]...)
		used[2] = 0 // RSV: not checked
		again := appendAddr([]byte{5, req.cmd, 0}, req.dst)
		if req.dst.Name != "" && !bytes.Equal(again, used) {
			t.Fatalf("read % x as %+v, which writes % x", used, req, again)
		}
		if len(req.dst.Name) > MaxDomain {
			t.Fatalf("a name of %d bytes", len(req.dst.Name))
		}
		back, err := readRequest(bytes.NewReader(again))
		if err != nil || back != req {
			t.Fatalf("%+v written and read again: %+v, %v", req, back, err)
		}
	})
}

// FuzzParseUDP: the UDP header parser never panics, and a datagram it
// accepts is rebuilt byte for byte from its header and data (a name that
// is an IP in text aside).
func FuzzParseUDP(f *testing.F) {
	for _, s := range [][]byte{
		append([]byte{0, 0, 0, 1, 127, 0, 0, 1, 0, 53}, "query"...),
		append(append([]byte{0, 0, 0, 3, 8}, "dns.corp"...), 0, 53, 'q'),
		{0, 0, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53},
		{0, 0, 0, 3, 0},
		{1, 0, 0, 1},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, data, err := parseUDP(b)
		if err != nil {
			return
		}
		again := appendUDP(nil, h.dst, data)
		again[2] = h.frag
		if h.dst.Name != "" && !bytes.Equal(again, b) {
			t.Fatalf("parsed % x as %+v %q, which writes % x", b, h, data, again)
		}
		h2, data2, err := parseUDP(again)
		if err != nil || h2 != h || !bytes.Equal(data2, data) {
			t.Fatalf("%+v %q written and parsed again: %+v %q %v", h, data, h2, data2, err)
		}
	})
}
