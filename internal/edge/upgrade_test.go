package edge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestUpgrade: a 101 from the dispatcher becomes the client's connection,
// carried by the edge itself; answers that cannot be carried get a page.
func TestUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol string // of the 101
		rw       bool   // whether its body is writable
		status   int
	}{
		{"switched", "websocket", true, http.StatusSwitchingProtocols},
		{"switched to another protocol", "h2c", true, http.StatusBadGateway},
		{"body not a connection", "websocket", false, http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backendDone := make(chan struct{})
			d := dispatchFunc(func(a *App, r *http.Request) (*http.Response, error) {
				near, far := net.Pipe()
				go func() {
					defer close(backendDone)
					defer far.Close()
					sc := bufio.NewScanner(far)
					for sc.Scan() {
						fmt.Fprintf(far, "%s\n", strings.ToUpper(sc.Text()))
					}
				}()
				var body io.ReadCloser = near
				if !tc.rw {
					body = io.NopCloser(near)
					t.Cleanup(func() { near.Close() })
				}
				return &http.Response{StatusCode: http.StatusSwitchingProtocols, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
					Header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {tc.protocol}, "Sec-Websocket-Accept": {"x"},
						tunnel.HeaderPrefix + "Internal": {"y"}},
					Body: body}, nil
			})
			h := New(Config{Routes: routes{testApp.ExternalHost: testApp}, Dispatcher: d})
			srv := httptest.NewServer(h)
			defer srv.Close()
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			// The request and, right behind it, the first message.
			fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly\n", testApp.ExternalHost)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if resp.Header.Get(tunnel.HeaderRequestID) == "" || resp.Header.Get(tunnel.HeaderPrefix+"Internal") != "" {
				t.Errorf("headers %v: want a request id and no protocol header", resp.Header)
			}
			if tc.status != http.StatusSwitchingProtocols {
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), "backend_upgrade") {
					t.Errorf("page %q does not name backend_upgrade", body)
				}
				return
			}
			if resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-Websocket-Accept") != "x" {
				t.Errorf("101 headers %v", resp.Header)
			}
			for _, want := range []string{"EARLY", "HELLO"} {
				if want == "HELLO" {
					io.WriteString(conn, "hello\n")
				}
				got, err := br.ReadString('\n')
				if err != nil || got != want+"\n" {
					t.Fatalf("got %q, %v; want %q", got, err, want)
				}
			}
			conn.Close()
			select {
			case <-backendDone:
			case <-time.After(10 * time.Second):
				t.Fatal("the backend side did not end after the client left")
			}
		})
	}
}
