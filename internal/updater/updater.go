// Package updater keeps a connector up to date with the releases its cloud
// publishes: it checks for releases over the connector's authenticated
// control channel, verifies the manifest's signature with the release key
// pinned at registration and the binary's digest and size before touching
// anything, takes its group's update turn (one connector of a group at a
// time), swaps the binary atomically, restarts the connector, waits for it
// to report ready with the new version, and rolls back to the previous
// binary when it does not. Major releases are installed on their own;
// others only on request. docs/install.md describes it for users.
package updater

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/service"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/version"
)

// Files of the updater, in its own directory (DefaultDir): never in the
// connector's state directory, which the connector's (unprivileged) user
// may write — nothing the root updater acts on may come from there.
const (
	EventsFile  = "events.jsonl"
	PinFile     = service.ReleaseKeyPinFile // the release key the updater trusts
	StateFile   = "state.json"
	ServiceLock = "service.lock" // held by the updater service while it runs
	UpdateLock  = "update.lock"  // held by whoever is updating
)

// Defaults.
const (
	DefaultInterval     = 6 * time.Hour
	DefaultReadyTimeout = 2 * time.Minute
)

// DefaultDir is the updater's directory for a connector state directory:
// a sibling, DIR-updater (/var/lib/sallyport/connector-updater).
func DefaultDir(stateDir string) string { return service.UpdaterDirOf(stateDir) }

// Config configures an Updater.
type Config struct {
	// Dir is the connector's state directory.
	Dir string
	// UpdaterDir is the updater's own directory (default DefaultDir(Dir)):
	// its event log, state, locks and release key pin, owned by the
	// updater's user.
	UpdaterDir string
	// Binary is the installed sallyport binary the connector service runs.
	Binary string
	// Restart is how the connector is restarted: systemd:UNIT,
	// windows:SERVICE or signal (SIGTERM to the pid in status.json; the
	// connector's supervisor starts it again).
	Restart string
	// Interval between checks of the updater service (±10 % jitter).
	Interval time.Duration
	// ReadyTimeout is how long the new version has to report ready.
	ReadyTimeout time.Duration
	// ProxyURL overrides the connector's proxy settings ("" to use them).
	ProxyURL string
	// ReleaseKeyFile is the release public key to trust (--release-key),
	// pinned in UpdaterDir in place of any other; "" to use the pin
	// 'connector install' made.
	ReleaseKeyFile string
	Logger         *slog.Logger
	Now            func() time.Time
}

// Updater updates one connector installation.
type Updater struct {
	cfg     Config
	log     *slog.Logger
	events  *eventlog.Log
	restart service.RestartSpec
}

// New checks cfg and opens the updater's event log.
func New(cfg Config) (*Updater, error) {
	if cfg.Dir == "" || cfg.Binary == "" {
		return nil, problem.New(400, "updater_config", "give --dir and --binary", "The updater needs the connector's state directory and binary")
	}
	abs, err := filepath.Abs(cfg.Binary)
	if err != nil {
		return nil, err
	}
	cfg.Binary = abs
	if cfg.Restart == "" {
		cfg.Restart = service.MethodSignal
	}
	spec, err := service.ParseRestartSpec(cfg.Restart)
	if err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UpdaterDir == "" {
		cfg.UpdaterDir = DefaultDir(cfg.Dir)
	}
	if err := os.MkdirAll(cfg.UpdaterDir, 0o700); err != nil {
		return nil, problem.Newf(400, "updater_dir", "run the updater as the user that installed the connector (root or SYSTEM)",
			"The updater cannot create its directory %s (%v)", cfg.UpdaterDir, err)
	}
	ev, err := eventlog.Open(eventlog.Config{Path: filepath.Join(cfg.UpdaterDir, EventsFile), Source: "updater", Logger: cfg.Logger, Now: cfg.Now})
	if err != nil {
		return nil, problem.Newf(400, "updater_dir", "check the permissions of the state directory", "The updater's event log cannot be opened (%v)", err)
	}
	return &Updater{cfg: cfg, log: cfg.Logger, events: ev, restart: spec}, nil
}

// Close closes the event log.
func (u *Updater) Close() error { return u.events.Close() }

// CheckResult is what a check found.
type CheckResult struct {
	Installed   string             `json:"installed"`
	OS          string             `json:"os"`
	Arch        string             `json:"arch"`
	Newest      *release.Manifest  `json:"newest,omitempty"`       // newest release newer than installed
	NewestMajor *release.Manifest  `json:"newest_major,omitempty"` // newest major release newer than installed
	Available   []release.Manifest `json:"available"`              // every verified release, newest first
	Refused     []string           `json:"refused,omitempty"`      // why releases were refused
	KeyID       string             `json:"key_id"`
}

