package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// -tcp: private access's transport (raw tcp streams, docs/protocol.md
// §15.5) beside a direct TCP connection, in one process on loopback:
//
//	direct:    client ─TCP─▶ backend
//	sallyport: client ─TCP─▶ local listener ─OpenRaw─▶ tunnel (TLS 1.3,
//	           sallyport-connector/2) ─▶ ServeSession ─TCP─▶ backend
//
// The local listener stands for 'sallyport access tcp' and the cloud's
// access endpoint (one hop fewer than in production: the client's own TLS
// leg to the cloud is not in the path); the connector's end is
// tunnel.ServeSession with a dialer that connects to the backend (the
// connector's segment check, a map lookup and a prefix test, is not).
// Measured: download and upload throughput (-xfer-c connections moving
// -size each, repeated for -duration), and the connection setup rate (-c
// clients each connecting, exchanging one byte, closing, for -duration).

// tcpBackend serves the -tcp measurements: per connection one command
// byte — 'D' (then 8 bytes n: it sends n bytes and closes), 'U' (it reads
// to the end and answers the count, 8 bytes), 'P' (it answers one byte).
func tcpBackend() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveTCPBench(c)
		}
	}()
	return ln, nil
}

var tcpBenchBuf = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func serveTCPBench(c net.Conn) {
	defer c.Close()
	var cmd [9]byte
	if _, err := io.ReadFull(c, cmd[:1]); err != nil {
		return
	}
	switch cmd[0] {
	case 'P':
		c.Write(cmd[:1])
	case 'D':
		if _, err := io.ReadFull(c, cmd[1:]); err != nil {
			return
		}
		n := int64(0)
		for i := 1; i < 9; i++ {
			n = n<<8 | int64(cmd[i])
		}
		b := tcpBenchBuf.Get().(*[]byte)
		defer tcpBenchBuf.Put(b)
		for n > 0 {
			k, err := c.Write((*b)[:min(n, int64(len(*b)))])
			if err != nil {
				return
			}
			n -= int64(k)
		}
	case 'U':
		b := tcpBenchBuf.Get().(*[]byte)
		n, _ := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{c}, *b)
		tcpBenchBuf.Put(b)
		var out [8]byte
		for i := 7; i >= 0; i-- {
			out[i] = byte(n)
			n >>= 8
		}
		c.Write(out[:])
	}
}

// tcpTunnel is the sallyport path: a listener whose connections go
// through a version 2 tunnel to the backend.
type tcpTunnel struct {
	ln     net.Listener
	client *tunnel.Client
	served chan struct{}
	cancel context.CancelFunc
}

func startTCPTunnel(backend string) (*tcpTunnel, error) {
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer tl.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ac := make(chan accepted, 1)
	go func() {
		c, err := tl.Accept()
		ac <- accepted{c, err}
	}()
	// The connector dials the cloud, as in production.
	raw, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		return nil, err
	}
	a := <-ac
	if a.err != nil {
		raw.Close()
		return nil, a.err
	}
	connEnd := tls.Client(tunnel.NewBatchConn(raw), &tls.Config{InsecureSkipVerify: true, ServerName: "bare.test",
		NextProtos: []string{tunnel.ALPN2}, MinVersion: tls.VersionTLS13})
	cloudEnd := tls.Server(tunnel.NewBatchConn(a.c), &tls.Config{Certificates: []tls.Certificate{cert},
		NextProtos: []string{tunnel.ALPN2}, MinVersion: tls.VersionTLS13})
	errc := make(chan error, 1)
	go func() { errc <- cloudEnd.Handshake() }()
	if err := connEnd.Handshake(); err != nil {
		return nil, err
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	t := &tcpTunnel{served: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go func() {
		defer close(t.served)
		tunnel.ServeSession(ctx, connEnd, dialAll{}, tunnel.ServerConfig{})
	}()
	if t.client, err = tunnel.NewClient(cloudEnd, tunnel.ClientConfig{}); err != nil {
		cancel()
		return nil, err
	}
	t.client.UseOpenWindows() // as the cloud does with a current connector
	if t.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.close()
		return nil, err
	}
	go func() {
		for {
			c, err := t.ln.Accept()
			if err != nil {
				return
			}
			go t.relay(c, backend)
		}
	}()
	return t, nil
}

// relay joins an accepted connection to a raw stream to dest, both
// directions ending as they end (half-close).
func (t *tcpTunnel) relay(c net.Conn, dest string) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	rc, err := t.client.OpenRaw(ctx, "tcp", "a_bench", dest, "bench")
	cancel()
	if err != nil {
		return
	}
	defer rc.Close()
	done := make(chan struct{})
	go func() {
		copyPooled(rc, c)
		rc.CloseWrite()
		close(done)
	}()
	copyPooled(c, rc)
	closeWrite(c)
	<-done
}

func (t *tcpTunnel) close() {
	if t.ln != nil {
		t.ln.Close()
	}
	t.client.Close()
	t.cancel()
	<-t.served
}

// dialAll is the connector's end: no HTTP, raw streams dialled as asked.
type dialAll struct{}

func (dialAll) ServeHTTP(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }

