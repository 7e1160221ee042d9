//go:build !windows

package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/release"
)

// fakeExecutable makes install copy a small file instead of the test binary.
func fakeExecutable(t *testing.T, path string) {
	t.Helper()
	old := executable
	executable = func() (string, error) { return path, nil }
	t.Cleanup(func() { executable = old })
}

func writeExe(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func wantMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if got := fi.Mode() & (fs.ModePerm | fs.ModeDir); got&fs.ModePerm != mode {
		t.Errorf("%s has mode %v, want %v", path, got, mode)
	}
}

func wantGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("%s still exists", path)
	}
}

func readRecordT(t *testing.T, root string) *Record {
	t.Helper()
	rec, err := readRecord(filepath.Join(root, "etc/sallyport/install.json"))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestInstallUninstallUnderRoot(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "sallyport")
	writeExe(t, src, "#!/bin/sh\necho new build\n")
	fakeExecutable(t, src)
	ctx := context.Background()
	o := Options{Root: root, Start: true}

	var out bytes.Buffer
	if err := Install(ctx, o, &out); err != nil {
		t.Fatalf("Install: %v\n%s", err, out.String())
	}
	t.Logf("install printed:\n%s", out.String())
	bin := filepath.Join(root, "opt/sallyport/bin/sallyport")
	if got, _ := os.ReadFile(bin); string(got) != "#!/bin/sh\necho new build\n" {
		t.Errorf("installed binary holds %q", got)
	}
	wantMode(t, bin, 0o755)
	state := filepath.Join(root, "var/lib/sallyport/connector")
	wantMode(t, state, 0o700)
	units, _ := Units(Options{})
	for name, data := range units {
		p := filepath.Join(root, UnitDir, name)
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s does not hold Units()'s %s (err %v)", p, name, err)
		}
		wantMode(t, p, 0o644)
	}
	cfgPath := filepath.Join(root, "etc/sallyport/connector.toml")
	if got, err := os.ReadFile(cfgPath); err != nil || !bytes.Equal(got, ConnectorConfig(Options{})) {
		t.Errorf("%s does not hold ConnectorConfig() (err %v):\n%s", cfgPath, err, got)
	}
	wantMode(t, cfgPath, 0o640)
	rec := readRecordT(t, root)
	if rec == nil || !rec.CopiedBinary || rec.CreatedUser || !rec.CreatedConfig || rec.StateDir != "/var/lib/sallyport/connector" || len(rec.Services) != 2 {
		t.Errorf("install.json = %+v", rec)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasSuffix(line, ".") {
			t.Errorf("install printed a step that is not one sentence: %q", line)
		}
	}

	// The state directory fills up (registration), a second install keeps it.
	trust := filepath.Join(state, "trust.json")
	if err := os.WriteFile(trust, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, o, &out); err != nil {
		t.Fatalf("second Install: %v", err)
	}
	if _, err := os.Stat(trust); err != nil {
		t.Errorf("a second install lost the registration: %v", err)
	}

	// The administrator's settings survive a second install; only dir
	// follows --dir.
	edited := strings.Replace(string(ConnectorConfig(Options{})), "# connections = 2", "connections = 4", 1)
	if err := os.WriteFile(cfgPath, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, Options{Root: root, StateDir: "/srv/other"}, &out); err != nil {
		t.Fatalf("third Install: %v", err)
	}
	got, _ := os.ReadFile(cfgPath)
	if want := strings.Replace(edited, `dir = "/var/lib/sallyport/connector"`, `dir = "/srv/other"`, 1); string(got) != want {
		t.Errorf("install --dir /srv/other made connector.toml:\n%s\nwant:\n%s", got, want)
	}
	if err := Install(ctx, o, &out); err != nil {
		t.Fatalf("fourth Install: %v", err)
	}
	os.RemoveAll(filepath.Join(root, "srv"))

	// Uninstall: units and binary (with the updater's saved previous one)
	// go, state and record stay.
	writeExe(t, bin+".previous", "older build")
	out.Reset()
	if err := Uninstall(ctx, Options{Root: root}, false, &out); err != nil {
		t.Fatalf("Uninstall: %v\n%s", err, out.String())
	}
	t.Logf("uninstall printed:\n%s", out.String())
	for name := range units {
		wantGone(t, filepath.Join(root, UnitDir, name))
	}
	wantGone(t, bin)
	wantGone(t, filepath.Join(root, "opt/sallyport"))
	if _, err := os.Stat(trust); err != nil {
		t.Errorf("uninstall without --purge removed the registration: %v", err)
	}
	if !strings.Contains(out.String(), "Left the state directory") {
		t.Errorf("uninstall did not say it left the state directory:\n%s", out.String())
	}
	if rec := readRecordT(t, root); rec == nil || rec.CopiedBinary || len(rec.Services) != 0 {
		t.Errorf("install.json after uninstall = %+v", rec)
	}
	if _, err := os.Stat(cfgPath); err != nil {
		t.Errorf("uninstall without --purge removed the configuration: %v", err)
	}

	// Uninstall --purge: the state directory and the record go too.
	out.Reset()
	if err := Uninstall(ctx, Options{Root: root}, true, &out); err != nil {
		t.Fatalf("Uninstall --purge: %v\n%s", err, out.String())
	}
	wantGone(t, state)
	wantGone(t, filepath.Join(root, "etc/sallyport"))
}

