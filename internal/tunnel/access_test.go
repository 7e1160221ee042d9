package tunnel

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseAccessRequest(t *testing.T) {
	tok := "spa_" + strings.Repeat("a", 43)
	tests := []struct {
		name, line string
		wantErr    string
	}{
		{"tcp with app", `{"token":"` + tok + `","network":"tcp","app":"db","dest":"db.corp:5432"}` + "\n", ""},
		{"udp without app", `{"token":"` + tok + `","network":"udp","dest":"10.1.0.5:53"}`, ""},
		{"ipv6", `{"token":"` + tok + `","network":"tcp","dest":"[fd00::1]:22"}`, ""},
		{"app without dest", `{"token":"` + tok + `","network":"tcp","app":"db","check":true}`, ""},
		{"no app, no dest", `{"token":"` + tok + `","network":"tcp"}`, "not HOST:PORT"},
		{"not json", `GET / HTTP/1.1`, "not a JSON object"},
		{"no token", `{"network":"tcp","dest":"a:1"}`, "no token"},
		{"bad network", `{"token":"x","network":"sctp","dest":"a:1"}`, "neither tcp nor udp"},
		{"no port", `{"token":"x","network":"tcp","dest":"db.corp"}`, "not HOST:PORT"},
		{"port 0", `{"token":"x","network":"tcp","dest":"db.corp:0"}`, "no valid port"},
		{"port too big", `{"token":"x","network":"tcp","dest":"db.corp:65536"}`, "no valid port"},
		{"empty host", `{"token":"x","network":"tcp","dest":":22"}`, "no valid host"},
		{"bad host", `{"token":"x","network":"tcp","dest":"a b:22"}`, "no valid host"},
		{"not a name", `{"token":"x","network":"tcp","dest":"a*b:22"}`, "neither a DNS name"},
		{"long app", `{"token":"x","network":"tcp","app":"` + strings.Repeat("a", 64) + `","dest":"a:1"}`, "longer than 63"},
		{"long line", `{"token":"` + strings.Repeat("a", 5000) + `"}`, "longer than 4 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAccessRequest([]byte(tt.line))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestAccessAnswerRoundTrip(t *testing.T) {
	var b bytes.Buffer
	WriteAccessLine(&b, AccessAnswer{OK: true, App: "db"})
	WriteAccessLine(&b, AccessAnswer{Code: AccessNotAssigned, Message: "You are not assigned."})
	br := bufio.NewReader(&b)
	if a, err := ReadAccessAnswer(br); err != nil || a.App != "db" {
		t.Fatalf("first answer %+v, %v", a, err)
	}
	_, err := ReadAccessAnswer(br)
	var ae *AccessError
	if !errors.As(err, &ae) || ae.Code != AccessNotAssigned || ae.Message != "You are not assigned." {
		t.Fatalf("second answer: %v", err)
	}
}

func TestDatagrams(t *testing.T) {
	var b bytes.Buffer
	for _, p := range [][]byte{{}, []byte("query"), bytes.Repeat([]byte{7}, MaxDatagram)} {
		if err := WriteDatagram(&b, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteDatagram(&b, make([]byte, MaxDatagram+1)); err == nil {
		t.Fatal("an oversized datagram was written")
	}
	buf := make([]byte, MaxDatagram)
	for _, want := range []int{0, 5, MaxDatagram} {
		p, err := ReadDatagram(&b, buf)
		if err != nil || len(p) != want {
			t.Fatalf("datagram of %d bytes, %v; want %d", len(p), err, want)
		}
	}
}

// FuzzParseAccessRequest: any line either parses into a request whose
// fields are within their limits, or is refused; never a panic.
func FuzzParseAccessRequest(f *testing.F) {
	f.Add([]byte(`{"token":"spa_x","network":"tcp","app":"db","dest":"db.corp:5432"}`))
	f.Add([]byte(`{"token":"spa_x","network":"udp","dest":"[::1]:53"}` + "\n"))
	f.Add([]byte(`{"token":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseAccessRequest(line)
		if err != nil {
			return
		}
		if len(r.Token) > 200 || len(r.App) > 63 || (r.Network != NetworkTCP && r.Network != NetworkUDP) {
			t.Fatalf("accepted %+v", r)
		}
		if r.Dest == "" && r.App != "" {
			return
		}
		if _, p, err := SplitDest(r.Dest); err != nil || p == 0 {
			t.Fatalf("accepted dest %q", r.Dest)
		}
	})
}
