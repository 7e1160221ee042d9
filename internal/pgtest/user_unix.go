//go:build unix

package pgtest

import (
	"os/exec"
	"syscall"
)

// setUser makes cmd run as a.
func setUser(cmd *exec.Cmd, a *account) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}}
}
