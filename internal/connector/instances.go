package connector

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// A connector keeps its tunnels to every live instance of a cloud that
// runs several (docs/scale-out.md, "Connectors and instances"):
//
//   - Bootstrap slots: Connections tunnels to the cloud's name, as a
//     connector of a single instance keeps. Each instance the connector
//     reaches sends it the list of live instances with their advertise
//     addresses (tunnel.Instances on tunnel.PathInstances), when the tunnel
//     comes up and whenever the list changes.
//   - Instance slots: for each listed instance, Connections tunnels to its
//     advertise address (TLS name, pinned CA, client certificate and proxy
//     as for the cloud's name). A new instance gets them as soon as any
//     instance sends the new list; a vanished one is dropped with one
//     information event (1207) when it leaves the list.
//   - The bootstrap slots stop (drain) once a tunnel to a listed instance
//     is up, and start again when none is (the instances cannot be
//     reached at their advertise addresses, or the list became empty):
//     the connector is never left without a way to the cloud.

// slot is one tunnel connection the connector keeps.
type slot struct {
	name     string       // for events: "0", "1" (bootstrap) or "INSTANCE/0"
	instance string       // the instance it dials; "" for the cloud's name
	addr     string       // its advertise address; "" for the cloud's name
	run      *instanceRun // nil for the cloud's name
	self     string       // bootstrap: the instance the cloud's name led to (guarded by Connector.mu)
	up       int          // 1 while its tunnel is up (guarded by Connector.mu)
}

type slotKey struct{}

func withSlot(ctx context.Context, sl *slot) context.Context {
	return context.WithValue(ctx, slotKey{}, sl)
}

func slotOf(ctx context.Context) *slot {
	sl, _ := ctx.Value(slotKey{}).(*slot)
	return sl
}

// instanceRun is the group of slots kept to one instance.
type instanceRun struct {
	id, addr string
	cancel   context.CancelFunc

	mu     sync.Mutex
	warned bool // event 1208 written since its last tunnel up
}

// dialFailed writes event 1208 once per episode: the first failure since
// the instance was last reached (or ever), not one per slot and attempt.
func (r *instanceRun) dialFailed(c *Connector, err error) {
	r.mu.Lock()
	first := !r.warned
	r.warned = true
	r.mu.Unlock()
	if first {
		p := problem.Public(err)
		c.events.Event(eventlog.InstanceUnreachable, fmt.Sprintf("The connector cannot reach cloud instance %s at %s: %s; it keeps trying while the cloud lists the instance",
			r.id, r.addr, p.Error()), "instance", r.id, "address", r.addr, "code", p.Code)
	}
}

// connected notes that a tunnel to the instance came up.
func (r *instanceRun) connected() {
	r.mu.Lock()
	r.warned = false
	r.mu.Unlock()
}

// setInstances takes a list sent by the cloud on the tunnel of sl. Each
// instance's latest list is kept apart: the instances the connector
// keeps tunnels to are the union of the lists of the instances it has a
// tunnel up to (instancesLocked), so that two instances whose views
// differ for a moment (one started a second ago, one that noticed a death
// sooner) never make it drop tunnels another one still lists.
func (c *Connector) setInstances(sl *slot, m tunnel.Instances) {
	c.mu.Lock()
	if sl != nil && sl.instance == "" {
		sl.self = m.Self
	}
	before := c.instancesLocked()
	c.lists[m.Self] = slices.Clone(m.Instances)
	// Forget the lists of instances it has no tunnel up to any more.
	up := c.sendersUpLocked()
	for self := range c.lists {
		if !up[self] && self != m.Self {
			delete(c.lists, self)
		}
	}
	changed := !slices.Equal(before, c.instancesLocked())
	c.mu.Unlock()
	if changed {
		kick(c.instKick)
		kick(c.statusKick)
	}
}

// sendersUpLocked is the set of instances (by id) it has a tunnel up
// to; callers hold mu.
func (c *Connector) sendersUpLocked() map[string]bool {
	up := map[string]bool{}
	for sl := range c.slots {
		if sl.up == 0 {
			continue
		}
		if sl.instance != "" {
			up[sl.instance] = true
		} else {
			up[sl.self] = true
		}
	}
	return up
}

// instancesLocked is the union, by id, of the lists of the instances it
// has a tunnel up to — or, when none of those sent one (they are all
// down, or the instance behind the cloud's name is not listed), of every
// list it kept; callers hold mu.
func (c *Connector) instancesLocked() []tunnel.Instance {
	up := c.sendersUpLocked()
	anyUp := false
	for self := range c.lists {
		anyUp = anyUp || up[self]
	}
	by := map[string]string{}
	for self, list := range c.lists {
		if anyUp && !up[self] {
			continue
		}
		for _, in := range list {
			if a, ok := by[in.ID]; !ok || in.Advertise < a {
				by[in.ID] = in.Advertise // the same id at two addresses: one, always the same
			}
		}
	}
	out := make([]tunnel.Instance, 0, len(by))
	for id, a := range by {
		out = append(out, tunnel.Instance{ID: id, Advertise: a})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// instancesNow returns the instances it keeps tunnels to.
func (c *Connector) instancesNow() []tunnel.Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.instancesLocked()
}

// instanceTunnelsUp counts the tunnels up to listed instances.
func (c *Connector) instanceTunnelsUp() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for sl := range c.slots {
		if sl.instance != "" {
			n += sl.up
		}
	}
	return n
}

