package datadir

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/problem/problemtest"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/testnet"
)

// initDataDir makes a cloud data directory; pubFile, when set, is the
// public half of an offline release key.
func initDataDir(t *testing.T, pubFile string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	if _, err := Init(context.Background(), InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com",
		Admin: "admin@contoso.com", AdminPassword: testPassword, ReleasePublicKeyFile: pubFile}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// keyOf reads a release private key file.
func keyOf(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	k, err := LoadSigningKey("", path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestInitReleaseKey(t *testing.T) {
	dir := initDataDir(t, "")
	if runtime.GOOS != "windows" {
		for f, want := range map[string]os.FileMode{ReleaseKeyFile: 0o600, ReleasePubFile: 0o644} {
			if got := fileMode(t, filepath.Join(dir, f)); got != want {
				t.Errorf("%s mode = %o, want %o", f, got, want)
			}
		}
	}
	pub, err := LoadReleaseKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if key := keyOf(t, filepath.Join(dir, ReleaseKeyFile)); !key.Public().(ed25519.PublicKey).Equal(pub) {
		t.Error("release.pub is not the public half of release.key")
	}
}

func TestInitOfflineReleaseKey(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "offline.key")
	id, err := KeyGen(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := initDataDir(t, keyFile+".pub")
	if exists(filepath.Join(dir, ReleaseKeyFile)) {
		t.Errorf("init with an offline key wrote %s", ReleaseKeyFile)
	}
	if runtime.GOOS != "windows" {
		if got := fileMode(t, filepath.Join(dir, ReleasePubFile)); got != 0o644 {
			t.Errorf("%s mode = %o, want 644", ReleasePubFile, got)
		}
	}
	pub, err := LoadReleaseKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if release.KeyID(pub) != id || !keyOf(t, keyFile).Public().(ed25519.PublicKey).Equal(pub) {
		t.Errorf("the data directory's release key %s is not the offline key %s", release.KeyID(pub), id)
	}
	// LoadReleaseKey never makes a key where the public half exists.
	if exists(filepath.Join(dir, ReleaseKeyFile)) {
		t.Errorf("LoadReleaseKey wrote %s for an offline key", ReleaseKeyFile)
	}
}

func TestInitBadReleasePublicKeyFile(t *testing.T) {
	tmp := t.TempDir()
	for _, tt := range []struct {
		name, file string
		subs       []string
	}{
		{"missing", filepath.Join(tmp, "nope.pub"), []string{"cannot be read"}},
		{"garbage", testnet.WriteFile(t, filepath.Join(tmp, "garbage.pub"), "not a key\n", 0o644), []string{"is not usable"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cloud")
			_, err := Init(context.Background(), InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com",
				Admin: "admin@contoso.com", AdminPassword: testPassword, ReleasePublicKeyFile: tt.file})
			problemtest.Want(t, "init", err, "release_key", append(tt.subs, tt.file)...)
		})
	}
}

// TestLoadReleaseKeyOldDataDir: a data directory made before releases
// existed gets a key on first use, and keeps it.
func TestLoadReleaseKeyOldDataDir(t *testing.T) {
	dir := initDataDir(t, "")
	for _, f := range []string{ReleaseKeyFile, ReleasePubFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := LoadReleaseKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ReleaseKeyFile, ReleasePubFile} {
		if !exists(filepath.Join(dir, f)) {
			t.Errorf("LoadReleaseKey on an old data directory did not create %s", f)
		}
	}
	if runtime.GOOS != "windows" {
		if got := fileMode(t, filepath.Join(dir, ReleaseKeyFile)); got != 0o600 {
			t.Errorf("%s mode = %o, want 600", ReleaseKeyFile, got)
		}
	}
	if !keyOf(t, filepath.Join(dir, ReleaseKeyFile)).Public().(ed25519.PublicKey).Equal(pub) {
		t.Error("the new release.pub is not the public half of the new release.key")
	}
	again, err := LoadReleaseKey(dir)
	if err != nil || !again.Equal(pub) {
		t.Errorf("LoadReleaseKey again = %s, %v; want the same key %s", release.KeyID(again), err, release.KeyID(pub))
	}
}

func TestLoadReleaseKeyErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		subs  []string
	}{
		{"damaged release.pub", func(t *testing.T, dir string) {
			testnet.WriteFile(t, filepath.Join(dir, ReleasePubFile), "-----BEGIN GARBAGE-----\n", 0o644)
		}, []string{"is damaged", ReleasePubFile, "restore"}},
		{"empty release.pub", func(t *testing.T, dir string) {
			testnet.WriteFile(t, filepath.Join(dir, ReleasePubFile), "", 0o644)
		}, []string{"is damaged"}},
		{"release.pub lost, release.key kept", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ReleasePubFile))
		}, []string{"cannot be read", ReleasePubFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := initDataDir(t, "")
			keyBefore, _ := os.ReadFile(filepath.Join(dir, ReleaseKeyFile))
			tt.setup(t, dir)
			_, err := LoadReleaseKey(dir)
			problemtest.Want(t, "LoadReleaseKey", err, "release_key", tt.subs...)
			// The signing key is never replaced behind the operator's back.
			if keyAfter, _ := os.ReadFile(filepath.Join(dir, ReleaseKeyFile)); string(keyAfter) != string(keyBefore) {
				t.Error("LoadReleaseKey changed release.key")
			}
		})
	}
}

