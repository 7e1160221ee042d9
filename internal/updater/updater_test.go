package updater

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem/problemtest"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/service"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTestUpdater makes an Updater on dir (a new temporary directory when
// ""), restarting by signal, with a short readiness deadline.
func newTestUpdater(t *testing.T, dir string, cfg Config) *Updater {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg.Dir = dir
	if cfg.Binary == "" {
		cfg.Binary = filepath.Join(dir, "sallyport")
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 300 * time.Millisecond
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", filepath.Base(path), err)
	}
	return string(raw)
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func missing(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, os.ErrNotExist)
}

// events reads the updater's event log of dir.
func events(t *testing.T, dir string) []eventlog.Event {
	t.Helper()
	evs, err := eventlog.Read(filepath.Join(DefaultDir(dir), EventsFile), eventlog.Filter{})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return evs
}

func hasEvent(evs []eventlog.Event, id eventlog.ID, sub string) bool {
	for _, e := range evs {
		if e.ID == id && strings.Contains(e.Message, sub) {
			return true
		}
	}
	return false
}

func waitEvent(t *testing.T, dir string, id eventlog.ID, sub string) {
	t.Helper()
	if !testnet.Eventually(10*time.Second, func() bool { return hasEvent(events(t, dir), id, sub) }) {
		var lines []string
		for _, e := range events(t, dir) {
			lines = append(lines, fmt.Sprintf("%d %s %s", e.ID, e.Level, e.Message))
		}
		t.Fatalf("no event %d mentioning %q within 10s; events:\n%s", id, sub, strings.Join(lines, "\n"))
	}
}

func TestSwap(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, next, path, previous string)
		wantErr  bool
		path     string // content of path afterwards ("" when missing)
		next     string // content of next afterwards ("" when gone)
		previous string // content of previous afterwards ("" when missing)
	}{
		{name: "first update", path: "new", previous: "old"},
		{name: "a previous binary is replaced", setup: func(t *testing.T, _, _, previous string) {
			testnet.WriteFile(t, previous, "older", 0o755)
		}, path: "new", previous: "old"},
		{name: "no installed binary", setup: func(t *testing.T, _, path, _ string) {
			os.Remove(path)
		}, wantErr: true, next: "new"},
		{name: "previous cannot be kept", setup: func(t *testing.T, _, _, previous string) {
			os.Mkdir(previous, 0o700)
			testnet.WriteFile(t, filepath.Join(previous, "x"), "x", 0o600)
		}, wantErr: true, path: "old", next: "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			next, path, previous := filepath.Join(dir, ".sallyport-update-1"), filepath.Join(dir, "sallyport"), filepath.Join(dir, "sallyport.previous")
			testnet.WriteFile(t, path, "old", 0o755)
			testnet.WriteFile(t, next, "new", 0o755)
			oldFile, nextFile := stat(t, path), stat(t, next)
			if tt.setup != nil {
				tt.setup(t, next, path, previous)
			}
			err := swap(next, path, previous)
			if (err != nil) != tt.wantErr {
				t.Fatalf("swap = %v, want an error: %v", err, tt.wantErr)
			}
			for _, f := range []struct{ name, path, want string }{{"path", path, tt.path}, {"next", next, tt.next}, {"previous", previous, tt.previous}} {
				if f.want == "" {
					if fi, err := os.Stat(f.path); err == nil && !fi.IsDir() {
						t.Errorf("%s exists, holding %q", f.name, readFile(t, f.path))
					}
					continue
				}
				if got := readFile(t, f.path); got != f.want {
					t.Errorf("%s holds %q, want %q", f.name, got, f.want)
				}
			}
			if tt.wantErr {
				return
			}
			// The new binary was renamed in place (not copied: a reader
			// never sees it half written), and the old one is kept.
			if !os.SameFile(stat(t, path), nextFile) {
				t.Error("the new binary was not renamed over the installed one")
			}
			if !os.SameFile(stat(t, previous), oldFile) {
				t.Error("previous is not the installed binary")
			}
			if runtime.GOOS != "windows" && stat(t, path).Mode().Perm() != 0o755 {
				t.Errorf("the installed binary's mode is %o", stat(t, path).Mode().Perm())
			}

			// Rolling back puts the old binary back in place.
			if err := restorePrevious(previous, path); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, path); got != "old" {
				t.Errorf("after restorePrevious the binary holds %q, want the old one", got)
			}
			if !os.SameFile(stat(t, path), oldFile) {
				t.Error("restorePrevious did not rename the previous binary in place")
			}
			if !missing(previous) {
				t.Error("previous still exists after restorePrevious")
			}
			// Without a previous binary there is nothing to restore, and
			// the installed binary is left alone.
			if err := restorePrevious(previous, path); err == nil {
				t.Error("restorePrevious without a previous binary succeeded")
			}
			if got := readFile(t, path); got != "old" {
				t.Errorf("a failed restorePrevious left the binary holding %q", got)
			}
		})
	}
}

