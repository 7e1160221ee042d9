package cloud

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/problem/problemtest"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
	"github.com/sallyport/sallyport/internal/testnet"
)

// releaseCloud is a cloud served in this process on loopback, with an
// injected clock, to which connectors are registered.
type releaseCloud struct {
	dir  string
	srv  *Server
	url  string
	clk  *clock
	tok  string // the tenant admin's API token
	pub  ed25519.PublicKey
	key  ed25519.PrivateKey
	dial cloudlink.DialFunc
}

func startReleaseCloud(t *testing.T) *releaseCloud {
	t.Helper()
	return startReleaseCloudWith(t, nil)
}

// startReleaseCloudWith is startReleaseCloud whose server's store is
// wrap(store), set before the server starts.
func startReleaseCloudWith(t *testing.T, wrap func(store.Store) store.Store) *releaseCloud {
	t.Helper()
	dir := initDataDirNamed(t, "sallyport.localhost")
	clk := &clock{now: time.Now().UTC()}
	s, ln := serveTestCloud(t, Config{DataDir: dir, Listen: "127.0.0.1:0", Now: clk.Now}, func(s *Server) {
		if wrap != nil {
			s.store = wrap(s.store)
		}
	})
	pub, err := datadir.LoadReleaseKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := datadir.LoadSigningKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return &releaseCloud{dir: dir, srv: s, clk: clk, pub: pub, key: key,
		url: "https://sallyport.localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), tok: login(t, s, "admin@contoso.com", testPassword),
		dial: cloudlink.DialContext}
}

