package tunnel

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzParseRawOpen: any open message is accepted with a well-formed
// destination, or refused with an error; never a panic.
func FuzzParseRawOpen(f *testing.F) {
	for _, s := range []string{
		`{"kind":"tcp","app":"a_1","dest":"db.corp:5432","user":"ada"}`,
		`{"kind":"udp","app":"a_1","dest":"[::1]:53"}`,
		`{"kind":"tcp","app":"a_1","dest":"db.corp:0"}`,
		`{"kind":"tcp","app":"a_1","dest":":22"}`,
		`{"kind":"http/1.1","app":"a_1"}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		req, _, err := ParseRawOpen(msg)
		if err != nil {
			return
		}
		if req.Host == "" || req.Port == 0 || req.App == "" || (req.Network != RelayKindTCP && req.Network != RelayKindUDP) {
			t.Fatalf("accepted %q as %+v", msg, req)
		}
	})
}

// FuzzRawStatus: a status line is success, a RawError with a known code
// and a bounded message, or an error.
func FuzzRawStatus(f *testing.F) {
	for _, s := range []string{
		"{\"ok\":true}\n",
		"{\"ok\":false,\"error\":\"not_covered\",\"message\":\"x\"}\n",
		"{\"ok\":false,\"error\":\"later\"}\n",
		"{\"ok\":false}",
		"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		line, err := readStatusLine(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(line) >= maxStatusLine {
			t.Fatalf("a status line of %d bytes", len(line))
		}
		err = parseRawStatus(line, "db.corp:5432")
		var re *RawError
		if errors.As(err, &re) {
			switch re.Code {
			case RawNotCovered, RawUnreachable, RawRefused, RawUnsupported, RawBusy:
			default:
				t.Fatalf("code %q", re.Code)
			}
			if re.Message == "" || len(re.Message) > maxRawMessage {
				t.Fatalf("message of %d bytes", len(re.Message))
			}
		}
	})
}

// FuzzReadDatagram: the udp framing reads datagrams within their length,
// and what it reads written again is the input.
func FuzzReadDatagram(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		buf := make([]byte, rawFrameMax)
		var again []byte
		for {
			n, err := readDatagram(r, buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
			again = appendDatagram(again, buf[:n])
		}
		if !bytes.Equal(again, in) {
			t.Fatalf("read and written again: %q, want %q", again, in)
		}
	})
}
