package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
)

// Updates end to end: connectors run from their own copy of the binary
// under a supervisor loop (what systemd's Restart=always does for the
// installed service), and their updaters, in --restart signal mode, swap
// that copy and stop the connector for the supervisor to start it again.

// versioned builds of sallyport, made once per test binary.
var (
	buildsMu sync.Mutex
	builds   = map[string]string{}
)

// buildVersion builds sallyport with version v embedded (-ldflags -X).
func buildVersion(t *testing.T, v string) string {
	t.Helper()
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if p, ok := builds[v]; ok {
		return p
	}
	p := filepath.Join(filepath.Dir(binary), "sallyport-"+v)
	cmd := exec.Command("go", "build", "-o", p, "-ldflags",
		"-X github.com/sallyport/sallyport/internal/version.Version="+v+" -X github.com/sallyport/sallyport/internal/version.Commit=e2e"+v,
		"github.com/sallyport/sallyport/cmd/sallyport")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building sallyport %s: %v\n%s", v, err, out)
	}
	builds[v] = p
	return p
}

// crashingBuild is a "build" that answers 'version --json' like release v
// but exits with an error at once when started as a connector.
func crashingBuild(t *testing.T, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sallyport-crashes")
	writeFile(t, p, fmt.Sprintf(`#!/bin/sh
case "$1" in
version) printf '{"version":"%s","commit":"crash","build_date":"now","go":"none","os":"%s","arch":"%s"}\n' ;;
*) echo "this build crashes at start" >&2; exit 2 ;;
esac
`, v, runtime.GOOS, runtime.GOARCH), 0o755)
	return p
}

// supervised is a connector run by a restart-always loop from its own
// installed binary.
type supervised struct {
	st  connectorState
	bin string // the installed binary the updater replaces
	sup *exec.Cmd
	out *testnet.Buffer
}

func startSupervised(t *testing.T, r *runner, st connectorState, bin string) *supervised {
	t.Helper()
	s := &supervised{st: st, bin: bin, out: &testnet.Buffer{}}
	s.sup = exec.Command("bash", "-c", `while :; do "$0" connector run --dir "$1" --metrics-listen '' --drain-timeout 10s; sleep 0.2; done`, bin, st.dir)
	s.sup.Env, s.sup.Dir = r.env(), r.dir
	s.sup.Stdout, s.sup.Stderr = s.out, s.out
	s.sup.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-s.sup.Process.Pid, syscall.SIGKILL)
		s.sup.Wait()
		if t.Failed() {
			t.Logf("output of connector %s (supervised):\n%s", st.id, tail(s.out.String(), 40))
		}
	})
	return s
}

// runStatus reads the connector's status.json.
func (s *supervised) runStatus() (version string, pid, tunnels int, fresh bool) {
	var rs struct {
		PID       int       `json:"pid"`
		Version   string    `json:"version"`
		TunnelsUp int       `json:"tunnels_up"`
		UpdatedAt time.Time `json:"updated_at"`
	}
	raw, err := os.ReadFile(filepath.Join(s.st.dir, "status.json"))
	if err != nil || json.Unmarshal(raw, &rs) != nil {
		return "", 0, 0, false
	}
	return rs.Version, rs.PID, rs.TunnelsUp, time.Since(rs.UpdatedAt) < 15*time.Second
}

// waitVersion waits until the connector runs version v with a tunnel up.
func (s *supervised) waitVersion(t *testing.T, v string, d time.Duration) {
	t.Helper()
	var got string
	if !eventually(d, func() bool {
		var tunnels int
		var fresh bool
		got, _, tunnels, fresh = s.runStatus()
		return fresh && got == v && tunnels > 0
	}) {
		t.Fatalf("connector %s does not run version %s with a tunnel up within %s (status.json says %q)", s.st.id, v, d, got)
	}
}

