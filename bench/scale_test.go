package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestSourceAddr(t *testing.T) {
	for _, tc := range []struct {
		block, i int
		want     string
	}{
		{2, 0, "127.2.0.1"},
		{2, 249, "127.2.0.250"},
		{3, 250, "127.3.1.1"},
		{5, 999, "127.5.3.250"},
	} {
		if got := sourceAddr(tc.block, tc.i); got != netip.MustParseAddr(tc.want) || !got.IsLoopback() {
			t.Errorf("sourceAddr(%d, %d) = %s, want %s (loopback)", tc.block, tc.i, got, tc.want)
		}
	}
	r := sourceRange(4, 300)
	if len(r) != 300 || r[0] != sourceAddr(4, 0) || r[299] != sourceAddr(4, 299) {
		t.Errorf("sourceRange(4, 300) = %d addresses from %s to %s", len(r), r[0], r[len(r)-1])
	}
	slices.SortFunc(r, netip.Addr.Compare)
	if len(slices.Compact(r)) != 300 {
		t.Error("sourceRange repeats an address")
	}
}

func TestTokenUses(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{0, nil},
		{1, []int{1}},
		{10000, []int{10000}},
		{10001, []int{10000, 1}},
		{25000, []int{10000, 10000, 5000}},
	} {
		if got := tokenUses(tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("tokenUses(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestBackendsAndFDs(t *testing.T) {
	for _, tc := range []struct{ ws, want int }{{0, 1}, {1, 1}, {20000, 1}, {20001, 2}, {50000, 3}} {
		if got := backendsFor(tc.ws); got != tc.want {
			t.Errorf("backendsFor(%d) = %d, want %d", tc.ws, got, tc.want)
		}
	}
	if got := fdsNeeded(10000, 1, 50000); got != 10000*5+100000+10000 {
		t.Errorf("fdsNeeded(10000, 1, 50000) = %d", got)
	}
}

func TestPromValue(t *testing.T) {
	const text = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 413
go_memstats_heap_inuse_bytes 3.7527552e+07
go_memstats_heap_inuse_bytes_total 1
sallyport_cloud_connectors{status="active"} 100
broken_value abc
`
	for _, tc := range []struct {
		name string
		want float64
		ok   bool
	}{
		{"go_goroutines", 413, true},
		{"go_memstats_heap_inuse_bytes", 37527552, true},
		{"go_memstats_heap", 0, false},           // a prefix is not a name
		{"sallyport_cloud_connectors", 0, false}, // labelled: not an unlabelled sample
		{"broken_value", 0, false},
		{"missing", 0, false},
	} {
		got, ok := promValue(text, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("promValue(%q) = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPerItem(t *testing.T) {
	for _, tc := range []struct {
		before, after int64
		n             int
		want          float64
	}{
		{100, 1100, 10, 100},
		{100, 1100, 0, 0},
		{1100, 100, 10, -100}, // memory returned meanwhile: shown, not hidden
	} {
		if got := perItem(tc.before, tc.after, tc.n); got != tc.want {
			t.Errorf("perItem(%d, %d, %d) = %v, want %v", tc.before, tc.after, tc.n, got, tc.want)
		}
	}
}

// The registrations' proxy dials loopback targets from its source
// addresses, in turn, and refuses anything else.
func TestConnectProxy(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			io.Copy(c, c) // echo
			c.Close()
		}
	}()
	p, err := startConnectProxy(sourceRange(6, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	connect := func(target string) (string, net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", p.addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status, c
	}
	var seen []string
	for range 2 {
		status, c := connect(ln.Addr().String())
		if status != "200 Connection established" {
			t.Fatalf("CONNECT to loopback answered %q", status)
		}
		io.WriteString(c, "hi")
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
			t.Errorf("through the proxy: %q, %v", buf, err)
		}
		c.Close()
		seen = append(seen, <-peers)
	}
	slices.Sort(seen)
	if want := []string{"127.6.0.1", "127.6.0.2"}; !slices.Equal(seen, want) {
		t.Errorf("the proxy dialled from %v, want %v", seen, want)
	}
	for _, bad := range []string{"192.0.2.1:443", "example.com:443"} {
		status, c := connect(bad)
		c.Close()
		if status != "403 Forbidden" {
			t.Errorf("CONNECT %s answered %q, want 403", bad, status)
		}
	}
}

func TestHostsFor(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{0, 1}, {1, 1}, {3000, 1}, {3001, 2}, {10000, 4}} {
		if got := hostsFor(tc.n); got != tc.want {
			t.Errorf("hostsFor(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}
