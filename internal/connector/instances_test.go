package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/testnet"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// instanceCloud is a fake cloud instance that accepts every tunnel (says
// hello) and counts the live ones.
type instanceCloud struct {
	*fakeCloud
	mu   sync.Mutex
	live map[*tunnel.Client]bool
}

// newInstance starts a fake instance with the same CA and certificate
// (for the cloud's name, cloud.localhost) as base.
func newInstance(t *testing.T, base *fakeCloud) *instanceCloud {
	t.Helper()
	f := newFakeCloud(t)
	if base != nil {
		f.ca, f.cert = base.ca, base.cert
	}
	f.start(t)
	ic := &instanceCloud{fakeCloud: f, live: map[*tunnel.Client]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case c := <-f.conns:
				req, _ := http.NewRequestWithContext(ctx, "GET", "https://connector"+tunnel.PathHello, nil)
				if resp, err := c.RoundTrip(req); err == nil {
					resp.Body.Close()
				}
				ic.mu.Lock()
				ic.live[c] = true
				ic.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ic
}

// up counts its tunnels that are open and take requests.
func (ic *instanceCloud) up() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	n := 0
	for c := range ic.live {
		if c.Available() {
			n++
		}
	}
	return n
}

// sendList pushes an instances list on every open tunnel of ic.
func (ic *instanceCloud) sendList(t *testing.T, m tunnel.Instances) { ic.send(t, m, false) }

// send pushes an instances list on every open tunnel of ic, or on one.
func (ic *instanceCloud) send(t *testing.T, m tunnel.Instances, one bool) {
	t.Helper()
	js, _ := json.Marshal(m)
	ic.mu.Lock()
	var cs []*tunnel.Client
	for c := range ic.live {
		if c.Available() {
			cs = append(cs, c)
		}
	}
	ic.mu.Unlock()
	if len(cs) == 0 {
		t.Fatal("no tunnel to send the list on")
	}
	if one {
		cs = cs[:1]
	}
	for _, c := range cs {
		req, _ := http.NewRequest("PUT", "https://connector"+tunnel.PathInstances, bytes.NewReader(js))
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("instances push = %d", resp.StatusCode)
		}
	}
}

func countEvents(t *testing.T, dir string, id int) int {
	t.Helper()
	raw, _ := os.ReadFile(filepath.Join(dir, statedir.EventsFile))
	return strings.Count(string(raw), fmt.Sprintf(`"id":%d,`, id))
}

