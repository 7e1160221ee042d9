//go:build windows

package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/sallyport/sallyport/internal/version"
)

// stopTimeout bounds the wait for a service to stop: the connector drains
// for 30 s.
const stopTimeout = 60 * time.Second

// Install installs the connector (and its updater) as Windows services, one
// line per step on out: the binary, the state directory and its access
// list, the services and their recovery actions, the installation record;
// it starts the services only when o.Start and the connector is registered.
// Running it again updates an installation (it stops the services first, so
// that the binary can be replaced).
func Install(ctx context.Context, o Options, out io.Writer) error {
	o = o.Defaults("windows")
	svcs, err := WindowsServices(o)
	if err != nil {
		return err
	}
	recPath := o.root(RecordPath("windows"))
	rec, err := readRecord(recPath)
	if err != nil {
		return err
	}
	if rec == nil {
		rec = &Record{}
	}
	var m *mgr.Mgr
	if o.Root == "" {
		if m, err = connectSCM("installed"); err != nil {
			return err
		}
		defer m.Disconnect()
		for _, s := range svcs {
			if err := stopService(ctx, m, s.Name, out); err != nil {
				return err
			}
		}
	}
	copied, err := installBinary(o, out)
	if err != nil {
		return err
	}
	rec.CopiedBinary = copied || (rec.CopiedBinary && rec.Binary == o.Binary)

	stateDir := o.root(o.StateDir)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fail("service_install", "check that this account can write there, or choose another --dir", "The state directory %s cannot be created (%v)", stateDir, err)
	}
	names := make([]string, len(svcs))
	for i, s := range svcs {
		names[i] = s.Name
		if m == nil {
			stepf(out, "Skipped the service %s: files are written under %s.", s.Name, o.Root)
			continue
		}
		if err := createOrUpdate(m, s, out); err != nil {
			return err
		}
	}
	if m != nil {
		if err := protectStateDir(stateDir, svcs[0]); err != nil {
			return err
		}
		stepf(out, "Gave the state directory %s to SYSTEM, Administrators and the service %s only.", stateDir, svcs[0].Name)
		if o.Updater() {
			upd := o.root(o.UpdaterDir())
			if err := os.MkdirAll(upd, 0o700); err != nil {
				return fail("service_install", "check that this user can write there", "The updater's directory %s cannot be created (%v)", upd, err)
			}
			if err := setDACL(upd, WindowsUpdaterDirSDDL); err != nil {
				return err
			}
			stepf(out, "Gave the updater's directory %s to SYSTEM and Administrators only.", upd)
			if pinned, err := PinReleaseKey(upd, stateDir, o.ReleaseKeyFile, out); err != nil {
				return err
			} else if pinned == "" {
				defer unpinnedStep(o, exists(filepath.Join(stateDir, registeredFile)), out)
			}
		}
		if !o.Updater() {
			if err := deleteService(ctx, m, WindowsUpdater, out); err != nil {
				return err
			}
		}
	}

	rec.InstalledAt = time.Now().UTC().Truncate(time.Second)
	rec.Version = version.Version
	rec.StateDir, rec.Binary, rec.User, rec.Updater, rec.Services = o.StateDir, o.Binary, o.User, o.Updater(), names
	if err := writeRecord(recPath, rec); err != nil {
		return err
	}
	stepf(out, "Recorded the installation in %s.", recPath)
	if m == nil {
		return nil
	}
	if err := setDACL(filepath.Dir(recPath), WindowsRecordDirSDDL); err != nil {
		return err
	}

	registered := exists(filepath.Join(stateDir, registeredFile))
	switch {
	case registered && o.Start:
		for _, name := range names {
			if err := startService(m, name); err != nil {
				return err
			}
			stepf(out, "Started the service %s.", name)
		}
		fmt.Fprintf(out, "The connector runs as a service: see 'sc.exe query %s' and 'sallyport connector status --dir \"%s\"'.\n", WindowsConnector, o.StateDir)
	case registered:
		fmt.Fprintf(out, "Start it with:\n  sc.exe start %s\n", WindowsConnector)
	default:
		fmt.Fprintf(out, "The connector is not registered yet, so it was not started. Register it, then start it:\n")
		fmt.Fprintf(out, "  & \"%s\" connector register --dir \"%s\" --cloud https://CLOUD ...\n", o.Binary, o.StateDir)
		for _, name := range names {
			fmt.Fprintf(out, "  sc.exe start %s\n", name)
		}
	}
	return nil
}

