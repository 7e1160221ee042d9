package cloud

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestNetworkMetrics: real access streams (the connector played by
// rawFake) are counted per network application: by result, open, and
// bytes each way once they end; refusals before the application is known
// have app "".
func TestNetworkMetrics(t *testing.T) {
	env := startAccess(t)
	alice := env.networkLogin(t, "alice@contoso.com").str("access_token")
	bob := env.networkLogin(t, "bob@contoso.com").str("access_token")

	// A stream open is counted as open (the cloud counts it just after its
	// answer, which the client may read first: wait for it).
	n := env.srv.metrics.net()
	held, _, err := env.open(t, tunnel.AccessRequest{Token: alice, Network: "tcp", App: "ssh", Dest: "echo.corp:22"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(n.open.WithLabelValues("contoso.com", "ssh")) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(n.open.WithLabelValues("contoso.com", "ssh")); got != 1 {
		t.Fatalf("streams open = %v with one open, want 1", got)
	}
	held.Close()

	for range 2 {
		c, br, err := env.open(t, tunnel.AccessRequest{Token: alice, Network: "tcp", App: "ssh", Dest: "echo.corp:22"})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "hello through the connector") // 27 bytes, echoed
		c.CloseWrite()
		if got, err := io.ReadAll(br); err != nil || len(got) != 27 {
			t.Fatalf("echo %q, %v", got, err)
		}
		c.Close()
	}
	for _, req := range []tunnel.AccessRequest{
		{Token: alice, Network: "tcp", App: "ssh", Dest: "refused.corp:22"},
		{Token: bob, Network: "tcp", App: "ssh", Dest: "echo.corp:22"},
		{Token: "spa_" + strings.Repeat("x", 43), Network: "tcp", App: "ssh", Dest: "echo.corp:22"},
		{Token: alice, Network: "tcp", App: "nosuch", Dest: "echo.corp:22"},
	} {
		if _, _, err := env.open(t, req); !errors.As(err, new(*tunnel.AccessError)) {
			t.Fatalf("%+v: %v, want a refusal", req, err)
		}
	}

	// The cloud ends its side just after the client has read the end.
	deadline = time.Now().Add(10 * time.Second)
	for (testutil.ToFloat64(n.bytes.WithLabelValues("contoso.com", "ssh", "out")) < 54 || testutil.ToFloat64(n.open.WithLabelValues("contoso.com", "ssh")) != 0) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	tests := []struct {
		name   string
		got    float64
		expect float64
	}{
		{"ok", testutil.ToFloat64(n.streams.WithLabelValues("contoso.com", "ssh", "tcp", "ok")), 3},
		{"refused at the connector", testutil.ToFloat64(n.streams.WithLabelValues("contoso.com", "ssh", "tcp", tunnel.AccessRefused)), 1},
		{"not assigned", testutil.ToFloat64(n.streams.WithLabelValues("contoso.com", "ssh", "tcp", tunnel.AccessNotAssigned)), 1},
		{"not signed in: no tenant, no app", testutil.ToFloat64(n.streams.WithLabelValues("", "", "tcp", tunnel.AccessNotSignedIn)), 1},
		{"no such application: app \"\"", testutil.ToFloat64(n.streams.WithLabelValues("contoso.com", "", "tcp", tunnel.AccessNoApp)), 1},
		{"open after they ended", testutil.ToFloat64(n.open.WithLabelValues("contoso.com", "ssh")), 0},
		{"bytes in", testutil.ToFloat64(n.bytes.WithLabelValues("contoso.com", "ssh", "in")), 54},
		{"bytes out", testutil.ToFloat64(n.bytes.WithLabelValues("contoso.com", "ssh", "out")), 54},
		{"series of streams", float64(testutil.CollectAndCount(n.streams)), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.expect {
				t.Errorf("got %v, want %v", tt.got, tt.expect)
			}
		})
	}
}
