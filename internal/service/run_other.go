//go:build !windows

package service

import "context"

// RunService runs run(ctx). On Windows, under the service control manager,
// it reports the service's state and turns Stop and Shutdown into ctx's
// cancellation; elsewhere there is nothing to report and it just runs.
func RunService(ctx context.Context, name string, run func(context.Context) error) error {
	return run(ctx)
}