func TestCopyFile(t *testing.T) {
	tests := []struct {
		name    string
		src     string // content; "" for no source file
		dst     string // existing content of dst; "" for none
		badDir  bool   // dst in a missing directory
		wantErr bool
	}{
		{name: "new file", src: "binary"},
		{name: "longer file replaced", src: "short", dst: "a much longer existing file"},
		{name: "empty source", src: "\x00"},
		{name: "no source", wantErr: true},
		{name: "no directory", src: "binary", badDir: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
			if tt.src != "" {
				testnet.WriteFile(t, src, tt.src, 0o700)
			}
			if tt.dst != "" {
				testnet.WriteFile(t, dst, tt.dst, 0o600)
			}
			if tt.badDir {
				dst = filepath.Join(dir, "nope", "dst")
			}
			err := copyFile(src, dst)
			if tt.wantErr {
				if err == nil {
					t.Fatal("copyFile succeeded")
				}
				if tt.dst == "" && !missing(dst) {
					t.Error("a failed copy created dst")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, dst); got != tt.src {
				t.Errorf("dst holds %q, want %q", got, tt.src)
			}
			if got := readFile(t, src); got != tt.src {
				t.Errorf("src changed to %q", got)
			}
			if tt.dst == "" && runtime.GOOS != "windows" && stat(t, dst).Mode().Perm()&0o100 == 0 {
				t.Errorf("the copy's mode %o is not executable", stat(t, dst).Mode().Perm())
			}
		})
	}
}

func TestJitter(t *testing.T) {
	tests := []struct {
		d        time.Duration
		f        float64
		min, max time.Duration
	}{
		{0, 0.1, 0, 0},
		{-time.Second, 0.1, 0, 0},
		{time.Second, 0, time.Second, time.Second},
		{time.Hour, 0.1, 54 * time.Minute, 66 * time.Minute},
		{6 * time.Minute, 1, 0, 12 * time.Minute},
		{30 * time.Second, 0.2, 24 * time.Second, 36 * time.Second},
		{DefaultInterval, 0.1, DefaultInterval * 9 / 10, DefaultInterval * 11 / 10},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s±%g", tt.d, tt.f), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 1000 {
				got := jitter(tt.d, tt.f)
				if got < tt.min || got > tt.max {
					t.Fatalf("jitter(%s, %g) = %s, want within [%s, %s]", tt.d, tt.f, got, tt.min, tt.max)
				}
				seen[got] = true
			}
			if tt.min != tt.max && len(seen) < 2 {
				t.Errorf("jitter(%s, %g) always returns %v", tt.d, tt.f, seen)
			}
		})
	}
}

// writeStatus writes a connector's status.json.
func writeStatus(t *testing.T, dir string, rs statedir.RunStatus) {
	t.Helper()
	js, _ := json.Marshal(rs)
	testnet.WriteFile(t, filepath.Join(dir, statedir.StatusFile), string(js), 0o644)
}

