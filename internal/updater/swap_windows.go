//go:build windows

package updater

import (
	"errors"
	"os"
)

// swap moves the installed binary aside as previous (Windows lets a
// running executable be renamed, not replaced) and moves next in place.
func swap(next, path, previous string) error {
	os.Remove(previous)
	if err := os.Rename(path, previous); err != nil {
		return err
	}
	if err := os.Rename(next, path); err != nil {
		os.Rename(previous, path)
		return err
	}
	return nil
}

// terminate is not used on Windows: the updater restarts the service.
func terminate(pid int, binary string) error {
	return errors.New("--restart signal is not supported on Windows: use --restart windows:SallyportConnector")
}

// restorePrevious moves the failed binary aside and the previous one back.
func restorePrevious(previous, path string) error {
	failed := path + ".failed"
	os.Remove(failed)
	if err := os.Rename(path, failed); err != nil {
		return err
	}
	return os.Rename(previous, path)
}