// Instances returns the instances the connector holds tunnels to now,
// by id ("" for tunnels through the cloud's name to an instance that did
// not say which it is: a single instance).
func (c *Connector) Instances() []tunnel.ConnectedInstance {
	c.mu.Lock()
	defer c.mu.Unlock()
	by := map[string]*tunnel.ConnectedInstance{}
	for sl := range c.slots {
		if sl.up == 0 {
			continue
		}
		id, addr := sl.instance, sl.addr
		if id == "" {
			id = sl.self
		}
		ci := by[id]
		if ci == nil {
			ci = &tunnel.ConnectedInstance{ID: id}
			by[id] = ci
		}
		if addr != "" {
			ci.Advertise = addr
		}
		ci.Tunnels += sl.up
	}
	for _, in := range c.instancesLocked() { // bootstrap tunnels to a listed instance
		if ci := by[in.ID]; ci != nil && ci.Advertise == "" {
			ci.Advertise = in.Advertise
		}
	}
	out := make([]tunnel.ConnectedInstance, 0, len(by))
	for _, ci := range by {
		out = append(out, *ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// keepInstances runs the tunnel slots until ctx is done: the bootstrap
// slots while no tunnel to a listed instance is up, and Connections slots
// per listed instance.
func (c *Connector) keepInstances(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	start := func(parent context.Context, sl *slot) {
		c.mu.Lock()
		c.slots[sl] = true
		c.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.keepTunnel(parent, sl)
			c.mu.Lock()
			delete(c.slots, sl)
			c.mu.Unlock()
			kick(c.statusKick)
		}()
	}
	running := map[string]*instanceRun{}
	var stopBoot context.CancelFunc
	hadInstances := false
	defer func() {
		for _, r := range running {
			r.cancel()
		}
		if stopBoot != nil {
			stopBoot()
		}
	}()
	for {
		list := c.instancesNow()
		listed := make(map[string]string, len(list))
		for _, in := range list {
			listed[in.ID] = in.Advertise
		}
		for id, r := range running {
			addr, ok := listed[id]
			if ok && addr == r.addr {
				continue
			}
			r.cancel() // its tunnels drain: requests in flight finish
			delete(running, id)
			if !ok {
				c.events.Event(eventlog.InstanceUnlisted, fmt.Sprintf("Cloud instance %s (%s) is no longer live; its tunnels are closed", id, r.addr),
					"instance", id, "address", r.addr)
			}
		}
		for _, in := range list {
			if running[in.ID] != nil {
				continue
			}
			rctx, cancel := context.WithCancel(ctx)
			r := &instanceRun{id: in.ID, addr: in.Advertise, cancel: cancel}
			running[in.ID] = r
			c.events.Event(eventlog.InstanceListed, fmt.Sprintf("Cloud instance %s at %s is live; keeping %d tunnel connection(s) to it", in.ID, in.Advertise, c.cfg.Connections),
				"instance", in.ID, "address", in.Advertise)
			for i := range c.cfg.Connections {
				start(rctx, &slot{name: fmt.Sprintf("%s/%d", in.ID, i), instance: in.ID, addr: in.Advertise, run: r})
			}
		}
		if len(list) > 0 {
			hadInstances = true
		}
		wantBoot := len(list) == 0 || c.instanceTunnelsUp() == 0
		switch {
		case wantBoot && stopBoot == nil:
			if hadInstances && len(list) > 0 {
				c.events.Event(eventlog.InstancesFallback, fmt.Sprintf("No tunnel to any of the cloud's %d instance(s) is up; connecting through %s as well", len(list), c.State().Target.URL))
			}
			bctx, cancel := context.WithCancel(ctx)
			stopBoot = cancel
			for i := range c.cfg.Connections {
				start(bctx, &slot{name: fmt.Sprint(i)})
			}
		case !wantBoot && stopBoot != nil:
			c.log.Info("tunnels to the cloud's instances are up; closing the tunnels through the cloud's name", "instances", len(list))
			stopBoot() // they drain
			stopBoot = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-c.instKick:
		}
	}
}

// serveInstances answers the cloud's PUT and GET on tunnel.PathInstances.
func (h *handler) serveInstances(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		writeJSON(w, tunnel.InstancesStatus{Instances: h.c.Instances()})
		return
	}
	m, err := tunnel.ParseInstances(r.Body)
	if err != nil {
		h.c.events.Event(eventlog.ConfigRefused, "The connector refused the cloud's list of instances: "+err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.c.setInstances(slotOf(r.Context()), m)
	w.WriteHeader(http.StatusNoContent)
}
