package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/store"
)

// TestCloudInstanceList: the instances' rows, alive or silent, as a table
// and as JSON; none is a sentence.
func TestCloudInstanceList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	out, err := execute(t, "cloud", "instance", "list", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "No instance has written its heartbeat") {
		t.Fatalf("list on an empty store = %q, %v", out, err)
	}
	settings, err := datadir.LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := datadir.OpenStore(dir, settings)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, in := range []store.Instance{
		{ID: "c1-aaaa", Advertise: "c1.example.com:443", StartedAt: now.Add(-time.Hour), HeartbeatAt: now},
		{ID: "c2-bbbb", StartedAt: now.Add(-time.Hour), HeartbeatAt: now.Add(-time.Minute)},
	} {
		if err := st.Heartbeat(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	out, err = execute(t, "cloud", "instance", "list", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "c1.example.com:443") || !strings.Contains(lines[1], "alive") ||
		!strings.Contains(lines[2], "c2-bbbb") || !strings.Contains(lines[2], "silent") {
		t.Fatalf("list =\n%s", out)
	}
	out, err = execute(t, "cloud", "instance", "list", "--data-dir", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []instanceJSON
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(rows) != 2 || !rows[0].Alive || rows[1].Alive || rows[0].Advertise != "c1.example.com:443" {
		t.Fatalf("--json = %+v", rows)
	}
}
