package connector

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/segment"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/tunnel"
	"github.com/sallyport/sallyport/internal/version"
)

// respLimits bound the response heads the connector reads from backends
// (64 KiB of names and values, 256 fields): beyond them the user gets
// 502 backend_headers_too_large and event 1400 is logged.
var respLimits = tunnel.DefaultResponseLimits

// handler serves the cloud's streams: control messages and proxied requests.
type handler struct {
	c         *Connector
	transport *http.Transport
	apps      atomic.Pointer[appTable]
	proxied   map[string]*http.Transport // by backend proxy URL; guarded by mu
	mu        sync.Mutex                 // serialises config updates

	backendLogs eventlog.Throttle // at most one backend failure event per app per second
	rawLogs     eventlog.Throttle // at most one refused destination and one dial failure event per app per second
}

type appTable struct {
	cfg  tunnel.Config
	byID map[string]*app // web applications: served over HTTP
	// netByID are the network applications (tcp, udp): never served over
	// HTTP, reached only through raw streams, to their segments.
	netByID map[string]*netApp
}

// netApp is a network application the connector serves: the only
// destinations it dials for it are those its segments cover.
type netApp struct {
	cfg      tunnel.AppConfig
	segments segment.Set
	met      *appMetrics
}

type app struct {
	cfg    tunnel.AppConfig
	target *url.URL
	met    *appMetrics
	rt     *http.Transport // direct, or through the application's backend proxy
}

func newHandler(c *Connector) *handler {
	h := &handler{c: c}
	h.transport = &http.Transport{
		Proxy:                 nil, // backend forward proxies are per application (later)
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		// The head of a backend's response is bounded (issue 14); the
		// field count is checked by serveProxied and serveUpgrade.
		MaxResponseHeaderBytes: respLimits.WireBytes(),
	}
	h.apps.Store(&appTable{byID: map[string]*app{}, netByID: map[string]*netApp{}})
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(tunnel.HeaderApp)
	if id == "" {
		h.serveControl(w, r)
		return
	}
	a := h.apps.Load().byID[id]
	if a == nil {
		writeError(w, problem.Newf(http.StatusMisdirectedRequest, "app_not_configured",
			"retry; the cloud sends the connector its configuration again",
			"The connector has no application with id %s in its configuration", id))
		return
	}
	cw := a.met.instrument(w, r)
	defer cw.done()
	// Kept for the log of a failure (the backend's request is stripped
	// of the tunnel headers).
	cw.requestID = r.Header.Get(tunnel.HeaderRequestID)
	if proto := tunnel.UpgradeRequested(r); proto != "" {
		if tunnel.RelayStateOf(r.Context()) != nil && a.cfg.BackendProxy == "" {
			h.serveDirectUpgrade(cw, r, a, proto)
		} else {
			h.serveUpgrade(cw, r, a, proto)
		}
		return
	}
	if rs := tunnel.RelayStateOf(r.Context()); rs != nil && a.cfg.BackendProxy == "" {
		h.serveDirect(cw, r, a, rs)
		return
	}
	h.serveProxied(cw, r, a)
}

func (h *handler) serveControl(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == tunnel.PathHello:
		writeJSON(w, tunnel.Hello{
			ConnectorID:   h.c.State().Trust.ConnectorID,
			TenantID:      h.c.State().Trust.TenantID,
			Version:       version.Version,
			Hostname:      h.c.cfg.Hostname,
			OS:            runtime.GOOS,
			Arch:          runtime.GOARCH,
			ConfigVersion: h.apps.Load().cfg.Version,
			RelayWindow:   true,
			NetworkApps:   true,
		})
	case r.Method == http.MethodPut && r.URL.Path == tunnel.PathConfig:
		var cfg tunnel.Config
		if err := json.NewDecoder(io.LimitReader(r.Body, tunnel.MaxControlBody)).Decode(&cfg); err != nil {
			http.Error(w, "bad configuration", http.StatusBadRequest)
			return
		}
		if err := h.setConfig(cfg); err != nil {
			h.c.events.Event(eventlog.ConfigRefused, "The connector refused a configuration from the cloud: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case (r.Method == http.MethodPut || r.Method == http.MethodGet) && r.URL.Path == tunnel.PathInstances:
		h.serveInstances(w, r)
	case r.Method == http.MethodPost && r.URL.Path == tunnel.PathRefuse:
		var eb tunnel.ErrorBody
		json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&eb)
		p := &problem.Problem{Status: 401, Code: eb.Error.Code, Message: eb.Error.Message, Step: eb.Error.Step, Err: errRefused}
		if p.Code == "trust_expired" {
			h.c.events.Event(eventlog.TrustExpired, statedir.ExpiredMessage)
		}
		h.c.events.Event(eventlog.CertRefused, "The cloud refused this connector: "+p.Error(), "code", p.Code)
		w.WriteHeader(http.StatusNoContent)
		if permanentRefusal[p.Code] {
			h.c.refuse(p) // takes effect when the cloud closes this connection
		}
	default:
		http.NotFound(w, r)
	}
}

