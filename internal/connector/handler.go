package connector

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
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
}

type appTable struct {
	cfg  tunnel.Config
	byID map[string]*app
}

type app struct {
	cfg    tunnel.AppConfig
	target *url.URL
	proxy  *httputil.ReverseProxy
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
		// field count is checked by the proxy's ModifyResponse.
		MaxResponseHeaderBytes: respLimits.WireBytes(),
	}
	h.apps.Store(&appTable{byID: map[string]*app{}})
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
	// Kept for the log of a failure (the proxy path's error handler gets
	// a request stripped of the tunnel headers).
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
	a.proxy.ServeHTTP(cw, r)
}

// requestID is the request id of a request the proxy failed to serve.
func requestID(w http.ResponseWriter) string {
	if cw, ok := w.(*countingWriter); ok {
		return cw.requestID
	}
	return ""
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
		})
	case r.Method == http.MethodPut && r.URL.Path == tunnel.PathConfig:
		var cfg tunnel.Config
		if err := json.NewDecoder(io.LimitReader(r.Body, tunnel.MaxControlBody)).Decode(&cfg); err != nil {
			http.Error(w, "bad configuration", http.StatusBadRequest)
			return
		}
		if err := h.setConfig(cfg); err != nil {
			h.c.events.Error(1301, "The connector refused a configuration from the cloud: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && r.URL.Path == tunnel.PathRefuse:
		var eb tunnel.ErrorBody
		json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&eb)
		p := &problem.Problem{Status: 401, Code: eb.Error.Code, Message: eb.Error.Message, Step: eb.Error.Step, Err: errRefused}
		if p.Code == "trust_expired" {
			h.c.events.Error(1000, statedir.ExpiredMessage)
		}
		h.c.events.Error(1102, "The cloud refused this connector: "+p.Error(), "code", p.Code)
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
	t := &appTable{cfg: cfg, byID: make(map[string]*app, len(cfg.Apps))}
	for _, ac := range cfg.Apps {
		u, err := url.Parse(ac.InternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("application %s has an unusable internal URL", ac.Name)
		}
		rt, err := h.transportFor(ac.BackendProxy)
		if err != nil {
			return fmt.Errorf("application %s has an unusable backend proxy", ac.Name)
		}
		a := &app{cfg: ac, target: u, met: h.c.metrics.forApp(ac.Name), rt: rt}
		a.proxy = h.newProxy(a)
		t.byID[ac.ID] = a
	}
	h.apps.Store(t)
	h.c.noteGroup(cfg.Group)
	h.c.events.Info(1300, fmt.Sprintf("The connector received its configuration: group '%s', %d application(s)", cfg.Group, len(cfg.Apps)),
		"group", cfg.Group, "version", cfg.Version)
	return nil
}

// ConfigVersion returns the version of the configuration held.
func (c *Connector) ConfigVersion() string { return c.handler.apps.Load().cfg.Version }

// bufPool holds the proxies' body copy buffers: one tunnel frame (64 KiB)
// each, so that a download reads the backend and fills the tunnel in
// frame-sized pieces (a third fewer system calls per MB than with 32 KiB,
// bench/RESULTS.md). Each response in flight holds one.
var bufPool = &bytePool{p: sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}}

type bytePool struct{ p sync.Pool }

func (b *bytePool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bytePool) Put(x []byte) { b.p.Put(&x) }

func (h *handler) newProxy(a *app) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(a.target)
			copyForwarded(pr.Out.Header, pr.In.Header)
			stripTunnelHeaders(pr.Out.Header)
		},
		Transport:     a.rt,
		FlushInterval: 0, // streams (unknown length, server-sent events) are flushed at once; see the edge
		ModifyResponse: func(resp *http.Response) error {
			stripTunnelHeaders(resp.Header) // a backend cannot speak for the connector
			return tunnel.CheckResponseHeader(resp.Header, respLimits)
		},
		BufferPool: bufPool,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the cloud gave up on this request; nobody reads an answer
			}
			p := h.backendProblem(a, err)
			h.logBackendFailure(a, requestID(w), p)
			writeError(w, p)
		},
	}
}

// logBackendFailure records a failed backend request (at most one event
// per application per second; the next says how many were suppressed).
func (h *handler) logBackendFailure(a *app, requestID string, p *problem.Problem) {
	if n, ok := h.backendLogs.Allow(a.cfg.ID); ok {
		h.c.events.Warning(1400, p.Error(), "app", a.cfg.Name, "request_id", requestID, "code", p.Code, "suppressed", fmt.Sprint(n))
	}
}

func copyForwarded(out, in http.Header) {
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v := in.Values(k); len(v) > 0 {
			out[k] = v
		}
	}
}

// stripTunnelHeaders removes the protocol's headers, in any case and with
// '_' for '-' (a backend behind CGI or WSGI reads 'Sallyport_App' as
// 'Sallyport-App').
func stripTunnelHeaders(h http.Header) { tunnel.StripProtocolHeaders(h) }

