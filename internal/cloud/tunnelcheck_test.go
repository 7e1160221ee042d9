package cloud

import (
	"context"
	"database/sql"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
)

// liveCloud is a cloud serving on loopback with one registered connector
// running in this process over real TLS.
type liveCloud struct {
	srv  *Server
	dir  string
	id   string // the connector's id
	cdir string // its state directory
	addr string // where the cloud listens
	ran  chan error
}

// startLiveCloud serves a new cloud configured by cfg (DataDir and Listen
// are set here) and runs a connector with the given number of tunnel
// connections. It returns once the cloud has registered want tunnels.
func startLiveCloud(t *testing.T, cfg Config, connections, want int) *liveCloud {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.localhost", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ln := serveLive(t, s)
	lc := &liveCloud{srv: s, dir: dir, cdir: filepath.Join(t.TempDir(), "connector"), addr: ln.Addr().String(), ran: make(chan error, 1)}
	cloudURL := "https://sallyport.localhost:" + itoa(ln.Addr().(*net.TCPAddr).Port)
	if _, err := connector.Register(ctx, connector.RegisterOptions{CloudURL: cloudURL, Dir: lc.cdir, User: "admin@contoso.com",
		Password: testPassword, CAFile: filepath.Join(dir, datadir.CACertFile), Hostname: "host1", Version: "test"}); err != nil {
		t.Fatal(err)
	}
	c, err := connector.New(connector.Config{Dir: lc.cdir, Connections: connections})
	if err != nil {
		t.Fatal(err)
	}
	lc.id = c.State().Trust.ConnectorID
	cctx, stopConnector := context.WithCancel(ctx)
	go func() { lc.ran <- c.Run(cctx) }()
	t.Cleanup(func() {
		stopConnector()
		<-lc.ran // a refused connector's Run ends with its refusal
		c.Close()
	})
	lc.waitTunnels(t, want, "the connector's tunnels to come up")
	return lc
}

// tunnels is how many tunnels of the connector the cloud holds.
func (lc *liveCloud) tunnels() int {
	li, _ := lc.srv.registry.info(lc.id)
	return li.Tunnels
}

// waitTunnels waits until the cloud holds exactly n tunnels of the connector.
func (lc *liveCloud) waitTunnels(t *testing.T, n int, what string) {
	t.Helper()
	if !testnet.Eventually(15*time.Second, func() bool { return lc.tunnels() == n }) {
		t.Fatalf("waiting for %s: the cloud holds %d tunnels of the connector, want %d", what, lc.tunnels(), n)
	}
}

