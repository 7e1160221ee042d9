package service

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
)

// Record is install.json: what install did, so that uninstall removes what
// install made and only that (the binary it copied, the user it created)
// even when the flags were not the defaults. It lives outside the state
// directory, which --purge removes and the connector's user may write:
// /etc/sallyport/install.json on Linux, %ProgramData%\Sallyport\install.json
// on Windows (both under Options.Root).
type Record struct {
	FormatVersion int       `json:"format_version"`
	InstalledAt   time.Time `json:"installed_at"`
	Version       string    `json:"version,omitempty"`
	StateDir      string    `json:"state_dir"`
	Binary        string    `json:"binary"`
	User          string    `json:"user"`
	Group         string    `json:"group,omitempty"`
	Updater       bool      `json:"updater"`
	// CreatedUser: install created the system user (uninstall --purge
	// deletes it). Never set for an existing user.
	CreatedUser bool `json:"created_user"`
	// CopiedBinary: install copied itself to Binary (uninstall removes it).
	// False when Binary was already in place, for example from a package.
	CopiedBinary bool `json:"copied_binary"`
	// CreatedConfig: install created the connector's configuration file
	// (uninstall --purge removes it). False when a package shipped it.
	CreatedConfig bool `json:"created_config,omitempty"`
	// Services are the unit files (Linux) or service names (Windows)
	// install created and uninstall has not removed yet.
	Services []string `json:"services"`
}

// RecordPath is where install.json is for goos, before Options.Root.
func RecordPath(goos string) string {
	if goos == "windows" {
		return windowsDir("ProgramData", `C:\ProgramData`, `Sallyport\install.json`)
	}
	return "/etc/sallyport/install.json"
}

// readRecord reads install.json; a missing file is no error (nil record).
func readRecord(path string) (*Record, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fail("service_record", "check the file's permissions, or remove it if it is damaged", "The installation record %s cannot be read (%v)", path, err)
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil || r.FormatVersion != 1 {
		return nil, fail("service_record", "remove the file and give uninstall the --dir, --binary and --user that install was given", "The installation record %s is damaged", path)
	}
	return &r, nil
}

// writeRecord writes install.json atomically, 0644 (it holds no secret).
func writeRecord(path string, r *Record) error {
	r.FormatVersion = 1
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fail("service_record", "check that the directory can be written by this user", "The installation record %s cannot be written (%v)", path, err)
	}
	if err := pki.WriteFileAtomic(path, append(raw, '\n'), 0o644); err != nil {
		return fail("service_record", "check that the directory can be written by this user", "The installation record %s cannot be written (%v)", path, err)
	}
	return nil
}

// copyFileAtomic copies src to dst through a temporary file and a rename.
func copyFileAtomic(src, dst string, mode fs.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(dst, data, mode)
}

// sameFile reports whether a and b are the same existing file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
