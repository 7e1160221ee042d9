package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/tunnel"
	"github.com/sallyport/sallyport/internal/version"
)

// The simulated connectors of -scale run in "connector hosts": child
// processes (the bench's own executable with -connector-host) that each
// run a share of the registered state directories with the product's own
// connector.New and Run — a process cannot hold 10 000 connectors, since
// each keeps its tunnel(s) and its event log open and a process may open
// at most `ulimit -Hn` files (20 000 here, and raising it needs
// CAP_SYS_RESOURCE). connectorsPerHost keeps every host well below it,
// with room for its share of the WebSockets' backend connections.
//
// Protocol, one JSON line each way: the first line on its standard input
// is a hostSpec; it answers {"kind":"ready"}. Then "start" starts its
// connectors and it reports a hostReport every
// second, at spec.Rate connectors a second; "mem" answers a hostReport with its heap after a garbage
// collection (kind "mem"). The end of its standard input stops them all.

// connectorsPerHost bounds the connectors of one host process.
const connectorsPerHost = 3000

type hostSpec struct {
	Dirs    []string `json:"dirs"`
	First   int      `json:"first"` // index of Dirs[0], for host names
	Tunnels int      `json:"tunnels"`
	Rate    float64  `json:"rate"`    // connectors started a second by this host
	Sources []string `json:"sources"` // loopback source addresses of the tunnels
}

type hostReport struct {
	Kind       string `json:"kind,omitempty"` // "ready", "progress" or "mem"
	Started    int    `json:"started"`
	Up         int    `json:"up"`   // tunnels up
	Full       int    `json:"full"` // connectors with all their tunnels up
	Heap       int64  `json:"heap,omitempty"`
	Goroutines int    `json:"goroutines,omitempty"`
	Err        string `json:"error,omitempty"` // why a connector could not start
}

// hostsFor is the number of connector hosts for n connectors.
func hostsFor(n int) int {
	return max(1, (n+connectorsPerHost-1)/connectorsPerHost)
}

func serveConnectorHost() error {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 16<<20)
	if !in.Scan() {
		return fmt.Errorf("no spec on standard input")
	}
	var spec hostSpec
	if err := json.Unmarshal(in.Bytes(), &spec); err != nil {
		return err
	}
	var srcs []netip.Addr
	for _, s := range spec.Sources {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return err
		}
		srcs = append(srcs, a)
	}
	if len(srcs) == 0 {
		return fmt.Errorf("no source addresses")
	}
	var outMu sync.Mutex
	out := json.NewEncoder(os.Stdout)
	report := func(r hostReport) {
		outMu.Lock()
		defer outMu.Unlock()
		out.Encode(r)
	}
	var dialed atomic.Uint64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && cloudlink.IsLoopbackName(host) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		src := srcs[dialed.Add(1)%uint64(len(srcs))]
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		return d.DialContext(ctx, network, addr)
	}
	discard := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	var mu sync.Mutex
	var conns []*connector.Connector
	var startErr string
	state := func(kind string) hostReport {
		mu.Lock()
		defer mu.Unlock()
		r := hostReport{Kind: kind, Started: len(conns), Err: startErr}
		for _, c := range conns {
			n := c.TunnelsUp()
			r.Up += n
			if n == spec.Tunnels {
				r.Full++
			}
		}
		return r
	}
	report(hostReport{Kind: "ready"})
	var bg sync.WaitGroup
	stopTicks := make(chan struct{})
	for in.Scan() {
		switch in.Text() {
		case "start":
			t0 := time.Now()
			bg.Go(func() {
				for i, dir := range spec.Dirs {
					if ctx.Err() != nil {
						return
					}
					c, err := connector.New(connector.Config{
						Dir: dir, Connections: spec.Tunnels, Version: version.Version, Hostname: fmt.Sprintf("scale-%05d", spec.First+i),
						Tunnel: tunnel.ServerConfig{DrainTimeout: time.Second}, Dial: dial, Logger: discard,
					})
					if err != nil {
						mu.Lock()
						startErr = err.Error()
						mu.Unlock()
						return
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					running.Go(func() {
						defer c.Close()
						c.Run(ctx)
					})
					// The i-th connector starts at i/rate seconds.
					if d := time.Until(t0.Add(time.Duration(float64(i+1) / spec.Rate * float64(time.Second)))); d > 0 {
						sleep(ctx, d)
					}
				}
			})
			bg.Go(func() {
				t := time.NewTicker(time.Second)
				defer t.Stop()
				for {
					select {
					case <-stopTicks:
						return
					case <-t.C:
						report(state("progress"))
					}
				}
			})
		case "mem":
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			r := state("mem")
			r.Heap, r.Goroutines = int64(ms.HeapInuse), runtime.NumGoroutine()
			report(r)
		}
	}
	cancel()
	close(stopTicks)
	bg.Wait()
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
	}
	return nil
}

