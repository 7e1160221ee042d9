package connector

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestMetricsAfterTraffic serves requests through a tunnel and checks the
// counts, the names (promlint) and the loopback-only health endpoints.
func TestMetricsAfterTraffic(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "0123456789")
	}))
	defer backend.Close()
	cloud := newFakeCloud(t)
	cloud.start(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	c, err := New(Config{Dir: dir, Connections: 1, MetricsListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	defer func() { cancel(); <-errc }()
	tc := nextTunnel(t, cloud)
	cfg := tunnel.Config{Version: "v1", Apps: []tunnel.AppConfig{{ID: "a_web", Name: "web", InternalURL: backend.URL}}}
	js, _ := json.Marshal(cfg)
	do(t, tc, "PUT", tunnel.PathConfig, nil, js)
	for i := 0; i < 3; i++ {
		do(t, tc, "POST", "/x", http.Header{tunnel.HeaderApp: {"a_web"}}, []byte("hello"))
	}
	do(t, tc, "GET", "/missing", http.Header{tunnel.HeaderApp: {"a_web"}}, nil)

	if got := testutil.ToFloat64(c.metrics.requests.WithLabelValues("web", "200")); got != 3 {
		t.Errorf("requests{web,200} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(c.metrics.requests.WithLabelValues("web", "404")); got != 1 {
		t.Errorf("requests{web,404} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(c.metrics.bytesIn.WithLabelValues("web")); got != 15 {
		t.Errorf("received bytes = %v, want 15", got)
	}
	if got := testutil.ToFloat64(c.metrics.bytesOut.WithLabelValues("web")); got < 30 {
		t.Errorf("sent bytes = %v, want at least 30", got)
	}
	if got := testutil.ToFloat64(c.metrics.inFlight); got != 0 {
		t.Errorf("in flight = %v after the requests, want 0", got)
	}
	if n := testutil.CollectAndCount(c.metrics.backend); n != 1 {
		t.Errorf("backend histogram series = %d, want 1", n)
	}
	mfs, err := c.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "sallyport_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestHealthEndpoints(t *testing.T) {
	if host, _, _ := net.SplitHostPort(DefaultMetricsListen); !net.ParseIP(host).IsLoopback() {
		t.Fatalf("the default metrics address %s is not loopback", DefaultMetricsListen)
	}
	cloud := newFakeCloud(t)
	dir := t.TempDir()
	writeTestState(t, dir, cloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	c, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.serveMetrics(ctx, ln) }()
	defer func() { cancel(); <-done }()
	get := func(path string) int {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("/healthz"); got != 200 {
		t.Errorf("/healthz = %d", got)
	}
	if got := get("/ready"); got != 503 {
		t.Errorf("/ready with no tunnel = %d, want 503", got)
	}
	sl := &slot{}
	c.slotUp(sl, 1)
	if got := get("/ready"); got != 200 {
		t.Errorf("/ready with a tunnel = %d, want 200", got)
	}
	c.slotUp(sl, -1)
	if got := get("/metrics"); got != 200 {
		t.Errorf("/metrics = %d", got)
	}
}

// TestCountingWriterCodes checks the status code each way of ending a
// request is counted under.
func TestCountingWriterCodes(t *testing.T) {
	for _, c := range []struct {
		name   string
		write  func(w http.ResponseWriter)
		cancel bool
		want   string
	}{
		{"handler wrote nothing", nil, false, "200"},
		{"client gone before any answer", nil, true, "499"},
		{"answered, then the client went away", func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }, true, "503"},
		{"body without a status", func(w http.ResponseWriter) { w.Write([]byte("x")) }, false, "200"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMetrics(&Connector{}) // its gauges are not read here
			a := m.forApp("web")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
			w := a.instrument(httptest.NewRecorder(), r)
			if c.write != nil {
				c.write(w)
			}
			if c.cancel {
				cancel()
			}
			w.done()
			if got := testutil.ToFloat64(m.requests.WithLabelValues("web", c.want)); got != 1 {
				t.Errorf("requests{web,%s} = %v, want 1", c.want, got)
			}
			if n := testutil.CollectAndCount(m.requests); n != 1 {
				t.Errorf("%d series of requests, want 1", n)
			}
		})
	}
}