// permanentRefusal lists the refusals that no retry can cure: the
// connector stops until it is registered again. Others (a clock skew, say)
// are retried with backoff.
var permanentRefusal = map[string]bool{
	"trust_expired": true, "connector_revoked": true, "connector_deleted": true, "connector_unknown": true,
}

// setConfig replaces the application table.
func (h *handler) setConfig(cfg tunnel.Config) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cfg.Version == h.apps.Load().cfg.Version {
		return nil
	}
	t := &appTable{cfg: cfg, byID: make(map[string]*app, len(cfg.Apps)), netByID: map[string]*netApp{}}
	for _, ac := range cfg.Apps {
		switch ac.Type {
		case "", "http":
		case "tcp", "udp":
			set, err := segment.ParseSet(ac.Segments)
			if err != nil {
				return fmt.Errorf("application %s has unusable internal addresses: %v", ac.Name, err)
			}
			if len(set) == 0 {
				return fmt.Errorf("application %s has no internal address", ac.Name)
			}
			t.netByID[ac.ID] = &netApp{cfg: ac, segments: set, met: h.c.metrics.forApp(ac.Name)}
			continue
		default:
			return fmt.Errorf("application %s has the unknown type %q", ac.Name, ac.Type)
		}
		u, err := url.Parse(ac.InternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("application %s has an unusable internal URL", ac.Name)
		}
		rt, err := h.transportFor(ac.BackendProxy)
		if err != nil {
			return fmt.Errorf("application %s has an unusable backend proxy", ac.Name)
		}
		t.byID[ac.ID] = &app{cfg: ac, target: u, met: h.c.metrics.forApp(ac.Name), rt: rt}
	}
	h.apps.Store(t)
	h.c.noteGroup(cfg.Group)
	h.c.events.Event(eventlog.ConfigReceived, fmt.Sprintf("The connector received its configuration: group '%s', %d application(s)", cfg.Group, len(cfg.Apps)),
		"group", cfg.Group, "version", cfg.Version)
	return nil
}

// networkApp returns the network application id of the configuration
// held (tcp or udp) and its segments.
func (h *handler) networkApp(id string) (tunnel.AppConfig, segment.Set, bool) {
	a := h.apps.Load().netByID[id]
	if a == nil {
		return tunnel.AppConfig{}, nil, false
	}
	return a.cfg, a.segments, true
}

// ConfigVersion returns the version of the configuration held.
func (c *Connector) ConfigVersion() string { return c.handler.apps.Load().cfg.Version }

// bufPool holds the body copy buffers: one tunnel frame (64 KiB)
// each, so that a download reads the backend and fills the tunnel in
// frame-sized pieces (a third fewer system calls per MB than with 32 KiB,
// bench/RESULTS.md). Each response in flight holds one.
var bufPool = &bytePool{p: sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}}

type bytePool struct{ p sync.Pool }

func (b *bytePool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bytePool) Put(x []byte) { b.p.Put(&x) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// transportFor returns the backend transport for a forward proxy URL ("":
// direct). Transports are shared so their connection pools are reused;
// callers hold h.mu.
func (h *handler) transportFor(proxy string) (*http.Transport, error) {
	if proxy == "" {
		return h.transport, nil
	}
	if t := h.proxied[proxy]; t != nil {
		return t, nil
	}
	u, err := url.Parse(proxy)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bad backend proxy %q", proxy)
	}
	t := h.transport.Clone()
	t.Proxy = http.ProxyURL(u)
	if h.proxied == nil {
		h.proxied = map[string]*http.Transport{}
	}
	h.proxied[proxy] = t
	return t, nil
}
