package service

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/sallyport/sallyport/internal/config"
	"github.com/sallyport/sallyport/internal/pki"
)

// ConnectorConfigPath is the connector's configuration file on goos, which
// the unit runs 'connector run --config' with and install writes (under
// Options.Root): /etc/sallyport/connector.toml, on Windows
// %ProgramData%\Sallyport\connector.toml.
func ConnectorConfigPath(goos string) string { return config.DefaultPath(goos, "connector") }

// ConnectorConfig is the connector's configuration file for o: the state
// directory set, every other key of 'connector run' commented out at its
// default (a test in cmd/sallyport checks the keys and defaults against the
// command's flags). It holds no secret: the connector's key stays in the
// state directory.
func ConnectorConfig(o Options) []byte {
	o = o.Defaults("linux")
	path := ConnectorConfigPath("linux")
	return []byte(`# The Sallyport connector's settings: 'sallyport connector run --config ` + path + `'.
# Written by 'sallyport connector install' (and shipped in the sallyport packages).
# Each key is a long flag of 'connector run'; a flag on the command line and the
# environment variable SALLYPORT_KEY (SALLYPORT_DRAIN_TIMEOUT) override it. See
# docs/config.md. Show what is in effect, and from where:
#   sallyport connector run --config ` + path + ` --print-config
# Secrets are never written here.

# The connector's state directory: its registration, key and run status.
dir = ` + config.Quote(o.StateDir) + `

# Tunnel connections kept to the cloud (1 to 16).
# connections = 2

# Outbound proxy to the cloud, http://HOST:PORT (default: 'connector proxy set',
# else HTTPS_PROXY).
# proxy = ""

# Where /metrics, /healthz and /ready are served ("" for nowhere; keep it on
# loopback).
# metrics-listen = "127.0.0.1:9465"

# On SIGTERM, how long requests in flight may finish.
# drain-timeout = "30s"

# Tunnel protocol version to offer: 2, or 1 (HTTP/2 only).
# tunnel-version = 2

# Log debug details to standard error (the journal).
# verbose = false
`)
}

// dirLine is the uncommented dir key of a configuration file.
var dirLine = regexp.MustCompile(`(?m)^[ \t]*dir[ \t]*=.*$`)

// writeConnectorConfig writes the connector's configuration file, 0640,
// owned by root and the connector's group (gid; -1 leaves the owner, as
// under Options.Root). A file already there keeps its other settings: only
// its dir line is set to o.StateDir. It reports whether it created the file.
func writeConnectorConfig(o Options, gid int, out io.Writer) (bool, error) {
	path := o.root(ConnectorConfigPath("linux"))
	old, err := os.ReadFile(path)
	created := errors.Is(err, fs.ErrNotExist)
	if err != nil && !created {
		return false, fail("service_install", "check the file's permissions, or remove it to have a new one written", "The configuration file %s cannot be read (%v)", path, err)
	}
	data := ConnectorConfig(o)
	if !created {
		line := "dir = " + config.Quote(o.StateDir)
		if loc := dirLine.FindIndex(old); loc != nil {
			data = append(append(append([]byte{}, old[:loc[0]]...), line...), old[loc[1]:]...)
		} else {
			data = append([]byte(line+"\n"), old...)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fail("service_install", "check that this user can write there", "The directory of the configuration file %s cannot be created (%v)", path, err)
	}
	if err := pki.WriteFileAtomic(path, data, 0o640); err != nil {
		return false, fail("service_install", "check that this user can write there", "The configuration file %s cannot be written (%v)", path, err)
	}
	owner := ""
	if gid >= 0 {
		if err := os.Chown(path, 0, gid); err != nil {
			return false, fail("service_install", "check the file's owner", "The configuration file %s cannot be given to root:%s (%v)", path, o.Group, err)
		}
		owner = ", root:" + o.Group
	}
	verb := "Wrote"
	if !created {
		verb = "Updated the dir setting of"
	}
	stepf(out, "%s the configuration file %s (mode 0640%s).", verb, path, owner)
	return created, nil
}

// removeConnectorConfig removes the configuration file install created
// (uninstall --purge); one a package shipped stays the package's.
func removeConnectorConfig(o Options, rec *Record, out io.Writer) error {
	if rec == nil || !rec.CreatedConfig {
		return nil
	}
	path := o.root(ConnectorConfigPath("linux"))
	switch err := os.Remove(path); {
	case err == nil:
		stepf(out, "Removed the configuration file %s.", path)
	case !errors.Is(err, fs.ErrNotExist):
		return fail("service_uninstall", "remove it yourself", "The configuration file %s cannot be removed (%v)", path, err)
	}
	return nil
}
