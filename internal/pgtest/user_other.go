//go:build !unix

package pgtest

import "os/exec"

// setUser does nothing: only a Unix root needs another user, and runAs
// returns one only for it.
func setUser(cmd *exec.Cmd, a *account) {}
