//go:build !windows

package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/version"
)

// unitSearchPath are the directories where systemd finds the units of
// install (UnitDir) and of the packages.
var unitSearchPath = []string{UnitDir, "/usr/lib/systemd/system", "/lib/systemd/system"}

// Install installs the connector (and its updater) as systemd units, one
// line per step on out: the system user, the binary, the state directory,
// the units, the installation record, then systemctl daemon-reload and
// enable. It starts the units only when o.Start and the connector is
// registered; otherwise it prints how to register and start. Running it
// again repairs or updates an installation.
func Install(ctx context.Context, o Options, out io.Writer) error {
	groupGiven := o.Group != ""
	o = o.Defaults("linux")
	if err := o.validateLinux(); err != nil {
		return err
	}
	if err := checkSystem(o, "installed"); err != nil {
		return err
	}
	recPath := o.root(RecordPath("linux"))
	rec, err := readRecord(recPath)
	if err != nil {
		return err
	}
	if rec == nil || rec.User != o.User {
		rec = &Record{} // created_user speaks of another user
	}

	uid, gid := -1, -1
	if o.Root == "" {
		acct, err := ensureUser(ctx, o, groupGiven, out)
		if err != nil {
			return err
		}
		uid, gid = acct.uid, acct.gid
		o.Group = acct.group
		rec.CreatedUser = rec.CreatedUser || acct.created
	} else {
		stepf(out, "Skipped the system user %s: files are written under %s.", o.User, o.Root)
	}

	copied, err := installBinary(o, out)
	if err != nil {
		return err
	}
	rec.CopiedBinary = copied || (rec.CopiedBinary && rec.Binary == o.Binary)

	stateDir := o.root(o.StateDir)
	if err := prepareStateDir(stateDir, uid, gid, o, out); err != nil {
		return err
	}
	createdConfig, err := writeConnectorConfig(o, gid, out)
	if err != nil {
		return err
	}
	rec.CreatedConfig = rec.CreatedConfig || createdConfig

	pinned := ""
	if o.Updater() {
		if err := prepareUpdaterDir(o.root(o.UpdaterDir()), o.Root == "", out); err != nil {
			return err
		}
		if pinned, err = PinReleaseKey(o.root(o.UpdaterDir()), stateDir, o.ReleaseKeyFile, out); err != nil {
			return err
		}
	}

	units, err := Units(o)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(units))
	if err := os.MkdirAll(o.root(UnitDir), 0o755); err != nil {
		return fail("service_install", "check that this user can write there", "The unit directory %s cannot be created (%v)", o.root(UnitDir), err)
	}
	for _, name := range names {
		path := o.root(filepath.Join(UnitDir, name))
		if err := pki.WriteFileAtomic(path, units[name], 0o644); err != nil {
			return fail("service_install", "check that this user can write there", "The unit file %s cannot be written (%v)", path, err)
		}
		stepf(out, "Wrote the unit %s.", path)
	}
	if !o.Updater() {
		if err := removeUnit(ctx, o, UpdaterUnit, out); err != nil {
			return err
		}
	}

	rec.InstalledAt = time.Now().UTC().Truncate(time.Second)
	rec.Version = version.Version
	rec.StateDir, rec.Binary, rec.User, rec.Group, rec.Updater = o.StateDir, o.Binary, o.User, o.Group, o.Updater()
	rec.Services = names
	if err := writeRecord(recPath, rec); err != nil {
		return err
	}
	stepf(out, "Recorded the installation in %s.", recPath)

	registered := exists(filepath.Join(stateDir, registeredFile))
	if o.Root == "" {
		if err := enableUnits(ctx, names, o.Start && registered, out); err != nil {
			return err
		}
	} else {
		stepf(out, "Skipped systemctl daemon-reload and enable: files are written under %s.", o.Root)
		return nil
	}
	nextSteps(o, names, registered, out)
	if o.Updater() && pinned == "" {
		unpinnedStep(o, registered, out)
	}
	return nil
}

