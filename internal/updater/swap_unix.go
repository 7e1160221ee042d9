//go:build !windows

package updater

import (
	"os"
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
// supervisor starts it again with the new binary.
func terminate(pid int) error {
	return syscall.Kill(pid, syscall.SIGTERM)
}

// restorePrevious puts the previous binary back in place.
func restorePrevious(previous, path string) error {
	return os.Rename(previous, path)
}