// event is one line of an event log as 'events --json' prints it.
type event struct {
	ID      int               `json:"id"`
	Level   string            `json:"level"`
	Time    time.Time         `json:"time"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

// updaterEvents reads the updater's event log of a connector with
// 'connector update events --json'.
func updaterEvents(t *testing.T, r *runner, dir string) []event {
	t.Helper()
	var evs []event
	r.okJSON(t, &evs, "connector", "update", "events", "--dir", dir, "--json")
	return evs
}

func hasEvent(evs []event, id int, contains string) bool {
	for _, e := range evs {
		if e.ID == id && strings.Contains(e.Message, contains) {
			return true
		}
	}
	return false
}

// waitEvent waits until the updater log of dir has event id mentioning s.
func waitEvent(t *testing.T, r *runner, dir string, id int, s string, d time.Duration) {
	t.Helper()
	var evs []event
	if !eventually(d, func() bool {
		evs = updaterEvents(t, r, dir)
		return hasEvent(evs, id, s)
	}) {
		var lines []string
		for _, e := range evs {
			lines = append(lines, fmt.Sprintf("%d %s %s", e.ID, e.Level, e.Message))
		}
		t.Fatalf("no updater event %d mentioning %q in %s within %s; events:\n%s", id, s, dir, d, strings.Join(lines, "\n"))
	}
}

// updateWindows are the [start, end] times of each update an updater
// made to version v (events 3003 to 3008/3009/3030).
func updateWindows(evs []event, v string) [][2]time.Time {
	var out [][2]time.Time
	var start time.Time
	for _, e := range evs {
		switch {
		case e.ID == 3003 && e.Fields["to"] == v:
			start = e.Time
		case (e.ID == 3008 || e.ID == 3009 || e.ID == 3030) && e.Fields["to"] == v && !start.IsZero():
			out = append(out, [2]time.Time{start, e.Time})
			start = time.Time{}
		}
	}
	return out
}

func checkNoOverlap(t *testing.T, v string, a, b [][2]time.Time) {
	t.Helper()
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("update to %s: want one update on each connector, got %d and %d", v, len(a), len(b))
	}
	x, y := a[0], b[0]
	if x[0].Before(y[1]) && y[0].Before(x[1]) {
		t.Fatalf("update to %s ran on both connectors of the group at once: %s–%s and %s–%s", v,
			x[0].Format(time.RFC3339Nano), x[1].Format(time.RFC3339Nano), y[0].Format(time.RFC3339Nano), y[1].Format(time.RFC3339Nano))
	}
	t.Logf("update to %s: %s–%s, then %s–%s", v, x[0].Format("15:04:05.000"), x[1].Format("15:04:05.000"), y[0].Format("15:04:05.000"), y[1].Format("15:04:05.000"))
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

var publishedRe = regexp.MustCompile(`sha256 ([0-9a-f]{64})`)

// publishRelease runs 'cloud release publish' and returns the digest.
func publishRelease(t *testing.T, c *cloud, file, v string, extra ...string) string {
	t.Helper()
	res := c.admin.ok(t, "", append([]string{"cloud", "release", "publish", "--data-dir", c.dataDir, "--file", file, "--version", v}, extra...)...)
	m := publishedRe.FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("publish printed no digest:\n%s", res)
	}
	return m[1]
}

// TestUpdateRollout: a group of two connectors at 1.0.0 under load, each
// with its updater service polling. A minor release is announced but not
// installed; a major release is installed on both, one at a time, with no
// failed request; a major release that crashes at start is rolled back on
// the first connector that installs it and halted for the group; then by hand: 'update --check' and '--apply' install
// a minor release, a tampered binary and a manifest signed with another
// key are refused and change nothing.
func TestUpdateRollout(t *testing.T) {
	skipUnlessLinux(t)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("the supervisor loop needs bash")
	}
	t.Parallel()
	v100, v110, v200, v210 := buildVersion(t, "1.0.0"), buildVersion(t, "1.1.0"), buildVersion(t, "2.0.0"), buildVersion(t, "2.1.0")
	c := startCloud(t)
	if !strings.Contains(c.initOut, "Release key ed25519:") {
		t.Errorf("cloud init does not name the release key:\n%s", c.initOut)
	}
	// The administrator's copy of the cloud's release key, which root
	// gives the updaters (--release-key): they never take it from
	// trust.json.
	releaseKey := filepath.Join(t.TempDir(), "release.pub")
	raw0, err := os.ReadFile(filepath.Join(c.dataDir, "release.pub"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, releaseKey, string(raw0), 0o644)
	b := newHABackend(t)
	site := newRunner(t, "site")
	c.admin.ok(t, "", "admin", "group", "create", "Updates")
	web := c.publish(t, c.admin, "web", b.url, "--group", "Updates")

	var conns []*supervised
	for i := 1; i <= 2; i++ {
		st, res := c.register(t, site, filepath.Join(site.dir, fmt.Sprintf("conn%d", i)), contosoAdmin, contosoPW, "--ca-file", c.caFile, "--group", "Updates")
		if res.code != 0 || st.id == "" {
			t.Fatalf("registration failed:\n%s", res)
		}
		trust, err := os.ReadFile(filepath.Join(st.dir, "trust.json"))
		if err != nil || !bytes.Contains(trust, []byte(`"release_key": "ed25519:`)) {
			t.Fatalf("trust.json pins no release key:\n%s", trust)
		}
		bin := filepath.Join(site.dir, fmt.Sprintf("opt%d", i), "sallyport")
		os.MkdirAll(filepath.Dir(bin), 0o755)
		raw, err := os.ReadFile(v100)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, bin, string(raw), 0o755)
		conns = append(conns, startSupervised(t, site, st, bin))
	}
	for _, s := range conns {
		s.waitVersion(t, "1.0.0", readyTimeout)
		c.waitConnector(t, c.admin, s.st.id, nil, func(x *apiConnector) bool { return x != nil && x.Tunnels == 2 })
	}

	// Load on the group's application for the whole automatic part.
	hc := c.client(web.ExternalHost, "h2")
	ref := time.Now()
	l := startLoad(t, loadSpec{client: hc, url: c.appURL(web.ExternalHost, "/work?ms=20"), workers: 4, max: 1 << 30,
		maxTime: 5 * time.Minute, pace: 10 * time.Millisecond, postEvery: 3, timeout: 20 * time.Second})
	l.waitFor(t, "50 requests", readyTimeout, func(outs []outcome) bool { return len(outs) >= 50 })

	// A minor release: announced by the updaters, not installed.
	publishRelease(t, c, v110, "1.1.0")
	var updaters []*proc
	for i, s := range conns {
		updaters = append(updaters, site.start(t, fmt.Sprintf("updater %d", i+1), "connector", "updater", "--dir", s.st.dir, "--binary", s.bin,
			"--restart", "signal", "--interval", "1s", "--ready-timeout", "8s", "--release-key", releaseKey))
	}
	for _, s := range conns {
		waitEvent(t, site, s.st.dir, 3002, "Release 1.1.0 is available but is not a major release", readyTimeout)
		if v, _, _, _ := s.runStatus(); v != "1.0.0" {
			t.Fatalf("connector %s runs %s after a minor release was published; want 1.0.0 until 'update --apply'", s.st.id, v)
		}
	}

	// A major release: installed on both, one at a time.
	publishRelease(t, c, v200, "2.0.0", "--major")
	for _, s := range conns {
		s.waitVersion(t, "2.0.0", 90*time.Second)
		waitEvent(t, site, s.st.dir, 3008, "updated from 1.0.0 to 2.0.0", readyTimeout)
	}
	checkNoOverlap(t, "2.0.0", updateWindows(updaterEvents(t, site, conns[0].st.dir), "2.0.0"), updateWindows(updaterEvents(t, site, conns[1].st.dir), "2.0.0"))
	for _, s := range conns {
		if got, want := fileDigest(t, s.bin), fileDigest(t, v200); got != want {
			t.Errorf("%s holds %s, not the 2.0.0 build", s.bin, got)
		}
		c.waitConnector(t, c.admin, s.st.id, nil, func(x *apiConnector) bool { return x != nil && x.Tunnels == 2 && x.Version == "2.0.0" })
	}
	l.waitFor(t, "100 requests", readyTimeout, func(outs []outcome) bool { return len(outs) >= 100 })

	// A major release that crashes at start: rolled back on the first
	// connector that installs it, and then halted for the group: the
	// other connector does not try it.
	crash := crashingBuild(t, "3.0.0")
	res := c.admin.ok(t, "", "cloud", "release", "publish", "--data-dir", c.dataDir, "--file", crash, "--version", "3.0.0", "--major",
		"--os", runtime.GOOS, "--arch", runtime.GOARCH)
	mustContain(t, "publishing a script", res.stderr, "is not an ELF, PE or Mach-O executable")
	var first, second *supervised
	if !eventually(90*time.Second, func() bool {
		for i, s := range conns {
			if hasEvent(updaterEvents(t, site, s.st.dir), 3009, "Version 3.0.0 did not come up") {
				first, second = s, conns[1-i]
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no updater rolled back 3.0.0 within 90s")
	}
	first.waitVersion(t, "2.0.0", readyTimeout)
	if got, want := fileDigest(t, first.bin), fileDigest(t, v200); got != want {
		t.Errorf("after the rollback %s holds %s, not the 2.0.0 build", first.bin, got)
	}
	waitEvent(t, site, second.st.dir, 3015, "Release 3.0.0 was rolled back on connector "+first.st.id, readyTimeout)
	if w := updateWindows(updaterEvents(t, site, second.st.dir), "3.0.0"); len(w) != 0 {
		t.Errorf("connector %s installed 3.0.0 after it was halted in the group: %v", second.st.id, w)
	}
	if v, _, _, _ := second.runStatus(); v != "2.0.0" {
		t.Errorf("connector %s runs %s; want 2.0.0", second.st.id, v)
	}
	l.stop()
	out := l.results()
	t.Logf("load during the automatic updates: %d requests", len(out))
	nfail := 0
	for _, o := range out {
		if o.err != nil || o.status != http.StatusOK {
			if nfail++; nfail <= 10 {
				t.Errorf("a request failed during the updates: %s", o.describe(ref))
			}
		}
	}
	if nfail > 0 {
		t.Errorf("%d of %d requests failed during the updates", nfail, len(out))
	}
	// The cloud's event log saw each turn given and ended.
	cloudEvents := c.admin.ok(t, "", "cloud", "events", "--data-dir", c.dataDir).stdout
	mustContain(t, "the cloud's event log", cloudEvents, "got the update turn to install 2.0.0", "ended its update turn", "Release 2.0.0 for",
		"Release 3.0.0 was rolled back on connector "+first.st.id, "its automatic rollout in group 'Updates' is halted")

	for _, p := range updaters {
		p.signal(syscall.SIGTERM)
		if _, ok := p.waitExit(20 * time.Second); !ok {
			t.Fatalf("%s did not stop on SIGTERM", p.name)
		}
	}
	waitEvent(t, site, conns[0].st.dir, 3014, "The updater stopped", readyTimeout)

	// By hand: withdraw the crashing release, publish a minor one, check and apply.
	c.admin.ok(t, "", "cloud", "release", "delete", "--data-dir", c.dataDir, "--version", "3.0.0", "--os", runtime.GOOS, "--arch", runtime.GOARCH)
	publishRelease(t, c, v210, "2.1.0")
	s := conns[0]
	upd := []string{"--dir", s.st.dir, "--binary", s.bin, "--restart", "signal", "--ready-timeout", "30s"}
	res = site.ok(t, "", append([]string{"connector", "update", "--check"}, upd...)...)
	mustContain(t, "update --check", res.stdout, "Installed: 2.0.0", "Available: 2.1.0 (minor: installed on request)", "update --apply")
	res = site.ok(t, "", append([]string{"connector", "update", "--apply"}, upd...)...)
	mustContain(t, "update --apply", res.stdout, "updated from 2.0.0 to 2.1.0")
	s.waitVersion(t, "2.1.0", readyTimeout)

	// A tampered binary is refused and nothing changes.
	digest := publishRelease(t, c, v200, "2.2.0")
	blob := filepath.Join(c.dataDir, "releases", "sha256-"+digest)
	raw, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	writeFile(t, blob, string(raw), 0o600)
	before := fileDigest(t, s.bin)
	res = site.refused(t, "", append([]string{"connector", "update", "--apply"}, upd...), "Release 2.2.0 was refused and nothing was changed", "SHA-256")
	if after := fileDigest(t, s.bin); after != before {
		t.Errorf("the refused update changed %s", s.bin)
	}
	waitEvent(t, site, s.st.dir, 3005, "Release 2.2.0 was refused", readyTimeout)
	c.admin.ok(t, "", "cloud", "release", "delete", "--data-dir", c.dataDir, "--version", "2.2.0", "--os", runtime.GOOS, "--arch", runtime.GOARCH)

	// A manifest signed with another key (the cloud's release key was
	// replaced behind the connectors' back) is refused.
	other := filepath.Join(t.TempDir(), "other.key")
	c.admin.ok(t, "", "cloud", "release", "keygen", "--out", other)
	for src, dst := range map[string]string{other: "release.key", other + ".pub": "release.pub"} {
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(c.dataDir, dst), string(raw), 0o600)
	}
	publishRelease(t, c, v200, "2.3.0", "--major")
	res = site.ok(t, "", append([]string{"connector", "update", "--check"}, upd...)...)
	mustContain(t, "update --check with a foreign signature", res.stdout, "Available: nothing newer", "Refused: A release offered by the cloud was refused: the release manifest's signature does not verify with the pinned release key")
	res = site.refused(t, "", append([]string{"connector", "update", "--apply"}, upd...), "signature does not verify with the pinned release key")
	if after := fileDigest(t, s.bin); after != before {
		t.Errorf("the refused update changed %s", s.bin)
	}
	waitEvent(t, site, s.st.dir, 3004, "signature does not verify", readyTimeout)
	s.waitVersion(t, "2.1.0", readyTimeout)

	// trust.json is writable by the connector's user: a release key put
	// there (the new one, which signed 2.3.0) does not change what the
	// updater trusts — only root pins it ('connector install', or
	// --release-key), in the updater's own directory.
	if _, err := os.Stat(filepath.Join(s.st.dir+"-updater", "release.pub")); err != nil {
		t.Fatalf("the updater pinned no release key in its own directory: %v", err)
	}
	trustPath := filepath.Join(s.st.dir, "trust.json")
	var trust map[string]any
	raw, err = os.ReadFile(trustPath)
	if err != nil || json.Unmarshal(raw, &trust) != nil {
		t.Fatalf("trust.json: %v", err)
	}
	pub, err := os.ReadFile(other + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	block := strings.TrimSpace(string(pub))
	trust["release_key"] = block
	js, _ := json.MarshalIndent(trust, "", "  ")
	writeFile(t, trustPath, string(js), 0o644)
	res = site.refused(t, "", append([]string{"connector", "update", "--apply"}, upd...), "signature does not verify with the pinned release key")
	if after := fileDigest(t, s.bin); after != before {
		t.Errorf("the refused update changed %s", s.bin)
	}
	waitEvent(t, site, s.st.dir, 3018, "is not the one the updater pinned", readyTimeout)
}

// TestUpdateThroughProxy: the updater reaches the cloud through the
// connector's proxy settings (with credentials), for the check and the
// download; with the connector not running, the new build is installed
// for its next start.
func TestUpdateThroughProxy(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	site := newRunner(t, "site")
	tp := startTinyproxy(t, site, "BasicAuth alice s3cret-proxy", "ConnectPort "+c.port)
	dir := filepath.Join(site.dir, "conn")
	site.ok(t, "s3cret-proxy\n", "connector", "proxy", "set", tp.url(), "--user", "alice", "--password-stdin", "--dir", dir)
	c.mustRegister(t, site, dir, contosoAdmin, contosoPW)
	v200 := buildVersion(t, "2.0.0")
	publishRelease(t, c, v200, "2.0.0", "--major")

	bin := filepath.Join(site.dir, "opt", "sallyport")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	raw, err := os.ReadFile(buildVersion(t, "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bin, string(raw), 0o755)
	before := strings.Count(tp.logText(), "CONNECT 127.0.0.1:"+c.port)
	upd := []string{"--dir", dir, "--binary", bin, "--restart", "signal"}
	// Without a pin from root the updater installs nothing: it does not
	// adopt the key of trust.json.
	site.refused(t, "", append([]string{"connector", "update", "--check"}, upd...), "The updater has no pinned release key", "run 'sallyport connector install' again as root")
	waitEvent(t, site, dir, 3017, "has no pinned release key", readyTimeout)
	upd = append(upd, "--release-key", filepath.Join(c.dataDir, "release.pub"))
	res := site.ok(t, "", append([]string{"connector", "update", "--check"}, upd...)...)
	mustContain(t, "update --check", res.stdout, "Installed: 1.0.0", "Available: 2.0.0 (major: installed automatically)")
	res = site.ok(t, "", append([]string{"connector", "update", "--apply"}, upd...)...)
	mustContain(t, "update --apply", res.stdout, "Version 2.0.0 is installed; the connector was not running, so it starts with it next time")
	// Not checked, so not "completed" (3008): its own warning.
	waitEvent(t, site, dir, 3030, "the connector was not running", readyTimeout)
	if got, want := fileDigest(t, bin), fileDigest(t, v200); got != want {
		t.Errorf("%s is not the 2.0.0 build after --apply", bin)
	}
	if after := strings.Count(tp.logText(), "CONNECT 127.0.0.1:"+c.port); after < before+3 {
		t.Errorf("the updater's calls did not go through the proxy: %d CONNECTs before, %d after:\n%s", before, after, tp.logText())
	}
	if strings.Contains(res.stdout+res.stderr, "s3cret-proxy") {
		t.Error("the updater printed the proxy password")
	}
}
