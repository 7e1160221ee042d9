//go:build unix

package config

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestConfigUnreadableDefault: a default file this user may not read (a
// non-root user beside the installed service's 0640 file) is skipped with
// a note, while the same file given with --config is refused. The check
// runs in a child process as an unprivileged user when the test runs as
// root (root reads any file), so the permission error is the kernel's.
func TestConfigUnreadableDefault(t *testing.T) {
	if path := os.Getenv("SALLYPORT_CONFIG_TEST_UNREADABLE"); path != "" {
		for _, explicit := range []bool{false, true} {
			res, err := Apply(testFlags(), Options{Command: "test run", Path: path, Explicit: explicit, LookupEnv: env(nil)})
			switch {
			case explicit && err == nil:
				t.Fatalf("explicit: an unreadable --config file was accepted")
			case explicit && !strings.Contains(err.Error(), "cannot be read"):
				t.Fatalf("explicit: %v", err)
			case !explicit && err != nil:
				t.Fatalf("default: %v", err)
			case !explicit && (!res.Unreadable || !strings.Contains(res.FileNote(), "not readable by this user")):
				t.Fatalf("default: unreadable %v, note %q", res.Unreadable, res.FileNote())
			}
		}
		return
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir makes both 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "connector.toml")
	if err := os.WriteFile(file, []byte("connections = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(file, 0); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SALLYPORT_CONFIG_TEST_UNREADABLE", file)
		TestConfigUnreadableDefault(t)
		return
	}
	// As root: copy the test binary where nobody can run it, and run this
	// test in it as nobody (uid and gid 65534).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "config.test")
	copyFile(t, self, bin)
	cmd := exec.Command(bin, "-test.run=^TestConfigUnreadableDefault$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SALLYPORT_CONFIG_TEST_UNREADABLE="+file)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the check as an unprivileged user failed: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
