package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestServiceInstallUnderRoot: 'connector install' and 'uninstall --purge'
// through the real binary, writing under a temporary root (no systemctl,
// no useradd): units, configuration file, binary, state and updater
// directories, record; then
// all of it removed. Without systemd running the machine, a real install
// is refused with one sentence saying what to do instead.
func TestServiceInstallUnderRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("systemd units are Linux only")
	}
	t.Parallel()
	r := newRunner(t, "ops")
	root := filepath.Join(r.dir, "root")
	res := r.ok(t, "", "connector", "install", "--root", root, "--user", "svc-alice", "--no-start")
	mustContain(t, "install", res.stdout, "Installed the binary "+filepath.Join(root, "opt/sallyport/bin/sallyport"),
		"Prepared the updater's directory "+filepath.Join(root, "var/lib/sallyport/connector-updater"),
		"Wrote the unit "+filepath.Join(root, "etc/systemd/system/sallyport-connector.service"))
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/sallyport-connector.service"))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "the connector's unit", string(unit), "User=svc-alice", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ReadWritePaths=/var/lib/sallyport/connector\n", "ExecStart=/opt/sallyport/bin/sallyport connector run --config /etc/sallyport/connector.toml\n")
	cfg, err := os.ReadFile(filepath.Join(root, "etc/sallyport/connector.toml"))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "connector.toml", string(cfg), "\ndir = \"/var/lib/sallyport/connector\"\n", "# connections = 2")
	upd, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/sallyport-updater.service"))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "the updater's unit", string(upd), "--updater-dir /var/lib/sallyport/connector-updater",
		"ReadWritePaths=/opt/sallyport/bin /var/lib/sallyport/connector-updater", "--restart systemd:sallyport-connector.service")
	for path, mode := range map[string]os.FileMode{
		"opt/sallyport/bin/sallyport":                  0o755,
		"var/lib/sallyport/connector":                  0o700 | os.ModeDir,
		"var/lib/sallyport/connector-updater":          0o700 | os.ModeDir,
		"etc/sallyport/install.json":                   0o644,
		"etc/sallyport/connector.toml":                 0o640,
		"etc/systemd/system/sallyport-updater.service": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, mode %v; want %v", path, err, fi.Mode(), mode)
		}
	}
	res = r.ok(t, "", "connector", "uninstall", "--root", root, "--purge")
	mustContain(t, "uninstall --purge", res.stdout, "Removed the updater's directory", "Removed the installation record")
	for _, path := range []string{"opt/sallyport/bin/sallyport", "var/lib/sallyport/connector", "etc/systemd/system/sallyport-connector.service", "etc/sallyport/connector.toml"} {
		if _, err := os.Stat(filepath.Join(root, path)); !os.IsNotExist(err) {
			t.Errorf("%s is still there after uninstall --purge (%v)", path, err)
		}
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil && os.Geteuid() == 0 {
		res = r.run(t, "", "connector", "install", "--no-start")
		if res.code == 0 || !strings.Contains(res.stderr, "systemd is not running this machine") || !strings.Contains(res.stderr, "sallyport connector run") {
			t.Errorf("install without systemd:\n%s", res)
		}
	}
}
