// Package service installs the connector as an operating-system service:
// two systemd units on Linux (the connector and its updater), two Windows
// services through the service control manager; it removes them again, runs
// the connector under the Windows service control manager, and restarts the
// connector's service for the updater.
//
// What it generates (units, service configurations) is built by pure
// functions, tested on every OS; only the calls to useradd, systemctl and the
// Windows service manager are OS-specific. It knows nothing of the
// connector's protocol or state beyond the name of the file registration
// writes last (trust.json), and it must not import the connector package:
// the connector's updater imports this one to restart the connector.
package service

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/sallyport/sallyport/internal/problem"
)

// Unit and service names.
const (
	ConnectorUnit = "sallyport-connector.service"
	UpdaterUnit   = "sallyport-updater.service"

	WindowsConnector = "SallyportConnector"
	WindowsUpdater   = "SallyportUpdater"

	// DefaultUser is the system user the connector runs as on Linux.
	DefaultUser = "sallyport"

	// UnitDir is where install writes its units (under Options.Root); the
	// packages put the same units in /usr/lib/systemd/system.
	UnitDir = "/etc/systemd/system"

	// registeredFile is written last by 'connector register': a state
	// directory holding it is registered (internal/connector.TrustFile).
	registeredFile = "trust.json"
)

// Options say what to install and where. The zero value of a field means its
// default, filled in by Defaults.
type Options struct {
	// StateDir is the connector's state directory (--dir). Default: the
	// connector's default for the OS, /var/lib/sallyport/connector on Linux,
	// %ProgramData%\Sallyport\connector on Windows.
	StateDir string
	// User is the account the connector runs as. Linux: a system user,
	// created if missing; default "sallyport". Windows: NT AUTHORITY\LocalService
	// (the default), NT AUTHORITY\NetworkService or LocalSystem.
	User string
	// Group is the connector's group on Linux. Default: the user's primary
	// group when installing (the group named as the user in Units).
	Group string
	// Binary is where the sallyport executable is installed and run from.
	// Default /opt/sallyport/bin/sallyport on Linux,
	// %ProgramFiles%\Sallyport\sallyport.exe on Windows.
	Binary string
	// NoUpdater leaves out the updater service (--no-updater). A field that
	// means "off" keeps the zero value the default: the updater is installed.
	NoUpdater bool
	// Root prefixes every path written (tests, packaging). When set, install
	// and uninstall run no useradd, userdel, chown or systemctl, and need no
	// root rights.
	Root string
	// Start starts the services at the end of install, if the connector is
	// registered (StateDir holds trust.json).
	Start bool
	// ReleaseKeyFile is the cloud's release public key for the updater to
	// pin (--release-key); default: the key of the connector's
	// registration (trust.json), read now, as root.
	ReleaseKeyFile string
}

// Updater reports whether the updater service is part of the installation.
func (o Options) Updater() bool { return !o.NoUpdater }

// UpdaterDir is the updater's own directory, beside (never inside) the
// state directory, which the connector's user may write: STATE-updater
// (internal/updater.DefaultDir).
func (o Options) UpdaterDir() string { return UpdaterDirOf(o.StateDir) }

// UpdaterDirOf is the updater's directory for a connector state directory:
// a sibling, STATE-updater (/var/lib/sallyport/connector-updater).
func UpdaterDirOf(stateDir string) string { return strings.TrimRight(stateDir, `/\`) + "-updater" }

// DefaultOptions are the defaults on this OS.
func DefaultOptions() Options { return Options{}.Defaults(runtime.GOOS) }

// Defaults returns o with every empty field set to its default for goos:
// "windows", or anything else, which means Linux (macOS has only its own
// state directory). The state directory's default equals
// statedir.DefaultDir() (a test checks it).
func (o Options) Defaults(goos string) Options {
	if goos == "windows" {
		if o.StateDir == "" {
			o.StateDir = windowsDir("ProgramData", `C:\ProgramData`, `Sallyport\connector`)
		}
		if o.Binary == "" {
			o.Binary = windowsDir("ProgramFiles", `C:\Program Files`, `Sallyport\sallyport.exe`)
		}
		if o.User == "" {
			o.User = WindowsLocalService
		}
		return o
	}
	if o.StateDir == "" && goos == "darwin" {
		o.StateDir = "/Library/Application Support/Sallyport/connector"
	}
	if o.StateDir == "" {
		o.StateDir = "/var/lib/sallyport/connector"
	}
	if o.Binary == "" {
		o.Binary = "/opt/sallyport/bin/sallyport"
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.Group == "" {
		o.Group = o.User
	}
	return o
}

// windowsDir joins an environment variable's directory (or fallback) and
// rest with backslashes, whatever OS builds it.
func windowsDir(env, fallback, rest string) string {
	base := fallback
	if runtime.GOOS == "windows" {
		if v := os.Getenv(env); v != "" {
			base = v
		}
	}
	return strings.TrimRight(base, `\`) + `\` + rest
}

// userName is what both useradd (with its default, strict rule) and systemd
// accept, plus upper case and dots for existing users from a directory;
// groupName also takes a numeric group id.
var (
	userName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)
	groupName = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.-]{0,31}|[0-9]{1,10})$`)
)

// validateLinux checks options filled by Defaults("linux").
func (o Options) validateLinux() error {
	for _, p := range []struct{ flag, path string }{{"--dir", o.StateDir}, {"--binary", o.Binary}} {
		if !strings.HasPrefix(p.path, "/") || filepath.Clean(p.path) != p.path || p.path == "/" {
			return badOption("%s %q is not a clean absolute path", "give an absolute path such as /var/lib/sallyport/connector", p.flag, p.path)
		}
		if strings.ContainsFunc(p.path, isControl) {
			return badOption("%s %q contains a control character", "give a path without control characters", p.flag, p.path)
		}
	}
	if filepath.Dir(o.Binary) == o.StateDir || strings.HasPrefix(o.Binary, o.StateDir+"/") {
		return badOption("--binary %s is inside the state directory %s, where the connector's user could replace it", "install the binary outside the state directory, for example in /opt/sallyport/bin", o.Binary, o.StateDir)
	}
	if !userName.MatchString(o.User) {
		return badOption("--user %q is not a valid system user name", "use letters, digits, '_', '.' and '-', starting with a letter, at most 32 characters", o.User)
	}
	if !groupName.MatchString(o.Group) {
		return badOption("the group %q is not a valid group name", "use letters, digits, '_', '.' and '-', starting with a letter, at most 32 characters", o.Group)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func badOption(format, step string, args ...any) error {
	return problem.Newf(400, "service_options", step, "The service settings are not valid: "+format, args...)
}

// root prefixes an absolute path with o.Root.
func (o Options) root(path string) string {
	if o.Root == "" {
		return path
	}
	return filepath.Join(o.Root, strings.TrimPrefix(path, filepath.VolumeName(path)))
}

// fail is an installation step that failed: what, why (err), what to do.
func fail(code, step, format string, args ...any) error {
	return problem.Newf(500, code, step, format, args...)
}

// stepf prints one step of install or uninstall on one line.
func stepf(w interface{ Write([]byte) (int, error) }, format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}
