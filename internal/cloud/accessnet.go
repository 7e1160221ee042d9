package cloud

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sallyport/sallyport/internal/accesslog"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/segment"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Private access (docs/private-access.md, docs/protocol.md "Private
// access"): `sallyport access tcp|stdio|socks` opens one TLS connection
// with the ALPN sallyport-access/1 to the cloud's one port per stream. The
// cloud reads one request line, checks the network sign-in's token, finds
// the tenant's network application (by name, or the one whose segments
// cover the destination), checks the user's assignment and the segments,
// opens a raw stream on a live connector of the application's group, and
// relays the bytes, half-close included.

// networkAppsName is the "application" of a network sign-in: its tokens
// are for every network application of the tenant the user is assigned
// to (a session with no application id).
const networkAppsName = "network"

// Limits of private access (docs/private-access.md, "Transport").
const (
	// accessRate and accessBurst: streams a user may open per second.
	accessRate  = 20
	accessBurst = 40
	// Streams open at once, per user and per tenant.
	accessUserStreams   = 256
	accessTenantStreams = 4096
	// accessRequestWait: the request line must arrive within this.
	accessRequestWait = 10 * time.Second
	// accessOpenWait: the connector must open the stream within this.
	accessOpenWait = 30 * time.Second
	// Idle timeouts: a stream with no byte either way for this long ends.
	accessIdleTCP = time.Hour
	accessIdleUDP = 2 * time.Minute
	// accessRefusalEvery: one refusal event per user and code at most this often.
	accessRefusalEvery = time.Minute
	maxAccessLimiters  = 100000
)

// rawOpen opens a raw stream on one tunnel: (*tunnel.Client).OpenRaw
// (tests replace it before a server starts).
var rawOpen = func(ctx context.Context, lt *liveTunnel, network, appID, dest, user string) (tunnel.RawConn, error) {
	return lt.c.OpenRaw(ctx, network, appID, dest, user)
}

// netOpener opens a raw stream for app to dest on a live connector of its
// group, trying another when one fails to open; it returns the connector's
// id. A refusal is an *accessRefusal.
type netOpener func(ctx context.Context, app *netApp, network, dest, user string) (tunnel.RawConn, string, error)

// accessRefusal is a refusal of the access exchange: the code and
// sentence sent to the client.
type accessRefusal struct {
	Code, Message string
}

func (e *accessRefusal) Error() string { return e.Message }

func netRefuse(code, format string, args ...any) *accessRefusal {
	return &accessRefusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// accessLimits holds the per-user rate and the streams open per user and
// per tenant.
type accessLimits struct {
	cfg      AccessLimits // with defaults (limits.go)
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	users    map[string]int
	tenants  map[string]int
	refusals map[string]time.Time // user+code → last refusal event
	budgets  accessBudgets        // what the raw streams of a user, of a tenant may hold at the cloud (accessbudget.go)
}

// admit takes a stream for user of tenant, or says which limit it hit.
func (l *accessLimits) admit(tenantID, tenant, userID string, now time.Time) *accessRefusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limiters == nil || len(l.limiters) > maxAccessLimiters {
		l.limiters = map[string]*rate.Limiter{}
	}
	if l.users == nil {
		l.users, l.tenants = map[string]int{}, map[string]int{}
	}
	c := l.cfg.withDefaults()
	lim := l.limiters[userID]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(c.Rate), c.Burst)
		l.limiters[userID] = lim
	}
	if !lim.AllowN(now, 1) {
		return netRefuse(tunnel.AccessRateLimited, "You open streams faster than %g a second: slow down and try again in a second", c.Rate)
	}
	if l.users[userID] >= c.PerUser {
		return netRefuse(tunnel.AccessRateLimited, "You already have %d streams open, the most one user may: close some and try again", c.PerUser)
	}
	if l.tenants[tenantID] >= c.PerTenant {
		return netRefuse(tunnel.AccessRateLimited, "The users of %s already have %d streams open, the most one organisation may: try again later, or ask the cloud's operator", tenant, c.PerTenant)
	}
	l.users[userID]++
	l.tenants[tenantID]++
	l.budgets.take(tenantID, userID)
	return nil
}

func (l *accessLimits) release(tenantID, userID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users[userID]--; l.users[userID] <= 0 {
		delete(l.users, userID)
	}
	if l.tenants[tenantID]--; l.tenants[tenantID] <= 0 {
		delete(l.tenants, tenantID)
	}
	l.budgets.release(tenantID, userID, l.users, l.tenants)
}