// serveUpgrade carries an upgraded connection (WebSocket) to the backend.
func (h *handler) serveUpgrade(w *countingWriter, r *http.Request, a *app, proto string) {
	out := r.Clone(r.Context())
	out.URL = a.target.JoinPath(r.URL.Path)
	out.URL.RawQuery = r.URL.RawQuery
	out.Host = ""
	out.RequestURI = ""
	out.Body = http.NoBody
	out.ContentLength = 0
	stripTunnelHeaders(out.Header)
	tunnel.PrepareUpgrade(out.Header, proto)
	resp, err := a.rt.RoundTrip(out)
	if err == nil {
		if err = tunnel.CheckResponseHeader(resp.Header, respLimits); err != nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		if r.Context().Err() == nil {
			h.backendFailed(w, a, err)
		}
		return
	}
	stripTunnelHeaders(resp.Header) // a backend cannot speak for the connector
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		return
	}
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		writeError(w, problem.New(502, "backend_upgrade", "The internal application switched protocols but the connection cannot be carried", "report this to the Sallyport developers"))
		return
	}
	tunnel.ServeUpgrade(w, r, resp.Header, backend, proto)
}

// backendProblem explains why the internal application could not be reached.
func (h *handler) backendProblem(a *app, err error) *problem.Problem {
	host := a.target.Hostname()
	hostport := a.target.Host
	where := fmt.Sprintf("connector %s", h.c.cfg.Hostname)
	var dnsErr *net.DNSError
	switch {
	case tunnel.IsHeadersTooLarge(err):
		return problem.Newf(http.StatusBadGateway, "backend_headers_too_large",
			fmt.Sprintf("make application '%s' send smaller response headers (at most %d KiB of names and values, %d fields; large or many cookies are the usual cause)", a.cfg.Name, respLimits.MaxHeaderBytes>>10, respLimits.MaxHeaderCount),
			"The internal application '%s' at %s answered with response headers larger than the connector accepts, on %s", a.cfg.Name, a.cfg.InternalURL, where).Wrap(err)
	case errors.As(err, &dnsErr):
		return problem.Newf(http.StatusBadGateway, "backend_dns",
			fmt.Sprintf("check the internal URL of application '%s' and that the connector's machine resolves %s (DNS server or hosts file)", a.cfg.Name, host),
			"The internal host '%s' of application '%s' does not resolve on %s (%s)", host, a.cfg.Name, where, dnsErr.Err).Wrap(err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return problem.Newf(http.StatusBadGateway, "backend_refused",
			fmt.Sprintf("check that the application is running and listening on %s, and that no firewall blocks the connector's machine", hostport),
			"The internal application '%s' at %s refused the connection from %s", a.cfg.Name, a.cfg.InternalURL, where).Wrap(err)
	case isTimeout(err):
		return problem.Newf(http.StatusBadGateway, "backend_unreachable",
			fmt.Sprintf("check the network path from the connector's machine to %s (routing, firewall)", hostport),
			"The internal application '%s' at %s did not accept a connection from %s in time", a.cfg.Name, a.cfg.InternalURL, where).Wrap(err)
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
		step := fmt.Sprintf("check the TLS certificate of %s, or publish the application with an http:// internal URL", hostport)
		var nameErr x509.HostnameError
		switch {
		case errors.As(err, &nameErr):
			step = fmt.Sprintf("the certificate of %s does not name %s: publish the application with an internal URL whose host the certificate names, or reissue the certificate for %s", hostport, host, host)
		case errors.As(err, new(x509.UnknownAuthorityError)):
			step = fmt.Sprintf("the connector's machine does not trust the issuer of %s's certificate: add the CA that signed it to the machine's trust store (Debian: copy it to /usr/local/share/ca-certificates/ and run update-ca-certificates; or set SSL_CERT_FILE for the connector service), then restart the connector", hostport)
		}
		return problem.Newf(http.StatusBadGateway, "backend_tls", step,
			"The TLS handshake with the internal application '%s' at %s failed on %s (%v)", a.cfg.Name, a.cfg.InternalURL, where, err).Wrap(err)
	}
	return problem.Newf(http.StatusBadGateway, "backend_failed",
		fmt.Sprintf("check that the application at %s works when loaded from the connector's machine", a.cfg.InternalURL),
		"The request to the internal application '%s' at %s failed on %s (%v)", a.cfg.Name, a.cfg.InternalURL, where, err).Wrap(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// writeError answers with a response the connector made itself.
func writeError(w http.ResponseWriter, p *problem.Problem) {
	var eb tunnel.ErrorBody
	eb.Error.Code, eb.Error.Message, eb.Error.Step = p.Code, p.Message, p.Step
	w.Header().Set(tunnel.HeaderError, p.Code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(eb)
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
