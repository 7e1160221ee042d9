package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// setChildAttrs puts a child in its own process group (Ctrl-C reaches the
// bench, which stops the children in order) and has the kernel kill it if
// the bench dies without stopping it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// raiseNoFile raises this process's open files limit (soft and hard) to
// want, or as far as it can: the hard limit needs root (or
// CAP_SYS_RESOURCE) and stops at fs.nr_open. It returns the soft limit in
// force afterwards.
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			want = min(want, n)
		}
	}
	next := syscall.Rlimit{Cur: want, Max: max(want, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		// Not allowed above the hard limit: take the hard limit.
		next = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err2 != nil {
			return lim.Cur, fmt.Errorf("the open files limit stays %d: %v", lim.Cur, err2)
		}
		return lim.Max, fmt.Errorf("the open files limit could be raised only to the hard limit %d, not %d (%v): run as root or raise 'ulimit -Hn'", lim.Max, want, err)
	}
	return want, nil
}