func (dialAll) DialRaw(ctx context.Context, req tunnel.RawRequest) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, req.Network, req.Dest)
}

// tcpResult is one path's figures.
type tcpResult struct {
	down, up       float64 // MB/s
	setups         float64 // connections a second
	cpuDown, cpuUp float64 // CPU seconds of the path's processes per GB moved (-1: not known)
	cpuSetup       float64 // CPU milliseconds of the path's processes per connection
}

// measureTCP measures the path whose listener is at addr; pids are its
// processes (none: their CPU time is not known).
func measureTCP(ctx context.Context, addr string, pids []int, o *options) (tcpResult, error) {
	r := tcpResult{cpuDown: -1, cpuUp: -1, cpuSetup: -1}
	cpu := func() time.Duration {
		var t time.Duration
		for _, p := range pids {
			t += readProc(p).cpu
		}
		return t
	}
	var err error
	c0 := cpu()
	if r.down, err = transferRate(ctx, addr, 'D', o); err != nil {
		return r, fmt.Errorf("download: %w", err)
	}
	c1 := cpu()
	if r.up, err = transferRate(ctx, addr, 'U', o); err != nil {
		return r, fmt.Errorf("upload: %w", err)
	}
	c2 := cpu()
	if r.setups, err = setupRate(ctx, addr, o); err != nil {
		return r, fmt.Errorf("connection setup: %w", err)
	}
	c3 := cpu()
	if len(pids) > 0 && c0 > 0 {
		secs := o.duration.Seconds()
		r.cpuDown = (c1 - c0).Seconds() / (r.down * secs / 1000)
		r.cpuUp = (c2 - c1).Seconds() / (r.up * secs / 1000)
		r.cpuSetup = float64((c3 - c2).Milliseconds()) / (r.setups * secs)
	}
	return r, nil
}

// transferRate moves -size per connection, -xfer-c connections at once,
// again and again for -duration: MB/s.
func transferRate(ctx context.Context, addr string, cmd byte, o *options) (float64, error) {
	n, secs, err := repeatFor(ctx, o.duration, o.xferConns, func() (int64, error) { return transferOnce(addr, cmd, o.size) })
	return float64(n) / secs / 1e6, err
}

// repeatFor runs once in each of n goroutines, again and again for d:
// the sum of what it returned, the seconds taken, and its first error.
func repeatFor(ctx context.Context, d time.Duration, n int, once func() (int64, error)) (int64, float64, error) {
	var total atomic.Int64
	var firstErr atomic.Value
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				k, err := once()
				total.Add(k)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, 0, err
	}
	return total.Load(), time.Since(start).Seconds(), nil
}

func transferOnce(addr string, cmd byte, size int64) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	b := tcpBenchBuf.Get().(*[]byte)
	defer tcpBenchBuf.Put(b)
	if cmd == 'D' {
		var req [9]byte
		req[0] = 'D'
		for i, n := 8, size; i >= 1; i-- {
			req[i] = byte(n)
			n >>= 8
		}
		if _, err := c.Write(req[:]); err != nil {
			return 0, err
		}
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{c}, *b)
		if err == nil && n != size {
			err = fmt.Errorf("%d bytes of %d", n, size)
		}
		return n, err
	}
	if _, err := c.Write([]byte{'U'}); err != nil {
		return 0, err
	}
	left := size
	for left > 0 {
		k, err := c.Write((*b)[:min(left, int64(len(*b)))])
		left -= int64(k)
		if err != nil {
			return size - left, err
		}
	}
	closeWrite(c)
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return size, errors.New("no count after the upload")
	}
	return size, nil
}

// setupRate is how many connections a second -c clients complete, each
// connecting, exchanging one byte with the backend and closing.
func setupRate(ctx context.Context, addr string, o *options) (float64, error) {
	n, secs, err := repeatFor(ctx, o.duration, o.conns, func() (int64, error) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		if _, err = c.Write([]byte{'P'}); err == nil {
			_, err = io.ReadFull(c, b[:])
		}
		if err != nil {
			return 0, err
		}
		return 1, nil
	})
	return float64(n) / secs, err
}

// tcpPathRow is one path of the -tcp run.
type tcpPathRow struct {
	name, addr string
	pids       []int // its processes (none: not known, or the bench's own)
	results    []tcpResult
}

