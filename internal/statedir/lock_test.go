package statedir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/problem"
)

func TestRunLock(t *testing.T) {
	dir := t.TempDir()
	if _, running := Running(dir); running {
		t.Fatal("Running on a directory never run in = true")
	}
	// A pid file left by a crash blocks nothing.
	if err := os.WriteFile(filepath.Join(dir, RunPIDFile), []byte("999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := LockRun(dir)
	if err != nil {
		t.Fatalf("LockRun with a stale pid file: %v", err)
	}
	if pid, running := Running(dir); !running || pid != os.Getpid() {
		t.Errorf("Running = %d, %v; want %d, true", pid, running, os.Getpid())
	}
	_, err = LockRun(dir)
	p, ok := problem.As(err)
	if !ok || p.Code != "connector_running" || !strings.Contains(p.Error(), fmt.Sprintf("(process %d)", os.Getpid())) {
		t.Fatalf("second LockRun = %v; want connector_running naming pid %d", err, os.Getpid())
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, running := Running(dir); running {
		t.Error("Running after Unlock = true")
	}
	l, err = LockRun(dir)
	if err != nil {
		t.Fatalf("LockRun after Unlock: %v", err)
	}
	l.Unlock()
}
