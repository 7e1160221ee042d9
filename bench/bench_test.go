package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const wrkOutput = `Running 5s test @ https://127.0.0.1:41235/small
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.43ms   14.20ms 210.31ms   87.11%
    Req/Sec     1.20k   210.12     1.61k    70.00%
  Latency Distribution
     50%   19.53ms
     75%   25.10ms
     90%   33.87ms
     99%   74.40ms
  11891 requests in 5.01s, 1.57MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 91
Requests/sec:   2373.45
Transfer/sec:    320.77KB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 11891-91 || r.errors != 3+91 {
		t.Errorf("requests %d errors %d, want %d and %d", r.requests, r.errors, 11891-91, 94)
	}
	if r.p50 != 19530*time.Microsecond || r.p99 != 74400*time.Microsecond {
		t.Errorf("p50 %s p99 %s", r.p50, r.p99)
	}
	if r.elapsed != 5010*time.Millisecond {
		t.Errorf("elapsed %s", r.elapsed)
	}
	if want := 2373.45 * float64(11891-91) / 11891; math.Abs(r.rps-want) > 0.01 {
		t.Errorf("rps %f, want %f", r.rps, want)
	}
	if _, err := parseWrk("Running 5s test @ x\n  11891 requests in 5.01s, 1.57MB read\nRequests/sec: 1\n"); err == nil {
		t.Error("output without --latency accepted")
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		if math.Abs(float64(got-c.want)) > 0.035*float64(c.want) {
			t.Errorf("quantile(%v) = %s, want %s ± 3.5 %%", c.q, got, c.want)
		}
	}
	for us := uint64(0); us < 1<<24; us = us*5/4 + 1 {
		mid := bucketMid(bucketOf(us))
		if math.Abs(mid-float64(us)) > 0.035*float64(us)+1 {
			t.Errorf("bucket of %d µs has middle %f", us, mid)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"10MiB": 10 << 20, "512KiB": 512 << 10, "1000": 1000, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "10MB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestOtherTargetOnlyLoopback(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:8080", "https://example.com/", "ftp://127.0.0.1/"} {
		if _, err := otherTarget(&options{other: u}); err == nil {
			t.Errorf("-other %s accepted", u)
		}
	}
	tg, err := otherTarget(&options{other: "https://127.0.0.1:8443/app/", otherHost: "app.example:8443", otherName: "nginx"})
	if err != nil {
		t.Fatal(err)
	}
	if tg.addr != "127.0.0.1:8443" || tg.prefix != "/app" || tg.host != "app.example:8443" || tg.tls.ServerName != "app.example" {
		t.Errorf("target %+v", tg)
	}
	if got := tg.url("/small"); got != "https://127.0.0.1:8443/app/small" {
		t.Errorf("url %s", got)
	}
}

// TestBareRelay sends requests through the two sides of the bare relay to
// a backend and checks what comes back, and that nothing is left running.
func TestBareRelay(t *testing.T) {
	defer goleak.VerifyNone(t)
	backend := httptest.NewServer(backendHandler())
	defer backend.Close()
	site, err := listenBare("site")
	if err != nil {
		t.Fatal(err)
	}
	edge, err := listenBare("edge")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- relayBare(site, "site", backend.Listener.Addr().String()) }()
	go func() { errs <- relayBare(edge, "edge", site.Addr().String()) }()

	tr := &http.Transport{TLSClientConfig: tlsInsecure("bare.test")}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, c := range []struct{ path, want string }{
		{"/small", smallBody},
		{"/download?n=300000", string(bytes.Repeat(pattern, 2)[:300000])},
	} {
		resp, err := client.Get("https://" + edge.Addr().String() + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != c.want {
			t.Errorf("%s: %d bytes, error %v; want %d bytes", c.path, len(body), err, len(c.want))
		}
	}
	up := bytes.Repeat(pattern, 3)
	resp, err := client.Post("https://"+edge.Addr().String()+"/upload", "application/octet-stream", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %08x\n", len(up), patternCRC(int64(len(up)))); string(body) != want {
		t.Errorf("upload answered %q, want %q", body, want)
	}
	tr.CloseIdleConnections()
	edge.Close()
	site.Close()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