// refusalDue reports whether a refusal event for key is due (one a minute).
func (l *accessLimits) refusalDue(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refusals == nil || len(l.refusals) > maxAccessLimiters {
		l.refusals = map[string]time.Time{}
	}
	if last, ok := l.refusals[key]; ok && now.Sub(last) < accessRefusalEvery {
		return false
	}
	l.refusals[key] = now
	return true
}

// networkTarget reports whether a device authorization's resource is the
// cloud itself (a network sign-in), and the tenant of the login_hint's
// domain (the user name the client was given with --user).
func (s *Server) networkTarget(ctx context.Context, resource, hint string) (store.Tenant, bool, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return store.Tenant{}, false, nil
	}
	host, ok := edge.NormalizeHost(u.Host)
	if !ok || host != s.settings.Name {
		return store.Tenant{}, false, nil
	}
	if hint == "" {
		return store.Tenant{}, false, oauthErr(400, "invalid_request",
			"A network sign-in needs your user name: run 'sallyport access login "+s.origin(s.settings.Name)+"/ --user NAME@DOMAIN'")
	}
	name, err := tenancy.CheckUserName("bad_user_name", tenancy.Truncate(hint, 200), "")
	if err != nil {
		return store.Tenant{}, false, oauthErr(400, "invalid_request", "The user name given with --user is not NAME@DOMAIN")
	}
	ten, ok, err := s.realmOf(ctx, name[strings.LastIndexByte(name, '@')+1:])
	if err != nil {
		return store.Tenant{}, false, err
	}
	if !ok {
		return store.Tenant{}, false, oauthErr(400, "invalid_target",
			"No organisation on this cloud has user names of the domain of "+name+": check the user name given with --user")
	}
	return ten, true, nil
}

// serveAccess serves one connection of the ALPN sallyport-access/1.
func (s *Server) serveAccess(ctx context.Context, c net.Conn) {
	defer c.Close()
	start := s.now()
	src := sourceOf(c.RemoteAddr().String())
	c.SetDeadline(time.Now().Add(accessRequestWait))
	br := bufio.NewReaderSize(c, tunnel.MaxAccessLine)
	line, err := tunnel.ReadAccessLine(br)
	if err != nil {
		s.answerAccess(c, netRefuse(tunnel.AccessBadRequest, "The access request could not be read (%v): use 'sallyport access' of the same version as the cloud", err))
		return
	}
	req, err := tunnel.ParseAccessRequest(line)
	if err != nil {
		s.answerAccess(c, netRefuse(tunnel.AccessBadRequest, "The access request is not valid: %v", err))
		return
	}
	st, err := s.admitAccess(ctx, src, req)
	if err != nil {
		var ar *accessRefusal
		if !errors.As(err, &ar) {
			s.log.Error("private access failed", "error", err.Error())
			ar = netRefuse(tunnel.AccessInternal, "The cloud could not open the stream because of an internal error: try again, and if it persists tell the cloud's operator")
		}
		s.refusedAccess(st, req, src, ar)
		s.answerAccess(c, ar)
		return
	}
	defer st.release()
	if req.Check {
		tunnel.WriteAccessLine(c, tunnel.AccessAnswer{OK: true, App: st.app.Name, Dest: st.dest})
		return
	}
	ocx, cancel := context.WithTimeout(tunnel.WithWindowBudget(ctx, s.accessLimits.budget(st.user.ID)), accessOpenWait)
	rc, connector, err := s.openNet(ocx, st.app, req.Network, st.dest, st.user.Name)
	cancel()
	if err != nil {
		var ar *accessRefusal
		if !errors.As(err, &ar) {
			s.log.Warn("private access: opening a stream failed", "app", st.app.Name, "error", err.Error())
			ar = netRefuse(tunnel.AccessNoConnector, "No connector of group '%s' of %s could open the stream to %s (%v): try again, and if it persists ask an administrator to check the group's connectors", st.app.Group, st.app.Tenant, st.dest, err)
		}
		s.refusedAccess(st, req, src, ar)
		s.answerAccess(c, ar)
		return
	}
	defer rc.Close()
	if err := tunnel.WriteAccessLine(c, tunnel.AccessAnswer{OK: true, App: st.app.Name, Dest: st.dest}); err != nil {
		return
	}
	ended := s.metrics.netOpened(st, req.Network)
	c.SetDeadline(time.Time{})
	tunnel.ReadAheadWhileBusy(c) // 64 KiB reads while the client sends fast
	idle := accessIdleTCP
	if req.Network == tunnel.NetworkUDP {
		idle = accessIdleUDP
	}
	in, out := relayAccess(ctx, c, br, rc, req.Network, idle)
	ended(in, out)
	if s.access != nil {
		e := accesslog.Entry{Time: start, Tenant: st.app.Tenant, App: st.app.Name, Connector: connector, Client: src,
			Method: strings.ToUpper(req.Network), Dest: st.dest, User: st.user.Name, Duration: s.now().Sub(start), BytesIn: in, BytesOut: out}
		s.access.Log(&e)
	}
}

