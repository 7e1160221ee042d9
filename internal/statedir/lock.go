package statedir

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofrs/flock"

	"github.com/sallyport/sallyport/internal/problem"
)

// RunLockFile is the lock 'sallyport connector run' holds on its state
// directory for as long as it runs, so that two connectors never share
// one identity. RunPIDFile names the holder's process id. The lock, not
// the pid file, is the truth: an operating system releases the lock of a
// process that died, so a pid file left by a crash blocks nothing. (The
// pid is kept apart from the lock because Windows locks are mandatory:
// a locked file cannot be read by another process.)
const (
	RunLockFile = "run.lock"
	RunPIDFile  = "run.pid"
)

// RunLock is the state directory's run lock, held.
type RunLock struct {
	l   *flock.Flock
	pid string
}

// LockRun takes the run lock of dir, or refuses with the pid of the
// connector that holds it.
func LockRun(dir string) (*RunLock, error) {
	path := filepath.Join(dir, RunLockFile)
	l := flock.New(path, flock.SetPermissions(0o600))
	ok, err := l.TryLock()
	if err != nil {
		return nil, problem.Newf(500, "state_dir", "check the directory's permissions (run the connector as the user that registered it)",
			"The connector cannot take the lock %s on its state directory (%v)", path, err)
	}
	if !ok {
		return nil, runningError(dir)
	}
	pidPath := filepath.Join(dir, RunPIDFile)
	os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644) // a hint only: the lock is held
	return &RunLock{l: l, pid: pidPath}, nil
}

// Unlock removes the pid file and releases the lock (the lock file stays:
// removing it would let two processes lock two different files).
func (r *RunLock) Unlock() error {
	os.Remove(r.pid)
	return r.l.Unlock()
}

// Running reports whether a connector runs on dir (holds its run lock),
// and its pid (0 when the pid file cannot be read).
func Running(dir string) (pid int, running bool) {
	path := filepath.Join(dir, RunLockFile)
	if _, err := os.Stat(path); err != nil {
		return 0, false // never run here
	}
	l := flock.New(path, flock.SetFlag(os.O_RDONLY))
	ok, err := l.TryRLock()
	if err != nil {
		return 0, false
	}
	if ok {
		l.Unlock()
		return 0, false
	}
	b, _ := os.ReadFile(filepath.Join(dir, RunPIDFile))
	pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, true
}

func runningError(dir string) error {
	pid, _ := Running(dir)
	who := "another process"
	if pid > 0 {
		who = fmt.Sprintf("process %d", pid)
	}
	return problem.Newf(409, "connector_running",
		"stop that connector first, or give this one a state directory of its own with --dir (one registration per connector)",
		"A connector already runs on the state directory %s (%s), and two connectors must not share one identity", dir, who)
}