func initDataDirNamed(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	if _, err := datadir.Init(context.Background(), datadir.InitOptions{DataDir: dir, Name: name, Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (c *releaseCloud) createGroup(t *testing.T, name string) {
	t.Helper()
	if rec, eb := call(t, c.srv, "POST", "/groups", c.tok, api.CreateGroupRequest{Name: name}); rec.Code != 201 {
		t.Fatalf("create group %s: %d %s", name, rec.Code, eb.Error.Message)
	}
}

// register registers a connector in group ("" for the default group).
func (c *releaseCloud) register(t *testing.T, group, hostname string) *statedir.State {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "connector-"+hostname)
	if _, err := connector.Register(context.Background(), connector.RegisterOptions{CloudURL: c.url, Dir: dir, User: "admin@contoso.com",
		Password: testPassword, CAFile: filepath.Join(c.dir, datadir.CACertFile), Group: group, Hostname: hostname, Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	st, err := statedir.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// storeRelease stores a signed release directly (no binary).
func (c *releaseCloud) storeRelease(t *testing.T, version, goos, goarch string, at time.Time) release.Manifest {
	t.Helper()
	digest := make([]byte, 32)
	rand.Read(digest)
	m := release.Manifest{Format: release.Format, Version: version, OS: goos, Arch: goarch, SHA256: hex.EncodeToString(digest), Size: 100, PublishedAt: at.UTC().Truncate(time.Second)}
	signed, err := release.Sign(m, c.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.srv.Store().CreateRelease(context.Background(), store.Release{Version: version, OS: goos, Arch: goarch, SHA256: m.SHA256, Size: m.Size,
		Manifest: signed.Manifest, Signature: signed.Signature, KeyID: signed.KeyID, PublishedAt: m.PublishedAt}); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantControlProblem fails unless err is the cloud's problem status/code.
func wantControlProblem(t *testing.T, what string, err error, status int, code string, subs ...string) {
	t.Helper()
	p := problemtest.Want(t, what, err, code, subs...)
	if p.Status != status {
		t.Errorf("%s: status %d, want %d", what, p.Status, status)
	}
}

func TestControlReleaseKey(t *testing.T) {
	c := startReleaseCloud(t)
	st := c.register(t, "", "host1")
	var rk release.KeyMessage
	if err := cloudlink.ControlCall(context.Background(), st, c.dial, http.MethodGet, release.PathKey, nil, &rk); err != nil {
		t.Fatal(err)
	}
	if rk.Key != release.EncodePublicKey(c.pub) || rk.KeyID != release.KeyID(c.pub) {
		t.Errorf("release key %+v, want %s (%s)", rk, release.EncodePublicKey(c.pub), release.KeyID(c.pub))
	}
	// Registration pinned the same key.
	if st.Trust.ReleaseKey != rk.Key {
		t.Errorf("registration pinned %q, the control API says %q", st.Trust.ReleaseKey, rk.Key)
	}
}

func TestControlReleases(t *testing.T) {
	c := startReleaseCloud(t)
	st := c.register(t, "", "host1")
	base := c.clk.Now().Add(-100 * time.Hour)
	n := release.MaxListed + 3
	for i := 0; i < n; i++ {
		c.storeRelease(t, fmt.Sprintf("1.0.%d", i), "linux", "amd64", base.Add(time.Duration(i)*time.Hour))
	}
	c.storeRelease(t, "9.0.0", "windows", "amd64", base)
	c.storeRelease(t, "9.0.0", "linux", "arm64", base)

	tests := []struct {
		name, query string
		want        []string // versions, in order; nil: only the count
		count       int
		status      int
		code        string
	}{
		{name: "capped, newest first", query: "os=linux&arch=amd64", count: release.MaxListed},
		{name: "other os", query: "os=windows&arch=amd64", want: []string{"9.0.0"}},
		{name: "other arch", query: "os=linux&arch=arm64", want: []string{"9.0.0"}},
		{name: "none", query: "os=darwin&arch=arm64", want: []string{}},
		{name: "no arch", query: "os=linux", status: 400, code: "bad_request"},
		{name: "no query", query: "", status: 400, code: "bad_request"},
		{name: "os too long", query: "os=" + strings.Repeat("x", 17) + "&arch=amd64", status: 400, code: "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out release.List
			err := cloudlink.ControlCall(context.Background(), st, c.dial, http.MethodGet, release.PathList+"?"+tt.query, nil, &out)
			if tt.code != "" {
				wantControlProblem(t, "releases", err, tt.status, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sr := range out.Releases {
				m, err := release.Verify(sr, c.pub)
				if err != nil {
					t.Fatalf("a listed release does not verify with the release key: %v", err)
				}
				if sr.KeyID != release.KeyID(c.pub) {
					t.Errorf("key id %s, want %s", sr.KeyID, release.KeyID(c.pub))
				}
				if q := "os=" + m.OS + "&arch=" + m.Arch; q != tt.query {
					t.Errorf("release %s for %s/%s listed for %s", m.Version, m.OS, m.Arch, tt.query)
				}
				got = append(got, m.Version)
			}
			if tt.want != nil {
				if strings.Join(got, " ") != strings.Join(tt.want, " ") {
					t.Errorf("releases %v, want %v", got, tt.want)
				}
				return
			}
			if len(got) != tt.count {
				t.Fatalf("%d releases, want %d", len(got), tt.count)
			}
			// The newest n-MaxReleases ... n-1, newest first.
			for i, v := range got {
				if want := fmt.Sprintf("1.0.%d", n-1-i); v != want {
					t.Errorf("release %d is %s, want %s", i, v, want)
				}
			}
		})
	}
}

func TestControlReleaseBinary(t *testing.T) {
	c := startReleaseCloud(t)
	st := c.register(t, "", "host1")
	ctx := context.Background()
	content := "#!/bin/sh\necho " + strings.Repeat("release ", 4096) + "\n"
	file := testnet.WriteFile(t, filepath.Join(t.TempDir(), "sallyport"), content, 0o755)
	res, err := datadir.Publish(ctx, datadir.PublishOptions{DataDir: c.dir, File: file, Version: "2.0.0", OS: "linux", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	digest := res.Manifest.SHA256
	get := func(q string) (string, int64, error) {
		body, n, err := cloudlink.ControlDownload(ctx, st, c.dial, release.PathBinary+"?"+q)
		if err != nil {
			return "", n, err
		}
		defer body.Close()
		raw, err := io.ReadAll(body)
		return string(raw), n, err
	}
	got, n, err := get("sha256=" + digest)
	if err != nil {
		t.Fatal(err)
	}
	if got != content || n != int64(len(content)) || n != res.Manifest.Size {
		t.Errorf("downloaded %d bytes (announced %d), want the %d published", len(got), n, len(content))
	}
	for _, tt := range []struct {
		name, query string
		status      int
		code        string
	}{
		{"unknown digest", "sha256=" + strings.Repeat("0", 64), 404, "release_not_found"},
		{"malformed digest", "sha256=xyz", 400, "bad_request"},
		{"short digest", "sha256=" + digest[:62], 400, "bad_request"},
		{"no digest", "", 400, "bad_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := get(tt.query)
			wantControlProblem(t, "download", err, tt.status, tt.code)
		})
	}
	// A withdrawn release is no longer handed out.
	if err := datadir.DeleteRelease(ctx, c.dir, "2.0.0", "linux", "amd64"); err != nil {
		t.Fatal(err)
	}
	_, _, err = get("sha256=" + digest)
	wantControlProblem(t, "download of a withdrawn release", err, 404, "release_not_found")

	// A release whose binary was lost says so.
	res, err = datadir.Publish(ctx, datadir.PublishOptions{DataDir: c.dir, File: file, Version: "2.0.1", OS: "linux", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(c.dir, datadir.ReleasesDir, "sha256-"+res.Manifest.SHA256)); err != nil {
		t.Fatal(err)
	}
	_, _, err = get("sha256=" + res.Manifest.SHA256)
	wantControlProblem(t, "download of a lost binary", err, 500, "release_missing", "2.0.1")
}

// TestControlUpdateTurn: one connector of a group updates at a time; a
// connector of another group is not held up; a turn not ended expires.
func TestControlUpdateTurn(t *testing.T) {
	c := startReleaseCloud(t)
	c.createGroup(t, "Updates")
	a := c.register(t, "Updates", "hostA")
	b := c.register(t, "Updates", "hostB")
	other := c.register(t, "", "hostC")
	ctx := context.Background()
	take := func(st *statedir.State, v string) (release.Turn, error) {
		var turn release.Turn
		err := cloudlink.ControlCall(ctx, st, c.dial, http.MethodPost, release.PathUpdateTurn, release.TurnRequest{Version: v}, &turn)
		return turn, err
	}
	end := func(t *testing.T, st *statedir.State) {
		t.Helper()
		if err := cloudlink.ControlCall(ctx, st, c.dial, http.MethodDelete, release.PathUpdateTurn, nil, nil); err != nil {
			t.Fatalf("ending the turn of %s: %v", st.Trust.ConnectorID, err)
		}
	}
	busyBy := func(holder *statedir.State, host, v string) []string {
		return []string{"Connector " + holder.Trust.ConnectorID + " (" + host + ") of group 'Updates' is updating to " + v, "wait for it to finish"}
	}
	steps := []struct {
		name   string
		do     func(t *testing.T) (release.Turn, error)
		group  string // the granted turn's group; "" when refused
		status int
		code   string
		subs   []string
	}{
		{name: "A takes it", do: func(t *testing.T) (release.Turn, error) { return take(a, "2.0.0") }, group: "Updates"},
		{name: "A takes it again", do: func(t *testing.T) (release.Turn, error) { return take(a, "2.0.0") }, group: "Updates"},
		{name: "B of the same group waits", do: func(t *testing.T) (release.Turn, error) { return take(b, "2.0.0") },
			status: 409, code: "update_turn_busy", subs: busyBy(a, "hostA", "2.0.0")},
		{name: "another group is not held up", do: func(t *testing.T) (release.Turn, error) { return take(other, "2.0.0") }, group: tenancy.DefaultGroup},
		{name: "B cannot end A's turn", do: func(t *testing.T) (release.Turn, error) { end(t, b); return take(b, "2.0.0") },
			status: 409, code: "update_turn_busy", subs: busyBy(a, "hostA", "2.0.0")},
		{name: "bad version", do: func(t *testing.T) (release.Turn, error) { return take(b, "latest") },
			status: 400, code: "bad_version"},
		{name: "not JSON", do: func(t *testing.T) (release.Turn, error) {
			var turn release.Turn
			return turn, cloudlink.ControlCall(ctx, b, c.dial, http.MethodPost, release.PathUpdateTurn, "2.0.0", &turn)
		}, status: 400, code: "bad_request"},
		{name: "A ends it, B takes it", do: func(t *testing.T) (release.Turn, error) { end(t, a); return take(b, "2.1.0") }, group: "Updates"},
		{name: "now A waits", do: func(t *testing.T) (release.Turn, error) { return take(a, "2.1.0") },
			status: 409, code: "update_turn_busy", subs: busyBy(b, "hostB", "2.1.0")},
		{name: "the lease expires", do: func(t *testing.T) (release.Turn, error) {
			c.clk.Advance(UpdateTurnLease + time.Second)
			return take(a, "2.1.0")
		}, group: "Updates"},
	}
	for _, s := range steps {
		turn, err := s.do(t)
		if s.code != "" {
			wantControlProblem(t, s.name, err, s.status, s.code, s.subs...)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if turn.Group != s.group {
			t.Errorf("%s: turn of group %q, want %q", s.name, turn.Group, s.group)
		}
		if want := c.clk.Now().Add(UpdateTurnLease); !turn.ExpiresAt.Equal(want) {
			t.Errorf("%s: turn expires at %s, want %s", s.name, turn.ExpiresAt, want)
		}
	}
	end(t, a)
	end(t, a) // ending a turn not held is fine

	// The cloud's event log names who got and ended the turn.
	evs, err := eventlog.Read(filepath.Join(c.dir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{2301, 2302}})
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for _, e := range evs {
		log = append(log, fmt.Sprintf("%d %s", e.ID, e.Message))
	}
	all := strings.Join(log, "\n")
	for _, want := range []string{
		"2301 Connector " + a.Trust.ConnectorID + " (hostA) of group 'Updates' got the update turn to install 2.0.0",
		"2301 Connector " + other.Trust.ConnectorID + " (hostC) of group 'Default' got the update turn to install 2.0.0",
		"2302 Connector " + a.Trust.ConnectorID + " (hostA) ended its update turn",
		"2301 Connector " + b.Trust.ConnectorID + " (hostB) of group 'Updates' got the update turn to install 2.1.0",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the cloud's event log lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "2302 Connector "+b.Trust.ConnectorID) {
		t.Errorf("B's end of a turn it did not hold was logged:\n%s", all)
	}
}

// TestControlUpdateHalt: only the connector holding its group's update
// turn for a version may halt that version's rollout, and only for a
// version the cloud publishes; any other report is refused and logged.
func TestControlUpdateHalt(t *testing.T) {
	c := startReleaseCloud(t)
	c.createGroup(t, "Updates")
	a := c.register(t, "Updates", "hostA")
	b := c.register(t, "Updates", "hostB")
	c.storeRelease(t, "2.0.0", "linux", "amd64", c.clk.Now())
	ctx := context.Background()
	take := func(st *statedir.State, v string) error {
		return cloudlink.ControlCall(ctx, st, c.dial, http.MethodPost, release.PathUpdateTurn, release.TurnRequest{Version: v}, &release.Turn{})
	}
	halt := func(st *statedir.State, v string) error {
		return cloudlink.ControlCall(ctx, st, c.dial, http.MethodDelete, release.PathUpdateTurn+"?rolled_back="+v, nil, nil)
	}
	halted := func(v string) bool {
		_, err := c.srv.Store().UpdateHaltOf(ctx, a.Trust.TenantID, groupOf(t, c, a), v)
		return err == nil
	}
	steps := []struct {
		name   string
		do     func() error
		status int
		code   string
		halted map[string]bool // versions halted after the step
	}{
		{name: "A takes the turn for 2.0.0", do: func() error { return take(a, "2.0.0") }},
		{name: "B, not holding the turn, halts 2.0.0", do: func() error { return halt(b, "2.0.0") },
			status: 403, code: "not_turn_holder", halted: map[string]bool{"2.0.0": false}},
		{name: "A halts a version it holds no turn for", do: func() error { return halt(a, "2.1.0") },
			status: 403, code: "not_turn_holder", halted: map[string]bool{"2.1.0": false, "2.0.0": false}},
		{name: "A ends its turn", do: func() error {
			return cloudlink.ControlCall(ctx, a, c.dial, http.MethodDelete, release.PathUpdateTurn, nil, nil)
		}},
		{name: "A, its turn ended, halts 2.0.0", do: func() error { return halt(a, "2.0.0") },
			status: 403, code: "not_turn_holder", halted: map[string]bool{"2.0.0": false}},
		{name: "B takes the turn for 9.9.9, never published", do: func() error { return take(b, "9.9.9") }},
		{name: "B halts 9.9.9", do: func() error { return halt(b, "9.9.9") },
			status: 404, code: "release_unknown", halted: map[string]bool{"9.9.9": false}},
		{name: "B takes the turn for 2.0.0", do: func() error { return take(b, "2.0.0") }},
		{name: "B rolled 2.0.0 back and halts it", do: func() error { return halt(b, "2.0.0") }, halted: map[string]bool{"2.0.0": true}},
		{name: "A's updater no longer installs 2.0.0", do: func() error { return take(a, "2.0.0") }, status: 409, code: "release_halted"},
	}
	for _, s := range steps {
		err := s.do()
		if s.code != "" {
			wantControlProblem(t, s.name, err, s.status, s.code)
		} else if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for v, want := range s.halted {
			if got := halted(v); got != want {
				t.Errorf("%s: %s halted = %v, want %v", s.name, v, got, want)
			}
		}
	}
	evs, err := eventlog.Read(filepath.Join(c.dir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{2304}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 {
		t.Errorf("%d refused halts were logged as event 2304, want 4: %+v", len(evs), evs)
	}
	for _, e := range evs {
		if !strings.Contains(e.Message, "the report was refused") {
			t.Errorf("event 2304 says %q", e.Message)
		}
	}
}

// groupOf returns the id of the connector's group.
func groupOf(t *testing.T, c *releaseCloud, st *statedir.State) string {
	t.Helper()
	rec, err := c.srv.Store().ConnectorByID(context.Background(), st.Trust.TenantID, st.Trust.ConnectorID)
	if err != nil {
		t.Fatal(err)
	}
	return rec.GroupID
}

// TestControlReleaseNeedsConnector: the update calls are served only to an
// accepted connector.
func TestControlReleaseNeedsConnector(t *testing.T) {
	c := startReleaseCloud(t)
	st := c.register(t, "", "host1")
	rec, eb := call(t, c.srv, "DELETE", "/connectors/"+st.Trust.ConnectorID, c.tok, nil)
	if rec.Code >= 300 {
		t.Fatalf("removing the connector: %d %s", rec.Code, eb.Error.Message)
	}
	for _, path := range []string{release.PathKey, release.PathList + "?os=linux&arch=amd64"} {
		err := cloudlink.ControlCall(context.Background(), st, c.dial, http.MethodGet, path, nil, &struct{}{})
		var p *problem.Problem
		if !errors.As(err, &p) || p.Status != 401 {
			t.Errorf("GET %s by a removed connector: %v, want a 401 problem", path, err)
		}
	}
}

// interleavedStore runs before, once, just before the next TakeUpdateTurn:
// what another request did between the halt check and the take.
type interleavedStore struct {
	store.Store
	before atomic.Pointer[func()]
}

func (s *interleavedStore) TakeUpdateTurn(ctx context.Context, t store.UpdateTurn, now time.Time) (store.UpdateTurn, error) {
	if f := s.before.Swap(nil); f != nil {
		(*f)()
	}
	return s.Store.TakeUpdateTurn(ctx, t, now)
}

// TestControlTurnAfterHalt: a connector that asks for the turn while the
// holder rolls the release back and halts it (its check for a halt seeing
// none, its take seeing the turn freed) is refused the turn: the release
// is not handed to the next connector (TestUpdateRollout saw the second
// connector install a halted release once).
func TestControlTurnAfterHalt(t *testing.T) {
	is := &interleavedStore{}
	c := startReleaseCloudWith(t, func(st store.Store) store.Store { is.Store = st; return is })
	c.createGroup(t, "Updates")
	a := c.register(t, "Updates", "hostA")
	b := c.register(t, "Updates", "hostB")
	c.storeRelease(t, "2.0.0", "linux", "amd64", c.clk.Now())
	ctx := context.Background()
	if err := cloudlink.ControlCall(ctx, a, c.dial, http.MethodPost, release.PathUpdateTurn, release.TurnRequest{Version: "2.0.0"}, &release.Turn{}); err != nil {
		t.Fatal(err)
	}
	group := groupOf(t, c, a)
	orig := is.Store
	interleave := func() {
		// A's rollback report: the halt, then the end of its turn.
		if err := orig.HaltUpdate(ctx, store.UpdateHalt{TenantID: a.Trust.TenantID, GroupID: group, Version: "2.0.0", ConnectorID: a.Trust.ConnectorID, HaltedAt: c.clk.Now()}); err != nil {
			t.Error(err)
		}
		if err := orig.ReleaseUpdateTurn(ctx, a.Trust.TenantID, group, a.Trust.ConnectorID); err != nil {
			t.Error(err)
		}
	}
	is.before.Store(&interleave)
	err := cloudlink.ControlCall(ctx, b, c.dial, http.MethodPost, release.PathUpdateTurn, release.TurnRequest{Version: "2.0.0"}, &release.Turn{})
	wantControlProblem(t, "B asks for the turn while A halts 2.0.0", err, 409, "release_halted")
	if tu, err := orig.UpdateTurnOf(ctx, a.Trust.TenantID, group); err == nil && tu.ConnectorID == b.Trust.ConnectorID {
		t.Errorf("B holds the turn for a halted release: %+v", tu)
	}
}

// serveTestCloud starts New(cfg) on cfg.Listen, after prepare (if any)
// has adjusted the server, and stops it when the test ends.
func serveTestCloud(t *testing.T, cfg Config, prepare func(*Server)) (*Server, net.Listener) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(s)
	}
	ln, err := s.Listen()
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
		s.Close()
	})
	return s, ln
}
