package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// registry holds the live tunnel connections of every connected connector
// and picks one for each request.
type registry struct {
	log   *slog.Logger
	limit int64 // most concurrent requests per connector
	// maxTunnels is the most tunnels one connector may hold (0: no limit).
	maxTunnels int
	routes     func() *routeTable
	refresh    func(context.Context) error // reloads routes from the store

	mu         sync.Mutex
	connectors map[string]*liveConnector // by connector id

	// groups is what pick reads, without a lock: the live connectors of
	// each group with their tunnels, an immutable snapshot rebuilt under
	// mu whenever a tunnel comes or goes or a connector changes group.
	groups atomic.Pointer[map[string][]candidate]

	pushes sync.WaitGroup // background configuration pushes

	// instances is what connectors are told of the cloud's live
	// instances (connectorinstances.go); nil until first looked at.
	instances atomic.Pointer[tunnel.Instances]
}

// candidate is a connector as pick sees it: its tunnels when the snapshot
// was taken.
type candidate struct {
	lc      *liveConnector
	tunnels []*liveTunnel
}

// rebuild replaces the snapshot pick reads; callers hold mu.
func (r *registry) rebuild() {
	g := make(map[string][]candidate, len(r.connectors))
	for _, lc := range r.connectors {
		if len(lc.tunnels) == 0 {
			continue
		}
		id := lc.group()
		g[id] = append(g[id], candidate{lc: lc, tunnels: slices.Clone(lc.tunnels)})
	}
	r.groups.Store(&g)
}

// wait waits for background configuration pushes to end.
func (r *registry) wait() { r.pushes.Wait() }

// liveConnector is a connector with at least one tunnel up.
type liveConnector struct {
	ID, TenantID string
	groupID      atomic.Pointer[string] // may change (connector moved)
	Hello        tunnel.Hello
	Address      string
	tunnels      []*liveTunnel // guarded by registry.mu
	active       atomic.Int64  // requests reserved on it, for the concurrency limit

	// The instances it said it holds tunnels to, cached for the admin
	// API (connectorinstances.go).
	instMu     sync.Mutex
	instCached []tunnel.ConnectedInstance
	instOK     bool
	instAt     time.Time
}