// checkSystem refuses to install or uninstall (done is "installed" or
// "uninstalled") where it cannot work: not Linux, not root, no systemd. With
// o.Root it checks nothing.
func checkSystem(o Options, done string) error {
	if o.Root != "" {
		return nil
	}
	if runtime.GOOS != "linux" {
		return fail("service_unsupported", "run 'sallyport connector run' under this machine's own service manager instead (see docs/install.md)",
			"The connector cannot be %s as a service on %s: only Linux with systemd and Windows are supported", done, runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return fail("service_not_root", "run the command again as root, for example with sudo",
			"The connector cannot be %s as a service by this user: it changes system files and users, which needs root rights", done)
	}
	if fi, err := os.Stat("/run/systemd/system"); err != nil || !fi.IsDir() {
		if done == "uninstalled" {
			return fail("service_no_systemd", "stop the connector under whatever supervises it and remove the files docs/install.md lists by hand",
				"The connector cannot be uninstalled as a service: systemd is not running this machine (/run/systemd/system does not exist), so its units cannot be stopped")
		}
		return fail("service_no_systemd", "run 'sallyport connector run' under this machine's own supervisor instead (see docs/install.md)",
			"The connector cannot be installed as a service: systemd is not running this machine (/run/systemd/system does not exist), so its units would never start")
	}
	return nil
}

type account struct {
	uid, gid int
	group    string
	created  bool
}

// ensureUser looks up o.User, creating it as a system user if it does not
// exist, and returns its ids and the group the connector runs as.
func ensureUser(ctx context.Context, o Options, groupGiven bool, out io.Writer) (account, error) {
	var acct account
	u, err := user.Lookup(o.User)
	if errors.As(err, new(user.UnknownUserError)) {
		args := []string{"--system", "--home-dir", o.StateDir, "--no-create-home", "--shell", nologin(), "--comment", "Sallyport connector"}
		if groupGiven {
			args = append(args, "--gid", o.Group)
		} else if _, err := user.LookupGroup(o.User); err == nil {
			args = append(args, "--gid", o.User) // a group of that name exists already
		} else {
			args = append(args, "--user-group")
		}
		if msg, err := run(ctx, "useradd", append(args, o.User)...); err != nil {
			return acct, fail("service_user", "create the user yourself (useradd --system "+o.User+") or name an existing one with --user",
				"The system user %s cannot be created (useradd: %s)", o.User, msg)
		}
		stepf(out, "Created the system user %s.", o.User)
		acct.created = true
		u, err = user.Lookup(o.User)
	} else if err == nil {
		stepf(out, "Using the existing user %s.", o.User)
	}
	if err != nil {
		return acct, fail("service_user", "check the user database (getent passwd "+o.User+")", "The user %s cannot be looked up (%v)", o.User, err)
	}
	acct.uid, _ = strconv.Atoi(u.Uid)
	acct.gid, _ = strconv.Atoi(u.Gid)
	if groupGiven {
		g, err := user.LookupGroup(o.Group)
		if err != nil {
			return acct, fail("service_user", "create the group or name an existing one", "The group %s cannot be looked up (%v)", o.Group, err)
		}
		acct.gid, _ = strconv.Atoi(g.Gid)
		acct.group = o.Group
		return acct, nil
	}
	acct.group = u.Gid // systemd accepts a numeric group too
	if g, err := user.LookupGroupId(u.Gid); err == nil {
		acct.group = g.Name
	}
	return acct, nil
}

func nologin() string {
	for _, p := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
		if exists(p) {
			return p
		}
	}
	return "/bin/false"
}

// prepareStateDir creates the state directory 0700 and gives it, with all it
// holds (a registration made as root, for example), to uid:gid (-1: keep).
func prepareStateDir(dir string, uid, gid int, o Options, out io.Writer) error {
	existed := exists(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fail("service_install", "check that this user can write there, or choose another --dir", "The parent of the state directory %s cannot be created (%v)", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fail("service_install", "check that this user can write there, or choose another --dir", "The state directory %s cannot be created (%v)", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail("service_install", "check the directory's owner", "The state directory %s cannot be made private (%v)", dir, err)
	}
	owner := ""
	if uid >= 0 {
		err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, uid, gid)
		})
		if err != nil {
			return fail("service_install", "check the directory and its files", "The state directory %s cannot be given to %s (%v)", dir, o.User, err)
		}
		owner = fmt.Sprintf(", owned by %s:%s", o.User, o.Group)
	}
	if existed {
		stepf(out, "Kept the state directory %s (mode 0700%s).", dir, owner)
	} else {
		stepf(out, "Created the state directory %s (mode 0700%s).", dir, owner)
	}
	return nil
}