// events reads the cloud's events with the given id.
func (lc *liveCloud) events(t *testing.T, id eventlog.ID) []eventlog.Event {
	t.Helper()
	evs, err := eventlog.Read(filepath.Join(lc.dir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{id}})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestTunnelsClosedOnCertificateChange: a live tunnel is closed within one
// check interval when its certificate is revoked in the store by someone
// else than this server (another instance, an operator command), or
// expired; one replaced by a renewal completed elsewhere is retired shortly
// before its certificate expires. Before, only a deletion through this
// process (or of the whole connector) closed live tunnels.
func TestTunnelsClosedOnCertificateChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, lc *liveCloud, clk *clock)
		want   string // in the event's message
	}{
		{"serial revoked directly in the store", func(t *testing.T, lc *liveCloud, _ *clock) {
			rec := lc.record(t)
			db, err := sql.Open("sqlite", "file:"+filepath.Join(lc.dir, datadir.StoreFile)+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`INSERT INTO revocations (serial, tenant_id, connector_id, reason, revoked_at) VALUES (?, ?, ?, ?, ?)`,
				rec.CertSerial, rec.TenantID, rec.ID, "revoked by an operator", time.Now().UnixNano()); err != nil {
				t.Fatal(err)
			}
		}, "was revoked"},
		{"certificate replaced by another instance", func(t *testing.T, lc *liveCloud, clk *clock) {
			// A renewal completed through another instance: the store's
			// current serial is another, the previous one cleared.
			rec := lc.record(t)
			other, err := datadir.OpenStore(lc.dir, lc.srv.settings)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.UpdateConnectorCert(context.Background(), rec.TenantID, rec.ID, "0badc0ffee", rec.CertThumbprint, rec.CertNotAfter, ""); err != nil {
				t.Fatal(err)
			}
			// Not revoked: the tunnels keep serving for now (a renewal's
			// older tunnels must not race with the connector's switch)...
			lc.waitChecks(t, 3)
			if n := lc.tunnels(); n != 2 {
				t.Fatalf("%d tunnels right after the replacement, want both kept", n)
			}
			// ...until shortly before the old certificate expires.
			clk.Advance(rec.CertNotAfter.Sub(clk.Now()) - 200*time.Millisecond)
		}, "replaced by a newer one, expires on"},
		{"certificate expired", func(t *testing.T, lc *liveCloud, clk *clock) {
			clk.Advance(91 * 24 * time.Hour) // connector certificates live 90 days
		}, "expired on"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{now: time.Now()} // moves only when the test says
			lc := startLiveCloud(t, Config{Now: clk.Now, TunnelCheckInterval: 100 * time.Millisecond}, 2, 2)
			if n := len(lc.events(t, 2107)); n != 0 {
				t.Fatalf("%d tunnel closures before any change", n)
			}
			tc.change(t, lc, clk)
			// The connector reconnects and is refused (or, replaced, refused
			// as unknown): no tunnel of it stays.
			lc.waitTunnels(t, 0, "the tunnels to close")
			evs := lc.events(t, 2107)
			if len(evs) == 0 {
				t.Fatal("no event 2107 for the closed tunnels")
			}
			if m := evs[0].Message; !strings.Contains(m, lc.id) || !strings.Contains(m, tc.want) {
				t.Errorf("event 2107 = %q, want the connector id and %q", m, tc.want)
			}
		})
	}
}

// waitChecks waits until the cloud has checked its tunnels n more times.
func (lc *liveCloud) waitChecks(t *testing.T, n int64) {
	t.Helper()
	want := lc.srv.tunnelChecks.Load() + n
	if !testnet.Eventually(15*time.Second, func() bool { return lc.srv.tunnelChecks.Load() >= want }) {
		t.Fatalf("the cloud did not check its tunnels %d times", n)
	}
}

// record is the connector's record in the store.
func (lc *liveCloud) record(t *testing.T) store.Connector {
	t.Helper()
	ctx := context.Background()
	ten, err := lc.srv.store.TenantByDomain(ctx, "contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := lc.srv.store.ConnectorByID(ctx, ten.ID, lc.id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestTunnelLimitPerConnector: a connector may hold at most
// MaxTunnelsPerConnector tunnels over real TLS with its valid certificate;
// the one beyond is refused with too_many_tunnels, which the connector
// does not take as final (it keeps running and retrying).
func TestTunnelLimitPerConnector(t *testing.T) {
	lc := startLiveCloud(t, Config{MaxTunnelsPerConnector: 2}, 3, 2)
	if !testnet.Eventually(15*time.Second, func() bool { return len(lc.events(t, 2108)) > 0 }) {
		t.Fatalf("no event 2108 for the third tunnel; the cloud holds %d tunnels", lc.tunnels())
	}
	if n := lc.tunnels(); n != 2 {
		t.Errorf("the cloud holds %d tunnels of the connector, want at most 2", n)
	}
	if m := lc.events(t, 2108)[0].Message; !strings.Contains(m, "too_many_tunnels") && !strings.Contains(m, "already holds 2 tunnel connections") {
		t.Errorf("event 2108 = %q", m)
	}
	// The connector was told, and retries: its refusal event names the code,
	// and its Run goes on.
	if !testnet.Eventually(15*time.Second, func() bool {
		evs, _ := eventlog.Read(filepath.Join(lc.cdir, statedir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{1102}})
		for _, ev := range evs {
			if ev.Fields["code"] == "too_many_tunnels" {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the connector logged no refusal too_many_tunnels (event 1102)")
	}
	select {
	case err := <-lc.ran:
		t.Fatalf("the connector stopped on a refusal that is not final: %v", err)
	default:
	}
}