// reserve counts one more request on the connector unless it already
// has limit.
func (lc *liveConnector) reserve(limit int64) bool {
	for {
		n := lc.active.Load()
		if n >= limit {
			return false
		}
		if lc.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// liveTunnel is one tunnel connection.
type liveTunnel struct {
	c        *tunnel.Client
	serial   string    // of the certificate the connector presented
	notAfter time.Time // and its expiry
	conn     *liveConnector
	// networkApps: this tunnel's hello said the connector serves network
	// applications (set once by add; lc.Hello changes with each tunnel).
	networkApps bool
	pushMu      sync.Mutex
	pushed      string // config version the connector acknowledged
	// instPushed is the version of the instances list it acknowledged.
	instPushed string
}

func newRegistry(log *slog.Logger, limit int, routes func() *routeTable, refresh func(context.Context) error) *registry {
	r := &registry{log: log, limit: int64(limit), routes: routes, refresh: refresh, connectors: map[string]*liveConnector{}}
	r.groups.Store(&map[string][]candidate{})
	return r
}

// add registers a tunnel of a connector. It returns false, adding
// nothing, when the connector already holds maxTunnels tunnels.
func (r *registry) add(lt *liveTunnel, id, tenantID, groupID, addr string, hello tunnel.Hello) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	lc := r.connectors[id]
	if lc != nil && r.maxTunnels > 0 && len(lc.tunnels) >= r.maxTunnels {
		return false
	}
	if lc == nil {
		lc = &liveConnector{ID: id, TenantID: tenantID}
		r.connectors[id] = lc
	}
	lc.groupID.Store(&groupID)
	lc.Hello, lc.Address = hello, addr
	lc.tunnels = append(lc.tunnels, lt)
	lt.conn, lt.networkApps = lc, hello.NetworkApps
	r.rebuild()
	return true
}

// remove forgets a tunnel.
func (r *registry) remove(lt *liveTunnel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lc := lt.conn
	if lc == nil {
		return
	}
	for i, t := range lc.tunnels {
		if t == lt {
			lc.tunnels = append(lc.tunnels[:i], lc.tunnels[i+1:]...)
			break
		}
	}
	if len(lc.tunnels) == 0 && r.connectors[lc.ID] == lc {
		delete(r.connectors, lc.ID)
	}
	r.rebuild()
}

// setGroup moves a live connector to another group: it serves that
// group's applications from its next request on.
func (r *registry) setGroup(id, groupID string, t *routeTable) {
	r.mu.Lock()
	lc := r.connectors[id]
	if lc != nil {
		lc.groupID.Store(&groupID)
		r.rebuild()
	}
	r.mu.Unlock()
	if lc != nil {
		r.pushAll(context.Background(), t)
	}
}

// disconnect closes every tunnel of a connector (deleted or revoked).
func (r *registry) disconnect(id string) {
	r.mu.Lock()
	lc := r.connectors[id]
	var ts []*liveTunnel
	if lc != nil {
		ts = append(ts, lc.tunnels...)
	}
	r.mu.Unlock()
	for _, t := range ts {
		t.c.Close()
	}
}

// closeAll closes every tunnel (shutdown).
func (r *registry) closeAll() {
	ts := r.allTunnels()
	for _, t := range ts {
		t.c.Close()
	}
}

// liveInfo is what the API shows of a live connector.
type liveInfo struct {
	Tunnels  int
	Protocol int // the lowest tunnel protocol version of its tunnels
	InFlight int64
	Address  string
	Hello    tunnel.Hello
}

func (r *registry) info(id string) (liveInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lc := r.connectors[id]
	if lc == nil {
		return liveInfo{}, false
	}
	li := liveInfo{Tunnels: len(lc.tunnels), Address: lc.Address, Hello: lc.Hello}
	for _, t := range lc.tunnels {
		li.InFlight += t.c.InFlight()
		if v := t.c.Version(); li.Protocol == 0 || v < li.Protocol {
			li.Protocol = v
		}
	}
	return li, true
}

// pickResult says why pick found nothing.
type pickResult int

const (
	picked    pickResult = iota
	none                 // no connector of the group has a usable tunnel
	saturated            // every usable connector is at its concurrency limit
)

// pick reserves a tunnel for one request of group: the preferred
// connector (session affinity) while it is usable, else the connector
// with the fewest requests in flight (ties at random), then its least busy
// tunnel. Connectors in exclude, draining tunnels and connectors at their
// limit are skipped. The caller releases the reservation.
//
// It takes no lock: it reads the registry's snapshot and reserves with a
// compare-and-swap on the connector's counter; if another request took
// the last slot of the connector it chose meanwhile, it chooses again.
func (r *registry) pick(groupID, preferred string, exclude []string) (*liveTunnel, pickResult) {
	cands := (*r.groups.Load())[groupID]
	for {
		var best *liveTunnel
		var bestLoad int64
		ties, full := 0, false
		for i := range cands {
			lc := cands[i].lc
			if slices.Contains(exclude, lc.ID) {
				continue
			}
			lt := leastBusyTunnel(cands[i].tunnels)
			if lt == nil {
				continue
			}
			load := lc.active.Load()
			if load >= r.limit {
				full = true
				continue
			}
			if lc.ID == preferred {
				best, ties = lt, -1
				break
			}
			switch {
			case best == nil || load < bestLoad:
				best, bestLoad, ties = lt, load, 1
			case load == bestLoad:
				ties++
				if rand.IntN(ties) == 0 {
					best = lt
				}
			}
		}
		switch {
		case best == nil && full:
			return nil, saturated
		case best == nil:
			return nil, none
		case best.conn.reserve(r.limit):
			return best, picked
		}
	}
}

// group is the connector's current group id.
func (lc *liveConnector) group() string { return *lc.groupID.Load() }

// leastBusyTunnel returns the usable tunnel with the fewest streams.
func leastBusyTunnel(tunnels []*liveTunnel) *liveTunnel {
	var lt *liveTunnel
	for _, t := range tunnels {
		if t.c.Available() && (lt == nil || t.c.InFlight() < lt.c.InFlight()) {
			lt = t
		}
	}
	return lt
}

// RoundTrip implements edge.Dispatcher. A request that never reached a
// connector (tunnel closing or draining) goes to another connector of the
// group; an idempotent request without a body whose tunnel broke before
// any answer is retried once on another connector.
func (r *registry) RoundTrip(app *edge.App, req *http.Request) (*http.Response, error) {
	var triedIDs [maxAttempts]string
	tried := triedIDs[:0]
	preferred := edge.PreferredConnector(req.Context())
	idempotentRetry := retryable(req)
	// A failed attempt must not close (and so drain) the client's body:
	// a request never sent goes to another connector with the same body.
	var body *retryBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &retryBody{body: req.Body}
		req = req.WithContext(req.Context()) // a shallow copy: headers are not cloned on the hot path
		req.Body = body
	}
	var lastErr error
	for range maxAttempts {
		lt, why := r.pick(app.GroupID, preferred, tried)
		if lt == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			if why == saturated {
				return nil, saturatedProblem(app, r.limit)
			}
			return nil, noConnector(app)
		}
		tried = append(tried, lt.conn.ID)
		edge.TriedConnector(req.Context(), lt.conn.ID)
		resp, err := r.send(lt, req)
		if err == nil {
			resp.Header.Set(tunnel.HeaderConnector, lt.conn.ID)
			resp.Body = releasingBody(resp.Body, lt.conn)
			return resp, nil
		}
		lt.conn.active.Add(-1)
		lastErr = err
		if req.Context().Err() != nil {
			return nil, err
		}
		switch {
		case body != nil && body.touched():
			return nil, err // some of the body went to the failed attempt
		case errors.Is(err, errConfigPush) || tunnel.NotSent(err):
		case tunnel.IsHeadersTooLarge(err):
			return nil, err // the backend's answer, not the connector's failure
		case idempotentRetry:
			idempotentRetry = false
		default:
			return nil, err
		}
		r.log.Info("sending request to another connector", "app", app.Name, "failed_connector", lt.conn.ID, "error", err.Error())
	}
	return nil, lastErr
}