func TestInstallCustomOptionsAndNoUpdater(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "sallyport")
	writeExe(t, src, "build")
	fakeExecutable(t, src)
	ctx := context.Background()
	var out bytes.Buffer
	o := Options{Root: root, StateDir: "/srv/sp state", Binary: "/usr/local/bin/sallyport", User: "svc-sp"}
	if err := Install(ctx, o, &out); err != nil {
		t.Fatal(err)
	}
	wantMode(t, filepath.Join(root, "srv/sp state"), 0o700)
	if _, err := os.Stat(filepath.Join(root, UnitDir, UpdaterUnit)); err != nil {
		t.Errorf("the updater unit was not installed: %v", err)
	}
	// Installing again without the updater removes its unit.
	o.NoUpdater = true
	if err := Install(ctx, o, &out); err != nil {
		t.Fatal(err)
	}
	wantGone(t, filepath.Join(root, UnitDir, UpdaterUnit))
	conn, _ := os.ReadFile(filepath.Join(root, UnitDir, ConnectorUnit))
	if !strings.Contains(string(conn), "\nUser=svc-sp\n") || !strings.Contains(string(conn), `ReadWritePaths="/srv/sp state"`) {
		t.Errorf("connector unit does not use the options:\n%s", conn)
	}
	if cfg, _ := os.ReadFile(filepath.Join(root, "etc/sallyport/connector.toml")); !strings.Contains(string(cfg), "\ndir = \"/srv/sp state\"\n") {
		t.Errorf("connector.toml does not hold the state directory:\n%s", cfg)
	}
	// Uninstall with no flags finds the custom paths in the record.
	if err := Uninstall(ctx, Options{Root: root}, true, &out); err != nil {
		t.Fatal(err)
	}
	wantGone(t, filepath.Join(root, "usr/local/bin/sallyport"))
	wantGone(t, filepath.Join(root, "srv/sp state"))
	wantGone(t, filepath.Join(root, UnitDir, ConnectorUnit))
}

// A binary already in place (from a package, or install run from the
// installed binary) is neither copied nor removed by uninstall.
func TestInstallKeepsBinaryInPlace(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "opt/sallyport/bin/sallyport")
	writeExe(t, bin, "packaged")
	fakeExecutable(t, bin)
	var out bytes.Buffer
	if err := Install(context.Background(), Options{Root: root}, &out); err != nil {
		t.Fatal(err)
	}
	if rec := readRecordT(t, root); rec.CopiedBinary {
		t.Error("install recorded that it copied a binary that was already in place")
	}
	if err := Uninstall(context.Background(), Options{Root: root}, false, &out); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(bin); err != nil || string(got) != "packaged" {
		t.Errorf("uninstall removed or changed a binary install did not copy: %q, %v", got, err)
	}
	if !strings.Contains(out.String(), "Left the binary") {
		t.Errorf("uninstall did not say it left the binary:\n%s", out.String())
	}
}

// A mistyped --dir with --purge must not wipe a directory that is not a
// connector's state.
func TestPurgeRefusesForeignDirectory(t *testing.T) {
	root := t.TempDir()
	foreign := filepath.Join(root, "etc/important")
	writeExe(t, filepath.Join(foreign, "passwd"), "keep me")
	var out bytes.Buffer
	err := Uninstall(context.Background(), Options{Root: root, StateDir: "/etc/important"}, true, &out)
	if p, ok := problem.As(err); !ok || p.Code != "service_uninstall" {
		t.Fatalf("Uninstall --purge --dir /etc/important = %v, want a service_uninstall problem", err)
	}
	if _, err := os.Stat(filepath.Join(foreign, "passwd")); err != nil {
		t.Errorf("purge removed a foreign directory: %v", err)
	}
}

func TestInstallRecordIsJSON(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "sallyport")
	writeExe(t, src, "x")
	fakeExecutable(t, src)
	if err := Install(context.Background(), Options{Root: root}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(root, "etc/sallyport/install.json"))
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format_version", "state_dir", "binary", "user", "created_user", "copied_binary", "services"} {
		if _, ok := m[k]; !ok {
			t.Errorf("install.json lacks %q: %s", k, raw)
		}
	}
	wantMode(t, filepath.Join(root, "etc/sallyport/install.json"), 0o644)
}

