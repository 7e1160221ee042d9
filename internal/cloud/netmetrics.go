package cloud

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of private access per network application (docs/cli.md,
// "Metrics"): streams by result, streams open, and bytes by direction.
// The labels are bounded: tenant is a tenant's domain and app one of its
// applications' names, both "" when a refusal came before they were known
// (a client not signed in, an application name that does not exist);
// result is ok or one of the access exchange's refusal codes.
type netMetrics struct {
	once    sync.Once
	streams *prometheus.CounterVec
	open    *prometheus.GaugeVec
	bytes   *prometheus.CounterVec
}

// net is the private access metrics, registered on first use.
func (m *metrics) net() *netMetrics {
	n := &m.netm
	n.once.Do(func() {
		n.streams = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_cloud_network_streams_total",
			Help: "Private access streams, by tenant, network application, type (tcp, udp) and result (ok, or the refusal's code).",
		}, []string{"tenant", "app", "type", "result"})
		n.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sallyport_cloud_network_streams_open",
			Help: "Private access streams open now, by tenant and network application.",
		}, []string{"tenant", "app"})
		n.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_cloud_network_bytes_total",
			Help: "Bytes of private access streams that ended, by tenant, network application and direction (in: from the client to the destination; out: back).",
		}, []string{"tenant", "app", "direction"})
		m.reg.MustRegister(n.streams, n.open, n.bytes)
	})
	return n
}

// netRefused counts a refused stream.
func (m *metrics) netRefused(st *accessStream, network, code string) {
	tenant, app := "", ""
	if st != nil {
		tenant = st.tenant
		if st.app != nil {
			app = st.app.Name
		}
	}
	m.net().streams.WithLabelValues(tenant, app, network, code).Inc()
}

// netOpened counts an opened stream as open until the returned function
// is called with the bytes it carried each way.
func (m *metrics) netOpened(st *accessStream, network string) (ended func(in, out int64)) {
	n := m.net()
	n.streams.WithLabelValues(st.tenant, st.app.Name, network, "ok").Inc()
	open := n.open.WithLabelValues(st.tenant, st.app.Name)
	open.Inc()
	return func(in, out int64) {
		open.Dec()
		n.bytes.WithLabelValues(st.tenant, st.app.Name, "in").Add(float64(in))
		n.bytes.WithLabelValues(st.tenant, st.app.Name, "out").Add(float64(out))
	}
}
