package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// TestProxy: two connectors serve an application — one on tunnel
// protocol version 2 (the default), one on version 1 (as an older
// connector would); requests, large bodies in both directions, full-duplex
// streams and WebSockets go through the edge; deleting the application
// stops its routing.
func TestProxy(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	b := newBackend(t)
	site := newRunner(t, "site")
	st1 := c.mustRegister(t, site, filepath.Join(site.dir, "connector1"), contosoAdmin, contosoPW)
	st2 := c.mustRegister(t, site, filepath.Join(site.dir, "connector2"), contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", b.url)
	m1, m2 := freePort(t), freePort(t)
	p1 := c.runConnector(t, c.admin, st1, "--metrics-listen", "127.0.0.1:"+m1)
	p2 := c.runConnector(t, c.admin, st2, "--tunnel-version", "1", "--metrics-listen", "127.0.0.1:"+m2)

	t.Run("connector list shows both active with tunnels", func(t *testing.T) {
		cs := c.connectors(t, c.admin)
		if len(cs) != 2 {
			t.Fatalf("connector list = %+v, want 2 connectors", cs)
		}
		for _, x := range cs {
			if (x.ID != st1.id && x.ID != st2.id) || x.Status != "active" || x.Tunnels != 2 || x.Group != "Default" ||
				x.Version == "" || x.Hostname == "" || !strings.HasPrefix(x.Address, "127.0.0.1:") {
				t.Errorf("connector %+v, want active in Default with 2 tunnels, a version, host name and address", x)
			}
			if want := map[string]int{st1.id: 2, st2.id: 1}[x.ID]; x.Protocol != want {
				t.Errorf("connector %s uses tunnel protocol version %d, want %d", x.ID, x.Protocol, want)
			}
		}
		table := c.admin.ok(t, "", "admin", "connector", "list").stdout
		mustContain(t, "connector list table", table, "STATUS", "TUNNELS", st1.id, st2.id, "active")
		var groups []struct {
			Name             string `json:"name"`
			Connectors       int    `json:"connectors"`
			ActiveConnectors int    `json:"active_connectors"`
			Apps             int    `json:"apps"`
		}
		c.admin.okJSON(t, &groups, "admin", "group", "list", "--json")
		if len(groups) != 1 || groups[0].Connectors != 2 || groups[0].ActiveConnectors != 2 || groups[0].Apps != 1 {
			t.Errorf("group list = %+v, want Default with 2 active connectors and 1 app", groups)
		}
	})

	t.Run("both tunnel protocols serve requests", func(t *testing.T) {
		served := func(port string) int { return connectorRequests(t, port, "web", "200") }
		ok := eventually(readyTimeout, func() bool {
			if resp, body := c.get(t, web.ExternalHost, "/page"); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /page: %s %s", resp.Status, body)
			}
			return served(m1) > 0 && served(m2) > 0
		})
		if !ok {
			t.Fatalf("requests served: %d by the version 2 connector, %d by the version 1 connector; want both above 0", served(m1), served(m2))
		}
	})

	for _, proto := range []string{"h1", "h2"} {
		t.Run("page with forwarded headers over "+proto, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.appURL(web.ExternalHost, "/page"), nil)
			// Spoofed by the client: the edge must not pass these on.
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Forwarded-Host", "evil.example")
			req.Header.Set("Sallyport-App", "a_spoofed")
			resp, err := c.client(web.ExternalHost, proto).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if want := map[string]int{"h1": 1, "h2": 2}[proto]; resp.ProtoMajor != want {
				t.Errorf("edge answered over %s, want HTTP/%d", resp.Proto, want)
			}
			var info pageInfo
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil || info.Page != backendPage {
				t.Fatalf("GET /page: %s %+v", resp.Status, info)
			}
			if info.Path != "/page" {
				t.Errorf("backend saw path %q", info.Path)
			}
			if !equal(info.XForwardedFor, "127.0.0.1") {
				t.Errorf("backend saw X-Forwarded-For %q, want [127.0.0.1]", info.XForwardedFor)
			}
			if !equal(info.XForwardedProto, "https") {
				t.Errorf("backend saw X-Forwarded-Proto %q, want [https]", info.XForwardedProto)
			}
			if len(info.XForwardedHost) != 1 || !sameHost(info.XForwardedHost[0], web.ExternalHost, c.port) {
				t.Errorf("backend saw X-Forwarded-Host %q, want %s (with or without :%s)", info.XForwardedHost, web.ExternalHost, c.port)
			}
			if len(info.SallyportHeader) != 0 {
				t.Errorf("backend saw tunnel protocol headers %v", info.SallyportHeader)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Sallyport-") && k != "Sallyport-Request-Id" {
					t.Errorf("client got tunnel protocol header %s", k)
				}
			}
		})
	}

	t.Run("large bodies stream both ways", func(t *testing.T) {
		// 256 MiB by default, 1 GiB with SALLYPORT_E2E_BIG=1, 32 MiB with -short.
		size := int64(256 << 20)
		switch {
		case os.Getenv("SALLYPORT_E2E_BIG") == "1":
			size = 1 << 30
		case testing.Short():
			size = 32 << 20
		}
		want := patternSHA256(size)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		procs := []*proc{c.serve, p1, p2}
		rssBefore := map[*proc]int64{}
		if runtime.GOOS == "linux" {
			for _, p := range procs {
				rssBefore[p] = procStatus(t, p.pid(), "VmRSS")
				if !resetHWM(p.pid()) {
					t.Logf("cannot reset the peak RSS of %s; measuring it since its start", p.name)
				}
			}
		}

		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.appURL(web.ExternalHost, "/download?n="+strconv.FormatInt(size, 10)), nil)
		resp, err := c.client(web.ExternalHost, "h2").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("download: %s after %d bytes: %v", resp.Status, n, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != size || got != want {
			t.Errorf("download: got %d bytes sha256 %s, want %d bytes sha256 %s", n, got, size, want)
		}
		t.Logf("download of %d MiB: %s", size>>20, time.Since(start).Round(time.Millisecond))

		start = time.Now()
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, c.appURL(web.ExternalHost, "/upload"), newPatternReader(size))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err = c.client(web.ExternalHost, "h1").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var up uploadInfo
		err = json.NewDecoder(resp.Body).Decode(&up)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("upload: %s: %v", resp.Status, err)
		}
		if up.Len != size || up.SHA256 != want {
			t.Errorf("upload: backend got %d bytes sha256 %s, want %d bytes sha256 %s", up.Len, up.SHA256, size, want)
		}
		t.Logf("upload of %d MiB: %s", size>>20, time.Since(start).Round(time.Millisecond))

		if runtime.GOOS != "linux" {
			return
		}
		// Flat memory: nothing buffers a body whole.
		const limit = 200 << 20
		for _, p := range procs {
			hwm := procStatus(t, p.pid(), "VmHWM")
			t.Logf("%s: RSS %d MiB before, peak %d MiB during the transfers", p.name, rssBefore[p]>>20, hwm>>20)
			if hwm > limit {
				t.Errorf("%s: peak RSS %d MiB after streaming %d MiB each way, want below %d MiB", p.name, hwm>>20, size>>20, limit>>20)
			}
		}
	})

	for _, proto := range []string{"h1", "h2"} {
		t.Run("full-duplex echo over "+proto, func(t *testing.T) {
			// The backend answers while it still reads the request: a
			// proxy that buffered either direction would deadlock once
			// the flow-control windows and socket buffers are full.
			const size = 64 << 20
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.appURL(web.ExternalHost, "/echo"), newPatternReader(size))
			resp, err := c.client(web.ExternalHost, proto).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("echo: %s after %d bytes: %v", resp.Status, n, err)
			}
			if got, want := hex.EncodeToString(h.Sum(nil)), patternSHA256(size); n != size || got != want {
				t.Errorf("echo: got %d bytes sha256 %s, want %d bytes sha256 %s", n, got, size, want)
			}
		})
	}

	t.Run("websocket echo on both tunnel protocols", func(t *testing.T) {
		upgraded := func(port string) int { return connectorRequests(t, port, "web", "101") }
		// Connectors are picked at random: echo until each has carried one
		// (version 2 on a relay stream, version 1 on an HTTP/2 stream).
		ok := eventually(readyTimeout, func() bool {
			wsEcho(t, c, web.ExternalHost)
			return upgraded(m1) > 0 && upgraded(m2) > 0
		})
		if !ok {
			t.Fatalf("WebSockets carried: %d by the version 2 connector, %d by the version 1 connector; want both above 0", upgraded(m1), upgraded(m2))
		}
	})

	t.Run("deleting an application stops its routing", func(t *testing.T) {
		tmp := c.publish(t, c.admin, "temp", b.url)
		resp, body := c.get(t, tmp.ExternalHost, "/page")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, backendPage) {
			t.Fatalf("temp before delete: %d %s", resp.StatusCode, body)
		}
		res := c.admin.ok(t, "", "admin", "app", "delete", "temp")
		mustContain(t, "app delete output", res.stdout, "Deleted application 'temp'.")
		resp, body = c.get(t, tmp.ExternalHost, "/page")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("temp after delete: %d %s", resp.StatusCode, body)
		}
		mustContain(t, "404 page", body, "No application is published at this address", "(error no_application")
		var list []apiApp
		c.admin.okJSON(t, &list, "admin", "app", "list", "--json")
		if len(list) != 1 || list[0].Name != "web" {
			t.Errorf("app list after delete = %+v", list)
		}
		c.admin.refused(t, "", []string{"admin", "app", "delete", "temp"}, "There is no application 'temp' in contoso.com")
		// The other application is untouched.
		if resp, body := c.get(t, web.ExternalHost, "/page"); resp.StatusCode != http.StatusOK {
			t.Errorf("web after deleting temp: %d %s", resp.StatusCode, body)
		}
	})
}

