package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/release"
)

// ReleaseKeyPinFile is the release key the root updater trusts, in its
// own directory. Only a step run by root writes it: 'connector install'
// (from the registration's trust.json at that moment, or --release-key)
// or 'connector updater --release-key FILE'. The updater never takes a
// key from trust.json by itself: the connector's user may write that
// file, and must not choose what root installs.
const ReleaseKeyPinFile = "release.pub"

// PinReleaseKey writes the updater's release key pin in updaterDir: the
// key in keyFile if given, else the one the connector's registration got
// (stateDir's trust.json). It reports nothing pinned (pinned == "") when
// there is no key yet (a connector not registered, or registered before
// releases existed), and the key it replaced (old, "" if none or the
// same).
func PinReleaseKey(updaterDir, stateDir, keyFile string, out io.Writer) (pinned string, err error) {
	src := keyFile
	var raw []byte
	if keyFile != "" {
		if raw, err = os.ReadFile(keyFile); err != nil {
			return "", fail("release_key", "give the cloud's release public key (release.pub in the cloud's data directory)",
				"The release key %s cannot be read (%v)", keyFile, err)
		}
	} else {
		src = filepath.Join(stateDir, registeredFile)
		b, err := os.ReadFile(src)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		} else if err != nil {
			return "", fail("release_key", "run install as root", "The connector's registration %s cannot be read (%v)", src, err)
		}
		var t struct {
			ReleaseKey string `json:"release_key"`
		}
		if err := json.Unmarshal(b, &t); err != nil || t.ReleaseKey == "" {
			return "", nil
		}
		raw = []byte(t.ReleaseKey)
	}
	key, err := release.ParsePublicKey(raw)
	if err != nil {
		return "", fail("release_key", "give the cloud's release public key (release.pub in the cloud's data directory), or register the connector again",
			"The release key in %s is not usable (%v)", src, err)
	}
	pem, err := release.MarshalPublicKey(key)
	if err != nil {
		return "", err
	}
	path := filepath.Join(updaterDir, ReleaseKeyPinFile)
	id := release.KeyID(key)
	if old, err := os.ReadFile(path); err == nil {
		if ok, perr := release.ParsePublicKey(old); perr == nil && ok.Equal(key) {
			stepf(out, "Kept the release key %s pinned in %s: the updater installs only releases signed with it.", id, path)
			return id, nil
		} else if perr == nil {
			defer stepf(out, "It replaced the release key %s pinned before.", release.KeyID(ok))
		}
	}
	if err := pki.WriteFileAtomic(path, pem, 0o644); err != nil {
		return "", fail("release_key", "run install as root", "The release key pin %s cannot be written (%v)", path, err)
	}
	stepf(out, "Pinned the release key %s (from %s) in %s: the updater installs only releases signed with it.", id, src, path)
	return id, nil
}

// unpinnedStep says how to give the updater its release key.
func unpinnedStep(o Options, registered bool, out io.Writer) {
	if registered {
		fmt.Fprintf(out, "The connector's registration holds no release key (it was registered before releases existed), so the updater installs nothing: run install again with --release-key FILE, the cloud's release.pub.\n")
		return
	}
	fmt.Fprintf(out, "The updater has no release key yet, so it installs nothing: after registering, run 'sallyport connector install' again as root (Administrator on Windows) (it pins the key of the registration), or give --release-key FILE.\n")
}
