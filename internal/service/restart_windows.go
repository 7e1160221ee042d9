//go:build windows

package service

import (
	"context"

	"golang.org/x/sys/windows/svc/mgr"
)

// RestartWindows stops the Windows service name, waits until it has stopped
// (at most a minute: the connector drains for 30 s), and starts it.
func RestartWindows(ctx context.Context, name string) error {
	if _, err := ParseRestartSpec(MethodWindows + ":" + name); err != nil {
		return err
	}
	m, err := mgr.Connect()
	if err != nil {
		return fail("service_restart", "run the updater as LocalSystem or an Administrator", "The Windows service manager cannot be reached to restart %s (%v)", name, err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fail("service_restart", "install it with 'sallyport connector install'", "The Windows service %s cannot be opened to restart it (%v)", name, err)
	}
	defer s.Close()
	if err := stopAndWait(ctx, s); err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return fail("service_restart", "look at 'sallyport connector events' and start it with 'sc.exe start "+name+"'", "The Windows service %s stopped but cannot be started again (%v)", name, err)
	}
	return nil
}