// Without Root, install refuses where it cannot work. The test runs only
// where install is certain to refuse (not root, or no systemd): it must
// never install on the machine running it.
func TestInstallRefusesOnThisMachine(t *testing.T) {
	var wantCode string
	switch _, err := os.Stat("/run/systemd/system"); {
	case os.Geteuid() != 0:
		wantCode = "service_not_root"
	case err != nil:
		wantCode = "service_no_systemd"
	default:
		t.Skip("this machine is root under systemd: install would really install")
	}
	for name, f := range map[string]func() error{
		"install":   func() error { return Install(context.Background(), Options{}, new(bytes.Buffer)) },
		"uninstall": func() error { return Uninstall(context.Background(), Options{}, false, new(bytes.Buffer)) },
	} {
		err := f()
		p, ok := problem.As(err)
		if !ok || p.Code != wantCode {
			t.Errorf("%s = %v, want a %s problem", name, err, wantCode)
			continue
		}
		if msg := err.Error(); strings.Count(msg, ". ") > 0 || !strings.HasSuffix(msg, ".") || !strings.Contains(msg, "; ") {
			t.Errorf("%s: %q is not one sentence saying what failed, why and what to do", name, msg)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/sallyport/connector": "/var/lib/sallyport/connector",
		"/srv/my state":                "'/srv/my state'",
		"it's":                         `'it'\''s'`,
		"":                             "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// prepareStateDir gives the state directory and its files (a registration
// made as root) to the connector's user, but not the root updater's own
// directory: the connector's user must not write what root acts on.
func TestPrepareStateDirOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	dir := filepath.Join(t.TempDir(), "state")
	writeExe(t, filepath.Join(dir, "connector-1.key"), "key")
	if err := prepareStateDir(dir, 65534, 65534, Options{User: "nobody", Group: "nogroup"}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	for path, wantUID := range map[string]uint32{
		dir:                                   65534,
		filepath.Join(dir, "connector-1.key"): 65534,
	} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != wantUID {
			t.Errorf("%s is owned by uid %d, want %d", path, uid, wantUID)
		}
	}
	wantMode(t, dir, 0o700)
}

// TestInstallPinsReleaseKey: install (root) pins the release key for the
// updater in the updater's own directory: the key of the registration as
// it is now, or the one --release-key names; running it again after the
// cloud's key changed replaces the pin (the administrator's rotation).
func TestInstallPinsReleaseKey(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "sallyport")
	writeExe(t, src, "#!/bin/sh\n")
	fakeExecutable(t, src)
	ctx := context.Background()
	state := filepath.Join(root, "var/lib/sallyport/connector")
	pin := filepath.Join(root, "var/lib/sallyport/connector-updater", ReleaseKeyPinFile)
	key := func() ed25519.PublicKey {
		priv, err := release.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		return priv.Public().(ed25519.PublicKey)
	}
	register := func(k ed25519.PublicKey) {
		os.MkdirAll(state, 0o700)
		js, _ := json.Marshal(map[string]string{"connector_id": "c_1", "release_key": release.EncodePublicKey(k)})
		if err := os.WriteFile(filepath.Join(state, "trust.json"), js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k1, k2, k3 := key(), key(), key()
	k3File := filepath.Join(t.TempDir(), "release.pub")
	pem3, _ := release.MarshalPublicKey(k3)
	os.WriteFile(k3File, pem3, 0o644)
	steps := []struct {
		name   string
		before func()
		o      Options
		want   ed25519.PublicKey // nil: no pin
		says   string
	}{
		{name: "not registered: nothing to pin", o: Options{Root: root}},
		{name: "registered: the registration's key", before: func() { register(k1) }, o: Options{Root: root}, want: k1, says: "Pinned the release key " + release.KeyID(k1)},
		{name: "again: kept", o: Options{Root: root}, want: k1, says: "Kept the release key " + release.KeyID(k1)},
		{name: "registered again with a new cloud key: replaced", before: func() { register(k2) }, o: Options{Root: root}, want: k2,
			says: "It replaced the release key " + release.KeyID(k1)},
		{name: "--release-key", o: Options{Root: root, ReleaseKeyFile: k3File}, want: k3, says: "(from " + k3File + ")"},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		var out bytes.Buffer
		if err := Install(ctx, st.o, &out); err != nil {
			t.Fatalf("%s: Install: %v\n%s", st.name, err, out.String())
		}
		raw, err := os.ReadFile(pin)
		switch {
		case st.want == nil && err == nil:
			t.Errorf("%s: a key was pinned", st.name)
		case st.want != nil:
			k, perr := release.ParsePublicKey(raw)
			if err != nil || perr != nil || !k.Equal(st.want) {
				t.Errorf("%s: the pin holds %q (%v), want %s", st.name, raw, err, release.KeyID(st.want))
			}
			wantMode(t, pin, 0o644)
		}
		if !strings.Contains(out.String(), st.says) {
			t.Errorf("%s: install printed\n%s\nwant %q", st.name, out.String(), st.says)
		}
	}
	if err := Install(ctx, Options{Root: root, ReleaseKeyFile: filepath.Join(root, "missing.pub")}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("install with a missing --release-key: %v", err)
	}
}