func TestKeyGen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "release.key")
	id, err := KeyGen(path)
	if err != nil {
		t.Fatal(err)
	}
	key := keyOf(t, path)
	rawPub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := release.ParsePublicKey(rawPub)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(pub) || release.KeyID(pub) != id {
		t.Errorf("KeyGen returned %s; the files hold a key pair %s", id, release.KeyID(pub))
	}
	if runtime.GOOS != "windows" {
		if got := fileMode(t, path); got != 0o600 {
			t.Errorf("key mode = %o, want 600", got)
		}
		// 0644 before the umask: never writable or executable by others.
		if got := fileMode(t, path+".pub"); got&^0o644 != 0 || got&0o400 == 0 {
			t.Errorf("public key mode = %o, want 644", got)
		}
	}
	keyBefore, _ := os.ReadFile(path)

	// It never overwrites: neither the key nor its public half.
	for _, tt := range []struct {
		name  string
		setup func() string
	}{
		{"key exists", func() string { return path }},
		{"public half exists", func() string {
			p := filepath.Join(dir, "other.key")
			testnet.WriteFile(t, p+".pub", "keep", 0o644)
			return p
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup()
			_, err := KeyGen(p)
			problemtest.Want(t, "KeyGen over an existing file", err, "keygen", "never overwrites")
		})
	}
	if after, _ := os.ReadFile(path); string(after) != string(keyBefore) {
		t.Error("KeyGen overwrote an existing key")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "other.key.pub")); string(after) != "keep" {
		t.Error("KeyGen overwrote an existing public key")
	}
	// A refused keygen leaves no half key pair behind.
	if exists(filepath.Join(dir, "other.key")) {
		t.Error("KeyGen refused for an existing public half but wrote the private key")
	}
	if _, err := KeyGen(filepath.Join(dir, "other.key")); err == nil {
		t.Error("KeyGen succeeded over an existing public half")
	}
}

// scriptRelease writes a small shell script standing for a build that is
// not an executable format Publish can read.
func scriptRelease(t *testing.T, content string) string {
	t.Helper()
	return testnet.WriteFile(t, filepath.Join(t.TempDir(), "sallyport.sh"), "#!/bin/sh\n"+content+"\n", 0o755)
}

// releaseFiles lists releases/ (published binaries and leftovers).
func releaseFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, ReleasesDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

