package cloud

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/store"
)

// updatesFixture publishes releases 1.0.0 and 1.1.0 (major, with notes)
// and gives contoso.com connectors on 1.0.0 (updating, in Default), 1.1.0,
// 1.0.0 in Branch (where 1.1.0 was rolled back) and "dev", and
// fabrikam.com one on 1.0.0 whose turn expired.
func updatesFixture(t testing.TB, s *Server) {
	t.Helper()
	ctx := t.Context()
	contoso, _ := s.store.TenantByDomain(ctx, "contoso.com")
	fabrikam, _ := s.store.TenantByDomain(ctx, "fabrikam.com")
	tok := login(t, s, "admin@contoso.com", testPassword)
	if rec, eb := call(t, s, "POST", "/groups", tok, api.CreateGroupRequest{Name: "Branch"}); rec.Code != 201 {
		t.Fatalf("create Branch: %d %s", rec.Code, eb.Error.Message)
	}
	group := func(tenant, name string) string {
		g, err := s.store.GroupByName(ctx, tenant, name)
		if err != nil {
			t.Fatal(err)
		}
		return g.ID
	}
	now := time.Now().UTC()
	for i, x := range []struct {
		version string
		major   bool
		notes   string
	}{{"1.0.0", false, ""}, {"1.1.0", true, "Fixes <the> tunnel"}} {
		m := release.Manifest{Format: "x", Version: x.version, OS: "linux", Arch: "amd64", Major: x.major,
			SHA256: strings.Repeat(fmt.Sprint(i), 64), Size: 1000 + int64(i), PublishedAt: now.Add(time.Duration(i-2) * time.Hour), Notes: x.notes}
		raw, _ := json.Marshal(m)
		if err := s.store.CreateRelease(ctx, store.Release{Version: m.Version, OS: m.OS, Arch: m.Arch, Major: m.Major, SHA256: m.SHA256, Size: m.Size,
			Manifest: raw, Signature: []byte("sig"), KeyID: "k", PublishedAt: m.PublishedAt}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []store.Connector{
		{ID: "c_a", TenantID: contoso.ID, GroupID: group(contoso.ID, "Default"), Hostname: "alpha", Version: "1.0.0"},
		{ID: "c_b", TenantID: contoso.ID, GroupID: group(contoso.ID, "Default"), Hostname: "bravo", Version: "1.1.0", LastSeenAt: now},
		{ID: "c_c", TenantID: contoso.ID, GroupID: group(contoso.ID, "Branch"), Hostname: "charlie", Version: "1.0.0"},
		{ID: "c_d", TenantID: contoso.ID, GroupID: group(contoso.ID, "Branch"), Hostname: "delta", Version: "dev"},
		{ID: "c_f", TenantID: fabrikam.ID, GroupID: group(fabrikam.ID, "Default"), Hostname: "foxtrot", Version: "1.0.0"},
	} {
		c.CertSerial, c.CreatedAt = c.ID, now
		if err := s.store.CreateConnector(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tu := range []store.UpdateTurn{
		{TenantID: contoso.ID, GroupID: group(contoso.ID, "Default"), ConnectorID: "c_a", Version: "1.1.0", TakenAt: now.Add(-time.Minute), ExpiresAt: now.Add(10 * time.Minute)},
		{TenantID: fabrikam.ID, GroupID: group(fabrikam.ID, "Default"), ConnectorID: "c_f", Version: "1.1.0", TakenAt: now.Add(-time.Hour), ExpiresAt: now.Add(-30 * time.Minute)},
	} {
		if _, err := s.store.TakeUpdateTurn(ctx, tu, tu.TakenAt); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.store.HaltUpdate(ctx, store.UpdateHalt{TenantID: contoso.ID, GroupID: group(contoso.ID, "Branch"), Version: "1.1.0", ConnectorID: "c_c", HaltedAt: now.Add(-5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

// TestUpdatesAPI: every tenant sees the releases; only its own
// connectors, turns and halts, each connector with where it stands.
func TestUpdatesAPI(t *testing.T) {
	s := newTestServer(t)
	updatesFixture(t, s)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := login(t, s, "admin@fabrikam.com", testPassword)
	_, bob := addOpsAndBob(t, s, contoso)

	states := func(u api.Updates) string {
		var out []string
		for _, c := range u.Connectors {
			out = append(out, c.Group+"/"+c.Hostname+"@"+c.Version+"="+c.State)
		}
		return strings.Join(out, " ")
	}
	releases := func(u api.Updates) string {
		var out []string
		for _, r := range u.Releases {
			out = append(out, fmt.Sprintf("%s major=%v halted=%v notes=%q", r.Version, r.Major, r.HaltedIn, r.Notes))
		}
		return strings.Join(out, "; ")
	}
	tests := []struct {
		name, token                    string
		releases, connectors, turn, ha string
	}{
		{"contoso", contoso,
			`1.1.0 major=true halted=[Branch] notes="Fixes <the> tunnel"; 1.0.0 major=false halted=[] notes=""`,
			"Branch/charlie@1.0.0=update halted Branch/delta@dev=unknown version Default/alpha@1.0.0=updating Default/bravo@1.1.0=up to date",
			"Default c_a (alpha) 1.1.0 expired=false", "Branch 1.1.0 c_c"},
		{"a user of contoso reads it too", bob,
			`1.1.0 major=true halted=[Branch] notes="Fixes <the> tunnel"; 1.0.0 major=false halted=[] notes=""`,
			"Branch/charlie@1.0.0=update halted Branch/delta@dev=unknown version Default/alpha@1.0.0=updating Default/bravo@1.1.0=up to date",
			"Default c_a (alpha) 1.1.0 expired=false", "Branch 1.1.0 c_c"},
		{"fabrikam", fabrikam,
			`1.1.0 major=true halted=[] notes="Fixes <the> tunnel"; 1.0.0 major=false halted=[] notes=""`,
			"Default/foxtrot@1.0.0=update available",
			"Default c_f (foxtrot) 1.1.0 expired=true", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := getJSON[api.Updates](t, s, tt.token, "/updates")
			if got := releases(u); got != tt.releases {
				t.Errorf("releases = %s\nwant       %s", got, tt.releases)
			}
			if got := states(u); got != tt.connectors {
				t.Errorf("connectors = %s\nwant         %s", got, tt.connectors)
			}
			var turns, halts []string
			for _, x := range u.Turns {
				turns = append(turns, fmt.Sprintf("%s %s (%s) %s expired=%v", x.Group, x.ConnectorID, x.Hostname, x.Version, x.Expired))
			}
			for _, x := range u.Halts {
				halts = append(halts, x.Group+" "+x.Version+" "+x.ConnectorID)
			}
			if got := strings.Join(turns, "; "); got != tt.turn {
				t.Errorf("turns = %q, want %q", got, tt.turn)
			}
			if got := strings.Join(halts, "; "); got != tt.ha {
				t.Errorf("halts = %q, want %q", got, tt.ha)
			}
			for _, c := range u.Connectors {
				if c.Latest != "1.1.0" {
					t.Errorf("connector %s: latest %q, want 1.1.0", c.ID, c.Latest)
				}
			}
		})
	}
}

// TestUpdatesAPIEmpty: with nothing published and no connector, the
// lists are empty lists.
func TestUpdatesAPIEmpty(t *testing.T) {
	s := newTestServer(t)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	rec, _ := call(t, s, "GET", "/updates", contoso, nil)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"releases":[],"connectors":[],"turns":[],"halts":[]}` {
		t.Errorf("GET /updates = %d %s", rec.Code, rec.Body.String())
	}
}
