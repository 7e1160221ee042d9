package cloud

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// fakeGroup is a registry with connectors made of real tunnel connections
// over in-memory pipes; each connector answers with its own id.
type fakeGroup struct {
	reg     *registry
	release chan struct{} // closed to let blocked requests finish
	stops   []func()
	clients map[string][]*tunnel.Client
}

const testGroupID = "g_test"

func newFakeGroup(t *testing.T, limit int, ids ...string) *fakeGroup {
	t.Helper()
	table := &routeTable{configs: map[string]*tunnel.Config{testGroupID: {Version: "v1", Group: "G"}}}
	f := &fakeGroup{release: make(chan struct{}), clients: map[string][]*tunnel.Client{}}
	f.reg = newRegistry(slog.New(slog.DiscardHandler), limit, func() *routeTable { return table },
		func(context.Context) error { return nil })
	for _, id := range ids {
		for range 2 {
			f.addTunnel(t, id)
		}
	}
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
		for _, stop := range f.stops {
			stop()
		}
		f.reg.wait()
	})
	return f
}

func (f *fakeGroup) addTunnel(t *testing.T, id string) {
	cconn, sconn := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tunnel.Serve(ctx, cconn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == tunnel.PathConfig {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if r.URL.Path == "/block" {
				<-f.release
			}
			io.WriteString(w, id)
		}), tunnel.ServerConfig{})
	}()
	c, err := tunnel.NewClient(sconn, tunnel.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f.reg.add(&liveTunnel{c: c}, id, "t_test", testGroupID, "pipe", tunnel.Hello{})
	f.clients[id] = append(f.clients[id], c)
	f.stops = append(f.stops, func() { c.Close(); cancel(); <-done })
}

var testEdgeApp = &edge.App{ID: "a_1", Name: "web", GroupID: testGroupID, Group: "G", Tenant: "contoso.com"}

func (f *fakeGroup) get(t *testing.T, ctx context.Context, path string) (string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://web.test"+path, nil)
	resp, err := f.reg.RoundTrip(testEdgeApp, req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got := resp.Header.Get(tunnel.HeaderConnector); got != string(b) {
		t.Errorf("HeaderConnector = %q, but %q answered", got, b)
	}
	return string(b), nil
}

// TestSpread: with equal load, requests spread evenly (no connector under
// half its fair share over 3000 requests).
func TestSpread(t *testing.T) {
	f := newFakeGroup(t, 1000, "c_a", "c_b", "c_c")
	counts := map[string]int{}
	for range 3000 {
		id, err := f.get(t, context.Background(), "/")
		if err != nil {
			t.Fatal(err)
		}
		counts[id]++
	}
	for _, id := range []string{"c_a", "c_b", "c_c"} {
		if counts[id] < 500 {
			t.Errorf("connector %s served %d of 3000 requests (counts %v), under half its fair share", id, counts[id], counts)
		}
	}
}

// TestLeastOutstanding: a connector busy with requests in flight is
// avoided while others are idle.
func TestLeastOutstanding(t *testing.T) {
	f := newFakeGroup(t, 1000, "c_a", "c_b")
	// Hold two requests on whichever connectors they land on.
	busy := make(chan string, 2)
	for range 2 {
		lt, _ := f.reg.pick(testGroupID, "", nil)
		busy <- lt.conn.ID
	}
	close(busy)
	held := map[string]int{}
	for id := range busy {
		held[id]++
	}
	if held["c_a"] != 1 || held["c_b"] != 1 {
		t.Fatalf("two reservations on idle connectors went %v, want one each", held)
	}
	// Now c_a gets one more reservation; the next pick must be c_b.
	f.reg.connectors["c_a"].active.Add(1)
	if lt, _ := f.reg.pick(testGroupID, "", nil); lt.conn.ID != "c_b" {
		t.Errorf("picked %s, want the less busy c_b", lt.conn.ID)
	}
}

func TestAffinity(t *testing.T) {
	f := newFakeGroup(t, 1000, "c_a", "c_b", "c_c")
	ctx := edge.WithPreferredConnector(context.Background(), "c_b")
	for range 50 {
		if id, err := f.get(t, ctx, "/"); err != nil || id != "c_b" {
			t.Fatalf("got %q, %v; want the preferred c_b", id, err)
		}
	}
	// The preferred connector goes away: requests move.
	for _, c := range f.clients["c_b"] {
		c.Close()
	}
	for range 20 {
		id, err := f.get(t, ctx, "/")
		if err != nil || id == "c_b" {
			t.Fatalf("got %q, %v after c_b closed", id, err)
		}
	}
}

func TestSaturationAndNoConnector(t *testing.T) {
	f := newFakeGroup(t, 1, "c_a")
	respc := make(chan error, 1)
	go func() { _, err := f.get(t, context.Background(), "/block"); respc <- err }()
	// Wait until the first request holds the only slot.
	deadline := time.Now().Add(10 * time.Second)
	for f.reg.connectors["c_a"].active.Load() == 0 {
		select {
		case err := <-respc:
			t.Fatalf("blocked request returned early: %v", err)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached the connector")
		}
	}
	_, err := f.get(t, context.Background(), "/")
	if p, ok := problem.As(err); !ok || p.Code != "connectors_saturated" || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want 503 connectors_saturated", err)
	}
	close(f.release)
	if err := <-respc; err != nil {
		t.Fatal(err)
	}
	if _, err := f.get(t, context.Background(), "/"); err != nil {
		t.Fatalf("after release: %v", err)
	}
	for _, c := range f.clients["c_a"] {
		c.Close()
	}
	_, err = f.get(t, context.Background(), "/")
	if p, ok := problem.As(err); !ok || p.Code != "no_connector" || p.Status != http.StatusBadGateway {
		t.Fatalf("err = %v, want 502 no_connector", err)
	}
}

// closeCounter is a body that counts Close calls and drains like a
// server's request body does when closed.
type closeCounter struct {
	r      io.Reader
	closed int
}

func (c *closeCounter) Read(p []byte) (int, error) {
	if c.closed > 0 {
		return 0, http.ErrBodyReadAfterClose
	}
	return c.r.Read(p)
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// TestRetryBody: a failed attempt that never read the body cannot close it
// (the next attempt sends it whole); once read, it is used up and Close
// goes through.
func TestRetryBody(t *testing.T) {
	src := &closeCounter{r: strings.NewReader("the whole body")}
	b := &retryBody{body: src}
	if err := b.Close(); err != nil || src.closed != 0 || b.touched() {
		t.Fatalf("Close before any read: err %v, closed %d, touched %v; want it ignored", err, src.closed, b.touched())
	}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "the whole body" || !b.touched() {
		t.Fatalf("read after an ignored Close: %q, %v, touched %v", got, err, b.touched())
	}
	if b.Close(); src.closed != 1 {
		t.Fatalf("Close after a read did not reach the body (closed %d)", src.closed)
	}
}
