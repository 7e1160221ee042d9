package cloud

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sallyport/sallyport/internal/problem"
)

// metrics are the cloud's Prometheus metrics.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	rtt      prometheus.Histogram
	signins  *prometheus.CounterVec
	// domainOf names a tenant by its domain (the label of every series).
	domainOf func(tenantID string) string

	mu     sync.Mutex
	series map[seriesKey]*edgeSeries

	netm netMetrics // private access, registered on first use (netmetrics.go)
}

type seriesKey struct{ tenant, app string }

type edgeSeries struct {
	latency prometheus.Observer
	byCode  map[int]prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), series: map[seriesKey]*edgeSeries{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sallyport_cloud_requests_total", Help: "Edge requests to applications, by tenant, application and HTTP status code.",
	}, []string{"tenant", "app", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sallyport_cloud_edge_duration_seconds", Help: "Time from an edge request to its response headers, by tenant and application.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 85, 180},
	}, []string{"tenant", "app"})
	m.rtt = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "sallyport_cloud_tunnel_rtt_seconds", Help: "Round-trip time of heartbeat PINGs on connector tunnels.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	m.domainOf = func(id string) string {
		if t := s.routes.Load(); t != nil {
			if ten, ok := t.tenants[id]; ok {
				return ten.Domain
			}
		}
		return id
	}
	m.signins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sallyport_cloud_signins_total", Help: "Sign-ins, sign-outs and their failures, by tenant, method and result.",
	}, []string{"tenant", "method", "result"})
	hs := func(f func(*handshakeListener) float64) func() float64 {
		return func() float64 {
			if l := s.handshakes.Load(); l != nil {
				return f(l)
			}
			return 0
		}
	}
	handshakes := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sallyport_cloud_tls_handshakes_in_progress",
			Help: "TLS handshakes in progress on the cloud's port (at most --max-handshakes)."},
			hs(func(l *handshakeListener) float64 { return float64(l.inProgress.Load()) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sallyport_cloud_tls_handshakes_refused_total",
			Help: "Connections closed before their TLS handshake: no handshake slot free within 250 ms, or their address held its share (--max-handshakes)."},
			hs(func(l *handshakeListener) float64 { return float64(l.refused.Load()) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sallyport_cloud_tls_handshakes_failed_total",
			Help: "TLS handshakes on the cloud's port that failed or passed their 10 s deadline."},
			hs(func(l *handshakeListener) float64 { return float64(l.failed.Load()) })),
	}
	m.reg.MustRegister(handshakes...)
	m.reg.MustRegister(m.requests, m.latency, m.rtt, m.signins, &connectorCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.net()
	return m
}

// signin counts a sign-in (method password, password+totp, recovery-code,
// oidc, device, signout) and its result (ok, failed).
func (m *metrics) signin(tenantID, method, result string) {
	m.signins.WithLabelValues(m.domainOf(tenantID), method, result).Inc()
}

// observe records one edge request.
func (m *metrics) observe(tenant, app string, code int, d time.Duration) {
	key := seriesKey{tenant, app}
	m.mu.Lock()
	es := m.series[key]
	if es == nil {
		es = &edgeSeries{latency: m.latency.WithLabelValues(tenant, app), byCode: map[int]prometheus.Counter{}}
		m.series[key] = es
	}
	c := es.byCode[code]
	if c == nil {
		c = m.requests.WithLabelValues(tenant, app, strconv.Itoa(code))
		es.byCode[code] = c
	}
	m.mu.Unlock()
	es.latency.Observe(d.Seconds())
	c.Inc()
}

// connectorCollector counts connectors by status when scraped.
type connectorCollector struct{ s *Server }

var connectorsDesc = prometheus.NewDesc("sallyport_cloud_connectors", "Registered connectors, by status (active or inactive).", []string{"status"}, nil)

func (c *connectorCollector) Describe(ch chan<- *prometheus.Desc) { ch <- connectorsDesc }

func (c *connectorCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := map[string]int{"active": 0, "inactive": 0}
	tenants, err := c.s.store.ListTenants(ctx)
	if err != nil {
		return
	}
	for _, t := range tenants {
		cs, err := c.s.store.ListConnectors(ctx, t.ID)
		if err != nil {
			return
		}
		for _, x := range cs {
			counts[c.s.connectorStatus(x)]++
		}
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(connectorsDesc, prometheus.GaugeValue, float64(n), st)
	}
}

// serveMetrics serves /metrics, /healthz and /ready on ln until ctx is done.
func (s *Server) serveMetrics(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.store.ListTenants(r.Context()); err != nil {
			http.Error(w, "not ready: the store does not answer", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("the metrics listener stopped", "error", err.Error())
	}
}

// listenMetrics opens the configured metrics listener.
func (s *Server) listenMetrics() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.MetricsListen)
	if err != nil {
		return nil, problem.Newf(400, "metrics_listen", "choose another address with --metrics-listen",
			"The cloud cannot serve its metrics on %s (%v)", s.cfg.MetricsListen, errors.Unwrap(err))
	}
	return ln, nil
}