// Uninstall stops and deletes the services and removes the binary if
// install copied it; with purge also the state directory and the
// installation record. Options left empty are taken from the record.
func Uninstall(ctx context.Context, o Options, purge bool, out io.Writer) error {
	recPath := o.root(RecordPath("windows"))
	rec, err := readRecord(recPath)
	if err != nil {
		return err
	}
	if rec != nil {
		o = fillFromRecord(o, rec)
	}
	o = o.Defaults("windows")
	if err := o.validateWindows(); err != nil {
		return err
	}
	if o.Root == "" {
		m, err := connectSCM("uninstalled")
		if err != nil {
			return err
		}
		defer m.Disconnect()
		for _, name := range []string{WindowsUpdater, WindowsConnector} {
			if err := deleteService(ctx, m, name, out); err != nil {
				return err
			}
		}
	}
	bin := o.root(o.Binary)
	switch {
	case rec != nil && rec.CopiedBinary && rec.Binary == o.Binary:
		if err := os.Remove(bin); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail("service_uninstall", "remove it yourself once no process uses it", "The binary %s cannot be removed (%v)", bin, err)
		}
		os.Remove(bin + ".previous") // kept by the updater for a rollback
		os.Remove(filepath.Dir(bin)) // only if empty
		stepf(out, "Removed the binary %s.", bin)
		rec.CopiedBinary = false
	case exists(bin):
		stepf(out, "Left the binary %s: install did not copy it there.", bin)
	}
	if !purge {
		if exists(o.root(o.StateDir)) {
			stepf(out, "Left the state directory %s with the connector's registration; uninstall --purge removes it.", o.root(o.StateDir))
		}
		if rec != nil {
			rec.Services = nil
			if err := writeRecord(recPath, rec); err != nil {
				return err
			}
		}
		return nil
	}
	if err := purgeStateDir(o, rec, out); err != nil {
		return err
	}
	if rec != nil {
		if err := os.Remove(recPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail("service_uninstall", "remove it yourself", "The installation record %s cannot be removed (%v)", recPath, err)
		}
		stepf(out, "Removed the installation record %s.", recPath)
	}
	return nil
}

// connectSCM connects to the service control manager, which needs an
// elevated (Administrator) process.
func connectSCM(done string) (*mgr.Mgr, error) {
	if !windows.GetCurrentProcessToken().IsElevated() {
		return nil, fail("service_not_root", "run the command again from a PowerShell or Command Prompt started with 'Run as administrator'",
			"The connector cannot be %s as a service by this process: it changes services and Program Files, which needs Administrator rights", done)
	}
	m, err := mgr.Connect()
	if err != nil {
		return nil, fail("service_scm", "run the command again as an Administrator", "The Windows service control manager cannot be reached (%v)", err)
	}
	return m, nil
}

// emptyPassword is the password of the built-in service accounts: an empty
// string, which mgr cannot pass (it turns "" into NULL).
var emptyPassword = windows.StringToUTF16Ptr("")

func commandLine(s WindowsService) string {
	line := syscall.EscapeArg(s.Binary)
	for _, a := range s.Args {
		line += " " + syscall.EscapeArg(a)
	}
	return line
}

// createOrUpdate creates service s, or brings an existing one to s.
func createOrUpdate(m *mgr.Mgr, s WindowsService, out io.Writer) error {
	line, _ := syscall.UTF16PtrFromString(commandLine(s))
	account, _ := syscall.UTF16PtrFromString(s.Account)
	display, _ := syscall.UTF16PtrFromString(s.DisplayName)
	verb := "Updated"
	svcHandle, err := m.OpenService(s.Name)
	if err != nil {
		verb = "Created"
		name, _ := syscall.UTF16PtrFromString(s.Name)
		var h windows.Handle
		h, err = windows.CreateService(m.Handle, name, display, windows.SERVICE_ALL_ACCESS, windows.SERVICE_WIN32_OWN_PROCESS,
			windows.SERVICE_AUTO_START, windows.SERVICE_ERROR_NORMAL, line, nil, nil, nil, account, emptyPassword)
		if err != nil {
			return fail("service_install", "look at the Services console and run install again", "The Windows service %s cannot be created (%v)", s.Name, err)
		}
		svcHandle = &mgr.Service{Name: s.Name, Handle: h}
	}
	defer svcHandle.Close()
	if verb == "Updated" {
		// The command line and the account, with the empty password the
		// built-in accounts take (mgr's UpdateConfig would pass none).
		err = windows.ChangeServiceConfig(svcHandle.Handle, windows.SERVICE_WIN32_OWN_PROCESS, windows.SERVICE_AUTO_START, windows.SERVICE_ERROR_NORMAL,
			line, nil, nil, nil, account, emptyPassword, display)
		if err != nil {
			return fail("service_install", "look at the Services console and run install again", "The Windows service %s cannot be updated (%v)", s.Name, err)
		}
	}
	cfg, err := svcHandle.Config()
	if err == nil {
		cfg.Description = s.Description
		cfg.DelayedAutoStart = s.DelayedAutoStart
		cfg.SidType = windows.SERVICE_SID_TYPE_NONE
		if s.ServiceSID {
			cfg.SidType = windows.SERVICE_SID_TYPE_UNRESTRICTED
		}
		cfg.Password = "" // NULL: unchanged
		err = svcHandle.UpdateConfig(cfg)
	}
	if err == nil {
		actions := make([]mgr.RecoveryAction, len(s.Recovery))
		for i, d := range s.Recovery {
			actions[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: d}
		}
		err = svcHandle.SetRecoveryActions(actions, uint32(s.ResetPeriod/time.Second))
	}
	if err == nil {
		err = svcHandle.SetRecoveryActionsOnNonCrashFailures(s.RecoveryOnError)
	}
	if err != nil {
		return fail("service_install", "look at the Services console and run install again", "The Windows service %s cannot be configured (%v)", s.Name, err)
	}
	stepf(out, "%s the service %s (%s, automatic delayed start, restarted %s after a failure).", verb, s.Name, s.Account, s.Recovery[0])
	return nil
}

