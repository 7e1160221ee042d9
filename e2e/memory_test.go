package e2e

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
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
