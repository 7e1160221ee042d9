// Package diag makes a connector's diagnostics bundle: one zip file with
// what support needs to see — version and platform, trust settings and
// run status, the doctor's report, recent events and the registration
// log, a metrics snapshot and a goroutine dump of the running connector —
// and never a secret: no private key, no token, no password.
//
// It reads the state directory and the connector's loopback metrics
// endpoint; it does not import the cloud's packages.
package diag

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"time"

	"github.com/sallyport/sallyport/internal/version"
)

// Options say what to collect.
type Options struct {
	Dir string // the connector's state directory
	// UpdaterDir is the updater's directory ("" to skip).
	UpdaterDir string
	// MetricsURL is the running connector's metrics endpoint base, e.g.
	// http://127.0.0.1:9465 ("" to skip).
	MetricsURL string
	// Doctor, if set, returns the doctor's report as JSON.
	Doctor func(ctx context.Context) ([]byte, error)
	Now    func() time.Time
}

// files copied from the state directory; anything else (keys above all)
// is never read.
var stateFiles = []string{"trust.json", "status.json", "events.jsonl", "events.jsonl.1", "events.jsonl.2", "register.log", "cloud-ca.pem"}

// updaterFiles are copied from the updater's directory (readable when the
// bundle is made as root).
var updaterFiles = []string{"events.jsonl", "events.jsonl.1", "state.json"}

// endpoints are fetched from the running connector's metrics address.
var endpoints = []struct{ path, name string }{{"/metrics", "metrics.txt"}, {"/debug/goroutines", "goroutines.txt"}, {"/ready", "ready.txt"}}

// The bundle's entries other than the copied files.
const (
	versionEntry  = "version.txt"
	doctorEntry   = "doctor.json"
	manifestEntry = "MANIFEST.json"
)

// Entries lists every entry a bundle may hold, in the order Write adds
// them (docs/cli.md lists the same, checked by a test).
func Entries() []string {
	names := []string{versionEntry}
	for _, f := range stateFiles {
		names = append(names, "state/"+f)
	}
	for _, f := range updaterFiles {
		names = append(names, "updater/"+f)
	}
	names = append(names, doctorEntry)
	for _, ep := range endpoints {
		names = append(names, ep.name)
	}
	return append(names, manifestEntry)
}

// Write writes the bundle to w and returns the names of its entries.
func Write(ctx context.Context, w io.Writer, o Options) ([]string, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	zw := zip.NewWriter(w)
	var names []string
	add := func(name string, data []byte) error {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: o.Now()})
		if err != nil {
			return err
		}
		names = append(names, name)
		_, err = f.Write(Scrub(data))
		return err
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("%s\nhost name: %s\nos/arch: %s/%s\ncpus: %d\ncollected: %s\nstate directory: %s\n",
		version.String(), host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), o.Now().UTC().Format(time.RFC3339), o.Dir)
	if err := add(versionEntry, []byte(info)); err != nil {
		return nil, err
	}
	for _, f := range stateFiles {
		data, err := os.ReadFile(filepath.Join(o.Dir, f))
		if err != nil {
			continue
		}
		if err := add("state/"+f, data); err != nil {
			return nil, err
		}
	}
	for _, f := range updaterFiles {
		if o.UpdaterDir == "" {
			break
		}
		data, err := os.ReadFile(filepath.Join(o.UpdaterDir, f))
		if err != nil {
			continue
		}
		if err := add("updater/"+f, data); err != nil {
			return nil, err
		}
	}
	if o.Doctor != nil {
		rep, err := o.Doctor(ctx)
		if err != nil {
			rep = []byte("the doctor could not run: " + err.Error() + "\n")
		}
		if err := add(doctorEntry, rep); err != nil {
			return nil, err
		}
	}
	if o.MetricsURL != "" {
		for _, ep := range endpoints {
			if err := add(ep.name, fetch(ctx, o.MetricsURL+ep.path)); err != nil {
				return nil, err
			}
		}
	}
	manifest, _ := json.MarshalIndent(map[string]any{"files": names, "note": "secrets removed: private keys are never read; tokens and passwords are replaced by [REDACTED]"}, "", "  ")
	if err := add(manifestEntry, manifest); err != nil {
		return nil, err
	}
	return names, zw.Close()
}

// fetch gets a local endpoint, or says why it could not.
func fetch(ctx context.Context, url string) []byte {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return []byte(fmt.Sprintf("not collected: %v (is the connector running with its metrics on this address?)\n", err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return b
}

var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----`),
	regexp.MustCompile(`\bsp[rt]_[A-Za-z0-9_-]{16,}`),                                // registration and admin tokens
	regexp.MustCompile(`(?i)("?(password|token|secret)"?\s*[:=]\s*)"[^"]*"`),         // JSON / key=value with quotes
	regexp.MustCompile(`(?i)\b(password|token|secret)=[^\s"]+`),                      // key=value in logs
	regexp.MustCompile(`(?i)(Authorization:\s*(Bearer|Basic)\s+)[A-Za-z0-9+/=._-]+`), // headers
	regexp.MustCompile(`(?i)(https?://)[^/\s:@]+:[^/\s@]+@`),                         // credentials in URLs
}

// Scrub replaces anything that looks like a secret.
func Scrub(b []byte) []byte {
	out := b
	for i, re := range secretPatterns {
		switch i {
		case 2:
			out = re.ReplaceAll(out, []byte(`${1}"[REDACTED]"`))
		case 3:
			out = re.ReplaceAll(out, []byte(`${1}=[REDACTED]`))
		case 4:
			out = re.ReplaceAll(out, []byte(`${1}[REDACTED]`))
		case 5:
			out = re.ReplaceAll(out, []byte(`${1}[REDACTED]@`))
		default:
			out = re.ReplaceAll(out, []byte(`[REDACTED]`))
		}
	}
	return bytes.Clone(out)
}