// enableUnits reloads systemd and enables the units; with start it
// (re)starts them, so that a new binary or unit is in use at once.
func enableUnits(ctx context.Context, names []string, start bool, out io.Writer) error {
	if msg, err := systemctl(ctx, "daemon-reload"); err != nil {
		return fail("service_systemctl", "look at 'journalctl -b -u init.scope' and run install again", "systemctl daemon-reload failed (%s)", msg)
	}
	stepf(out, "Reloaded systemd.")
	if msg, err := systemctl(ctx, append([]string{"enable", "--quiet"}, names...)...); err != nil {
		return fail("service_systemctl", "look at the units with 'systemctl status' and run install again", "systemctl enable %s failed (%s)", strings.Join(names, " "), msg)
	}
	stepf(out, "Enabled %s (started at boot).", strings.Join(names, " and "))
	if !start {
		return nil
	}
	if msg, err := systemctl(ctx, append([]string{"restart"}, names...)...); err != nil {
		return fail("service_systemctl", "look at 'systemctl status "+ConnectorUnit+"' and 'journalctl -u "+ConnectorUnit+"'", "systemctl restart %s failed (%s)", strings.Join(names, " "), msg)
	}
	stepf(out, "Started %s.", strings.Join(names, " and "))
	return nil
}

// nextSteps tells what is left to do after install.
func nextSteps(o Options, names []string, registered bool, out io.Writer) {
	short := make([]string, len(names))
	for i, n := range names {
		short[i] = strings.TrimSuffix(n, ".service")
	}
	switch {
	case registered && o.Start:
		fmt.Fprintf(out, "The connector runs as a service: see 'systemctl status %s' and 'sallyport connector status --dir %s'.\n", short[0], shellQuote(o.StateDir))
	case registered:
		fmt.Fprintf(out, "Start it with:\n  systemctl start %s\n", strings.Join(short, " "))
	default:
		fmt.Fprintf(out, "The connector is not registered yet, so it was not started. Register it as %s, then start it:\n", o.User)
		fmt.Fprintf(out, "  runuser -u %s -- %s connector register --dir %s --cloud https://CLOUD ...\n", o.User, shellQuote(o.Binary), shellQuote(o.StateDir))
		fmt.Fprintf(out, "  systemctl start %s\n", strings.Join(short, " "))
	}
}

