//go:build !windows

package service

import (
	"context"

	"github.com/sallyport/sallyport/internal/problem"
)

// RestartWindows restarts a Windows service; on this OS it only fails.
func RestartWindows(ctx context.Context, name string) error {
	return problem.Newf(400, "restart_spec", "use --restart systemd:UNIT under systemd, or --restart signal under another supervisor",
		"The Windows service %s cannot be restarted: restarting a Windows service works only on Windows", name)
}