func TestWaitReady(t *testing.T) {
	const oldPID = 1000
	fresh := func() time.Time { return time.Now().UTC() }
	tests := []struct {
		name   string
		status *statedir.RunStatus // nil: no status.json
		raw    string              // status.json as is, when set
		oldPID int
		want   string // "" when ready; else the error's text
	}{
		{name: "ready", status: &statedir.RunStatus{PID: oldPID + 1, Version: "2.0.0", UpdatedAt: fresh(), TunnelsUp: 2}, oldPID: oldPID},
		{name: "ready, any process", status: &statedir.RunStatus{PID: oldPID, Version: "2.0.0", UpdatedAt: fresh(), TunnelsUp: 1}, oldPID: -1},
		{name: "no status", oldPID: oldPID,
			want: "no connector process reported ready with version 2.0.0 within 300ms"},
		{name: "stale status", status: &statedir.RunStatus{PID: oldPID + 1, Version: "2.0.0", UpdatedAt: time.Now().Add(-time.Hour), TunnelsUp: 2}, oldPID: oldPID,
			want: "no connector process reported ready with version 2.0.0 within 300ms"},
		{name: "stopped connector", status: &statedir.RunStatus{PID: oldPID + 1, Version: "2.0.0"}, oldPID: oldPID,
			want: "no connector process reported ready with version 2.0.0 within 300ms"},
		{name: "damaged status", raw: "{not json", oldPID: oldPID,
			want: "no connector process reported ready with version 2.0.0 within 300ms"},
		{name: "other version", status: &statedir.RunStatus{PID: oldPID + 1, Version: "1.0.0", UpdatedAt: fresh(), TunnelsUp: 2}, oldPID: oldPID,
			want: "the running connector reports version 1.0.0, not 2.0.0, after 300ms"},
		{name: "no tunnel", status: &statedir.RunStatus{PID: oldPID + 1, Version: "2.0.0", UpdatedAt: fresh()}, oldPID: oldPID,
			want: "version 2.0.0 runs but no tunnel to the cloud came up within 300ms"},
		{name: "no tunnel, with the reason", status: &statedir.RunStatus{PID: oldPID + 1, Version: "2.0.0", UpdatedAt: fresh(), LastError: "the proxy refused CONNECT"}, oldPID: oldPID,
			want: "version 2.0.0 runs but no tunnel to the cloud came up: the proxy refused CONNECT within 300ms"},
		{name: "the old process", status: &statedir.RunStatus{PID: oldPID, Version: "1.0.0", UpdatedAt: fresh(), TunnelsUp: 2}, oldPID: oldPID,
			want: "the running connector reports version 1.0.0, not 2.0.0, after 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newTestUpdater(t, "", Config{})
			switch {
			case tt.raw != "":
				testnet.WriteFile(t, filepath.Join(u.cfg.Dir, statedir.StatusFile), tt.raw, 0o644)
			case tt.status != nil:
				writeStatus(t, u.cfg.Dir, *tt.status)
			}
			err := u.waitReady(context.Background(), "2.0.0", tt.oldPID)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("waitReady = %v, want ready", err)
			case tt.want != "" && err == nil:
				t.Fatalf("waitReady = nil, want %q", tt.want)
			case tt.want != "" && err.Error() != tt.want:
				t.Errorf("waitReady = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestWaitReadyBecomesReady(t *testing.T) {
	u := newTestUpdater(t, "", Config{ReadyTimeout: time.Minute})
	writeStatus(t, u.cfg.Dir, statedir.RunStatus{PID: 1, Version: "1.0.0", UpdatedAt: time.Now().UTC(), TunnelsUp: 1})
	done := make(chan error, 1)
	go func() { done <- u.waitReady(context.Background(), "2.0.0", 1) }()
	writeStatus(t, u.cfg.Dir, statedir.RunStatus{PID: 2, Version: "2.0.0", UpdatedAt: time.Now().UTC(), TunnelsUp: 1})
	if err := <-done; err != nil {
		t.Fatalf("waitReady = %v", err)
	}
}

func TestWaitReadyCanceled(t *testing.T) {
	u := newTestUpdater(t, "", Config{ReadyTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := u.waitReady(ctx, "2.0.0", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("waitReady = %v, want context.Canceled", err)
	}
}

// script writes an executable shell script.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell scripts stand for builds on unix only")
	}
	p := filepath.Join(dir, name)
	testnet.WriteFile(t, p, "#!/bin/sh\n"+body+"\n", 0o755)
	return p
}

// versionScript is a build reporting version v for 'version --json'.
func versionScript(t *testing.T, dir, name, v string) string {
	t.Helper()
	return script(t, dir, name, fmt.Sprintf(`[ "$1 $2" = "version --json" ] || exit 3
printf '{"version":"%s","commit":"abc","build_date":"now","go":"go1.26","os":"linux","arch":"amd64"}\n'`, v))
}

func TestBinaryVersion(t *testing.T) {
	tests := []struct {
		name    string
		body    string // the script; "" for no file
		version string // "" when an error is expected
		subs    []string
	}{
		{name: "valid", body: `[ "$1 $2" = "version --json" ] || exit 3
printf '{"version":"1.2.3","commit":"abc","build_date":"now","go":"go1.26","os":"linux","arch":"arm64"}\n'`, version: "1.2.3"},
		{name: "garbage", body: "echo sallyport 1.2.3", subs: []string{"version --json failed", "invalid character"}},
		{name: "exit 1", body: `echo '{"version":"1.2.3"}'; exit 1`, subs: []string{"version --json failed", "exit status 1"}},
		{name: "no version", body: `echo '{"commit":"abc"}'`, subs: []string{"it printed no version"}},
		{name: "empty output", body: "true", subs: []string{"version --json failed"}},
		{name: "missing", subs: []string{"version --json failed", "check the --binary path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "sallyport")
			if tt.body != "" {
				bin = script(t, dir, "sallyport", tt.body)
			}
			info, err := BinaryVersion(context.Background(), bin)
			if tt.version == "" {
				problemtest.Want(t, "BinaryVersion", err, "binary_version", append(tt.subs, bin)...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Version != tt.version || info.OS != "linux" || info.Arch != "arm64" || info.Commit != "abc" {
				t.Errorf("BinaryVersion = %+v", info)
			}
		})
	}
}

func TestNew(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	testnet.WriteFile(t, file, "x", 0o600)
	tests := []struct {
		name string
		cfg  Config
		code string
	}{
		{"no dir", Config{Binary: "/usr/bin/sallyport"}, "updater_config"},
		{"no binary", Config{Dir: t.TempDir()}, "updater_config"},
		{"bad restart method", Config{Dir: t.TempDir(), Binary: "sallyport", Restart: "reboot"}, "restart_spec"},
		{"restart unit missing", Config{Dir: t.TempDir(), Binary: "sallyport", Restart: "systemd:"}, "restart_spec"},
		{"restart unit an option", Config{Dir: t.TempDir(), Binary: "sallyport", Restart: "systemd:-x"}, "restart_spec"},
		{"dir under a file", Config{Dir: filepath.Join(file, "state"), Binary: "sallyport"}, "updater_dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := New(tt.cfg)
			if err == nil {
				u.Close()
			}
			problemtest.Want(t, "New", err, tt.code)
		})
	}

	dir := filepath.Join(t.TempDir(), "state")
	u, err := New(Config{Dir: dir, Binary: "sallyport"})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	fi := stat(t, DefaultDir(dir))
	if !fi.IsDir() || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700) {
		t.Errorf("%s is %s, want a directory with mode 700", DefaultDir(dir), fi.Mode())
	}
	wd, _ := os.Getwd()
	if u.cfg.Binary != filepath.Join(wd, "sallyport") {
		t.Errorf("binary %q, want it made absolute", u.cfg.Binary)
	}
	if u.cfg.Interval != DefaultInterval || u.cfg.ReadyTimeout != DefaultReadyTimeout || u.restart.Method != service.MethodSignal || u.cfg.Now == nil || u.log == nil {
		t.Errorf("defaults: %+v, restart %s", u.cfg, u.restart)
	}
	u2, err := New(Config{Dir: dir, Binary: "/opt/sallyport", Restart: "systemd:sallyport-connector.service", Interval: time.Minute, ReadyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	if u2.restart != (service.RestartSpec{Method: service.MethodSystemd, Target: "sallyport-connector.service"}) || u2.cfg.Interval != time.Minute || u2.cfg.ReadyTimeout != time.Second {
		t.Errorf("given: %+v, restart %s", u2.cfg, u2.restart)
	}
}

func TestUpdateLock(t *testing.T) {
	dir := t.TempDir()
	u1 := newTestUpdater(t, dir, Config{})
	u2 := newTestUpdater(t, dir, Config{})
	l, err := u1.lockUpdate()
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(DefaultDir(dir), UpdateLock+".pid")
	if got := strings.TrimSpace(readFile(t, pidFile)); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("%s holds %q, want this process's pid", filepath.Base(pidFile), got)
	}
	_, err = u2.lockUpdate()
	var busy errLockBusy
	if !errors.As(err, &busy) {
		t.Fatalf("second lockUpdate = %v, want errLockBusy", err)
	}
	if want := fmt.Sprintf("Another updater (process %d) is updating this connector", os.Getpid()); busy.Error() != want {
		t.Errorf("busy: %q, want %q", busy.Error(), want)
	}
	// An update while the lock is held says so and does nothing.
	res, err := u2.Apply(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != LockBusy || !strings.Contains(res.Message, fmt.Sprintf("process %d", os.Getpid())) || !strings.Contains(res.Message, "only one update runs at a time") {
		t.Errorf("Apply while locked = %+v", res)
	}
	// Without the pid file the holder is not named.
	os.Remove(pidFile)
	if _, err := u2.lockUpdate(); !errors.As(err, &busy) || !strings.Contains(busy.Error(), "(another process)") {
		t.Errorf("busy without the pid file: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := u2.lockUpdate()
	if err != nil {
		t.Fatalf("lockUpdate after the first unlocked: %v", err)
	}
	l2.Unlock()
}

// runUpdater starts u.Run and returns a function stopping it, which
// returns Run's error.
func runUpdater(t *testing.T, u *Updater) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	stopped := false
	var err error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the updater did not stop within 20s")
			}
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestRunSingleService(t *testing.T) {
	dir := t.TempDir()
	u1 := newTestUpdater(t, dir, Config{Interval: 24 * time.Hour})
	u2 := newTestUpdater(t, dir, Config{Interval: 24 * time.Hour})
	stop := runUpdater(t, u1)
	waitEvent(t, dir, 3000, "checking every 24h0m0s for the connector in "+dir)
	if got := strings.TrimSpace(readFile(t, filepath.Join(DefaultDir(dir), ServiceLock+".pid"))); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("%s.pid holds %q", ServiceLock, got)
	}

	err := u2.Run(context.Background())
	p := problemtest.Want(t, "a second updater service", err, "updater_running", dir, ServiceLock, "stop the other one first")
	if p.Status != 409 {
		t.Errorf("status %d, want 409", p.Status)
	}
	waitEvent(t, dir, 3012, "Another updater service already runs for this connector")

	if err := stop(); err != nil {
		t.Fatalf("Run = %v after its context was canceled", err)
	}
	waitEvent(t, dir, 3014, "The updater stopped")

	// Once the first stopped, another may run.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := u2.Run(ctx); err != nil {
		t.Fatalf("Run after the first service stopped = %v", err)
	}
}

// TestRunCheckFails: a check that fails is logged and retried; the
// service goes on.
func TestRunCheckFails(t *testing.T) {
	dir := t.TempDir()
	u := newTestUpdater(t, dir, Config{Interval: time.Second})
	stop := runUpdater(t, u)
	waitEvent(t, dir, 3011, "The update check failed and is retried at the next check: This machine has no usable connector registration in "+dir)
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// The failed checks left the update lock free.
	l, err := u.lockUpdate()
	if err != nil {
		t.Fatalf("the update lock is held after the service stopped: %v", err)
	}
	l.Unlock()
}

func TestApplyNotRegistered(t *testing.T) {
	u := newTestUpdater(t, "", Config{})
	for _, auto := range []bool{true, false} {
		res, err := u.Apply(context.Background(), auto)
		problemtest.Want(t, "Apply", err, "not_registered", u.cfg.Dir, "trust.json", "sallyport connector register --dir "+u.cfg.Dir)
		if res != nil {
			t.Errorf("Apply returned %+v with the error", res)
		}
	}
	_, err := u.Check(context.Background())
	problemtest.Want(t, "Check", err, "not_registered")
	// Apply let go of the update lock.
	l, err := u.lockUpdate()
	if err != nil {
		t.Fatalf("the update lock is held after Apply failed: %v", err)
	}
	l.Unlock()
}

func TestStateFile(t *testing.T) {
	u := newTestUpdater(t, "", Config{})
	if p := u.load(); p.Journal != nil || len(p.Skip) != 0 || len(p.Announced) != 0 {
		t.Errorf("state without a file = %+v", p)
	}
	want := persisted{Skip: []string{"3.0.0"}, Announced: []string{"1.1.0"},
		Journal: &journal{From: "1.0.0", To: "2.0.0", Previous: "/opt/sallyport.previous", OldPID: 42, StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	u.save(want)
	if runtime.GOOS != "windows" {
		if m := stat(t, u.statePath()).Mode().Perm(); m != 0o600 {
			t.Errorf("%s mode = %o, want 600", StateFile, m)
		}
	}
	got := u.load()
	if fmt.Sprint(got.Skip, got.Announced) != fmt.Sprint(want.Skip, want.Announced) || got.Journal == nil || *got.Journal != *want.Journal {
		t.Errorf("load = %+v (journal %+v), want %+v", got, got.Journal, want)
	}
	// A damaged state file starts afresh.
	testnet.WriteFile(t, u.statePath(), "{damaged", 0o600)
	if p := u.load(); p.Journal != nil || len(p.Skip) != 0 {
		t.Errorf("damaged state = %+v", p)
	}
}

// TestRecover: an update interrupted after its journal was written is
// finished or undone when the updater starts again.
func TestRecover(t *testing.T) {
	tests := []struct {
		name      string
		installed string // version the installed binary reports
		previous  bool   // the previous binary was kept
		status    *statedir.RunStatus
		journal   bool   // the journal is kept (rollback failed)
		binary    string // version the binary reports afterwards
		skip      bool   // the new version is skipped afterwards
		event     eventlog.ID
		eventSubs []string
	}{
		{name: "swap never happened", installed: "1.0.0", previous: false, binary: "1.0.0"},
		{name: "update complete", installed: "2.0.0", previous: true,
			status: &statedir.RunStatus{PID: 4001, Version: "2.0.0", TunnelsUp: 1}, binary: "2.0.0",
			event: 3008, eventSubs: []string{"An interrupted update to 2.0.0 was found complete"}},
		{name: "new version not ready", installed: "2.0.0", previous: true, binary: "1.0.0", skip: true,
			event: 3009, eventSubs: []string{"Version 2.0.0 did not come up (the update was interrupted and the new version is not ready), so the connector was rolled back to 1.0.0",
				"but version 1.0.0 is not ready either (no connector process reported ready with version 1.0.0 within 300ms)"}},
		{name: "rollback fails", installed: "2.0.0", previous: false, binary: "2.0.0", journal: true,
			event: 3010, eventSubs: []string{"rolling back to 1.0.0 failed too", "reinstall sallyport 1.0.0 by hand"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := versionScript(t, dir, "sallyport", tt.installed)
			u := newTestUpdater(t, dir, Config{Binary: bin})
			if tt.previous {
				versionScript(t, dir, "sallyport.previous", "1.0.0")
			}
			if tt.status != nil {
				st := *tt.status
				st.UpdatedAt = time.Now().UTC()
				writeStatus(t, dir, st)
			}
			j := &journal{From: "1.0.0", To: "2.0.0", Previous: bin + ".previous", OldPID: 4000, StartedAt: time.Now().UTC()}
			p := persisted{Journal: j}
			u.save(p)
			u.recover(context.Background(), &p)
			if (p.Journal != nil) != tt.journal {
				t.Errorf("journal afterwards: %+v, want kept: %v", p.Journal, tt.journal)
			}
			if saved := u.load(); (saved.Journal != nil) != tt.journal || slices.Contains(saved.Skip, "2.0.0") != tt.skip {
				t.Errorf("saved state %+v, want journal kept %v, 2.0.0 skipped %v", saved, tt.journal, tt.skip)
			}
			info, err := BinaryVersion(context.Background(), bin)
			if err != nil || info.Version != tt.binary {
				t.Errorf("the binary reports %q (%v), want %s", info.Version, err, tt.binary)
			}
			for _, sub := range tt.eventSubs {
				waitEvent(t, dir, tt.event, sub)
			}
		})
	}
}

// TestRestartBySignal: --restart signal stops the running connector (its
// supervisor starts it again) and does nothing when none runs.
func TestRestartBySignal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no signals on Windows")
	}
	u := newTestUpdater(t, "", Config{})
	if err := u.restartConnector(context.Background(), 0); err != nil {
		t.Errorf("restart with no connector running = %v", err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command:", err)
	}
	// Another program named in status.json is never signalled.
	other := exec.Command(sleep, "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		if err := u.restartConnector(context.Background(), other.Process.Pid); err == nil || !strings.Contains(err.Error(), "not the connector binary") {
			t.Errorf("restart of a pid running %s = %v, want a refusal", sleep, err)
		}
	}
	// The connector binary (here a copy of sleep) is.
	if err := copyFile(sleep, u.cfg.Binary); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(u.cfg.Binary, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := u.restartConnector(context.Background(), cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys() == nil || !strings.Contains(ee.Error(), "terminated") {
		t.Errorf("the connector process ended with %v, want SIGTERM", err)
	}
}

// TestPinnedKey: the updater trusts only the release key a root step
// pinned in its own directory ('connector install', or --release-key);
// a key in trust.json (writable by the connector's user) is never
// adopted, nor does it replace the pin: a release signed with it is
// refused.
func TestPinnedKey(t *testing.T) {
	newKey := func() (ed25519.PublicKey, ed25519.PrivateKey, []byte) {
		priv, err := release.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		pub := priv.Public().(ed25519.PublicKey)
		pem, err := release.MarshalPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pub, priv, pem
	}
	root, _, rootPEM := newKey()        // pinned by root
	user, userPriv, userPEM := newKey() // put in trust.json by the connector's user
	signedByUser, err := release.Sign(release.Manifest{Format: release.Format, Version: "9.0.0", OS: "linux", Arch: "amd64",
		SHA256: strings.Repeat("ab", 32), Size: 1, PublishedAt: time.Now().UTC().Truncate(time.Second)}, userPriv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pin     []byte // the pin file before ("" none)
		flag    []byte // --release-key's file ("" none)
		trust   string // trust.json's release key
		want    ed25519.PublicKey
		code    string // the refusal, if any
		pinned  []byte // the pin file after
		eventID eventlog.ID
	}{
		{name: "no pin: trust.json's key is not adopted", trust: release.EncodePublicKey(user),
			code: "release_key_unpinned", eventID: 3017},
		{name: "pinned: a different key in trust.json changes nothing", pin: rootPEM, trust: release.EncodePublicKey(user),
			want: root, pinned: rootPEM, eventID: 3018},
		{name: "pinned, trust.json agrees", pin: rootPEM, trust: release.EncodePublicKey(root), want: root, pinned: rootPEM},
		{name: "--release-key pins its key", flag: rootPEM, trust: release.EncodePublicKey(user), want: root, pinned: rootPEM, eventID: 3016},
		{name: "--release-key replaces the pin (rotation by root)", pin: userPEM, flag: rootPEM, want: root, pinned: rootPEM, eventID: 3016},
		{name: "damaged pin", pin: []byte("junk"), code: "release_key", pinned: []byte("junk")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{UpdaterDir: filepath.Join(t.TempDir(), "updater")}
			if tt.flag != nil {
				cfg.ReleaseKeyFile = filepath.Join(t.TempDir(), "release.pub")
				os.WriteFile(cfg.ReleaseKeyFile, tt.flag, 0o644)
			}
			u := newTestUpdater(t, "", cfg)
			pinPath := filepath.Join(cfg.UpdaterDir, PinFile)
			if tt.pin != nil {
				os.WriteFile(pinPath, tt.pin, 0o644)
			}
			st := &statedir.State{Trust: statedir.Trust{ReleaseKey: tt.trust}}
			key, err := u.pinnedKey(st)
			if tt.code != "" {
				problemtest.Want(t, tt.name, err, tt.code)
			} else if err != nil {
				t.Fatal(err)
			} else if !key.Equal(tt.want) {
				t.Errorf("trusts %s, want %s", release.KeyID(key), release.KeyID(tt.want))
			}
			if key != nil {
				if _, err := release.Verify(signedByUser, key); err == nil {
					t.Errorf("a release signed with trust.json's key verified with the key the updater trusts")
				}
			}
			got, err := os.ReadFile(pinPath)
			if tt.pinned == nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a pin was written: %q, %v", got, err)
			}
			if tt.pinned != nil && !bytes.Equal(got, tt.pinned) {
				t.Errorf("the pin holds %q, want %q", got, tt.pinned)
			}
			evs, err := eventlog.Read(filepath.Join(cfg.UpdaterDir, EventsFile), eventlog.Filter{IDs: []eventlog.ID{3016, 3017, 3018}})
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if (tt.eventID == 0) != (len(evs) == 0) || (tt.eventID != 0 && evs[0].ID != tt.eventID) {
				t.Errorf("events %+v, want id %d", evs, tt.eventID)
			}
		})
	}
}
