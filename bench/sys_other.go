//go:build !linux

package main

import "os/exec"

// setChildAttrs does nothing outside Linux: children are stopped by the
// bench when it ends.
func setChildAttrs(cmd *exec.Cmd) {}
