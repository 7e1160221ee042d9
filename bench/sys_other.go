//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

// setChildAttrs does nothing outside Linux: children are stopped by the
// bench when it ends.
func setChildAttrs(cmd *exec.Cmd) {}

// raiseNoFile is Linux only: elsewhere -scale runs with the limit as it is.
func raiseNoFile(want uint64) (uint64, error) {
	return 0, errors.New("the open files limit is raised on Linux only; the run may stop at the system's limit")
}