func equal(got []string, want ...string) bool { return slices.Equal(got, want) }

// sameHost reports whether h is host, or host:port.
func sameHost(h, host, port string) bool {
	return h == host || h == net.JoinHostPort(host, port)
}

// wsEcho opens a WebSocket to host's /ws through the edge and checks the
// echo of messages small and large.
func wsEcho(t *testing.T, c *cloud, host string) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(&d, "tcp", "127.0.0.1:"+c.port, &tls.Config{
		RootCAs: c.pool, ServerName: host, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	cfg, err := websocket.NewConfig("wss://"+host+":"+c.port+"/ws", "https://"+host+":"+c.port+"/")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("WebSocket handshake through the edge: %v", err)
	}
	defer ws.Close()
	for _, msg := range []string{"hello", "second message", "ünïcödé ✓", strings.Repeat("0123456789", 20000), "last"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatalf("receive: %v", err)
		}
		if got != "echo: "+msg {
			t.Fatalf("echo of a %d-byte message: got %d bytes %.40q", len(msg), len(got), got)
		}
	}
}

// connectorRequests reads sallyport_connector_requests_total for app and
// code from the metrics of the connector on port.
func connectorRequests(t *testing.T, port, app, code string) int {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	prefix := `sallyport_connector_requests_total{app="` + app + `",code="` + code + `"} `
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
