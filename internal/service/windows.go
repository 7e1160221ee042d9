package service

import (
	"strings"
	"time"
)

// Windows accounts a service may run as without a password.
const (
	WindowsLocalService   = `NT AUTHORITY\LocalService`
	WindowsNetworkService = `NT AUTHORITY\NetworkService`
	WindowsLocalSystem    = "LocalSystem"
)

// WindowsService is the configuration of one Windows service, built on every
// OS (and tested on Linux); install_windows.go hands it to the service
// control manager.
type WindowsService struct {
	Name        string
	DisplayName string
	Description string
	// Account is the ServiceStartName: one of the Windows* accounts above.
	Account string
	// Binary and Args are the command line the service manager runs.
	Binary string
	Args   []string
	// Start automatic, delayed until the machine's other automatic services
	// have started (the network is up by then).
	DelayedAutoStart bool
	// Recovery: what the service manager does after the 1st, 2nd and 3rd
	// failure (restart after Delay), and when the failure count goes back
	// to zero. RecoveryOnError counts an exit with an error as a failure,
	// not only a crash.
	Recovery        []time.Duration
	ResetPeriod     time.Duration
	RecoveryOnError bool
	// ServiceSID gives the service its own security identifier,
	// NT SERVICE\Name, which the state directory's access list names: other
	// services running as Local Service cannot read the connector's key.
	ServiceSID bool
}

// WindowsServices returns the services install creates on Windows for o
// (Windows defaults filled in): the connector, and the updater unless
// o.NoUpdater.
func WindowsServices(o Options) ([]WindowsService, error) {
	o = o.Defaults("windows")
	if err := o.validateWindows(); err != nil {
		return nil, err
	}
	svcs := []WindowsService{{
		Name:             WindowsConnector,
		DisplayName:      "Sallyport connector",
		Description:      "Keeps outbound tunnels to the Sallyport cloud and serves its requests to internal applications.",
		Account:          o.User,
		Binary:           o.Binary,
		Args:             []string{"connector", "run", "--dir", o.StateDir},
		DelayedAutoStart: true,
		Recovery:         []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second},
		ResetPeriod:      24 * time.Hour,
		RecoveryOnError:  true,
		ServiceSID:       true,
	}}
	if o.Updater() {
		svcs = append(svcs, WindowsService{
			Name:             WindowsUpdater,
			DisplayName:      "Sallyport connector updater",
			Description:      "Installs signed Sallyport connector releases and restarts the connector.",
			Account:          WindowsLocalSystem,
			Binary:           o.Binary,
			Args:             []string{"connector", "updater", "--dir", o.StateDir, "--updater-dir", o.UpdaterDir(), "--binary", o.Binary, "--restart", "windows:" + WindowsConnector},
			DelayedAutoStart: true,
			Recovery:         []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second},
			ResetPeriod:      24 * time.Hour,
			RecoveryOnError:  true,
		})
	}
	return svcs, nil
}

// WindowsStateDirSDDL is the access control list install sets on the state
// directory (protected, so nothing is inherited from %ProgramData%): full
// control for SYSTEM, Administrators and the connector service's own SID
// (serviceSID, "S-1-5-80-…"), inherited by every file; nothing for anybody
// else. An empty serviceSID (the connector runs as LocalSystem) leaves SYSTEM
// and Administrators only.
func WindowsStateDirSDDL(serviceSID string) string {
	sddl := "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	if serviceSID != "" {
		sddl += "(A;OICI;FA;;;" + serviceSID + ")"
	}
	return sddl
}

// WindowsRecordDirSDDL is the access control list of the directory of the
// installation record (%ProgramData%\Sallyport): SYSTEM and Administrators
// write, Users only read. %ProgramData% lets Users create files in new
// folders, and uninstall acts on the record as an Administrator.
// WindowsUpdaterDirSDDL is the access list of the updater's directory:
// SYSTEM and Administrators only (no inherited "Users may create files"
// of ProgramData), so that nobody else can plant a key pin or a journal.
const WindowsUpdaterDirSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

const WindowsRecordDirSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"

func (o Options) validateWindows() error {
	switch o.User {
	case WindowsLocalService, WindowsNetworkService, WindowsLocalSystem:
	default:
		return badOption("--user %q is not an account the service can run as without a password", `use NT AUTHORITY\LocalService (the default), NT AUTHORITY\NetworkService or LocalSystem, and change the account in the Services console afterwards if you need another`, o.User)
	}
	for _, p := range []struct{ flag, path string }{{"--dir", o.StateDir}, {"--binary", o.Binary}} {
		if !windowsAbs(p.path) || strings.ContainsFunc(p.path, isControl) || strings.Contains(p.path, `"`) {
			return badOption(`%s %q is not an absolute Windows path`, `give a path such as C:\ProgramData\Sallyport\connector`, p.flag, p.path)
		}
	}
	return nil
}

// windowsAbs reports whether p is a drive-letter absolute path (C:\…).
func windowsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') &&
		(p[0] >= 'A' && p[0] <= 'Z' || p[0] >= 'a' && p[0] <= 'z')
}