// runTCP is the -tcp run: the paths take turns in each round (the order
// rotated); the tables show the medians and their ratios.
func runTCP(ctx context.Context, o *options) error {
	h, err := newHarness(o.verbose, o.keep)
	if err != nil {
		return err
	}
	defer h.close()
	if o.bin != "" {
		err = h.useBinary(ctx, o.bin)
	} else {
		h.logf("building sallyport")
		err = h.build(ctx)
	}
	if err != nil {
		return err
	}
	backend, err := tcpBackend()
	if err != nil {
		return err
	}
	defer backend.Close()
	baddr := backend.Addr().String()
	rows := []*tcpPathRow{{name: "direct", addr: baddr}}
	if o.profile != "" {
		if h.profileDir, err = filepath.Abs(o.profile); err == nil {
			err = os.MkdirAll(h.profileDir, 0o755)
		}
		if err != nil {
			return err
		}
		defer h.logf("CPU profiles of cloud serve, connector run and access tcp in %s (go tool pprof -top FILE)", h.profileDir)
	}
	h.logf("starting sallyport: cloud, connector, network sign-in, access tcp")
	ap, err := startAccessPath(ctx, h, baddr, o)
	if err != nil {
		return fmt.Errorf("sallyport's path: %w%s", err, h.exitedChildren())
	}
	rows = append(rows, &tcpPathRow{name: "sallyport", addr: ap.addr, pids: ap.pids()})
	tun, err := startTCPTunnel(baddr)
	if err != nil {
		return fmt.Errorf("the tunnel: %w", err)
	}
	defer tun.close()
	rows = append(rows, &tcpPathRow{name: "tunnel only (in-process)", addr: tun.ln.Addr().String()})
	h.logf("starting the frp stand-in")
	frp, err := startFrpLike(ctx, h, baddr)
	if err != nil {
		return fmt.Errorf("the frp stand-in: %w%s", err, h.exitedChildren())
	}
	rows = append(rows, &tcpPathRow{name: "frp stand-in", addr: frp.addr, pids: []int{frp.frps.pid(), frp.frpc.pid()}})
	h.logf("starting sshd and ssh -L")
	sp, err := startSSHPath(ctx, h, baddr)
	switch {
	case errors.Is(err, errNoSSH):
		h.logf("%v: ssh -L is left out", err)
	case err != nil:
		return fmt.Errorf("ssh -L: %w%s", err, h.exitedChildren())
	default:
		rows = append(rows, &tcpPathRow{name: "ssh -L", addr: sp.addr, pids: sp.pids()})
	}
	for round := range o.rounds {
		for i := range rows {
			r := rows[(i+round)%len(rows)]
			if o.quietWait > 0 {
				waitQuiet(ctx, h, o.quietWait)
			}
			h.logf("round %d: %s", round+1, r.name)
			res, err := measureTCP(ctx, r.addr, r.pids, o)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w%s", r.name, round+1, err, h.exitedChildren())
			}
			r.results = append(r.results, res)
		}
	}
	med := func(rs []tcpResult, f func(tcpResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	metrics := []struct {
		name, unit string
		f          func(tcpResult) float64
	}{
		{"download", "MB/s", func(r tcpResult) float64 { return r.down }},
		{"upload", "MB/s", func(r tcpResult) float64 { return r.up }},
		{"connection setup", "conn/s", func(r tcpResult) float64 { return r.setups }},
	}
	fmt.Printf("TCP (%s): %d round(s) of %s per test and path, %d transfer connection(s) of %d bytes, %d setup client(s)\n\n",
		h.source, o.rounds, o.duration, o.xferConns, o.size, o.conns)
	fmt.Println("| path | download | upload | connection setup (connect, one byte each way, close) |")
	fmt.Println("|---|---:|---:|---:|")
	direct := rows[0]
	for _, r := range rows {
		fmt.Printf("| %s |", r.name)
		for _, m := range metrics {
			v := med(r.results, m.f)
			if r == direct {
				fmt.Printf(" %.0f %s |", v, m.unit)
			} else {
				fmt.Printf(" %.0f %s (%.2f×) |", v, m.unit, v/med(direct.results, m.f))
			}
		}
		fmt.Println()
	}
	fmt.Println("\n(×: of direct.) CPU time of each path's processes (the backend and the load not counted):")
	fmt.Println()
	fmt.Println("| path | CPU s per GB downloaded | CPU s per GB uploaded | CPU ms per connection |")
	fmt.Println("|---|---:|---:|---:|")
	for _, r := range rows {
		if len(r.pids) == 0 {
			continue
		}
		fmt.Printf("| %s | %.2f | %.2f | %.2f |\n", r.name, med(r.results, func(t tcpResult) float64 { return t.cpuDown }),
			med(r.results, func(t tcpResult) float64 { return t.cpuUp }), med(r.results, func(t tcpResult) float64 { return t.cpuSetup }))
	}
	fmt.Println("\nSallyport's whole path beside the others (issue 19's targets: ≥ 0.8× frp's throughput, ≥ 2× ssh -L's):")
	fmt.Println()
	fmt.Println("| measurement | sallyport ÷ frp stand-in | sallyport ÷ ssh -L |")
	fmt.Println("|---|---:|---:|")
	find := func(name string) *tcpPathRow {
		for _, r := range rows {
			if r.name == name {
				return r
			}
		}
		return nil
	}
	sp2, fr, ss := find("sallyport"), find("frp stand-in"), find("ssh -L")
	for _, m := range metrics {
		v := med(sp2.results, m.f)
		fmt.Printf("| %s | %.2f× |", m.name, v/med(fr.results, m.f))
		if ss != nil {
			fmt.Printf(" %.2f× |\n", v/med(ss.results, m.f))
		} else {
			fmt.Println(" – |")
		}
	}
	if o.verbose {
		for _, r := range rows {
			fmt.Printf("%s: %+v\n", r.name, r.results)
		}
	}
	return nil
}