// connectorHost is a running host as the bench sees it.
type connectorHost struct {
	c    *child
	send func(string) error
	mem  chan hostReport

	mu   sync.Mutex
	last hostReport
}

// startConnectorHosts starts the hosts for dirs and waits until each has
// read its share.
func startConnectorHosts(ctx context.Context, h *harness, dirs []string, tunnels int, rate float64) ([]*connectorHost, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var srcs []string
	for _, a := range sourceRange(3, scaleSources) {
		srcs = append(srcs, a.String())
	}
	n := hostsFor(len(dirs))
	per := (len(dirs) + n - 1) / n
	var hosts []*connectorHost
	for i := 0; i < len(dirs); i += per {
		share := dirs[i:min(i+per, len(dirs))]
		c, lines, send, err := startLineChild(h, fmt.Sprintf("connector host %d", len(hosts)+1), self, "-connector-host")
		if err != nil {
			return nil, err
		}
		ch := &connectorHost{c: c, send: send, mem: make(chan hostReport, 1)}
		hosts = append(hosts, ch)
		ready := make(chan struct{})
		go func() {
			once := sync.OnceFunc(func() { close(ready) })
			defer once()
			for l := range lines {
				var r hostReport
				if json.Unmarshal([]byte(l), &r) != nil {
					continue
				}
				switch r.Kind {
				case "ready":
					once()
				case "mem":
					ch.mem <- r
					fallthrough
				default:
					ch.mu.Lock()
					ch.last = r
					ch.mu.Unlock()
				}
			}
		}()
		spec, _ := json.Marshal(hostSpec{Dirs: share, First: i, Tunnels: tunnels, Sources: srcs, Rate: rate / float64(n)})
		if err := send(string(spec)); err != nil {
			return nil, err
		}
		select {
		case <-ready:
			if c.exited() {
				return nil, fmt.Errorf("connector host %d exited: %s", len(hosts), c.tail(10))
			}
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("connector host %d did not start within 30 s: %s", len(hosts), c.tail(10))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return hosts, nil
}

// hostsState sums the hosts' last reports.
func hostsState(hosts []*connectorHost) hostReport {
	var t hostReport
	for _, ch := range hosts {
		ch.mu.Lock()
		r := ch.last
		ch.mu.Unlock()
		t.Started += r.Started
		t.Up += r.Up
		t.Full += r.Full
		if t.Err == "" {
			t.Err = r.Err
		}
	}
	return t
}

// hostsMem is the hosts' memory together: RSS (once steady), heap after a
// garbage collection, goroutines.
func hostsMem(ctx context.Context, hosts []*connectorHost, settle time.Duration) procMem {
	var pids []int
	for _, ch := range hosts {
		pids = append(pids, ch.c.pid())
	}
	var m procMem
	for _, rss := range settleRSS(ctx, pids, settle, 5*settle) {
		m.rss += rss
	}
	for _, ch := range hosts {
		if ch.send("mem") != nil {
			continue
		}
		select {
		case r := <-ch.mem:
			m.heap += r.Heap
			m.goroutines += r.Goroutines
		case <-time.After(time.Minute):
		case <-ctx.Done():
		}
	}
	return m
}

func hostsCPU(hosts []*connectorHost) time.Duration {
	var d time.Duration
	for _, ch := range hosts {
		d += readProc(ch.c.pid()).cpu
	}
	return d
}
