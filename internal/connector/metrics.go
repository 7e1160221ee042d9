package connector

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// DefaultMetricsListen is where the connector serves /metrics, /healthz
// and /ready: loopback only, so nothing of the site is exposed.
const DefaultMetricsListen = "127.0.0.1:9465"

// metrics are the connector's Prometheus metrics (the reference system's
// performance counters). Each Connector has its own registry.
type metrics struct {
	reg        *prometheus.Registry
	tunnelsUp  prometheus.GaugeFunc
	inFlight   prometheus.Gauge
	requests   *prometheus.CounterVec
	backend    *prometheus.HistogramVec
	bytesIn    *prometheus.CounterVec
	bytesOut   *prometheus.CounterVec
	reconnects prometheus.Counter
	rawConns   *prometheus.CounterVec
	rawOpen    *prometheus.GaugeVec
}

func newMetrics(c *Connector) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.tunnelsUp = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sallyport_connector_tunnels_up", Help: "Tunnel connections to the cloud currently established.",
	}, func() float64 { return float64(c.TunnelsUp()) })
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sallyport_connector_streams_in_flight", Help: "Requests and upgraded connections being served.",
	})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sallyport_connector_requests_total", Help: "Requests served, by application and HTTP status code.",
	}, []string{"app", "code"})
	m.backend = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sallyport_connector_backend_duration_seconds", Help: "Time until the internal application's response headers, by application.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 85, 180},
	}, []string{"app"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sallyport_connector_received_bytes_total", Help: "Request body bytes (network applications: the connection's bytes) received from the cloud, by application.",
	}, []string{"app"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sallyport_connector_sent_bytes_total", Help: "Response body bytes (network applications: the connection's bytes) sent to the cloud, by application.",
	}, []string{"app"})
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sallyport_connector_reconnects_total", Help: "Tunnel connections that closed and were dialled again.",
	})
	m.rawConns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sallyport_connector_network_connections_total", Help: "Connections asked for to network applications' destinations, by application and result (ok, not_covered, unreachable, refused).",
	}, []string{"app", "result"})
	m.rawOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sallyport_connector_network_connections_open", Help: "Connections to network applications' destinations open now, by application.",
	}, []string{"app"})
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sallyport_connector_certificate_expiry_seconds", Help: "Seconds until the connector's certificate expires (negative once expired).",
	}, func() float64 { return time.Until(c.State().Leaf.NotAfter).Seconds() })
	m.reg.MustRegister(m.tunnelsUp, m.inFlight, m.requests, m.backend, m.bytesIn, m.bytesOut, m.reconnects, m.rawConns, m.rawOpen, expiry,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// appMetrics are one application's series, resolved once per configuration.
type appMetrics struct {
	m        *metrics
	name     string
	backend  prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	mu       sync.Mutex
	byCode   map[int]prometheus.Counter
}

func (m *metrics) forApp(name string) *appMetrics {
	return &appMetrics{m: m, name: name, backend: m.backend.WithLabelValues(name),
		bytesIn: m.bytesIn.WithLabelValues(name), bytesOut: m.bytesOut.WithLabelValues(name), byCode: map[int]prometheus.Counter{}}
}

func (a *appMetrics) served(code int) {
	a.mu.Lock()
	c := a.byCode[code]
	if c == nil {
		c = a.m.requests.WithLabelValues(a.name, strconv.Itoa(code))
		a.byCode[code] = c
	}
	a.mu.Unlock()
	c.Inc()
}

// instrument wraps a request's body and response writer to count bytes,
// the status and the time to the response headers; call done on the
// writer when the request is served.
func (a *appMetrics) instrument(w http.ResponseWriter, r *http.Request) *countingWriter {
	a.m.inFlight.Inc()
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, c: a.bytesIn}
	}
	return &countingWriter{ResponseWriter: w, app: a, start: time.Now(), ctx: r.Context()}
}

// statusClientClosed is the code counted for a request whose client went
// away (the cloud cancelled it) before any response was written: nginx's
// 499, so that it is neither a success nor the backend's failure.
const statusClientClosed = 499

// done records the request as served.
func (w *countingWriter) done() {
	w.app.m.inFlight.Dec()
	if w.code == 0 {
		w.code = http.StatusOK // what net/http sends for a handler that wrote nothing
		if w.ctx.Err() != nil {
			w.code = statusClientClosed
		}
	}
	w.app.served(w.code)
}

type countingBody struct {
	io.ReadCloser
	c prometheus.Counter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.Add(float64(n))
	return n, err
}

// countingWriter counts response bytes and records the status and the
// backend's time to headers. It keeps Flush working (ResponseController
// finds the underlying writer through Unwrap).
type countingWriter struct {
	http.ResponseWriter
	app   *appMetrics
	start time.Time
	code  int
	ctx   context.Context // the request's: cancelled when the cloud gave up on it
	// requestID is the cloud's id of the request, for the log of a
	// failure (the backend's request is stripped of the tunnel's
	// headers).
	requestID string
}

func (w *countingWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
		if code == http.StatusOK && w.Header().Get(tunnel.HeaderUpgrade) != "" {
			// An upgrade on stream 0 is answered 200 with this header: it
			// counts as the 101 it is (as on a relay stream).
			w.code = http.StatusSwitchingProtocols
		}
		w.app.backend.Observe(time.Since(w.start).Seconds())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.app.bytesOut.Add(float64(n))
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) Flush() {
	http.NewResponseController(w.ResponseWriter).Flush()
}

// serveMetrics serves /metrics, /healthz and /ready on addr until ctx is
// done. /ready answers 200 only while at least one tunnel is up.
func (c *Connector) serveMetrics(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if n := c.TunnelsUp(); n > 0 {
			io.WriteString(w, "ready: "+strconv.Itoa(n)+" tunnel(s) up\n")
			return
		}
		http.Error(w, "not ready: no tunnel to the cloud is up", http.StatusServiceUnavailable)
	})
	// A goroutine dump for diagnostics bundles (loopback only, like the rest).
	mux.HandleFunc("GET /debug/goroutines", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		pprof.Lookup("goroutine").WriteTo(w, 2)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		c.log.Warn("the metrics listener stopped", "error", err.Error())
	}
}

// listenMetrics opens the metrics listener.
func listenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, problem.Newf(400, "metrics_listen",
			"choose another address with --metrics-listen, or turn it off with --metrics-listen ''",
			"The connector cannot serve its metrics on %s (%v)", addr, errors.Unwrap(err))
	}
	return ln, nil
}