// session is what one check or update works with.
type session struct {
	st   *statedir.State
	key  ed25519.PublicKey
	dial cloudlink.DialFunc
}

func (u *Updater) open(ctx context.Context) (*session, error) {
	st, err := statedir.Load(u.cfg.Dir)
	if err != nil {
		return nil, err
	}
	p, err := statedir.EffectiveProxy(u.cfg.Dir, u.cfg.ProxyURL)
	if err != nil {
		return nil, err
	}
	if p != nil {
		st.Target.Proxy = p
	}
	s := &session{st: st}
	s.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&cloudlink.Dialer{Proxy: st.Target.Proxy}).DialContext(ctx, network, addr)
	}
	if s.key, err = u.pinnedKey(st); err != nil {
		return nil, err
	}
	return s, nil
}

// pinnedKey returns the release key the updater trusts: the one pinned
// in its own directory by a step root runs ('connector install', or this
// updater's --release-key FILE, which replaces the pin). trust.json is
// writable by the connector's user, so the updater never adopts its key,
// nor one the cloud offers: without a pin it installs nothing. A key in
// trust.json other than the pinned one is reported, not followed.
func (u *Updater) pinnedKey(st *statedir.State) (ed25519.PublicKey, error) {
	pinPath := filepath.Join(u.cfg.UpdaterDir, PinFile)
	if f := u.cfg.ReleaseKeyFile; f != "" {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, problem.Newf(400, "release_key", "give the cloud's release public key (release.pub in the cloud's data directory)",
				"The release key %s cannot be read (%v)", f, err)
		}
		key, err := release.ParsePublicKey(raw)
		if err != nil {
			return nil, problem.Newf(400, "release_key", "give the cloud's release public key (release.pub in the cloud's data directory)",
				"The release key %s is not usable (%v)", f, err)
		}
		if old, err := os.ReadFile(pinPath); err == nil {
			if ok, perr := release.ParsePublicKey(old); perr == nil && ok.Equal(key) {
				return key, nil
			}
		}
		pem, err := release.MarshalPublicKey(key)
		if err != nil {
			return nil, err
		}
		if err := pki.WriteFileAtomic(pinPath, pem, 0o644); err != nil {
			return nil, problem.Newf(400, "release_key", "run the updater as root (or SYSTEM)", "The updater cannot write its release key pin %s (%v)", pinPath, err)
		}
		u.events.Event(eventlog.ReleaseKeyPinned, fmt.Sprintf("The release key %s from %s (--release-key) was pinned in %s", release.KeyID(key), f, pinPath), "key_id", release.KeyID(key), "file", f)
		return key, nil
	}
	raw, err := os.ReadFile(pinPath)
	if errors.Is(err, os.ErrNotExist) {
		msg := fmt.Sprintf("The updater has no pinned release key (%s), so it installs nothing", pinPath)
		u.events.Event(eventlog.ReleaseKeyMissing, msg, "pin", pinPath)
		return nil, problem.New(400, "release_key_unpinned", "run 'sallyport connector install' again as root (it pins the key of the connector's registration), or give the cloud's release.pub with --release-key FILE", msg)
	}
	if err != nil {
		return nil, problem.Newf(400, "release_key", "run the updater as root (or SYSTEM)", "The updater's release key pin %s cannot be read (%v)", pinPath, err)
	}
	key, err := release.ParsePublicKey(raw)
	if err != nil {
		return nil, problem.Newf(400, "release_key", "run 'sallyport connector install' again as root, or give --release-key FILE, to pin the key again",
			"The updater's release key pin %s is damaged (%v)", pinPath, err)
	}
	if tk := st.Trust.ReleaseKey; tk != "" {
		if k, err := release.ParsePublicKey([]byte(tk)); err != nil || !k.Equal(key) {
			u.events.Event(eventlog.ReleaseKeyMismatch, fmt.Sprintf("The release key in %s (%s) is not the one the updater pinned (%s): the updater keeps trusting %s; if the cloud's key changed on purpose, run 'sallyport connector install' again as root",
				filepath.Join(u.cfg.Dir, statedir.TrustFile), keyIDOf(tk), release.KeyID(key), release.KeyID(key)), "pinned", release.KeyID(key), "trust_json", keyIDOf(tk))
		}
	}
	return key, nil
}

func keyIDOf(s string) string {
	if k, err := release.ParsePublicKey([]byte(s)); err == nil {
		return release.KeyID(k)
	}
	return "damaged"
}

// Check finds the installed version and the releases available for it.
func (u *Updater) Check(ctx context.Context) (*CheckResult, error) {
	s, err := u.open(ctx)
	if err != nil {
		return nil, err
	}
	return u.check(ctx, s, nil)
}

