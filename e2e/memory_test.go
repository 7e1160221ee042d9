package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawBackend is a backend written byte by byte: /huge answers with a
// header of hugeHeader bytes (no HTTP server would send it), anything else
// with a short page.
type rawBackend struct {
	url string
	ln  net.Listener
	wg  sync.WaitGroup
}

const hugeHeader = 32 << 20

func newRawBackend(t *testing.T) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{url: "http://" + ln.Addr().String(), ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer conn.Close()
				b.serve(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *rawBackend) serve(conn net.Conn) {
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		req.Body.Close()
		if req.URL.Path != "/huge" {
			if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
				return
			}
			continue
		}
		if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\nX-Huge: ")); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for sent := 0; sent < hugeHeader; sent += len(chunk) {
			if _, err := conn.Write(chunk); err != nil {
				return // the reader gave up: as it should
			}
		}
		conn.Write([]byte("\r\nContent-Length: 2\r\n\r\nok"))
		return
	}
}

// TestResponseHeaderLimit (issue 14, item 2): a backend answering with a
// 32 MiB header gets the user a 502 backend_headers_too_large, the
// connector logs event 1400 with that code, and neither the cloud nor the
// connector grows by more than a few MB — on both tunnel protocols (version
// 2: the connector's direct path and the relay; version 1: net/http's
// Transport and HTTP/2 on the tunnel).
func TestResponseHeaderLimit(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	b := newRawBackend(t)
	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	app := c.publish(t, c.admin, "bighead", b.url)
	const maxGrowth = 12 << 20 // "a few MB": without the limits, each grows by more than 64 MB
	for _, version := range []string{"2", "1"} {
		t.Run("tunnel version "+version, func(t *testing.T) {
			p := c.runConnector(t, c.admin, st, "--tunnel-version", version)
			defer p.stop()
			if resp, body := c.get(t, app.ExternalHost, "/ok"); resp.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("GET /ok: %s %q", resp.Status, body)
			}
			procs := map[string]int{"cloud serve": c.serve.pid(), "connector run": p.pid()}
			rssBefore := map[string]int64{}
			measured := runtime.GOOS == "linux"
			for name, pid := range procs {
				if !measured || !resetHWM(pid) {
					measured = false
					break
				}
				rssBefore[name] = procStatus(t, pid, "VmRSS")
			}
			resp, body := c.get(t, app.ExternalHost, "/huge")
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Sallyport-Error") != "backend_headers_too_large" {
				t.Errorf("GET /huge: %s, Sallyport-Error %q, want 502 backend_headers_too_large:\n%s", resp.Status, resp.Header.Get("Sallyport-Error"), body)
			}
			if resp.Header.Get("X-Huge") != "" {
				t.Error("the huge header reached the client")
			}
			if measured {
				for name, pid := range procs {
					hwm := procStatus(t, pid, "VmHWM")
					t.Logf("%s: RSS %d MB before, peak %d MB during the request", name, rssBefore[name]>>20, hwm>>20)
					if hwm-rssBefore[name] > maxGrowth {
						t.Errorf("%s grew by %d MB reading a %d MiB response header, want at most %d MB", name, (hwm-rssBefore[name])>>20, hugeHeader>>20, maxGrowth>>20)
					}
				}
			} else {
				t.Log("peak RSS not measured (Linux /proc/PID/clear_refs only)")
			}
			// The connector still serves, and its event log says why.
			if resp, body := c.get(t, app.ExternalHost, "/ok"); resp.StatusCode != http.StatusOK || body != "ok" {
				t.Errorf("GET /ok after the huge header: %s %q", resp.Status, body)
			}
			var evs []event
			ok := eventually(readyTimeout, func() bool {
				evs = nil
				c.admin.okJSON(t, &evs, "connector", "events", "--dir", st.dir, "--json")
				for _, e := range evs {
					if e.ID == 1400 && e.Fields["code"] == "backend_headers_too_large" && e.Fields["request_id"] == resp.Header.Get("Sallyport-Request-Id") {
						return strings.Contains(e.Message, "response headers larger than the connector accepts")
					}
				}
				return false
			})
			if !ok {
				t.Errorf("no event 1400 with code backend_headers_too_large for request %s; events: %+v", resp.Header.Get("Sallyport-Request-Id"), evs)
			}
		})
	}
}

// stuckClient is an HTTP/2 client written with the Framer: it announces a
// stream window of 0, never sends WINDOW_UPDATE, and opens as many
// downloads as the server allows — a client that makes the cloud hold
// every response it does not read.
type stuckClient struct {
	conn    *tls.Conn
	fr      *http2.Framer
	wmu     sync.Mutex
	max     chan uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS, once
	headers chan uint32 // a stream got its response headers
	done    chan struct{}
}

