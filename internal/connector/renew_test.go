package connector_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/cloud"
	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
)

const password = "correct horse battery"

// realCloud runs a cloud service in this process and registers a
// connector with it; it returns the connector's state directory.
func realCloud(t *testing.T) (dataDir, connDir string, srv *cloud.Server) {
	t.Helper()
	ctx := context.Background()
	dataDir = filepath.Join(t.TempDir(), "cloud")
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dataDir, Name: "sallyport.localhost", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: password}); err != nil {
		t.Fatal(err)
	}
	s, err := cloud.New(cloud.Config{DataDir: dataDir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(sctx, ln) }()
	t.Cleanup(func() { stop(); <-done; s.Close() })
	connDir = filepath.Join(t.TempDir(), "connector")
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if _, err := connector.Register(ctx, connector.RegisterOptions{CloudURL: "https://sallyport.localhost:" + port, Dir: connDir,
		User: "admin@contoso.com", Password: password, CAFile: filepath.Join(dataDir, datadir.CACertFile), Hostname: "h", Version: "test"}); err != nil {
		t.Fatal(err)
	}
	return dataDir, connDir, s
}

func certFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "connector-*"))
	return m
}

func TestRenew(t *testing.T) {
	_, dir, srv := realCloud(t)
	ctx := context.Background()
	old, err := statedir.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	next, err := connector.Renew(ctx, old, cloudlink.DialContext)
	if err != nil {
		t.Fatal(err)
	}
	if next.Trust.Serial == old.Trust.Serial || next.Trust.Source != "renewal" || next.Trust.ConnectorID != old.Trust.ConnectorID {
		t.Fatalf("renewed trust %+v from %+v", next.Trust, old.Trust)
	}
	if got := certFiles(t, dir); len(got) != 2 {
		t.Errorf("state dir holds %v, want only the new pair", got)
	}
	rec, err := srv.Store().ConnectorByID(ctx, old.Trust.TenantID, old.Trust.ConnectorID)
	if err != nil || rec.CertSerial != next.Trust.Serial || rec.PreviousSerial != "" {
		t.Fatalf("cloud record %+v, %v: want the new serial current and no previous", rec, err)
	}
	// The old certificate is no longer accepted.
	_, err = connector.Renew(ctx, old, cloudlink.DialContext)
	if p, ok := problem.As(err); !ok || p.Code != "connector_unknown" {
		t.Fatalf("renewing with the replaced certificate: %v", err)
	}
	var raw map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, statedir.TrustFile))
	json.Unmarshal(b, &raw)
	if raw["source"] != "renewal" || raw["thumbprint"] != pki.Thumbprint(next.Leaf) {
		t.Errorf("trust.json = %s", b)
	}
}

// TestRenewInterrupted interrupts a renewal at each step, as a crash
// would: the state directory must load and authenticate afterwards, and a
// new renewal must succeed.
func TestRenewInterrupted(t *testing.T) {
	errCrash := errors.New("crash")
	for _, step := range []string{"signed", "confirmed", "files-written", "trust-written"} {
		t.Run(step, func(t *testing.T) {
			_, dir, _ := realCloud(t)
			ctx := context.Background()
			st, _ := statedir.Load(dir)
			restore := connector.SetStepHook(func(s string) error {
				if s == step {
					return errCrash
				}
				return nil
			})
			_, err := connector.Renew(ctx, st, cloudlink.DialContext)
			restore()
			if !errors.Is(err, errCrash) {
				t.Fatalf("Renew = %v, want the crash", err)
			}
			after, err := statedir.Load(dir)
			if err != nil {
				t.Fatalf("state after a crash at %s: %v", step, err)
			}
			// It still authenticates (status over the control connection).
			if _, err := connector.Renew(ctx, after, cloudlink.DialContext); err != nil {
				t.Fatalf("renewal after a crash at %s: %v", step, err)
			}
			if got := certFiles(t, dir); len(got) != 2 {
				t.Errorf("state dir holds %v after the second renewal", got)
			}
		})
	}
}

func TestNeedsRenewal(t *testing.T) {
	_, dir, _ := realCloud(t)
	st, _ := statedir.Load(dir)
	life := st.Leaf.NotAfter.Sub(st.Leaf.NotBefore.Add(pki.Backdate))
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{st.Leaf.NotBefore.Add(pki.Backdate), false},
		{st.Leaf.NotAfter.Add(-life/3 - time.Minute), false},
		{st.Leaf.NotAfter.Add(-life/3 + time.Minute), true},
		{st.Leaf.NotAfter.Add(time.Hour), true},
	} {
		if got := connector.NeedsRenewal(st, tt.at); got != tt.want {
			t.Errorf("NeedsRenewal at %s = %v, want %v", tt.at, got, tt.want)
		}
	}
}