func TestPublish(t *testing.T) {
	ctx := context.Background()
	dir := initDataDir(t, "")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := scriptRelease(t, "echo 1")
	emptyFile := testnet.WriteFile(t, filepath.Join(t.TempDir(), "empty"), "", 0o755)
	now := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	// Cases run in order on one data directory: "duplicate" publishes
	// again a version published before.
	tests := []struct {
		name    string
		elf     bool // needs the test binary to be a linux ELF
		o       PublishOptions
		code    string   // "" for success
		subs    []string // in the problem, or in the warning on success
		goos    string   // expected on success
		goarch  string
		warning bool
	}{
		{name: "ELF", elf: true, o: PublishOptions{File: exe, Version: "v1.0.0", Major: true, Notes: "first"},
			goos: "linux", goarch: runtime.GOARCH},
		{name: "ELF with its own os and arch", elf: true, o: PublishOptions{File: exe, Version: "1.0.1", OS: "linux", Arch: runtime.GOARCH},
			goos: "linux", goarch: runtime.GOARCH},
		{name: "ELF with another os", elf: true, o: PublishOptions{File: exe, Version: "1.0.2", OS: "windows"},
			code: "release_platform", subs: []string{"is a linux/" + runtime.GOARCH + " executable, not windows/-"}},
		{name: "ELF with another arch", elf: true, o: PublishOptions{File: exe, Version: "1.0.2", OS: "linux", Arch: otherArch()},
			code: "release_platform", subs: []string{"not linux/" + otherArch()}},
		{name: "script without os and arch", o: PublishOptions{File: script, Version: "1.1.0"},
			code: "release_platform", subs: []string{"cannot be read from the file", "give --os and --arch"}},
		{name: "script with os only", o: PublishOptions{File: script, Version: "1.1.0", OS: "linux"},
			code: "release_platform", subs: []string{"give --os and --arch"}},
		{name: "script with os and arch", o: PublishOptions{File: script, Version: "1.1.0", OS: "windows", Arch: "amd64"},
			goos: "windows", goarch: "amd64", warning: true, subs: []string{"is not an ELF, PE or Mach-O executable", "windows/amd64"}},
		{name: "script for an unknown os", o: PublishOptions{File: script, Version: "1.1.1", OS: "plan9", Arch: "amd64"},
			code: "bad_release", subs: []string{"plan9"}},
		{name: "duplicate", o: PublishOptions{File: script, Version: "1.1.0", OS: "windows", Arch: "amd64"},
			code: "release_exists", subs: []string{"Version 1.1.0 for windows/amd64 is already published", "release delete --version 1.1.0 --os windows --arch amd64"}},
		{name: "duplicate with a v", o: PublishOptions{File: script, Version: "v1.1.0", OS: "windows", Arch: "amd64"},
			code: "release_exists"},
		{name: "same version for another platform", o: PublishOptions{File: script, Version: "1.1.0", OS: "windows", Arch: "arm64"},
			goos: "windows", goarch: "arm64", warning: true},
		{name: "bad version", o: PublishOptions{File: script, Version: "1.2", OS: "linux", Arch: "amd64"},
			code: "bad_version", subs: []string{`"1.2"`, "MAJOR.MINOR.PATCH"}},
		{name: "no version", o: PublishOptions{File: script, OS: "linux", Arch: "amd64"}, code: "bad_version"},
		{name: "missing file", o: PublishOptions{File: filepath.Join(t.TempDir(), "nope"), Version: "1.3.0"},
			code: "release_file", subs: []string{"cannot be read"}},
		{name: "empty file", o: PublishOptions{File: emptyFile, Version: "1.3.0", OS: "linux", Arch: "amd64"},
			code: "release_file", subs: []string{"regular, non-empty file"}},
		{name: "directory", o: PublishOptions{File: t.TempDir(), Version: "1.3.0", OS: "linux", Arch: "amd64"},
			code: "release_file", subs: []string{"regular, non-empty file"}},
		{name: "not a data directory", o: PublishOptions{DataDir: t.TempDir(), File: script, Version: "1.3.0", OS: "linux", Arch: "amd64"},
			code: "data_dir"},
	}
	pub, err := LoadReleaseKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.elf && runtime.GOOS != "linux" {
				t.Skip("the test binary is an ELF executable on linux only")
			}
			o := tt.o
			if o.DataDir == "" {
				o.DataDir = dir
			}
			o.Now = now
			before := releaseFiles(t, dir)
			res, err := Publish(ctx, o)
			if tt.code != "" {
				problemtest.Want(t, "Publish", err, tt.code, tt.subs...)
				if res != nil {
					t.Errorf("a refused publish returned %+v", res)
				}
				if after := releaseFiles(t, dir); strings.Join(after, ",") != strings.Join(before, ",") {
					t.Errorf("a refused publish changed releases/ from %v to %v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("Publish = %v", err)
			}
			raw, err := os.ReadFile(o.File)
			if err != nil {
				t.Fatal(err)
			}
			digest := sha256Hex(raw)
			m := res.Manifest
			want := release.Manifest{Format: release.Format, Version: strings.TrimPrefix(o.Version, "v"), OS: tt.goos, Arch: tt.goarch,
				Major: o.Major, SHA256: digest, Size: int64(len(raw)), PublishedAt: now.Truncate(time.Second), Notes: o.Notes}
			if !sameManifest(m, want) {
				t.Errorf("manifest\n%+v, want\n%+v", m, want)
			}
			if res.KeyID != release.KeyID(pub) {
				t.Errorf("key id %s, want %s", res.KeyID, release.KeyID(pub))
			}
			if tt.warning != (res.Warning != "") {
				t.Errorf("warning %q, want one: %v", res.Warning, tt.warning)
			}
			for _, s := range tt.subs {
				if !strings.Contains(res.Warning, s) {
					t.Errorf("warning %q does not mention %q", res.Warning, s)
				}
			}
			blob, err := os.ReadFile(filepath.Join(dir, ReleasesDir, "sha256-"+digest))
			if err != nil {
				t.Fatalf("the binary was not stored under its digest: %v", err)
			}
			if sha256Hex(blob) != digest {
				t.Error("the stored binary differs from the published file")
			}
			// The stored manifest is signed with the cloud's release key.
			st, err := OpenStore(dir, mustSettings(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rs, err := st.ListReleases(ctx, m.OS, m.Arch)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range rs {
				if r.Version != m.Version {
					continue
				}
				found = true
				got, err := release.Verify(release.Signed{Manifest: r.Manifest, Signature: r.Signature}, pub)
				if err != nil {
					t.Fatalf("the stored manifest does not verify with the release key: %v", err)
				}
				if !sameManifest(got, m) || r.SHA256 != digest || r.Size != m.Size || r.KeyID != res.KeyID || r.Major != m.Major {
					t.Errorf("stored %+v (manifest %+v), want %+v", r, got, m)
				}
			}
			if !found {
				t.Errorf("release %s for %s/%s is not in the store", m.Version, m.OS, m.Arch)
			}
		})
	}
	// No temporary file is left behind.
	for _, f := range releaseFiles(t, dir) {
		if !strings.HasPrefix(f, "sha256-") {
			t.Errorf("releases/ holds %s", f)
		}
	}
	if runtime.GOOS != "windows" {
		if got := fileMode(t, filepath.Join(dir, ReleasesDir)); got != 0o700 {
			t.Errorf("releases/ mode = %o, want 700", got)
		}
	}
}

// sameManifest compares manifests, their times by instant.
func sameManifest(a, b release.Manifest) bool {
	if !a.PublishedAt.Equal(b.PublishedAt) {
		return false
	}
	a.PublishedAt, b.PublishedAt = time.Time{}, time.Time{}
	return a == b
}

func mustSettings(t *testing.T, dir string) Settings {
	t.Helper()
	s, err := LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPublishRefusedDuplicateLeavesNoBinary: a refused duplicate of
// another build leaves no binary in releases/ that no release names.
func TestPublishRefusedDuplicateLeavesNoBinary(t *testing.T) {
	ctx := context.Background()
	dir := initDataDir(t, "")
	first := scriptRelease(t, "echo first")
	if _, err := Publish(ctx, PublishOptions{DataDir: dir, File: first, Version: "1.0.0", OS: "linux", Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	before := releaseFiles(t, dir)
	_, err := Publish(ctx, PublishOptions{DataDir: dir, File: scriptRelease(t, "echo second"), Version: "1.0.0", OS: "linux", Arch: "amd64"})
	problemtest.Want(t, "publishing another build as 1.0.0", err, "release_exists")
	if after := releaseFiles(t, dir); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the refused publish left releases/ %v, was %v", after, before)
	}
	// The same build under the same version is refused too, and its
	// binary, named by the published release, stays.
	_, err = Publish(ctx, PublishOptions{DataDir: dir, File: first, Version: "1.0.0", OS: "linux", Arch: "amd64"})
	problemtest.Want(t, "publishing the same build as 1.0.0 again", err, "release_exists")
	raw, _ := os.ReadFile(first)
	if !exists(filepath.Join(dir, ReleasesDir, "sha256-"+sha256Hex(raw))) {
		t.Error("a refused duplicate removed the binary of the published release")
	}
}

func TestPublishOfflineKey(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	keyFile := filepath.Join(tmp, "offline.key")
	if _, err := KeyGen(keyFile); err != nil {
		t.Fatal(err)
	}
	wrongKey := filepath.Join(tmp, "wrong.key")
	if _, err := KeyGen(wrongKey); err != nil {
		t.Fatal(err)
	}
	dir := initDataDir(t, keyFile+".pub")
	script := scriptRelease(t, "echo offline")
	tests := []struct {
		name, keyFile, version, code string
		subs                         []string
	}{
		{"no key file", "", "1.0.0", "release_key_offline", []string{"kept offline", "--key FILE"}},
		{"wrong key file", wrongKey, "1.0.0", "release_key_mismatch", []string{"is not the cloud's release key"}},
		{"public half as the key", keyFile + ".pub", "1.0.0", "release_key", []string{"is not usable"}},
		{"missing key file", filepath.Join(tmp, "nope.key"), "1.0.0", "release_key", []string{"cannot be read"}},
		{"the offline key", keyFile, "1.0.0", "", nil},
	}
	pub, err := LoadReleaseKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Publish(ctx, PublishOptions{DataDir: dir, File: script, Version: tt.version, OS: "linux", Arch: "amd64", KeyFile: tt.keyFile})
			if tt.code != "" {
				problemtest.Want(t, "Publish", err, tt.code, tt.subs...)
				if n := len(releaseFiles(t, dir)); n != 0 {
					t.Errorf("a refused publish stored %d file(s)", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.KeyID != release.KeyID(pub) {
				t.Errorf("signed with %s, want the cloud's key %s", res.KeyID, release.KeyID(pub))
			}
			ms, err := ListReleases(ctx, dir)
			if err != nil || len(ms) != 1 || !sameManifest(ms[0], res.Manifest) {
				t.Errorf("ListReleases = %+v, %v; want the one published", ms, err)
			}
		})
	}
	// A signing key given explicitly wins over the data directory's, and
	// must match the data directory's public key too.
	dir2 := initDataDir(t, "")
	_, err = Publish(ctx, PublishOptions{DataDir: dir2, File: script, Version: "1.0.0", OS: "linux", Arch: "amd64", KeyFile: keyFile})
	problemtest.Want(t, "publishing with another cloud's key", err, "release_key_mismatch")
}

func TestListAndDeleteReleases(t *testing.T) {
	ctx := context.Background()
	dir := initDataDir(t, "")
	if ms, err := ListReleases(ctx, dir); err != nil || len(ms) != 0 {
		t.Fatalf("ListReleases of a new cloud = %+v, %v", ms, err)
	}
	a, b := scriptRelease(t, "echo a"), scriptRelease(t, "echo b")
	rawA, _ := os.ReadFile(a)
	rawB, _ := os.ReadFile(b)
	blobA := filepath.Join(dir, ReleasesDir, "sha256-"+sha256Hex(rawA))
	blobB := filepath.Join(dir, ReleasesDir, "sha256-"+sha256Hex(rawB))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, p := range []struct {
		file, version, os string
	}{
		{a, "1.0.0", "linux"},
		{a, "1.0.1", "linux"}, // the same build again
		{a, "1.0.0", "windows"},
		{b, "2.0.0", "linux"},
	} {
		if _, err := Publish(ctx, PublishOptions{DataDir: dir, File: p.file, Version: p.version, OS: p.os, Arch: "amd64", Now: base.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []string {
		t.Helper()
		ms, err := ListReleases(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Version+"/"+m.OS)
		}
		return out
	}
	if got, want := strings.Join(list(), " "), "2.0.0/linux 1.0.0/windows 1.0.1/linux 1.0.0/linux"; got != want {
		t.Fatalf("ListReleases = %s, want newest first: %s", got, want)
	}
	steps := []struct {
		name, version, os string
		code              string
		left              string
		blobs             map[string]bool
	}{
		{"unknown version", "9.9.9", "linux", "release_not_found", "2.0.0/linux 1.0.0/windows 1.0.1/linux 1.0.0/linux", map[string]bool{blobA: true, blobB: true}},
		{"unknown platform", "2.0.0", "darwin", "release_not_found", "2.0.0/linux 1.0.0/windows 1.0.1/linux 1.0.0/linux", map[string]bool{blobA: true, blobB: true}},
		{"binary named by two others", "1.0.0", "linux", "", "2.0.0/linux 1.0.0/windows 1.0.1/linux", map[string]bool{blobA: true, blobB: true}},
		{"binary named by another platform", "1.0.1", "linux", "", "2.0.0/linux 1.0.0/windows", map[string]bool{blobA: true, blobB: true}},
		{"last release of a binary", "1.0.0", "windows", "", "2.0.0/linux", map[string]bool{blobA: false, blobB: true}},
		{"with a v", "v2.0.0", "linux", "", "", map[string]bool{blobA: false, blobB: false}},
		{"already deleted", "2.0.0", "linux", "release_not_found", "", map[string]bool{blobA: false, blobB: false}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := DeleteRelease(ctx, dir, s.version, s.os, "amd64")
			if s.code != "" {
				p := problemtest.Want(t, "DeleteRelease", err, s.code, "release list")
				if p.Status != 404 {
					t.Errorf("status %d, want 404", p.Status)
				}
			} else if err != nil {
				t.Fatalf("DeleteRelease = %v", err)
			}
			if got := strings.Join(list(), " "); got != s.left {
				t.Errorf("left %q, want %q", got, s.left)
			}
			for blob, want := range s.blobs {
				if exists(blob) != want {
					t.Errorf("%s exists: %v, want %v", filepath.Base(blob), !want, want)
				}
			}
		})
	}
}

// TestListReleasesDamaged: a stored release that does not verify with the
// cloud's release key is reported, not listed.
func TestListReleasesDamaged(t *testing.T) {
	ctx := context.Background()
	dir := initDataDir(t, "")
	if _, err := Publish(ctx, PublishOptions{DataDir: dir, File: scriptRelease(t, "echo x"), Version: "1.0.0", OS: "linux", Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	// The release key replaced behind the cloud's back.
	other := filepath.Join(t.TempDir(), "other.key")
	if _, err := KeyGen(other); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(other + ".pub")
	testnet.WriteFile(t, filepath.Join(dir, ReleasePubFile), string(raw), 0o644)
	_, err := ListReleases(ctx, dir)
	problemtest.Want(t, "ListReleases", err, "release_damaged", "1.0.0 for linux/amd64", "does not verify")
}
