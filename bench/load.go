package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The built-in load generator: closed loop, one goroutine per connection,
// HTTP/1.1 keep-alive (over TLS for the edge, plain for the backend),
// each request written as prepared bytes and its response read with
// http.ReadResponse. It is used when wrk is not installed, and always for
// the 10 MiB transfers.

// target is one path to the backend: direct, through Sallyport, or
// through another proxy.
type target struct {
	name   string // "direct", "sallyport", or the other proxy's name
	scheme string // "http" or "https"
	addr   string // 127.0.0.1:PORT that is dialled
	host   string // Host header and TLS server name
	prefix string // path prefix before /small, /download, /upload
	tls    *tls.Config
	watch  []watched // processes whose cost this path adds
	// headers are sent with every request ("Name: value"): the session
	// cookie of a pre-authenticated application.
	headers []string
	// smallOnly: measured with small requests only.
	smallOnly bool
	// local, when set, is the source address of its connections (-scale
	// spreads them over several loopback addresses).
	local net.Addr
}

// url is the address wrk is given: the dialled address, not the host.
func (t *target) url(path string) string {
	return t.scheme + "://" + t.addr + t.prefix + path
}

func (t *target) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: t.local}
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil || t.tls == nil {
		return c, err
	}
	tc := tls.Client(c, t.tls)
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

func (t *target) request(method, path string, contentLength int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sallyport-bench\r\n", method, t.prefix, path, t.host)
	for _, h := range t.headers {
		b.WriteString(h + "\r\n")
	}
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", contentLength)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// result is one measurement of one path.
type result struct {
	tool     string
	requests int64 // completed with 200 (small) or completed transfers
	errors   int64 // failed requests, non-200 answers, wrong bodies
	elapsed  time.Duration
	rps      float64
	p50, p99 time.Duration
	bytes    int64
	gbps     float64       // bytes per second / 1e9
	toolCPU  time.Duration // CPU time of an external load generator (wrk)
}

// ---------------------------------------------------------------------------
// Latency histogram: log-linear, 32 buckets per power of two (≤ 3 % error).

const subBits = 5

type histogram struct {
	counts [64 << subBits]int64
	n      int64
}

func bucketOf(us uint64) int {
	if us < 1<<subBits {
		return int(us)
	}
	e := bits.Len64(us) - subBits - 1
	return (e+1)<<subBits + int(us>>e) - 1<<subBits
}

// bucketMid is the middle of a bucket, in microseconds.
func bucketMid(i int) float64 {
	if i < 1<<subBits {
		return float64(i)
	}
	e := i>>subBits - 1
	m := i&(1<<subBits-1) + 1<<subBits
	return float64(uint64(m)<<e) + float64(uint64(1)<<e)/2
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the latency below which a fraction q of the samples lie.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= want && c > 0 {
			return time.Duration(bucketMid(i) * float64(time.Microsecond))
		}
	}
	return 0
}

// ---------------------------------------------------------------------------
// Connections that a cancelled context interrupts

type connSet struct {
	mu    sync.Mutex
	conns map[net.Conn]bool
	dead  bool
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]bool{}
	}
	s.conns[c] = true
	if s.dead {
		c.SetDeadline(time.Unix(1, 0))
	}
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	c.Close()
}

// interrupt makes every blocked read or write return at once.
func (s *connSet) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = true
	for c := range s.conns {
		c.SetDeadline(time.Unix(1, 0))
	}
}

// ---------------------------------------------------------------------------
// Small requests

// builtinSmall runs conns closed-loop connections sending GET /small for d.
func builtinSmall(ctx context.Context, t *target, conns int, d time.Duration) (result, error) {
	start := time.Now()
	end := start.Add(d)
	req := t.request("GET", "/small", -1)
	var set connSet
	stop := context.AfterFunc(ctx, set.interrupt)
	defer stop()
	type worker struct {
		h       histogram
		ok, bad int64
	}
	ws := make([]worker, conns)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			fail := func() {
				if time.Now().Before(end) && ctx.Err() == nil {
					w.bad++
				}
				if c != nil {
					set.remove(c)
					c = nil
				}
			}
			for time.Now().Before(end) && ctx.Err() == nil {
				if c == nil {
					var err error
					if c, err = t.dial(ctx); err != nil {
						c = nil
						fail()
						time.Sleep(10 * time.Millisecond)
						continue
					}
					set.add(c)
					c.SetDeadline(end)
					br = bufio.NewReaderSize(c, 16<<10)
				}
				t0 := time.Now()
				if _, err := c.Write(req); err != nil {
					fail()
					continue
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					fail()
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					fail()
					continue
				}
				lat := time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					w.bad++
				} else {
					w.ok++
					w.h.add(lat)
				}
				if resp.Close {
					set.remove(c)
					c = nil
				}
			}
			if c != nil {
				set.remove(c)
			}
		}(&ws[i])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	elapsed := min(time.Since(start), d)
	var all histogram
	r := result{tool: "built-in", elapsed: elapsed}
	for i := range ws {
		all.merge(&ws[i].h)
		r.requests += ws[i].ok
		r.errors += ws[i].bad
	}
	r.rps = float64(r.requests) / elapsed.Seconds()
	r.p50, r.p99 = all.quantile(0.50), all.quantile(0.99)
	return r, nil
}