// TestKeepsTunnelsToEveryInstance: a connector that learns the cloud's
// instances keeps Connections tunnels to each at its advertise address
// (verifying the cloud's name, not the address), stops its tunnels
// through the cloud's name once one is up, drops a vanished instance with
// one information event, and takes a new one.
func TestKeepsTunnelsToEveryInstance(t *testing.T) {
	name := newInstance(t, nil) // the cloud's name: a load balancer's address, say
	a := newInstance(t, name.fakeCloud)
	b := newInstance(t, name.fakeCloud)
	dir := t.TempDir()
	writeTestState(t, dir, name.fakeCloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	c, _ := runConnector(t, dir)

	testnet.WaitUntil(t, "2 tunnels through the cloud's name", func() bool { return name.up() == 2 })
	list := tunnel.Instances{Version: "v1", Self: "a", Instances: []tunnel.Instance{{ID: "a", Advertise: a.addr}, {ID: "b", Advertise: b.addr}}}
	name.send(t, list, true) // its tunnels close once one to an instance is up
	testnet.WaitUntil(t, "2 tunnels to each instance", func() bool { return a.up() == 2 && b.up() == 2 })
	testnet.WaitUntil(t, "the tunnels through the cloud's name closed", func() bool { return name.up() == 0 })
	testnet.WaitUntil(t, "the connector reports both instances", func() bool {
		got := c.Instances()
		return len(got) == 2 && got[0] == tunnel.ConnectedInstance{ID: "a", Advertise: a.addr, Tunnels: 2} &&
			got[1] == tunnel.ConnectedInstance{ID: "b", Advertise: b.addr, Tunnels: 2}
	})
	if n := countEvents(t, dir, 1206); n != 2 {
		t.Errorf("%d events 1206, want 2 (one per instance)", n)
	}

	// b vanishes from the list: its tunnels close, one event 1207.
	a.sendList(t, tunnel.Instances{Version: "v2", Self: "a", Instances: []tunnel.Instance{{ID: "a", Advertise: a.addr}}})
	testnet.WaitUntil(t, "b's tunnels closed", func() bool { return b.up() == 0 })
	testnet.WaitUntil(t, "one event 1207", func() bool { return countEvents(t, dir, 1207) == 1 })
	if a.up() != 2 {
		t.Errorf("a has %d tunnels, want 2", a.up())
	}

	// a new instance c joins.
	cc := newInstance(t, name.fakeCloud)
	a.sendList(t, tunnel.Instances{Version: "v3", Self: "a", Instances: []tunnel.Instance{{ID: "a", Advertise: a.addr}, {ID: "c", Advertise: cc.addr}}})
	testnet.WaitUntil(t, "2 tunnels to the new instance", func() bool { return cc.up() == 2 })
	for _, id := range []int{1203, 1208, 1209} {
		if n := countEvents(t, dir, id); n != 0 {
			t.Errorf("%d events %d, want none", n, id)
		}
	}
}

// TestUnreachableInstanceWarnsOnce: an instance listed but not reachable
// costs one warning (1208), however many attempts fail, and the other
// instance keeps the connector served; when no instance can be reached,
// the connector goes back through the cloud's name (1209).
func TestUnreachableInstanceWarnsOnce(t *testing.T) {
	name := newInstance(t, nil)
	a := newInstance(t, name.fakeCloud)
	// dead accepts TCP and closes at once: every attempt fails, counted.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int64
	go func() {
		for {
			c, err := dead.Accept()
			if err != nil {
				return
			}
			attempts.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { dead.Close() })
	dir := t.TempDir()
	writeTestState(t, dir, name.fakeCloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	runConnector(t, dir)
	testnet.WaitUntil(t, "2 tunnels through the cloud's name", func() bool { return name.up() == 2 })
	name.send(t, tunnel.Instances{Version: "v1", Instances: []tunnel.Instance{{ID: "a", Advertise: a.addr}, {ID: "dead", Advertise: dead.Addr().String()}}}, true) // its tunnels close once one to an instance is up
	testnet.WaitUntil(t, "2 tunnels to a", func() bool { return a.up() == 2 })
	testnet.WaitUntil(t, "the tunnels through the cloud's name closed", func() bool { return name.up() == 0 })
	testnet.WaitUntil(t, "one event 1208", func() bool { return countEvents(t, dir, 1208) == 1 })
	testnet.WaitUntil(t, "10 failed attempts", func() bool { return attempts.Load() >= 10 })
	if n := countEvents(t, dir, 1208); n != 1 {
		t.Errorf("%d events 1208, want 1", n)
	}

	// a goes away without a new list: the connector falls back on the name.
	a.ln.Close()
	a.mu.Lock()
	for c := range a.live {
		c.Close()
	}
	a.mu.Unlock()
	testnet.WaitUntil(t, "tunnels through the cloud's name again", func() bool { return name.up() == 2 })
	if n := countEvents(t, dir, 1209); n != 1 {
		t.Errorf("%d events 1209, want 1", n)
	}
}

// TestInstancesListsAreMerged: the instances whose lists differ for a
// moment (one just started and knows only itself) do not make the
// connector drop tunnels: it keeps the union of the lists of the
// instances it is connected to, and drops an instance once none lists it.
func TestInstancesListsAreMerged(t *testing.T) {
	name := newInstance(t, nil)
	a := newInstance(t, name.fakeCloud)
	b := newInstance(t, name.fakeCloud)
	dir := t.TempDir()
	writeTestState(t, dir, name.fakeCloud, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	c, _ := runConnector(t, dir)
	testnet.WaitUntil(t, "2 tunnels through the cloud's name", func() bool { return name.up() == 2 })
	both := []tunnel.Instance{{ID: "a", Advertise: a.addr}, {ID: "b", Advertise: b.addr}}
	name.send(t, tunnel.Instances{Version: "v1", Self: "a", Instances: both}, true) // its tunnels close once one to an instance is up
	testnet.WaitUntil(t, "2 tunnels to each instance", func() bool { return a.up() == 2 && b.up() == 2 && name.up() == 0 })

	// b, just restarted, knows only itself: a stays.
	b.sendList(t, tunnel.Instances{Version: "vb", Self: "b", Instances: both[1:]})
	// a no longer lists b, but b lists itself: both stay.
	a.sendList(t, tunnel.Instances{Version: "va", Self: "a", Instances: both[:1]})
	if got := c.instancesNow(); len(got) != 2 {
		t.Fatalf("instances %v, want a and b", got)
	}
	if n := countEvents(t, dir, 1207); n != 0 {
		t.Fatalf("%d events 1207 while each instance was still listed", n)
	}
	// b's own list drops b (it is going away): none lists it any more.
	b.send(t, tunnel.Instances{Version: "vb2", Self: "b", Instances: both[:1]}, true) // its tunnels close at once
	testnet.WaitUntil(t, "b's tunnels closed", func() bool { return b.up() == 0 })
	if a.up() != 2 || countEvents(t, dir, 1207) != 1 {
		t.Errorf("a has %d tunnels and %d events 1207; want 2 and 1", a.up(), countEvents(t, dir, 1207))
	}
}
