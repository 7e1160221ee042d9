package service

import (
	"io"
	"os"
	"path/filepath"
	"strings"
)

// executable is the file install copies to Options.Binary (a variable so
// that tests install a small file instead of the test binary).
var executable = os.Executable

// installBinary copies the running executable to o.Binary unless it is that
// file already; it reports whether it copied.
func installBinary(o Options, out io.Writer) (bool, error) {
	exe, err := executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return false, fail("service_install", "run the sallyport binary by its path", "The running sallyport executable cannot be found (%v)", err)
	}
	dst := o.root(o.Binary)
	if sameFile(exe, dst) {
		stepf(out, "The binary %s is the one running: kept it.", dst)
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, fail("service_install", "check that this user can write there, or choose another --binary", "The directory of the binary %s cannot be created (%v)", dst, err)
	}
	if err := copyFileAtomic(exe, dst, 0o755); err != nil {
		return false, fail("service_install", "check that this user can write there and that the disk has room, or choose another --binary", "The binary cannot be copied to %s (%v)", dst, err)
	}
	stepf(out, "Installed the binary %s (from %s).", dst, exe)
	return true, nil
}

// purgeStateDir removes the state directory, refusing any directory that
// does not look like a connector's (a mistyped --dir must not wipe /etc).
func purgeStateDir(o Options, rec *Record, out io.Writer) error {
	dir := o.root(o.StateDir)
	if !exists(dir) {
		return nil
	}
	entries, _ := os.ReadDir(dir)
	ours := len(entries) == 0 || o.StateDir == DefaultOptions().StateDir ||
		(rec != nil && rec.StateDir == o.StateDir) ||
		exists(filepath.Join(dir, registeredFile)) || exists(filepath.Join(dir, "events.jsonl"))
	if !ours {
		return fail("service_uninstall", "check --dir, or remove the directory yourself",
			"The directory %s was not removed: it is not the installed state directory and holds no connector state", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fail("service_uninstall", "remove it yourself", "The state directory %s cannot be removed (%v)", dir, err)
	}
	stepf(out, "Removed the state directory %s and the connector's registration.", dir)
	if upd := o.root(o.UpdaterDir()); exists(upd) {
		if err := os.RemoveAll(upd); err != nil {
			return fail("service_uninstall", "remove it yourself", "The updater's directory %s cannot be removed (%v)", upd, err)
		}
		stepf(out, "Removed the updater's directory %s.", upd)
	}
	return nil
}

// fillFromRecord sets the empty fields of o from the installation record.
func fillFromRecord(o Options, rec *Record) Options {
	if o.StateDir == "" {
		o.StateDir = rec.StateDir
	}
	if o.Binary == "" {
		o.Binary = rec.Binary
	}
	if o.User == "" {
		o.User = rec.User
	}
	if o.Group == "" && o.User == rec.User {
		o.Group = rec.Group
	}
	return o
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:@%+=,", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