// Uninstall stops, disables and removes the units, and removes the binary
// if install copied it. It leaves the state directory (the registration),
// the user and the installation record unless purge, which removes the state
// directory, the user if install created it, and the record. Options left
// empty are taken from the installation record, else the defaults.
func Uninstall(ctx context.Context, o Options, purge bool, out io.Writer) error {
	recPath := o.root(RecordPath("linux"))
	rec, err := readRecord(recPath)
	if err != nil {
		return err
	}
	if rec != nil {
		o = fillFromRecord(o, rec)
	}
	o = o.Defaults("linux")
	if err := o.validateLinux(); err != nil {
		return err
	}
	if err := checkSystem(o, "uninstalled"); err != nil {
		return err
	}
	for _, name := range []string{ConnectorUnit, UpdaterUnit} {
		if err := removeUnit(ctx, o, name, out); err != nil {
			return err
		}
	}
	if o.Root == "" {
		if msg, err := systemctl(ctx, "daemon-reload"); err != nil {
			return fail("service_systemctl", "run 'systemctl daemon-reload' yourself", "systemctl daemon-reload failed (%s)", msg)
		}
		stepf(out, "Reloaded systemd.")
	}

	bin := o.root(o.Binary)
	switch {
	case rec != nil && rec.CopiedBinary && rec.Binary == o.Binary:
		if err := os.Remove(bin); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail("service_uninstall", "remove it yourself", "The binary %s cannot be removed (%v)", bin, err)
		}
		os.Remove(bin + ".previous") // kept by the updater for a rollback
		removeEmptyDirs(o, filepath.Dir(o.Binary), "/opt/sallyport/bin", "/opt/sallyport")
		stepf(out, "Removed the binary %s.", bin)
		rec.CopiedBinary = false
	case exists(bin):
		stepf(out, "Left the binary %s: install did not copy it there (a package may own it).", bin)
	}

	stateDir := o.root(o.StateDir)
	if !purge {
		if exists(stateDir) {
			stepf(out, "Left the state directory %s with the connector's registration; uninstall --purge removes it.", stateDir)
		}
		if rec != nil {
			rec.Services = nil
			if err := writeRecord(recPath, rec); err != nil {
				return err
			}
			stepf(out, "Kept the installation record %s (uninstall --purge removes it).", recPath)
		}
		return nil
	}
	if err := purgeStateDir(o, rec, out); err != nil {
		return err
	}
	if err := removeConnectorConfig(o, rec, out); err != nil {
		return err
	}
	if rec != nil && rec.CreatedUser && rec.User == o.User {
		if o.Root == "" {
			if msg, err := run(ctx, "userdel", o.User); err != nil {
				return fail("service_uninstall", "remove it yourself with 'userdel "+o.User+"'", "The system user %s that install created cannot be removed (userdel: %s)", o.User, msg)
			}
			stepf(out, "Removed the system user %s.", o.User)
		} else {
			stepf(out, "Skipped removing the system user %s: files are written under %s.", o.User, o.Root)
		}
	} else if o.Root == "" {
		stepf(out, "Left the user %s: install did not create it.", o.User)
	}
	if rec != nil {
		if err := os.Remove(recPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail("service_uninstall", "remove it yourself", "The installation record %s cannot be removed (%v)", recPath, err)
		}
		os.Remove(filepath.Dir(recPath)) // only if empty
		stepf(out, "Removed the installation record %s.", recPath)
	}
	return nil
}

// removeUnit stops and disables a unit systemd knows, then removes its
// file from UnitDir if it is there.
func removeUnit(ctx context.Context, o Options, name string, out io.Writer) error {
	if o.Root == "" && slices.ContainsFunc(unitSearchPath, func(d string) bool { return exists(filepath.Join(d, name)) }) {
		if msg, err := systemctl(ctx, "disable", "--now", "--quiet", name); err != nil {
			return fail("service_systemctl", "look at 'systemctl status "+name+"' and run the command again", "systemctl disable --now %s failed (%s)", name, msg)
		}
		stepf(out, "Stopped and disabled %s.", name)
	}
	path := o.root(filepath.Join(UnitDir, name))
	switch err := os.Remove(path); {
	case err == nil:
		stepf(out, "Removed the unit %s.", path)
	case !errors.Is(err, fs.ErrNotExist):
		return fail("service_uninstall", "remove it yourself and run 'systemctl daemon-reload'", "The unit file %s cannot be removed (%v)", path, err)
	}
	return nil
}

// removeEmptyDirs removes, in order, those of dirs that are the binary's
// directory (binDir) or the default ones, if they are empty.
func removeEmptyDirs(o Options, binDir string, defaults ...string) {
	for _, d := range defaults {
		if d == binDir || strings.HasPrefix(binDir, d+"/") {
			os.Remove(o.root(d)) // fails, harmlessly, when not empty
		}
	}
}

// prepareUpdaterDir creates the updater's directory 0700, owned by root
// (chown only when installing for real): systemd's ReadWritePaths= needs
// it to exist, and only root may write what the root updater acts on.
func prepareUpdaterDir(dir string, chown bool, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail("service_install", "check that this user can write there, or choose another --dir", "The updater's directory %s cannot be created (%v)", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail("service_install", "check the directory's owner", "The updater's directory %s cannot be made private (%v)", dir, err)
	}
	if chown {
		if err := os.Chown(dir, 0, 0); err != nil {
			return fail("service_install", "check the directory's owner", "The updater's directory %s cannot be given to root (%v)", dir, err)
		}
	}
	stepf(out, "Prepared the updater's directory %s (mode 0700, root only).", dir)
	return nil
}
