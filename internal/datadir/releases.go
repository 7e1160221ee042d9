package datadir

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// Files of the data directory for releases.
const (
	// ReleaseKeyFile is the release signing key (absent when the key is
	// kept offline).
	ReleaseKeyFile = "release.key"
	// ReleasePubFile is the release public key connectors pin.
	ReleasePubFile = "release.pub"
	// ReleasesDir holds published binaries, named sha256-HEX.
	ReleasesDir = "releases"
)

// createReleaseKey makes a new release key in dataDir, or, with pubFile,
// configures an offline key by its public half only.
func createReleaseKey(dataDir, pubFile string) error {
	if pubFile != "" {
		raw, err := os.ReadFile(pubFile)
		if err != nil {
			return problem.Newf(400, "release_key", "give the public half of your offline release key, as written by 'sallyport cloud release keygen'",
				"The release public key %s cannot be read (%v)", pubFile, err)
		}
		pub, err := release.ParsePublicKey(raw)
		if err != nil {
			return problem.Newf(400, "release_key", "give the .pub file written by 'sallyport cloud release keygen'",
				"The release public key %s is not usable: %v", pubFile, err)
		}
		return writeReleasePub(dataDir, pub)
	}
	key, err := release.GenerateKey()
	if err != nil {
		return err
	}
	keyPEM, err := release.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(filepath.Join(dataDir, ReleaseKeyFile), keyPEM, 0o600); err != nil {
		return problem.Newf(400, "data_dir", "check the directory's permissions and free space", "Writing %s failed (%v)", ReleaseKeyFile, err)
	}
	return writeReleasePub(dataDir, key.Public().(ed25519.PublicKey))
}

func writeReleasePub(dataDir string, pub ed25519.PublicKey) error {
	pubPEM, err := release.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(filepath.Join(dataDir, ReleasePubFile), pubPEM, 0o644); err != nil {
		return problem.Newf(400, "data_dir", "check the directory's permissions and free space", "Writing %s failed (%v)", ReleasePubFile, err)
	}
	return nil
}

// LoadReleaseKey reads the release public key of a data directory. A data
// directory made before releases existed gets a new key.
func LoadReleaseKey(dataDir string) (ed25519.PublicKey, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, ReleasePubFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, kerr := os.Stat(filepath.Join(dataDir, ReleaseKeyFile)); errors.Is(kerr, fs.ErrNotExist) {
			if err := createReleaseKey(dataDir, ""); err != nil {
				return nil, err
			}
			raw, err = os.ReadFile(filepath.Join(dataDir, ReleasePubFile))
		}
	}
	if err != nil {
		return nil, problem.Newf(400, "release_key", "restore "+ReleasePubFile+" from a backup of the data directory",
			"The release public key %s cannot be read (%v)", filepath.Join(dataDir, ReleasePubFile), err)
	}
	pub, err := release.ParsePublicKey(raw)
	if err != nil {
		return nil, problem.Newf(400, "release_key", "restore "+ReleasePubFile+" from a backup of the data directory",
			"The release public key %s is damaged: %v", filepath.Join(dataDir, ReleasePubFile), err)
	}
	return pub, nil
}

// KeyGen writes a new release key to path (0600) and its public half to
// path+".pub", for a key kept offline. It never overwrites a file.
func KeyGen(path string) (string, error) {
	key, err := release.GenerateKey()
	if err != nil {
		return "", err
	}
	keyPEM, _ := release.MarshalPrivateKey(key)
	pubPEM, _ := release.MarshalPublicKey(key.Public().(ed25519.PublicKey))
	var made []string // removed again when keygen fails: no half key pair is left
	ok := false
	defer func() {
		if !ok {
			for _, p := range made {
				os.Remove(p)
			}
		}
	}()
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{path, keyPEM, 0o600}, {path + ".pub", pubPEM, 0o644}} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return "", problem.Newf(400, "keygen", "choose a new file name; keygen never overwrites a key", "The key file %s cannot be created (%v)", f.path, err)
		}
		made = append(made, f.path)
		_, werr := fh.Write(f.data)
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", problem.Newf(400, "keygen", "check the directory's free space", "Writing %s failed (%v)", f.path, werr)
		}
	}
	ok = true
	return release.KeyID(key.Public().(ed25519.PublicKey)), nil
}

// PublishOptions are the inputs of Publish.
type PublishOptions struct {
	DataDir string
	File    string
	Version string
	OS      string // "" to read it from the file
	Arch    string // "" to read it from the file
	Major   bool
	Notes   string
	// KeyFile is the offline release key; "" uses the data directory's.
	KeyFile string
	Now     time.Time
}

// PublishResult says what Publish stored, and any warning to print.
type PublishResult struct {
	Manifest release.Manifest
	KeyID    string
	Warning  string
}

