package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	down, up float64 // MB/s
	setups   float64 // connections a second
}

// measureTCP measures the path whose listener is at addr.
func measureTCP(ctx context.Context, addr string, o *options) (tcpResult, error) {
	var r tcpResult
	var err error
	if r.down, err = transferRate(ctx, addr, 'D', o); err != nil {
		return r, fmt.Errorf("download: %w", err)
	}
	if r.up, err = transferRate(ctx, addr, 'U', o); err != nil {
		return r, fmt.Errorf("upload: %w", err)
	}
	if r.setups, err = setupRate(ctx, addr, o); err != nil {
		return r, fmt.Errorf("connection setup: %w", err)
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

// runTCP is the -tcp run: each round measures direct then sallyport;
// the table shows the medians and their ratios.
func runTCP(ctx context.Context, o *options) error {
	backend, err := tcpBackend()
	if err != nil {
		return err
	}
	defer backend.Close()
	tun, err := startTCPTunnel(backend.Addr().String())
	if err != nil {
		return fmt.Errorf("the tunnel: %w", err)
	}
	defer tun.close()
	var direct, through []tcpResult
	for round := range o.rounds {
		d, err := measureTCP(ctx, backend.Addr().String(), o)
		if err != nil {
			return fmt.Errorf("direct, round %d: %w", round+1, err)
		}
		s, err := measureTCP(ctx, tun.ln.Addr().String(), o)
		if err != nil {
			return fmt.Errorf("sallyport, round %d: %w", round+1, err)
		}
		direct, through = append(direct, d), append(through, s)
		if o.verbose {
			fmt.Printf("round %d: direct %+v, sallyport %+v\n", round+1, d, s)
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
	fmt.Printf("TCP through the tunnel (raw tcp streams, in-process, loopback): %d round(s) of %s, %d transfer connection(s) of %d bytes, %d setup client(s)\n\n",
		o.rounds, o.duration, o.xferConns, o.size, o.conns)
	fmt.Println("| measurement | direct | sallyport | ratio |")
	fmt.Println("|---|---:|---:|---:|")
	for _, m := range []struct {
		name, unit string
		f          func(tcpResult) float64
	}{
		{"download", "MB/s", func(r tcpResult) float64 { return r.down }},
		{"upload", "MB/s", func(r tcpResult) float64 { return r.up }},
		{"connection setup", "conn/s", func(r tcpResult) float64 { return r.setups }},
	} {
		d, s := med(direct, m.f), med(through, m.f)
		fmt.Printf("| %s | %.0f %s | %.0f %s | %.2f× |\n", m.name, d, m.unit, s, m.unit, s/d)
	}
	return nil
}
