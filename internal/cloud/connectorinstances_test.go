package cloud

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

func TestInstancesMessage(t *testing.T) {
	s := newTestServer(t)
	set := func(ins ...store.Instance) { s.inst.live.Store(&ins) }
	self := s.InstanceID()

	set(store.Instance{ID: self})
	if m := s.instancesMessage(); m.Version != "" || len(m.Instances) != 0 || m.Self != self {
		t.Fatalf("a single instance without --advertise: %+v, want an empty list", m)
	}
	set(store.Instance{ID: "b", Advertise: "10.0.0.12:443"}, store.Instance{ID: self}, store.Instance{ID: "a", Advertise: "10.0.0.11:443"})
	m1 := s.instancesMessage()
	if m1.Version == "" || len(m1.Instances) != 2 || m1.Instances[0].ID != "a" || m1.Instances[1].ID != "b" {
		t.Fatalf("instances %+v: want a and b (by id), not the one without an address", m1)
	}
	set(store.Instance{ID: "a", Advertise: "10.0.0.11:443"}, store.Instance{ID: "b", Advertise: "10.0.0.12:443"})
	if m := s.instancesMessage(); m.Version != m1.Version {
		t.Errorf("the same list in another order has another version: %s, %s", m.Version, m1.Version)
	}
	set(store.Instance{ID: "a", Advertise: "10.0.0.11:443"}, store.Instance{ID: "b", Advertise: "10.0.0.99:443"})
	if m := s.instancesMessage(); m.Version == m1.Version {
		t.Error("an address changed but the version did not")
	}
}

// instConnector is a connector end of a tunnel over a pipe that counts
// the lists it gets and answers GET instances (or 404, an older one).
type instConnector struct {
	old   bool
	puts  atomic.Int64
	gets  atomic.Int64
	mu    sync.Mutex
	last  tunnel.Instances
	stops []func()
}

func (ic *instConnector) addTunnel(t *testing.T, reg *registry, id string) {
	t.Helper()
	cconn, sconn := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tunnel.Serve(ctx, cconn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == tunnel.PathInstances && ic.old:
				http.NotFound(w, r)
			case r.URL.Path == tunnel.PathInstances && r.Method == http.MethodPut:
				m, err := tunnel.ParseInstances(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				ic.mu.Lock()
				ic.last = m
				ic.mu.Unlock()
				ic.puts.Add(1)
				w.WriteHeader(http.StatusNoContent)
			case r.URL.Path == tunnel.PathInstances:
				ic.gets.Add(1)
				json.NewEncoder(w).Encode(tunnel.InstancesStatus{Instances: []tunnel.ConnectedInstance{
					{ID: "a", Advertise: "10.0.0.11:443", Tunnels: 2}, {ID: "b", Advertise: "10.0.0.12:443", Tunnels: 2}}})
			default:
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}
		}), tunnel.ServerConfig{})
	}()
	c, err := tunnel.NewClient(sconn, tunnel.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reg.add(&liveTunnel{c: c}, id, "t_test", testGroupID, "pipe", tunnel.Hello{})
	ic.stops = append(ic.stops, func() { c.Close(); cancel(); <-done })
}

// TestInstancesPushAndAsk: the list goes once to each tunnel, a new
// version goes again, an older connector (404) is not asked twice; the
// admin API's view asks the connector, with a cache, and counts a
// connector that does not say on this instance only.
func TestInstancesPushAndAsk(t *testing.T) {
	table := &routeTable{configs: map[string]*tunnel.Config{testGroupID: {Version: "v1", Group: "G"}}}
	reg := newRegistry(slog.New(slog.DiscardHandler), 100, func() *routeTable { return table }, func(context.Context) error { return nil })
	cur, old := &instConnector{}, &instConnector{old: true}
	for range 2 {
		cur.addTunnel(t, reg, "c_new")
		old.addTunnel(t, reg, "c_old")
	}
	defer func() {
		for _, f := range append(cur.stops, old.stops...) {
			f()
		}
		reg.wait()
	}()
	ctx := context.Background()

	m := &tunnel.Instances{Version: "v1", Self: "a", Instances: []tunnel.Instance{{ID: "a", Advertise: "10.0.0.11:443"}, {ID: "b", Advertise: "10.0.0.12:443"}}}
	reg.instances.Store(m)
	reg.pushInstancesAll(ctx)
	reg.wait()
	reg.pushInstancesAll(ctx) // nothing new
	reg.wait()
	if n := cur.puts.Load(); n != 2 {
		t.Errorf("%d lists sent to the connector's 2 tunnels, want 2", n)
	}
	cur.mu.Lock()
	if cur.last.Self != "a" || len(cur.last.Instances) != 2 {
		t.Errorf("the connector got %+v", cur.last)
	}
	cur.mu.Unlock()
	for _, lt := range reg.allTunnels() {
		if lt.instPushed != "v1" {
			t.Errorf("tunnel of %s holds list %q, want v1 (an older connector is not asked again)", lt.conn.ID, lt.instPushed)
		}
	}
	reg.instances.Store(&tunnel.Instances{Version: "v2", Self: "a", Instances: m.Instances[:1]})
	reg.pushInstancesAll(ctx)
	reg.wait()
	testnet.WaitUntil(t, "the new list on both tunnels", func() bool { return cur.puts.Load() == 4 })

	s := &Server{registry: reg}
	cs := []api.Connector{{ID: "c_new", Tunnels: 2, Instances: 1}, {ID: "c_old", Tunnels: 2, Instances: 1}, {ID: "c_gone", Instances: 0}}
	s.withInstances(ctx, cs)
	if cs[0].Instances != 2 || len(cs[0].ConnectedInstances) != 2 || cs[0].ConnectedInstances[1] != (api.ConnectorInstance{ID: "b", Advertise: "10.0.0.12:443", Tunnels: 2}) {
		t.Errorf("the connector that says: %+v", cs[0])
	}
	if cs[1].Instances != 1 || cs[1].ConnectedInstances != nil {
		t.Errorf("the older connector: %+v, want 1 instance (this one) and no list", cs[1])
	}
	if cs[2].Instances != 0 || cs[2].ConnectedInstances != nil {
		t.Errorf("a connector without a tunnel here: %+v", cs[2])
	}
	s.withInstances(ctx, []api.Connector{{ID: "c_new", Tunnels: 2}})
	if n := cur.gets.Load(); n != 1 {
		t.Errorf("the connector was asked %d times within %s, want once (cached)", n, connectedCacheFor)
	}
}