// Publish stores a build and its signed manifest: the binary is copied to
// the data directory's releases/ under its digest, the manifest is signed
// with the release key and stored. It is safe while the cloud serves.
func Publish(ctx context.Context, o PublishOptions) (*PublishResult, error) {
	settings, err := LoadSettings(o.DataDir)
	if err != nil {
		return nil, err
	}
	if _, err := release.ParseVersion(o.Version); err != nil {
		return nil, problem.Newf(400, "bad_version", "give --version as MAJOR.MINOR.PATCH, the version the build embeds", "The release cannot be published: %v", err)
	}
	pub, err := LoadReleaseKey(o.DataDir)
	if err != nil {
		return nil, err
	}
	key, err := LoadSigningKey(o.DataDir, o.KeyFile)
	if err != nil {
		return nil, err
	}
	if !key.Public().(ed25519.PublicKey).Equal(pub) {
		return nil, problem.Newf(400, "release_key_mismatch", "sign with the key whose public half this cloud's "+ReleasePubFile+" holds",
			"The release key %s is not the cloud's release key %s, so connectors would refuse the release", release.KeyID(key.Public().(ed25519.PublicKey)), release.KeyID(pub))
	}
	f, err := os.Open(o.File)
	if err != nil {
		return nil, problem.Newf(400, "release_file", "give the path of the sallyport binary to publish", "The file %s cannot be read (%v)", o.File, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 || fi.Size() > release.MaxBinary {
		return nil, problem.Newf(400, "release_file", fmt.Sprintf("give a regular, non-empty file of at most %d MiB", release.MaxBinary>>20),
			"The file %s cannot be published as a release", o.File)
	}
	res := &PublishResult{}
	gotOS, gotArch := binaryPlatform(f)
	switch {
	case gotOS == "" && (o.OS == "" || o.Arch == ""):
		return nil, problem.Newf(400, "release_platform", "give --os and --arch",
			"The operating system and architecture of %s cannot be read from the file (it is not an ELF, PE or Mach-O executable)", o.File)
	case gotOS == "":
		res.Warning = fmt.Sprintf("%s is not an ELF, PE or Mach-O executable; published as %s/%s as given", o.File, o.OS, o.Arch)
	case (o.OS != "" && o.OS != gotOS) || (o.Arch != "" && o.Arch != gotArch):
		return nil, problem.Newf(400, "release_platform", "give the build made for the --os and --arch you named, or leave them out",
			"The file %s is a %s/%s executable, not %s/%s", o.File, gotOS, gotArch, tenancy.DashIfEmpty(o.OS), tenancy.DashIfEmpty(o.Arch))
	default:
		o.OS, o.Arch = gotOS, gotArch
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.DataDir, ReleasesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, problem.Newf(400, "data_dir", "check the data directory's permissions", "The releases directory %s cannot be created (%v)", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".publish-*")
	if err != nil {
		return nil, problem.Newf(400, "data_dir", "check the data directory's permissions", "The releases directory %s is not writable (%v)", dir, err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(f, release.MaxBinary+1))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, problem.Newf(400, "data_dir", "check the free space of the data directory", "Copying the release failed (%v)", err)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	m := release.Manifest{Format: release.Format, Version: strings.TrimPrefix(o.Version, "v"), OS: o.OS, Arch: o.Arch, Major: o.Major,
		SHA256: digest, Size: n, PublishedAt: o.Now.UTC().Truncate(time.Second), Notes: o.Notes}
	signed, err := release.Sign(m, key)
	if err != nil {
		return nil, problem.Newf(400, "bad_release", "correct the options and publish again", "The release cannot be published: %v", err)
	}
	st, err := OpenStore(o.DataDir, settings)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	blob := filepath.Join(dir, "sha256-"+digest)
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return nil, err
	}
	err = st.CreateRelease(ctx, store.Release{Version: m.Version, OS: m.OS, Arch: m.Arch, Major: m.Major, SHA256: digest, Size: n,
		Manifest: signed.Manifest, Signature: signed.Signature, KeyID: signed.KeyID, PublishedAt: m.PublishedAt})
	if err != nil {
		// A refused release leaves no binary that no release names.
		if _, derr := st.ReleaseByDigest(ctx, digest); errors.Is(derr, store.ErrNotFound) {
			os.Remove(blob)
		}
	}
	if errors.Is(err, store.ErrConflict) {
		return nil, problem.Newf(409, "release_exists", fmt.Sprintf("publish under a new version, or withdraw the old one first with 'sallyport cloud release delete --version %s --os %s --arch %s'", m.Version, m.OS, m.Arch),
			"Version %s for %s/%s is already published, and a published release is never replaced", m.Version, m.OS, m.Arch)
	}
	if err != nil {
		return nil, err
	}
	if ev, err := eventlog.Open(eventlog.Config{Path: filepath.Join(o.DataDir, EventsFile), Source: "cloud"}); err == nil {
		kind := "minor (installed on request)"
		if m.Major {
			kind = "major (installed automatically)"
		}
		ev.Event(eventlog.ReleasePublished, fmt.Sprintf("Release %s for %s/%s was published, %s", m.Version, m.OS, m.Arch, kind), "version", m.Version, "sha256", digest, "key_id", signed.KeyID)
		ev.Close()
	}
	res.Manifest, res.KeyID = m, signed.KeyID
	return res, nil
}

// LoadSigningKey reads the release signing key Publish signs with: the
// file keyFile, or with none the data directory's own (ReleaseKeyFile).
func LoadSigningKey(dataDir, keyFile string) (ed25519.PrivateKey, error) {
	path := keyFile
	if path == "" {
		path = filepath.Join(dataDir, ReleaseKeyFile)
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && keyFile == "" {
		return nil, problem.Newf(400, "release_key_offline", "give the offline release key with --key FILE",
			"This cloud keeps no release signing key (%s is absent: its key is kept offline)", filepath.Join(dataDir, ReleaseKeyFile))
	}
	if err != nil {
		return nil, problem.Newf(400, "release_key", "give a readable release key file", "The release key %s cannot be read (%v)", path, err)
	}
	key, err := release.ParsePrivateKey(raw)
	if err != nil {
		return nil, problem.Newf(400, "release_key", "give the key written by 'sallyport cloud release keygen' or 'cloud init'", "The release key %s is not usable: %v", path, err)
	}
	return key, nil
}

// binaryPlatform reads the OS and architecture of an executable ("" when
// the file is not an ELF, PE or Mach-O executable).
func binaryPlatform(r io.ReaderAt) (goos, goarch string) {
	if f, err := elf.NewFile(r); err == nil {
		arch := map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
			elf.EM_RISCV: "riscv64", elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x"}[f.Machine]
		goos := "linux"
		if f.OSABI == elf.ELFOSABI_FREEBSD {
			goos = "freebsd"
		}
		return goos, arch
	}
	if f, err := pe.NewFile(r); err == nil {
		return "windows", map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_ARM64: "arm64", pe.IMAGE_FILE_MACHINE_I386: "386"}[f.Machine]
	}
	if f, err := macho.NewFile(r); err == nil {
		return "darwin", map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
	}
	return "", ""
}

// ListReleases returns every published release, newest first.
func ListReleases(ctx context.Context, dataDir string) ([]release.Manifest, error) {
	settings, err := LoadSettings(dataDir)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(dataDir, settings)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rs, err := st.ListReleases(ctx, "", "")
	if err != nil {
		return nil, err
	}
	pub, err := LoadReleaseKey(dataDir)
	if err != nil {
		return nil, err
	}
	out := make([]release.Manifest, 0, len(rs))
	for _, r := range rs {
		m, err := release.Verify(release.Signed{Manifest: r.Manifest, Signature: r.Signature}, pub)
		if err != nil {
			return nil, problem.Newf(500, "release_damaged", fmt.Sprintf("withdraw it with 'sallyport cloud release delete --version %s --os %s --arch %s' and publish it again", r.Version, r.OS, r.Arch),
				"The stored release %s for %s/%s does not verify with this cloud's release key (%v)", r.Version, r.OS, r.Arch, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// DeleteRelease withdraws a release: connectors no longer see it. Its
// binary stays in releases/ while another release names the same digest.
func DeleteRelease(ctx context.Context, dataDir, version, goos, goarch string) error {
	settings, err := LoadSettings(dataDir)
	if err != nil {
		return err
	}
	st, err := OpenStore(dataDir, settings)
	if err != nil {
		return err
	}
	defer st.Close()
	version = strings.TrimPrefix(version, "v")
	rs, err := st.ListReleases(ctx, goos, goarch)
	if err != nil {
		return err
	}
	digest := ""
	for _, r := range rs {
		if r.Version == version {
			digest = r.SHA256
		}
	}
	if err := st.DeleteRelease(ctx, version, goos, goarch); errors.Is(err, store.ErrNotFound) {
		return problem.Newf(404, "release_not_found", "list the releases with 'sallyport cloud release list'", "No release %s for %s/%s is published", version, goos, goarch)
	} else if err != nil {
		return err
	}
	if _, err := st.ReleaseByDigest(ctx, digest); errors.Is(err, store.ErrNotFound) {
		os.Remove(filepath.Join(dataDir, ReleasesDir, "sha256-"+digest))
	}
	return nil
}