// ---------------------------------------------------------------------------
// 10 MiB transfers

// transfer runs conns connections downloading (GET /download?n=size) or
// uploading (POST /upload) bodies of size bytes back to back for d.
// Downloads count every byte received before the end; uploads count the
// bodies the backend confirmed (size and CRC), over the time until the
// last confirmation.
func transfer(ctx context.Context, t *target, upload bool, conns int, size int64, d time.Duration) (result, error) {
	start := time.Now()
	end := start.Add(d)
	var req []byte
	if upload {
		req = t.request("POST", "/upload", size)
	} else {
		req = t.request("GET", "/download?n="+strconv.FormatInt(size, 10), -1)
	}
	wantAck := fmt.Sprintf("%d %08x", size, patternCRC(size))
	var set connSet
	stop := context.AfterFunc(ctx, set.interrupt)
	defer stop()
	type worker struct {
		bytes, done, bad int64
		last             time.Time
	}
	ws := make([]worker, conns)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			var c net.Conn
			var br *bufio.Reader
			fail := func() {
				if time.Now().Before(end) && ctx.Err() == nil {
					w.bad++
				}
				if c != nil {
					set.remove(c)
					c = nil
				}
			}
			for time.Now().Before(end) && ctx.Err() == nil {
				if c == nil {
					var err error
					if c, err = t.dial(ctx); err != nil {
						c = nil
						fail()
						time.Sleep(10 * time.Millisecond)
						continue
					}
					set.add(c)
					c.SetDeadline(end)
					br = bufio.NewReaderSize(c, 64<<10)
				}
				if _, err := c.Write(req); err != nil {
					fail()
					continue
				}
				if upload {
					if err := writePattern(c, size); err != nil {
						fail()
						continue
					}
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					fail()
					continue
				}
				var got int64
				var ack strings.Builder
				for {
					n, err := resp.Body.Read(buf)
					got += int64(n)
					if upload {
						ack.Write(buf[:n])
					} else {
						w.bytes += int64(n)
					}
					if err != nil {
						if err != io.EOF {
							got = -1
						}
						break
					}
				}
				resp.Body.Close()
				switch {
				case got < 0:
					fail()
					continue
				case resp.StatusCode != http.StatusOK:
					w.bad++
				case upload && strings.TrimSpace(ack.String()) != wantAck:
					w.bad++
				case !upload && got != size:
					w.bad++
				default:
					w.done++
					w.last = time.Now()
					if upload {
						w.bytes += size
					}
				}
				if resp.Close {
					set.remove(c)
					c = nil
				}
			}
			if c != nil {
				set.remove(c)
			}
		}(&ws[i])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r := result{tool: "built-in", elapsed: min(time.Since(start), d)}
	var last time.Time
	for i := range ws {
		r.bytes += ws[i].bytes
		r.requests += ws[i].done
		r.errors += ws[i].bad
		if ws[i].last.After(last) {
			last = ws[i].last
		}
	}
	if upload {
		r.elapsed = last.Sub(start)
	}
	if r.elapsed > 0 {
		r.gbps = float64(r.bytes) / r.elapsed.Seconds() / 1e9
		r.rps = float64(r.requests) / r.elapsed.Seconds()
	}
	return r, nil
}

// writePattern writes n bytes of the pattern.
func writePattern(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(pattern)))
		if _, err := w.Write(pattern[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// tlsInsecure is the TLS configuration for another proxy on loopback,
// whose certificate the bench has no way to verify.
func tlsInsecure(serverName string) *tls.Config {
	return &tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
}