// maxAttempts bounds how many connectors one request is offered to.
const maxAttempts = 4

var errConfigPush = errors.New("the connector did not take its configuration")

func (r *registry) send(lt *liveTunnel, req *http.Request) (*http.Response, error) {
	if err := r.ensureConfig(req.Context(), lt); err != nil {
		return nil, fmt.Errorf("%w: %w", errConfigPush, err)
	}
	return lt.c.RoundTrip(req)
}

// retryBody is a request body offered to several attempts. The first Read
// marks it used: no other attempt may send it, and Close goes through (it
// stops an upload the backend no longer wants). Before that, Close by a
// failed attempt's transport is ignored — closing would drain the client's
// body — and the server closes the body when the request ends.
type retryBody struct {
	body io.ReadCloser
	used atomic.Bool
}

func (b *retryBody) Read(p []byte) (int, error) {
	b.used.Store(true)
	return b.body.Read(p)
}

func (b *retryBody) Close() error {
	if b.used.Load() {
		return b.body.Close()
	}
	return nil
}

func (b *retryBody) touched() bool { return b.used.Load() }

func retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0
	}
	return false
}

func saturatedProblem(app *edge.App, limit int64) *problem.Problem {
	return problem.Newf(http.StatusServiceUnavailable, "connectors_saturated",
		"retry shortly; to serve more at once, add a connector to the group or raise the limit with 'sallyport cloud serve --connector-limit'",
		"Every connector of group '%s' of %s is already handling its limit of %d concurrent requests", app.Group, app.Tenant, limit)
}

