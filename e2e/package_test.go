package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/service"
)

// packageDir is where packaging/build.sh wrote the packages under test;
// .ci/run builds them and sets SALLYPORT_PACKAGE_DIR.
func packageDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SALLYPORT_PACKAGE_DIR")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SALLYPORT_PACKAGE_DIR is not set; .ci/run builds the packages with packaging/build.sh and sets it")
		}
		t.Skip("SALLYPORT_PACKAGE_DIR is not set (build the packages with packaging/build.sh VERSION DIR and set it to DIR)")
	}
	return dir
}

// onePackage returns the one file in dir matching pattern.
func onePackage(t *testing.T, dir, pattern string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(matches) != 1 {
		t.Fatalf("want one %s in %s, found %q", pattern, dir, matches)
	}
	return matches[0]
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatal("dpkg-deb is not installed (apt-get install dpkg)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPackageDeb checks the .deb that packaging/build.sh made: its files,
// its maintainer scripts and control fields, that its units and
// connector.toml are exactly what 'connector install' writes, that the
// configuration files are conffiles, and that its binary runs.
func TestPackageDeb(t *testing.T) {
	dir := packageDir(t)
	deb := onePackage(t, dir, "sallyport_*_"+runtime.GOARCH+".deb")

	// Contents: "drwxr-xr-x root/root 0 2026-11-25 23:03 ./opt/sallyport/bin/sallyport" lines.
	entries := map[string]string{} // path → mode and link target
	for _, line := range strings.Split(dpkgDeb(t, "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		entries[path] = f[0] + " " + strings.Join(f[6:], " ")
	}
	for path, want := range map[string]string{
		"/opt/sallyport/bin/sallyport":                        "-rwxr-xr-x ",
		"/usr/bin/sallyport":                                  "l",
		"/usr/lib/systemd/system/sallyport-connector.service": "-rw-r--r-- ",
		"/usr/lib/systemd/system/sallyport-updater.service":   "-rw-r--r-- ",
		"/usr/share/doc/sallyport/README.md":                  "-rw-r--r-- ",
		"/usr/share/doc/sallyport/install.md":                 "-rw-r--r-- ",
		"/etc/sallyport/connector.toml":                       "-rw-r--r-- ",
		"/etc/sallyport/cloud.toml":                           "-rw-r--r-- ",
	} {
		got, ok := entries[path]
		if !ok {
			t.Errorf("the package lacks %s", path)
			continue
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want it to start with %q", path, got, want)
		}
	}
	if got := entries["/usr/bin/sallyport"]; !strings.HasSuffix(got, "-> /opt/sallyport/bin/sallyport") {
		t.Errorf("/usr/bin/sallyport is %q, want a link to /opt/sallyport/bin/sallyport", got)
	}
	if _, ok := entries["/var/lib/sallyport/connector"]; ok {
		t.Error("the package owns the state directory: removing the package would remove the registration")
	}

	info := dpkgDeb(t, "-I", deb)
	for _, want := range []string{"Package: sallyport", "Architecture: " + runtime.GOARCH, " postinst ", " prerm ", " postrm "} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	// The configuration files are conffiles: an upgrade keeps the
	// administrator's changes.
	conffiles := dpkgDeb(t, "-I", deb, "conffiles")
	for _, want := range []string{"/etc/sallyport/connector.toml", "/etc/sallyport/cloud.toml"} {
		if !strings.Contains(conffiles, want+"\n") {
			t.Errorf("%s is not a conffile:\n%s", want, conffiles)
		}
	}
	postinst := dpkgDeb(t, "-I", deb, "postinst")
	for _, want := range []string{"useradd --system", "mkdir -m 0700", "daemon-reload", "connector register"} {
		if !strings.Contains(postinst, want) {
			t.Errorf("postinst lacks %q", want)
		}
	}
	if strings.Contains(postinst, "systemctl start") || strings.Contains(postinst, "enable --now sallyport-connector.service") {
		t.Error("postinst starts the connector, which is not registered yet")
	}
	if prerm := dpkgDeb(t, "-I", deb, "prerm"); !strings.Contains(prerm, "disable --now") {
		t.Errorf("prerm does not stop and disable the units:\n%s", prerm)
	}

	control := t.TempDir()
	dpkgDeb(t, "-e", deb, control)
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(control, script)).CombinedOutput(); err != nil {
			t.Errorf("%s is not a valid shell script: %v\n%s", script, err, out)
		}
	}

	// The files themselves.
	root := t.TempDir()
	dpkgDeb(t, "-x", deb, root)
	units, err := service.Units(service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range units {
		got, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("the package's %s differs from service.Units(); rebuild the packages after go test ./internal/service -run TestPackagedUnits -update", name)
		}
	}
	if got, err := os.ReadFile(filepath.Join(root, "etc/sallyport/connector.toml")); err != nil || !bytes.Equal(got, service.ConnectorConfig(service.Options{})) {
		t.Errorf("the package's connector.toml differs from service.ConnectorConfig() (%v); rebuild the packages after go test ./internal/service -run TestPackagedConfig -update", err)
	}
	out, err := exec.Command(filepath.Join(root, "opt/sallyport/bin/sallyport"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "sallyport ") {
		t.Errorf("the packaged binary does not run: %v\n%s", err, out)
	}
	if v := os.Getenv("SALLYPORT_PACKAGE_VERSION"); v != "" && !strings.HasPrefix(string(out), "sallyport "+v+" ") {
		t.Errorf("the packaged binary says %q, want version %s", strings.TrimSpace(string(out)), v)
	}
}

// TestPackageRPM checks that the .rpm exists and is an RPM (no rpm tool on
// Debian machines to look inside; nfpm builds it from the same contents).
func TestPackageRPM(t *testing.T) {
	dir := packageDir(t)
	rpmArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	if rpmArch == "" {
		t.Skipf("no RPM architecture name known for %s", runtime.GOARCH)
	}
	raw, err := os.ReadFile(onePackage(t, dir, "sallyport-*."+rpmArch+".rpm"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte{0xed, 0xab, 0xee, 0xdb}) {
		t.Error("the .rpm does not start with the RPM lead's magic number")
	}
}
