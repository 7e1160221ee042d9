package connector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/segment"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Private access at the connector (docs/protocol.md §15.5,
// docs/private-access.md): the cloud asks for a destination of a network
// application; the connector dials it only if the application's segments
// cover it — the name as asked, or else every address it actually dials.

// rawHandler is the handler a version 2 tunnel serves: HTTP with h, raw
// streams with d.
type rawHandler struct {
	http.Handler
	d *handler
}

func (r rawHandler) DialRaw(ctx context.Context, req tunnel.RawRequest) (net.Conn, error) {
	return r.d.DialRaw(ctx, req)
}

// errNotCovered is the dialer's refusal of an address outside the segments.
var errNotCovered = errors.New("the address is outside the application's internal addresses")

// DialRaw checks a raw stream's destination against its application and
// dials it (tunnel.RawDialer).
func (h *handler) DialRaw(ctx context.Context, req tunnel.RawRequest) (net.Conn, error) {
	t := h.apps.Load()
	a := t.netByID[req.App]
	if a == nil || a.cfg.Type != req.Network {
		return nil, h.rawRefused(a, req, notNetworkApp(a, t.byID[req.App], req))
	}
	host := strings.ToLower(strings.TrimSuffix(req.Host, "."))
	ip, err := netip.ParseAddr(host)
	isIP := err == nil
	byName := !isIP && a.segments.CoversName(host, req.Port)
	if (isIP && !a.segments.CoversAddr(netip.AddrPortFrom(ip, req.Port))) || (!isIP && !byName && !hasAddrs(a.segments)) {
		// An address no IP or prefix segment covers, or a name no name
		// segment covers where no address could be covered either.
		return nil, h.rawRefused(a, req, outside(a, req))
	}
	d := net.Dialer{}
	if !byName {
		// Every address dialled must be covered: the check is made on the
		// socket's address, after resolution, so a DNS answer cannot lead
		// the connection out of the segments.
		segs := a.segments
		d.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !segs.CoversAddr(ap) {
				return errNotCovered
			}
			return nil
		}
	}
	conn, err := d.DialContext(ctx, req.Network, net.JoinHostPort(host, fmt.Sprint(req.Port)))
	if err != nil {
		if errors.Is(err, errNotCovered) {
			return nil, h.rawRefused(a, req, &tunnel.RawError{Code: tunnel.RawNotCovered, Message: fmt.Sprintf(
				"%s resolves to an address outside the internal addresses of application '%s' at the connector; ask an administrator to add it.", req.Dest, a.cfg.Name)})
		}
		re := tunnel.DialError(req.Dest, err)
		a.met.rawResult(re.Code)
		if n, ok := h.rawLogs.Allow("dial " + a.cfg.ID); ok {
			h.c.events.Event(eventlog.RawDialFailed, re.Message, "app", a.cfg.Name, "dest", req.Dest, "user", req.User,
				"code", re.Code, "suppressed", fmt.Sprint(n))
		}
		return nil, re
	}
	a.met.rawResult("ok")
	return a.met.countRaw(conn), nil
}

// hasAddrs reports whether set has an IP or prefix segment.
func hasAddrs(set segment.Set) bool {
	for _, seg := range set {
		if seg.Kind == segment.Addr || seg.Kind == segment.Prefix {
			return true
		}
	}
	return false
}

// notNetworkApp explains why the application req names cannot carry it:
// a network application of the other type (a), a web application (web),
// or none of the configuration.
func notNetworkApp(a *netApp, web *app, req tunnel.RawRequest) *tunnel.RawError {
	msg := fmt.Sprintf("The connector has no network application %s in its configuration; retry once the cloud sent it again.", req.App)
	switch {
	case a != nil:
		msg = fmt.Sprintf("Application '%s' is a %s application, not a %s one: the connector does not connect to %s for it.", a.cfg.Name, a.cfg.Type, req.Network, req.Dest)
	case web != nil:
		msg = fmt.Sprintf("Application '%s' is a web application: the connector does not connect to %s for it.", web.cfg.Name, req.Dest)
	}
	return &tunnel.RawError{Code: tunnel.RawNotCovered, Message: msg}
}

// outside is the refusal of a destination no segment covers.
func outside(a *netApp, req tunnel.RawRequest) *tunnel.RawError {
	return &tunnel.RawError{Code: tunnel.RawNotCovered, Message: fmt.Sprintf(
		"%s is outside the internal addresses of application '%s' at the connector; ask an administrator to add it.", req.Dest, a.cfg.Name)}
}

// rawRefused counts and logs a refused destination (event 1500, at most
// one per application per second) and returns re.
func (h *handler) rawRefused(a *netApp, req tunnel.RawRequest, re *tunnel.RawError) *tunnel.RawError {
	name, key := req.App, req.App
	if a != nil {
		name, key = a.cfg.Name, a.cfg.ID
		a.met.rawResult(re.Code)
	}
	if n, ok := h.rawLogs.Allow("refused " + key); ok {
		h.c.events.Event(eventlog.RawRefused, re.Message, "app", name, "dest", req.Dest, "user", req.User,
			"network", req.Network, "suppressed", fmt.Sprint(n))
	}
	return re
}

// rawResult counts a raw stream by its outcome ("ok" or a refusal code).
func (a *appMetrics) rawResult(result string) {
	a.m.rawConns.WithLabelValues(a.name, result).Inc()
}

// countRaw counts a raw connection's bytes (received from the cloud:
// written to the destination; sent to the cloud: read from it) and its
// time open.
func (a *appMetrics) countRaw(c net.Conn) net.Conn {
	g := a.m.rawOpen.WithLabelValues(a.name)
	g.Inc()
	return &rawCounted{Conn: c, in: a.bytesIn, out: a.bytesOut, open: g}
}

type rawCounted struct {
	net.Conn
	in, out prometheus.Counter
	open    prometheus.Gauge
	once    sync.Once
}

// Close closes the connection; the first call counts it out.
func (c *rawCounted) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.open.Dec)
	return err
}

func (c *rawCounted) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.out.Add(float64(n))
	}
	return n, err
}

func (c *rawCounted) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.in.Add(float64(n))
	}
	return n, err
}

// CloseWrite ends the destination's input (tcp).
func (c *rawCounted) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
