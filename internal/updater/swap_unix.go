//go:build !windows

package updater

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// swap keeps the installed binary as previous (a hard link, or a copy)
// and renames next over it: a reader of path sees the old or the new
// binary, never neither.
func swap(next, path, previous string) error {
	os.Remove(previous)
	if err := os.Link(path, previous); err != nil {
		if err := copyFile(path, previous); err != nil {
			return err
		}
	}
	return os.Rename(next, path)
}

// terminate asks the connector to drain and stop (SIGTERM); its
// supervisor starts it again with the new binary. The pid comes from
// status.json, which the connector's user writes: where /proc tells, the
// process must run binary (or its previous copy), so that the updater
// never signals another program.
func terminate(pid int, binary string) error {
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		exe = strings.TrimSuffix(exe, " (deleted)")
		if exe != binary && exe != binary+".previous" {
			return fmt.Errorf("process %d named in status.json runs %s, not the connector binary %s; it was not signalled", pid, exe, binary)
		}
	} else if _, perr := os.Stat("/proc/self/exe"); perr == nil {
		return fmt.Errorf("process %d named in status.json does not run (%v)", pid, err)
	}
	return syscall.Kill(pid, syscall.SIGTERM)
}

// restorePrevious puts the previous binary back in place.
func restorePrevious(previous, path string) error {
	return os.Rename(previous, path)
}
