package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs puts a child in its own process group (Ctrl-C reaches the
// bench, which stops the children in order) and has the kernel kill it if
// the bench dies without stopping it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
