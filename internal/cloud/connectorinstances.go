package cloud

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Connectors and instances (docs/scale-out.md): every instance tells the
// connectors on its tunnels which instances are live and where they are
// reached (cloud serve --advertise), when a tunnel comes up and whenever
// the list changes; the connectors keep tunnels to each. An instance
// serves requests only through its own tunnels (the registry is per
// instance), so any instance serves any application of any tenant once
// the connectors of its group are tunnelled to it.

// announceEvery is how often an instance looks at the live instances and
// tells its connectors of a change: well within the 30 s a new instance
// has to get its tunnels.
var announceEvery = 2 * time.Second

// instancesMessage builds what connectors are told: the live instances
// with an advertise address, by id; an empty list (version "") when there
// are none (a single instance, or instances without --advertise).
func (s *Server) instancesMessage() *tunnel.Instances {
	m := &tunnel.Instances{Self: s.InstanceID(), Instances: []tunnel.Instance{}}
	for _, in := range s.LiveInstances() {
		if in.Advertise != "" && in.ID != "" {
			m.Instances = append(m.Instances, tunnel.Instance{ID: in.ID, Advertise: in.Advertise})
		}
	}
	if len(m.Instances) == 0 {
		return m
	}
	sort.Slice(m.Instances, func(i, j int) bool { return m.Instances[i].ID < m.Instances[j].ID })
	if len(m.Instances) > tunnel.MaxInstances {
		m.Instances = m.Instances[:tunnel.MaxInstances]
	}
	h := sha256.New()
	for _, in := range m.Instances {
		fmt.Fprintf(h, "%s=%s\n", in.ID, in.Advertise)
	}
	m.Version = hex.EncodeToString(h.Sum(nil))[:16]
	return m
}

// announceInstances keeps the connectors told of the live instances until
// ctx is done: each tick, a changed list goes to every tunnel (event
// 2980), and a tunnel that missed the current one gets it.
func (s *Server) announceInstances(ctx context.Context) {
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	for {
		// Not before this instance has read the others' heartbeats: a
		// list of itself alone would be a wrong one.
		if s.inst.live.Load() != nil {
			m := s.instancesMessage()
			if old := s.registry.instances.Swap(m); old == nil || old.Version != m.Version {
				if old != nil || m.Version != "" {
					ids := make([]string, 0, len(m.Instances))
					for _, in := range m.Instances {
						ids = append(ids, in.ID+" at "+in.Advertise)
					}
					s.events.Event(eventlog.InstancesChanged, fmt.Sprintf("The cloud's live instances changed: %d reached directly by connectors (%s); connectors are told on their tunnels",
						len(m.Instances), dashIfNone(strings.Join(ids, ", "))), "instances", fmt.Sprint(len(m.Instances)))
				}
			}
			s.registry.pushInstancesAll(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func dashIfNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ensureInstances sends the current list on a tunnel that does not hold
// it yet. A connector that predates the message (404) is not asked again.
func (r *registry) ensureInstances(ctx context.Context, lt *liveTunnel) error {
	m := r.instances.Load()
	if m == nil {
		return nil
	}
	lt.pushMu.Lock()
	defer lt.pushMu.Unlock()
	if lt.instPushed == m.Version {
		return nil
	}
	js, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "https://connector"+tunnel.PathInstances, bytes.NewReader(js))
	resp, err := lt.c.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusNotFound: // taken, or an older connector
		lt.instPushed = m.Version
		return nil
	}
	return fmt.Errorf("connector refused the list of instances: %s", resp.Status)
}

// pushInstancesAll sends the current list to every tunnel that does not
// hold it, in the background.
func (r *registry) pushInstancesAll(ctx context.Context) {
	m := r.instances.Load()
	if m == nil {
		return
	}
	for _, lt := range r.allTunnels() {
		lt.pushMu.Lock()
		done := lt.instPushed == m.Version
		lt.pushMu.Unlock()
		if done {
			continue
		}
		r.pushes.Add(1)
		go func() {
			defer r.pushes.Done()
			if err := r.ensureInstances(context.WithoutCancel(ctx), lt); err != nil {
				r.log.Debug("sending the list of instances failed", "connector", lt.conn.ID, "error", err.Error())
			}
		}()
	}
}

// connectedCacheFor is how long a connector's answer about its instances
// is reused by the admin API.
const connectedCacheFor = 5 * time.Second

// connectedInstances asks a live connector which instances it holds
// tunnels to (GET tunnel.PathInstances on one of its tunnels here), with
// a short cache. ok is false when it is not live here, or did not answer
// (an older connector): then it counts this instance only.
func (r *registry) connectedInstances(ctx context.Context, id string) ([]tunnel.ConnectedInstance, bool) {
	r.mu.Lock()
	lc := r.connectors[id]
	var lt *liveTunnel
	if lc != nil {
		lt = leastBusyTunnel(lc.tunnels)
	}
	r.mu.Unlock()
	if lt == nil {
		return nil, false
	}
	lc.instMu.Lock()
	defer lc.instMu.Unlock()
	if time.Since(lc.instAt) < connectedCacheFor {
		return lc.instCached, lc.instOK
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://connector"+tunnel.PathInstances, nil)
	var st tunnel.InstancesStatus
	ok := false
	if resp, err := lt.c.RoundTrip(req); err == nil {
		if resp.StatusCode == http.StatusOK {
			ok = json.NewDecoder(io.LimitReader(resp.Body, 256<<10)).Decode(&st) == nil
		}
		resp.Body.Close()
	}
	if len(st.Instances) > tunnel.MaxInstances+1 {
		st.Instances = st.Instances[:tunnel.MaxInstances+1]
	}
	lc.instCached, lc.instOK, lc.instAt = st.Instances, ok, time.Now()
	return st.Instances, ok
}

// withInstances fills in the instances of the live connectors of a list,
// asking them at once (at most 16 at a time).
func (s *Server) withInstances(ctx context.Context, cs []api.Connector) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range cs {
		if cs[i].Tunnels == 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			got, ok := s.registry.connectedInstances(ctx, cs[i].ID)
			if !ok {
				return
			}
			n := 0
			for _, ci := range got {
				cs[i].ConnectedInstances = append(cs[i].ConnectedInstances, api.ConnectorInstance{ID: ci.ID, Advertise: ci.Advertise, Tunnels: ci.Tunnels})
				if ci.Tunnels > 0 {
					n++
				}
			}
			cs[i].Instances = max(n, 1) // it is live here at least
		}()
	}
	wg.Wait()
}