// protectStateDir sets the state directory's access list: see
// WindowsStateDirSDDL.
func protectStateDir(dir string, connector WindowsService) error {
	sid := ""
	if connector.Account != WindowsLocalSystem {
		s, _, _, err := windows.LookupSID("", `NT SERVICE\`+connector.Name)
		if err != nil {
			return fail("service_install", "run install again", "The security identifier of the service %s cannot be found (%v)", connector.Name, err)
		}
		sid = s.String()
	}
	return setDACL(dir, WindowsStateDirSDDL(sid))
}

// setDACL sets a protected access list, given in SDDL, on a directory; the
// directory's files and folders inherit it.
func setDACL(dir, sddl string) error {
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err == nil {
		var dacl *windows.ACL
		if dacl, _, err = sd.DACL(); err == nil {
			err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
				windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
		}
	}
	if err != nil {
		return fail("service_install", "check the directory's permissions and run install again", "The access list of %s cannot be set (%v)", dir, err)
	}
	return nil
}

func startService(m *mgr.Mgr, name string) error {
	s, err := m.OpenService(name)
	if err == nil {
		defer s.Close()
		err = s.Start()
	}
	if err != nil && !errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
		return fail("service_start", "look at 'sallyport connector events' and the Windows event log, then start it with 'sc.exe start "+name+"'",
			"The Windows service %s cannot be started (%v)", name, err)
	}
	return nil
}

// stopService stops a service if it exists and runs, and waits until it
// has stopped.
func stopService(ctx context.Context, m *mgr.Mgr, name string, out io.Writer) error {
	s, err := m.OpenService(name)
	if err != nil {
		return nil // not installed
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil || st.State == svc.Stopped {
		return nil
	}
	if err := stopAndWait(ctx, s); err != nil {
		return err
	}
	stepf(out, "Stopped the service %s.", name)
	return nil
}

// stopAndWait asks a service to stop and waits, at most stopTimeout, until
// the service manager reports it stopped.
func stopAndWait(ctx context.Context, s *mgr.Service) error {
	if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return fail("service_stop", "stop it in the Services console and run the command again", "The Windows service %s cannot be stopped (%v)", s.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := s.Query()
		if err != nil {
			return fail("service_stop", "look at the Services console", "The state of the Windows service %s cannot be read (%v)", s.Name, err)
		}
		if st.State == svc.Stopped {
			return nil
		}
		select {
		case <-ctx.Done():
			return fail("service_stop", "stop it in the Services console (or end its process) and run the command again",
				"The Windows service %s did not stop within %s", s.Name, stopTimeout)
		case <-tick.C:
		}
	}
}

// deleteService stops and deletes a service, if it exists.
func deleteService(ctx context.Context, m *mgr.Mgr, name string, out io.Writer) error {
	if err := stopService(ctx, m, name, out); err != nil {
		return err
	}
	s, err := m.OpenService(name)
	if err != nil {
		return nil
	}
	defer s.Close()
	if err := s.Delete(); err != nil && !errors.Is(err, windows.ERROR_SERVICE_MARKED_FOR_DELETE) {
		return fail("service_uninstall", "close the Services console and run the command again", "The Windows service %s cannot be deleted (%v)", name, err)
	}
	stepf(out, "Deleted the service %s.", name)
	return nil
}