// releasingBody releases the request's reservation on lc once when the
// body is closed; it keeps the body writable for upgraded connections.
func releasingBody(b io.ReadCloser, lc *liveConnector) io.ReadCloser {
	rb := &releaseBody{ReadCloser: b, lc: lc}
	if rw, ok := b.(io.ReadWriteCloser); ok {
		return tunnel.UpgradedConn(rw, rb.Close)
	}
	return rb
}

type releaseBody struct {
	io.ReadCloser
	lc       *liveConnector
	released atomic.Bool
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	if b.released.CompareAndSwap(false, true) {
		b.lc.active.Add(-1)
	}
	return err
}

func noConnector(app *edge.App) *problem.Problem {
	return problem.Newf(http.StatusBadGateway, "no_connector",
		"install a connector and assign it to this group, or assign the application to a group that has an active one",
		"No active connector in group '%s' of %s can serve application '%s'", app.Group, app.Tenant, app.Name)
}

// ensureConfig pushes the group's current configuration to the connector
// on this tunnel if it does not hold it yet.
func (r *registry) ensureConfig(ctx context.Context, lt *liveTunnel) error {
	cfg := r.routes().configs[lt.conn.group()]
	if cfg == nil {
		// A group this instance has not loaded yet (a tenant or group
		// added by another process): reload once.
		if err := r.refresh(ctx); err != nil {
			return err
		}
		if cfg = r.routes().configs[lt.conn.group()]; cfg == nil {
			return fmt.Errorf("no configuration for group %s", lt.conn.group())
		}
	}
	lt.pushMu.Lock()
	defer lt.pushMu.Unlock()
	if lt.pushed == cfg.Version {
		return nil
	}
	return lt.push(ctx, cfg)
}

// push sends cfg on the tunnel; callers hold pushMu.
func (lt *liveTunnel) push(ctx context.Context, cfg *tunnel.Config) error {
	c := *cfg
	if !lt.networkApps {
		c = c.WebOnly()
	}
	c.ConnectorID = lt.conn.ID
	js, _ := json.Marshal(&c)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "https://connector"+tunnel.PathConfig, bytes.NewReader(js))
	resp, err := lt.c.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("connector refused its configuration: %s", resp.Status)
	}
	lt.pushed = cfg.Version
	return nil
}

// pushAll sends changed configurations to every live tunnel, in the
// background, so removed applications stop being served at once.
func (r *registry) pushAll(ctx context.Context, t *routeTable) {
	ts := r.allTunnels()
	for _, lt := range ts {
		cfg := t.configs[lt.conn.group()]
		if cfg == nil {
			continue
		}
		r.pushes.Add(1)
		go func() {
			defer r.pushes.Done()
			lt.pushMu.Lock()
			defer lt.pushMu.Unlock()
			if lt.pushed != cfg.Version {
				if err := lt.push(context.WithoutCancel(ctx), cfg); err != nil {
					r.log.Debug("configuration push failed", "connector", lt.conn.ID, "error", err.Error())
				}
			}
		}()
	}
}

// live returns the live connectors' ids (a snapshot).
func (r *registry) live() []struct{ ID, TenantID string } {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]struct{ ID, TenantID string }, 0, len(r.connectors))
	for _, lc := range r.connectors {
		out = append(out, struct{ ID, TenantID string }{lc.ID, lc.TenantID})
	}
	return out
}

// liveTunnels returns the live connectors with their tunnels (a snapshot).
func (r *registry) liveTunnels() []candidate {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]candidate, 0, len(r.connectors))
	for _, lc := range r.connectors {
		out = append(out, candidate{lc: lc, tunnels: slices.Clone(lc.tunnels)})
	}
	return out
}

// allTunnels returns every live tunnel.
func (r *registry) allTunnels() []*liveTunnel {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []*liveTunnel
	for _, lc := range r.connectors {
		ts = append(ts, lc.tunnels...)
	}
	return ts
}

// pickable reports whether a connector has a usable tunnel.
func (r *registry) pickable(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	lc := r.connectors[id]
	return lc != nil && leastBusyTunnel(lc.tunnels) != nil
}
