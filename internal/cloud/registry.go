package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// registry holds the live tunnel connections of every connected connector
// and picks one for each request.
type registry struct {
	log     *slog.Logger
	routes  func() *routeTable
	refresh func(context.Context) error // reloads routes from the store

	mu         sync.Mutex
	connectors map[string]*liveConnector // by connector id

	pushes sync.WaitGroup // background configuration pushes
}

// wait waits for background configuration pushes to end.
func (r *registry) wait() { r.pushes.Wait() }

// liveConnector is a connector with at least one tunnel up.
type liveConnector struct {
	ID, TenantID, GroupID string
	Hello                 tunnel.Hello
	Address               string
	tunnels               []*liveTunnel
}

// liveTunnel is one tunnel connection.
type liveTunnel struct {
	c      *tunnel.Client
	conn   *liveConnector
	pushMu sync.Mutex
	pushed string // config version the connector acknowledged
}

func newRegistry(log *slog.Logger, routes func() *routeTable, refresh func(context.Context) error) *registry {
	return &registry{log: log, routes: routes, refresh: refresh, connectors: map[string]*liveConnector{}}
}

// add registers a tunnel of a connector.
func (r *registry) add(lt *liveTunnel, id, tenantID, groupID, addr string, hello tunnel.Hello) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lc := r.connectors[id]
	if lc == nil {
		lc = &liveConnector{ID: id, TenantID: tenantID}
		r.connectors[id] = lc
	}
	lc.GroupID, lc.Hello, lc.Address = groupID, hello, addr
	lc.tunnels = append(lc.tunnels, lt)
	lt.conn = lc
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
	}
	return li, true
}

// pick chooses the tunnel for a request of group: among the group's
// connectors, the one with the fewest requests in flight (ties at
// random), then its least busy tunnel. exclude skips one connector.
func (r *registry) pick(groupID, exclude string) *liveTunnel {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *liveTunnel
	var bestLoad int64
	ties := 0
	for _, lc := range r.connectors {
		if lc.GroupID != groupID || lc.ID == exclude || len(lc.tunnels) == 0 {
			continue
		}
		var load int64
		var lt *liveTunnel
		for _, t := range lc.tunnels {
			n := t.c.InFlight()
			load += n
			if lt == nil || n < lt.c.InFlight() {
				lt = t
			}
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
	return best
}

// RoundTrip implements edge.Dispatcher. An idempotent request without a
// body whose tunnel breaks before any answer is retried once on another
// connector of the group.
func (r *registry) RoundTrip(app *edge.App, req *http.Request) (*http.Response, error) {
	lt := r.pick(app.GroupID, "")
	if lt == nil {
		return nil, noConnector(app)
	}
	resp, err := r.send(lt, req)
	if err == nil || !retryable(req) || req.Context().Err() != nil {
		return resp, err
	}
	if other := r.pick(app.GroupID, lt.conn.ID); other != nil {
		r.log.Info("retrying request on another connector", "app", app.Name, "failed_connector", lt.conn.ID, "connector", other.conn.ID, "error", err.Error())
		return r.send(other, req)
	}
	return nil, err
}

func (r *registry) send(lt *liveTunnel, req *http.Request) (*http.Response, error) {
	if err := r.ensureConfig(req.Context(), lt); err != nil {
		return nil, err
	}
	return lt.c.RoundTrip(req)
}

func retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0
	}
	return false
}

func noConnector(app *edge.App) *problem.Problem {
	return problem.Newf(http.StatusBadGateway, "no_connector",
		"install a connector and assign it to this group, or assign the application to a group that has an active one",
		"No active connector in group '%s' of %s can serve application '%s'", app.Group, app.Tenant, app.Name)
}

// ensureConfig pushes the group's current configuration to the connector
// on this tunnel if it does not hold it yet.
func (r *registry) ensureConfig(ctx context.Context, lt *liveTunnel) error {
	cfg := r.routes().configs[lt.conn.GroupID]
	if cfg == nil {
		// A group this instance has not loaded yet (a tenant or group
		// added by another process): reload once.
		if err := r.refresh(ctx); err != nil {
			return err
		}
		if cfg = r.routes().configs[lt.conn.GroupID]; cfg == nil {
			return fmt.Errorf("no configuration for group %s", lt.conn.GroupID)
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
		cfg := t.configs[lt.conn.GroupID]
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