// accessStream is an admitted request.
type accessStream struct {
	user    *dirUser
	tenant  string
	app     *netApp
	dest    string // HOST:PORT, the host lower-cased
	release func()
}

// admitAccess checks the token, the limits, the application, the
// assignment and the segments. st is set as far as known, for the event.
func (s *Server) admitAccess(ctx context.Context, src string, req tunnel.AccessRequest) (*accessStream, error) {
	st := &accessStream{}
	login := "run 'sallyport access login " + s.origin(s.settings.Name) + "/ --user NAME@DOMAIN'"
	cs, err := s.sessionOf(ctx, src, req.Token, prefixAccess, store.SessionAccess, "")
	if err != nil {
		var re *retryError
		if errors.As(err, &re) {
			return st, netRefuse(tunnel.AccessRateLimited, "Too many attempts from your address: try again in %d seconds", retrySeconds(re.after))
		}
		return st, err
	}
	t := s.routesNow()
	if cs == nil || cs.AppID != "" {
		return st, netRefuse(tunnel.AccessNotSignedIn, "You are not signed in to the network of %s (the sign-in expired, was ended, or is for one web application only): %s", s.settings.Name, login)
	}
	u := t.users[cs.UserID]
	if u == nil || u.Disabled || u.TenantID != cs.TenantID {
		return st, netRefuse(tunnel.AccessNotSignedIn, "Your account is deleted or disabled, so your sign-in to %s ended: ask an administrator of your organisation", s.settings.Name)
	}
	st.user = u
	st.tenant = t.tenants[u.TenantID].Domain
	dest := req.Dest
	if dest == "" {
		a, ok := t.networkApp(u.TenantID, strings.ToLower(req.App))
		if !ok || a.Type != req.Network {
			return st, netRefuse(tunnel.AccessNoApp, "%s has no %s application named %s: check the name (your administrator lists them with 'sallyport admin app list')", st.tenant, req.Network, req.App)
		}
		if dest = singleAddress(a.Segments); dest == "" {
			return st, netRefuse(tunnel.AccessBadRequest, "The application %s has no single internal address (%s): give the destination HOST:PORT with --dest", a.Name, strings.Join(a.Segments.Strings(), ", "))
		}
	}
	host, port, _ := tunnel.SplitDest(dest)
	st.dest = net.JoinHostPort(host, fmt.Sprint(port))
	app, err := t.pickNetApp(u, req.Network, req.App, host, port, st.tenant)
	st.app = app
	if err != nil {
		return st, err
	}
	if req.Check {
		st.release = func() {}
		return st, nil
	}
	if ar := s.accessLimits.admit(u.TenantID, st.tenant, u.ID, s.now()); ar != nil {
		return st, ar
	}
	st.release = func() { s.accessLimits.release(u.TenantID, u.ID) }
	return st, nil
}

// singleAddress is the first segment that names one destination (a name
// or an address, one port) as HOST:PORT, or "".
func singleAddress(set segment.Set) string {
	for _, seg := range set {
		if host, ok := seg.OneHost(); ok && seg.PortLo == seg.PortHi {
			return net.JoinHostPort(host, strconv.Itoa(int(seg.PortLo)))
		}
	}
	return ""
}

