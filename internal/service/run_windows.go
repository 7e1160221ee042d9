//go:build windows

package service

import (
	"context"
	"time"

	"golang.org/x/sys/windows/svc"
)

// RunService runs run(ctx). Under the Windows service control manager it
// runs it as the service name: it reports StartPending, then Running, and
// turns Stop and Shutdown into the cancellation of ctx (the connector then
// drains), reporting StopPending until run returns. Anywhere else it just
// runs run(ctx).
func RunService(ctx context.Context, name string, run func(context.Context) error) error {
	isService, err := svc.IsWindowsService()
	if err != nil || !isService {
		return run(ctx)
	}
	h := &handler{ctx: ctx, run: run}
	if err := svc.Run(name, h); err != nil {
		return fail("service_run", "start the connector with 'sc.exe start "+name+"', or run 'sallyport connector run' from a prompt", "The connector cannot run as the Windows service %s (%v)", name, err)
	}
	return h.err
}

type handler struct {
	ctx context.Context
	run func(context.Context) error
	err error // run's result
}

// stopWaitHint is how long the service manager is told a stop may take
// between two progress reports.
const stopWaitHint = 10 * time.Second

func (h *handler) Execute(_ []string, requests <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	running := svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	status <- running
	var progress <-chan time.Time
	checkpoint := uint32(0)
	for {
		select {
		case h.err = <-done:
			if h.err != nil {
				// A non-zero exit code counts as a failure: the recovery
				// actions restart the service.
				return false, 1
			}
			return false, 0
		case <-progress:
			checkpoint++
			status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: uint32(stopWaitHint / time.Millisecond)}
		case r := <-requests:
			switch r.Cmd {
			case svc.Interrogate:
				status <- r.CurrentStatus
			case svc.Stop, svc.Shutdown:
				if progress == nil {
					cancel()
					status <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopWaitHint / time.Millisecond)}
					t := time.NewTicker(stopWaitHint / 2)
					defer t.Stop()
					progress = t.C
				}
			}
		}
	}
}