func (u *Updater) check(ctx context.Context, s *session, skip map[string]bool) (*CheckResult, error) {
	info, err := BinaryVersion(ctx, u.cfg.Binary)
	if err != nil {
		return nil, err
	}
	installed, err := release.ParseVersion(info.Version)
	if err != nil {
		return nil, problem.Newf(400, "installed_version", "install a release build of sallyport, which embeds its version",
			"The installed binary %s reports the version %q, which is not a semantic version", u.cfg.Binary, info.Version)
	}
	res := &CheckResult{Installed: installed.String(), OS: info.OS, Arch: info.Arch, KeyID: release.KeyID(s.key), Available: []release.Manifest{}}
	var list release.List
	q := url.Values{"os": {info.OS}, "arch": {info.Arch}}
	if err := cloudlink.ControlCall(ctx, s.st, s.dial, http.MethodGet, release.PathList+"?"+q.Encode(), nil, &list); err != nil {
		return nil, err
	}
	for _, sr := range list.Releases {
		m, err := release.Verify(sr, s.key)
		if err != nil {
			why := fmt.Sprintf("A release offered by the cloud was refused: %v (it was signed with key %s; this connector pinned %s)", err, sr.KeyID, release.KeyID(s.key))
			res.Refused = append(res.Refused, why)
			continue
		}
		if m.OS != info.OS || m.Arch != info.Arch {
			res.Refused = append(res.Refused, fmt.Sprintf("Release %s is for %s/%s, not this machine's %s/%s", m.Version, m.OS, m.Arch, info.OS, info.Arch))
			continue
		}
		res.Available = append(res.Available, m)
	}
	if m, ok := release.Choose(installed, res.Available, false, nil); ok {
		res.Newest = &m
	}
	if m, ok := release.Choose(installed, res.Available, true, skip); ok {
		res.NewestMajor = &m
	}
	return res, nil
}

// BinaryVersion runs 'BIN version --json' and returns what it says.
func BinaryVersion(ctx context.Context, bin string) (version.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var info version.Info
	out, err := exec.CommandContext(ctx, bin, "version", "--json").Output()
	if err == nil {
		err = json.Unmarshal(out, &info)
	}
	if err == nil && info.Version == "" {
		err = errors.New("it printed no version")
	}
	if err != nil {
		return info, problem.Newf(400, "binary_version", "check the --binary path: it must be the sallyport binary the connector service runs",
			"Running %s version --json failed (%v)", bin, err)
	}
	return info, nil
}

// download fetches m's binary next to the installed one and checks its
// size and digest; it returns the temporary file's path.
func (u *Updater) download(ctx context.Context, s *session, m release.Manifest) (string, error) {
	body, n, err := cloudlink.ControlDownload(ctx, s.st, s.dial, release.PathBinary+"?sha256="+m.SHA256)
	if err != nil {
		return "", err
	}
	defer body.Close()
	if n >= 0 && n != m.Size {
		return "", u.refuse(m, fmt.Sprintf("the cloud announced %d bytes where the signed manifest says %d", n, m.Size))
	}
	tmp, err := os.CreateTemp(filepath.Dir(u.cfg.Binary), ".sallyport-update-*")
	if err != nil {
		return "", problem.Newf(400, "binary_dir", "run the updater as root (or SYSTEM), which may replace the binary",
			"The updater cannot write next to %s (%v)", u.cfg.Binary, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	got, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, m.Size+1))
	if err != nil {
		return "", problem.Newf(502, "download_failed", "check the connector's network path to the cloud; the updater tries again at its next check",
			"Downloading release %s failed after %d bytes (%v)", m.Version, got, err)
	}
	if got != m.Size {
		return "", u.refuse(m, fmt.Sprintf("the binary has %d bytes where the signed manifest says %d", got, m.Size))
	}
	if d := hex.EncodeToString(h.Sum(nil)); d != m.SHA256 {
		return "", u.refuse(m, fmt.Sprintf("the binary's SHA-256 is %s where the signed manifest says %s", d, m.SHA256))
	}
	if err := tmp.Chmod(0o755); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	ok = true
	return tmp.Name(), nil
}

// refuse records a release whose binary does not match its manifest.
func (u *Updater) refuse(m release.Manifest, why string) error {
	msg := fmt.Sprintf("Release %s was refused and nothing was changed: %s", m.Version, why)
	u.events.Event(eventlog.ReleaseBinaryRefused, msg, "version", m.Version)
	return problem.Newf(502, "release_tampered", "ask the cloud's operator to publish the release again; the updater keeps the installed version", "%s", msg)
}

// readJSON reads a small JSON file; a missing file leaves v unchanged.
func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func writeJSON(path string, v any) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(path, append(js, '\n'), 0o600)
}