// pickNetApp finds the network application of u's tenant: by name, or
// (name "") the one whose segments may cover the destination, preferring
// one u is assigned to. It checks the assignment and the segments.
func (t *routeTable) pickNetApp(u *dirUser, network, name, host string, port uint16, tenant string) (*netApp, error) {
	dest := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if name != "" {
		a, ok := t.networkApp(u.TenantID, strings.ToLower(name))
		if !ok || a.Type != network {
			return nil, netRefuse(tunnel.AccessNoApp, "%s has no %s application named %s: check the name (your administrator lists them with 'sallyport admin app list')", tenant, network, name)
		}
		if !t.assigned(a.ID, u) {
			return a, notAssigned(u, a)
		}
		if !mayCover(a.Segments, host, port) {
			return a, netRefuse(tunnel.AccessNotCovered, "%s is outside every internal address of the application %s (%s): use one of them, or ask an administrator of %s to add it (sallyport admin app update %s --internal-address %s)",
				dest, a.Name, strings.Join(a.Segments.Strings(), ", "), tenant, a.Name, dest)
		}
		return a, nil
	}
	var apps []*netApp
	for k, a := range t.netApps {
		if k.tenantID == u.TenantID && a.Type == network && mayCover(a.Segments, host, port) {
			apps = append(apps, a)
		}
	}
	// A name segment that covers the name beats an address range the
	// connector will check after resolving; then by name, for a stable
	// choice.
	slices.SortFunc(apps, func(x, y *netApp) int {
		if cx, cy := x.Segments.CoversName(host, port), y.Segments.CoversName(host, port); cx != cy {
			if cx {
				return -1
			}
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
	for _, a := range apps {
		if t.assigned(a.ID, u) {
			return a, nil
		}
	}
	if len(apps) > 0 {
		return apps[0], notAssigned(u, apps[0])
	}
	return nil, netRefuse(tunnel.AccessNotCovered, "%s is outside every %s segment of %s's network applications: check the address, or ask an administrator of %s for an application that covers it", dest, network, tenant, tenant)
}

// mayCover is the cloud's check of a destination against segments
// (docs/private-access.md): an IP address must be covered by an address
// or prefix segment; a name by a name or wildcard segment, or else it may
// resolve into an address or prefix segment, which only the connector
// can tell (it checks the address it dials).
func mayCover(set segment.Set, host string, port uint16) bool {
	if set.CoversName(host, port) {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	for _, seg := range set {
		if (seg.Kind == segment.Addr || seg.Kind == segment.Prefix) && seg.PortLo <= port && port <= seg.PortHi {
			return true
		}
	}
	return false
}

func notAssigned(u *dirUser, a *netApp) error {
	return netRefuse(tunnel.AccessNotAssigned, "You (%s) are not assigned to the application %s: ask an administrator of %s to assign you (sallyport admin app assign %s --user %s)",
		u.Name, a.Name, a.Tenant, a.Name, u.Name)
}

// refusedAccess logs a refusal as an event, once a minute per user and
// code.
func (s *Server) refusedAccess(st *accessStream, req tunnel.AccessRequest, src string, ar *accessRefusal) {
	user, tenant, app := "", "", req.App
	if st != nil && st.user != nil {
		user, tenant = st.user.Name, st.tenant
	}
	if st != nil && st.app != nil {
		app = st.app.Name
	}
	s.metrics.netRefused(st, req.Network, ar.Code)
	if !s.accessLimits.refusalDue(user+"\x00"+src+"\x00"+ar.Code, s.now()) {
		return
	}
	s.events.Event(eventlog.NetAccessRefused, "A private access stream was refused: "+ar.Message,
		"tenant", tenant, "user", user, "app", app, "destination", tenancy.Truncate(req.Dest, 260), "code", ar.Code, "address", src)
}

func (s *Server) answerAccess(c net.Conn, ar *accessRefusal) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	tunnel.WriteAccessLine(c, tunnel.AccessAnswer{Code: ar.Code, Message: ar.Message + "."})
}

// relayAccess copies between the client (reads from br, which may hold
// bytes read ahead) and the connector's stream until both directions end
// or the stream is idle for idle; it returns the bytes from the client and
// to it. A half-close in one direction is passed on as one.
func relayAccess(ctx context.Context, c net.Conn, br *bufio.Reader, rc tunnel.RawConn, network string, idle time.Duration) (in, out int64) {
	var last atomic.Int64
	touch := func() { last.Store(time.Now().UnixNano()) }
	touch()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client → connector
		defer wg.Done()
		if network == tunnel.NetworkUDP {
			buf := make([]byte, tunnel.MaxDatagram)
			for {
				p, err := tunnel.ReadDatagram(br, buf)
				if err != nil {
					break
				}
				touch()
				if _, err := rc.Write(p); err != nil {
					break
				}
				in += int64(len(p))
			}
			// The client's end is the end of the flow: no one is left to
			// read answers (the connector would hold it until idle).
			rc.Close()
			return
		}
		in, _ = tunnel.Copy(rc, &touchReader{r: br, touch: touch})
		rc.CloseWrite()
	}()
	go func() { // connector → client
		defer wg.Done()
		if network == tunnel.NetworkUDP {
			buf := make([]byte, tunnel.MaxDatagram)
			for {
				n, err := rc.Read(buf)
				if err != nil {
					break
				}
				touch()
				if tunnel.WriteDatagram(c, buf[:n]) != nil {
					break
				}
				out += int64(n)
			}
		} else {
			var err error
			out, err = tunnel.Copy(tunnel.CorkWrites(c), &touchReader{r: rc, touch: touch})
			if err != nil {
				// The connector's side failed (its tunnel broke, or a reset):
				// the client's connection ends with a reset, so that the
				// client sees an abrupt end, not the destination's.
				resetAccessConn(c)
			}
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	go func() {
		t := time.NewTimer(idle)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
			case <-t.C:
				if rest := idle - time.Since(time.Unix(0, last.Load())); rest > 0 {
					t.Reset(rest)
					continue
				}
			}
			c.Close()
			rc.Close()
			return
		}
	}()
	wg.Wait()
	close(done)
	return in, out
}

// touchReader marks activity on each read.
type touchReader struct {
	r     io.Reader
	touch func()
}

func (t *touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.touch()
	}
	return n, err
}

// openOnConnector is the netOpener of a running cloud: a live connector of
// the application's group, another one when a connector fails to open
// (its tunnel died), at most maxAttempts.
func (s *Server) openOnConnector(ctx context.Context, app *netApp, network, dest, user string) (tunnel.RawConn, string, error) {
	var tried []string
	var lastErr error
	for range maxAttempts {
		lt, why := s.registry.pick(app.GroupID, "", tried)
		if lt == nil {
			if lastErr != nil {
				return nil, "", lastErr
			}
			if why == saturated {
				return nil, "", netRefuse(tunnel.AccessBusy, "Every connector of group '%s' of %s is at its limit of streams being opened: try again in a moment", app.Group, app.Tenant)
			}
			return nil, "", netRefuse(tunnel.AccessNoConnector, "No connector is active in group '%s' of %s, which serves the application %s: ask an administrator of %s to start one", app.Group, app.Tenant, app.Name, app.Tenant)
		}
		tried = append(tried, lt.conn.ID)
		rc, err := rawOpen(ctx, lt, network, app.ID, dest, user)
		lt.conn.active.Add(-1) // the reservation covers the opening only
		if err == nil {
			return rc, lt.conn.ID, nil
		}
		var rr *tunnel.RawError
		if errors.As(err, &rr) {
			return nil, "", connectorRefusal(rr, app, dest)
		}
		if ctx.Err() != nil {
			return nil, "", err
		}
		lastErr = err
		s.events.Event(eventlog.NetAccessRetried, fmt.Sprintf("The connector %s could not open a stream of %s to %s (%v): trying another connector of group '%s'", lt.conn.ID, app.Name, dest, err, app.Group),
			"tenant", app.Tenant, "app", app.Name, "connector", lt.conn.ID, "error", err.Error())
	}
	return nil, "", lastErr
}

// connectorRefusal maps a connector's refusal to the client's code and
// sentence, named as the connector's.
func connectorRefusal(rr *tunnel.RawError, app *netApp, dest string) *accessRefusal {
	msg := strings.TrimSuffix(rr.Message, ".")
	switch rr.Code {
	case tunnel.RawRefused:
		return netRefuse(tunnel.AccessRefused, "The connector of group '%s' reached %s but the connection was refused there: %s", app.Group, dest, msg)
	case tunnel.RawUnreachable:
		return netRefuse(tunnel.AccessUnreachable, "The connector of group '%s' cannot reach %s: %s", app.Group, dest, msg)
	case tunnel.RawNotCovered:
		return netRefuse(tunnel.AccessNotCovered, "The connector of group '%s' refused %s, which is outside the application %s's internal addresses: %s", app.Group, dest, app.Name, msg)
	case tunnel.RawUnsupported:
		return netRefuse(tunnel.AccessUnsupported, "The connector of group '%s' is too old for private access: ask an administrator of %s to update it (sallyport connector update)", app.Group, app.Tenant)
	case tunnel.RawBusy:
		return netRefuse(tunnel.AccessBusy, "The connector of group '%s' has too many streams open: try again in a moment", app.Group)
	}
	return netRefuse(tunnel.AccessUnreachable, "The connector of group '%s' could not open a stream to %s: %s", app.Group, dest, msg)
}