func dialStuck(t *testing.T, c *cloud, host string, headers chan uint32) *stuckClient {
	t.Helper()
	conn, err := tls.Dial("tcp", "127.0.0.1:"+c.port, &tls.Config{RootCAs: c.pool, ServerName: host, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	sc := &stuckClient{conn: conn, fr: http2.NewFramer(conn, conn), max: make(chan uint32, 1), headers: headers, done: make(chan struct{})}
	t.Cleanup(func() {
		conn.Close()
		<-sc.done
	})
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := sc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	go sc.readLoop()
	return sc
}

// readLoop answers SETTINGS and PINGs (or the server would close the
// connection) and reports response headers; DATA is never acknowledged.
func (sc *stuckClient) readLoop() {
	defer close(sc.done)
	sent := false
	for {
		f, err := sc.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if !sent {
				v, ok := f.Value(http2.SettingMaxConcurrentStreams)
				if !ok {
					v = 100
				}
				sc.max <- v
				sent = true
			}
			sc.wmu.Lock()
			sc.fr.WriteSettingsAck()
			sc.wmu.Unlock()
		case *http2.PingFrame:
			if !f.IsAck() {
				sc.wmu.Lock()
				sc.fr.WritePing(true, f.Data)
				sc.wmu.Unlock()
			}
		case *http2.HeadersFrame:
			sc.headers <- f.StreamID
		}
	}
}

// open starts n downloads of path.
func (sc *stuckClient) open(t *testing.T, host, path string, n int) {
	t.Helper()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	for i := range n {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", host}, {":path", path}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := sc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStuckStreams (issue 14, item 3): 500 downloads from one client that
// reads none of them (HTTP/2, stream window 0, no WINDOW_UPDATE, as many
// connections as the cloud's stream limit needs) cost the cloud at most
// 64 MB, and another client's ordinary requests meanwhile keep their
// latency (within 50 times a baseline measured first; without the fix it
// was 500 times).
func TestStuckStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 500 streams against a real cloud (about 20 s)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("measures the cloud's RSS in /proc")
	}
	t.Parallel()
	c := startCloud(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			w.Write([]byte("ok"))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(64<<20))
		for range 1024 { // 64 MiB: more than any window
			if _, err := w.Write(big); err != nil {
				return
			}
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(ln)
	t.Cleanup(func() { backend.Close() })
	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	app := c.publish(t, c.admin, "downloads", "http://"+ln.Addr().String())
	// A fresh cloud process on the same port: the password sign-in's
	// 64 MiB of argon2 memory, freed but resident, would otherwise hide
	// what the streams cost (the heap reuses it before RSS grows).
	c.serve.stop()
	p := c.admin.start(t, "cloud serve", "cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:"+c.port)
	if !c.waitServing(p) || p.exited() {
		t.Fatalf("cloud serve did not come up again on port %s:\n%s", c.port, tail(p.out.String(), 40))
	}
	c.serve = p
	c.runConnector(t, c.admin, st)

	// The other user's request, and its latency before the flood.
	other := func() time.Duration {
		start := time.Now()
		resp, body := c.get(t, app.ExternalHost, "/ok")
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("GET /ok: %s %q", resp.Status, body)
		}
		return time.Since(start)
	}
	median := func(n int) time.Duration {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = other()
		}
		slices.Sort(ds)
		return ds[n/2]
	}
	median(5) // warm up
	baseline := median(9)

	pid := c.serve.pid()
	before := procStatus(t, pid, "VmRSS")
	if !resetHWM(pid) {
		t.Skip("cannot reset the peak RSS (/proc/PID/clear_refs)")
	}
	const total = 500
	opened := 0
	var clients []*stuckClient
	headers := make(chan uint32, total)
	for opened < total {
		sc := dialStuck(t, c, app.ExternalHost, headers)
		var limit uint32
		select {
		case limit = <-sc.max:
		case <-time.After(readyTimeout):
			t.Fatal("the cloud sent no SETTINGS")
		}
		n := min(int(limit), total-opened)
		sc.open(t, app.ExternalHost, "/big", n)
		opened += n
		clients = append(clients, sc)
	}
	// Every stream has its response headers: its body is on its way, as
	// far as the windows let it.
	deadline := time.After(2 * readyTimeout)
	for got := 0; got < total; got++ {
		select {
		case <-headers:
		case <-deadline:
			t.Fatalf("%d of %d streams got their response headers", got, total)
		}
	}
	// The other user's requests during the flood.
	during := median(9)
	// The windows fill: wait until the peak stops growing (1 s steady).
	var peak int64
	steadySince := time.Now()
	eventually(readyTimeout, func() bool {
		if hwm := procStatus(t, pid, "VmHWM"); hwm > peak {
			peak, steadySince = hwm, time.Now()
		}
		return time.Since(steadySince) > time.Second
	})
	growth := peak - before
	t.Logf("%d stuck streams over %d connections: cloud RSS %d MB before, peak %d MB (+%d MB, %d KB per stream); other user's request: %s before, %s during (median of 9)",
		total, len(clients), before>>20, peak>>20, growth>>20, growth/total>>10, baseline.Round(time.Microsecond), during.Round(time.Microsecond))
	if growth > 64<<20 {
		t.Errorf("%d stuck streams took the cloud from %d MB to %d MB RSS (+%d MB), want at most +64 MB", total, before>>20, peak>>20, growth>>20)
	}
	if during > 50*baseline {
		t.Errorf("another user's request took %s during the flood, against %s before (more than 50 times)", during, baseline)
	}
}
