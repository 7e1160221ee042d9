package statedir

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// Files of the state directory. The certificate and key files are named
// by trust.json (cert_file, key_location), "connector-SERIAL.crt" and
// ".key", so that a new pair is written beside the old one and trust.json,
// replaced atomically, switches from one to the other.
const (
	TrustFile   = "trust.json"
	CloudCAFile = "cloud-ca.pem"
	StatusFile  = "status.json"
	// EventsFile is the connector's event log.
	EventsFile = "events.jsonl"
	// RegisterLogFile is the registration log: each 'connector register'
	// appends what it did and why it failed.
	RegisterLogFile = "register.log"
)

// pairNames returns the certificate and key file names for a serial.
func pairNames(serial string) (certFile, keyFile string) {
	if len(serial) > 16 {
		serial = serial[:16]
	}
	return "connector-" + serial + ".crt", "connector-" + serial + ".key"
}

// KeyFileOf returns the key file named by a trust settings file.
func KeyFileOf(tr Trust) (string, bool) {
	name, ok := strings.CutPrefix(tr.KeyLocation, "file:")
	if !ok || name == "" || filepath.Base(name) != name {
		return "", false
	}
	return name, true
}

// DefaultDir is the state directory used when --dir is not given.
func DefaultDir() string {
	switch runtime.GOOS {
	case "windows":
		if p := os.Getenv("ProgramData"); p != "" {
			return filepath.Join(p, "Sallyport", "connector")
		}
		return `C:\ProgramData\Sallyport\connector`
	case "darwin":
		return "/Library/Application Support/Sallyport/connector"
	default:
		return "/var/lib/sallyport/connector"
	}
}

// Trust is the trust settings file (trust.json): what the connector knows
// about its identity and its certificate. docs/cli.md documents each
// field. It holds no secret.
type Trust struct {
	FormatVersion int       `json:"format_version"`
	ConnectorID   string    `json:"connector_id"`
	TenantID      string    `json:"tenant_id"`
	Tenant        string    `json:"tenant"`
	Group         string    `json:"group"`
	CloudURL      string    `json:"cloud_url"`
	Thumbprint    string    `json:"thumbprint"`
	Serial        string    `json:"serial"`
	KeyLocation   string    `json:"key_location"`
	CertFile      string    `json:"cert_file"`
	CloudCAFile   string    `json:"cloud_ca_file"`
	IssuedAt      time.Time `json:"issued_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	// Source is "registration" or "renewal": where the current
	// certificate came from.
	Source string `json:"source"`
	// ReleaseKey is the cloud's release public key ("ed25519:BASE64"),
	// pinned at registration: the updater installs only builds it signed.
	ReleaseKey string `json:"release_key,omitempty"`
}

// State is a loaded, checked state directory.
type State struct {
	Dir     string
	Trust   Trust
	Cert    tls.Certificate
	Leaf    *x509.Certificate
	CloudCA *x509.Certificate
	Target  cloudlink.Target

	// LoadedAt is when trust.json was read: a file changed after it was
	// changed by another process.
	LoadedAt time.Time
}

// Identity is what the state presents to the cloud: its address, the
// pinned CA and the client certificate.
func (s *State) Identity() cloudlink.Identity {
	return cloudlink.Identity{Target: s.Target, CA: s.CloudCA, Cert: s.Cert}
}

func notRegistered(dir string, why string) error {
	return problem.Newf(400, "not_registered",
		fmt.Sprintf("run 'sallyport connector register --dir %s' on this machine", dir),
		"This machine has no usable connector registration in %s: %s", dir, why)
}

// Load reads and checks the state directory.
func Load(dir string) (*State, error) {
	loadedAt := time.Now()
	raw, err := os.ReadFile(filepath.Join(dir, TrustFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notRegistered(dir, "the trust settings file "+TrustFile+" does not exist")
	}
	if err != nil {
		return nil, problem.Newf(400, "state_unreadable",
			"run the connector as a user who can read that directory, or fix its permissions",
			"The connector cannot read its state directory %s (%v)", dir, err)
	}
	var tr Trust
	if err := json.Unmarshal(raw, &tr); err != nil || tr.ConnectorID == "" {
		return nil, notRegistered(dir, "the trust settings file is damaged")
	}
	keyName, ok := KeyFileOf(tr)
	if !ok || tr.CertFile == "" || filepath.Base(tr.CertFile) != tr.CertFile {
		return nil, notRegistered(dir, "the trust settings file names no usable certificate and key files")
	}
	keyPath := filepath.Join(dir, keyName)
	if err := checkKeyMode(keyPath); err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, tr.CertFile))
	if err != nil {
		return nil, notRegistered(dir, "the certificate file cannot be read")
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, notRegistered(dir, "the private key file cannot be read")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, notRegistered(dir, "the certificate and private key do not match")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, notRegistered(dir, "the certificate is damaged")
	}
	cert.Leaf = leaf
	if got := pki.Thumbprint(leaf); got != tr.Thumbprint {
		return nil, notRegistered(dir, fmt.Sprintf("the certificate's thumbprint %s does not match the trust settings file (%s)", got, tr.Thumbprint))
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CloudCAFile))
	if err != nil {
		return nil, notRegistered(dir, "the pinned cloud CA cannot be read")
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil, notRegistered(dir, "the pinned cloud CA is damaged")
	}
	target, err := cloudlink.ParseURL(tr.CloudURL)
	if err != nil {
		return nil, err
	}
	if target.Proxy, err = EffectiveProxy(dir, ""); err != nil {
		return nil, err
	}
	return &State{Dir: dir, Trust: tr, Cert: cert, Leaf: leaf, CloudCA: ca, Target: target, LoadedAt: loadedAt}, nil
}

func checkKeyMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil // reported when reading
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return problem.Newf(400, "key_permissions",
			fmt.Sprintf("run 'chmod 600 %s' and keep the key readable only by the connector's user", path),
			"The connector's private key %s is readable by other users (mode %04o)", path, fi.Mode().Perm())
	}
	return nil
}

// ExpiredMessage is event 1000's message.
const ExpiredMessage = "Connector re-registration failed: the connector trust certificate expired. Run 'sallyport connector register' on this machine to register the connector again."

// CheckValidity reports an expired or not-yet-valid certificate at now.
func (s *State) CheckValidity(now time.Time) error {
	if now.After(s.Leaf.NotAfter) {
		return &problem.Problem{Status: 401, Code: "trust_expired",
			Message: fmt.Sprintf("Connector re-registration failed: the connector trust certificate expired on %s (this machine's clock says %s)", s.Leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)),
			Step:    fmt.Sprintf("run 'sallyport connector register --dir %s' on this machine to register the connector again", s.Dir)}
	}
	if now.Before(s.Leaf.NotBefore) {
		return problem.Newf(401, "clock_skew",
			"set this machine's clock right (enable NTP) and start the connector again",
			"The connector's certificate is not valid yet: it starts at %s but this machine's clock says %s",
			s.Leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// Write writes a registration or renewal: the new certificate and key
// under new names, then the trust settings file (the commit point). A
// crash at any step leaves either the old state or the new one, both
// usable. The old files stay until RemoveUnusedPairs. A nil caPEM keeps
// the pinned CA. hook, if not nil, is called after each step by name
// ("files-written", "trust-written"); an error from it stops there, as a
// crash would (tests).
func Write(dir string, tr *Trust, keyPEM, certPEM, caPEM []byte, hook func(step string) error) error {
	if hook == nil {
		hook = func(string) error { return nil }
	}
	tr.CertFile, tr.KeyLocation = pairNames(tr.Serial)
	tr.KeyLocation = "file:" + tr.KeyLocation
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return problem.Newf(400, "state_unwritable",
			"run register as a user who may create that directory, or choose another with --dir",
			"The connector cannot create its state directory %s (%v)", dir, err)
	}
	writes := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{strings.TrimPrefix(tr.KeyLocation, "file:"), keyPEM, 0o600},
		{tr.CertFile, certPEM, 0o644},
		{CloudCAFile, caPEM, 0o644},
	}
	for _, w := range writes {
		if w.data == nil {
			continue // unchanged (the pinned CA on renewal)
		}
		if err := pki.WriteFileAtomic(filepath.Join(dir, w.name), w.data, w.perm); err != nil {
			return problem.Newf(400, "state_unwritable",
				"run register as a user who may write that directory, or choose another with --dir",
				"The connector cannot write %s (%v)", filepath.Join(dir, w.name), err)
		}
	}
	if err := hook("files-written"); err != nil {
		return err
	}
	if err := WriteTrust(dir, *tr); err != nil {
		return err
	}
	return hook("trust-written")
}

// WriteTrust replaces trust.json atomically.
func WriteTrust(dir string, tr Trust) error {
	js, _ := json.MarshalIndent(tr, "", "  ")
	if err := pki.WriteFileAtomic(filepath.Join(dir, TrustFile), append(js, '\n'), 0o644); err != nil {
		return problem.Newf(400, "state_unwritable", "check the directory's permissions and free space",
			"The connector cannot write %s (%v)", filepath.Join(dir, TrustFile), err)
	}
	return nil
}

// RemoveUnusedPairs deletes certificate and key files trust does not name
// (left by an earlier registration, renewal or an interrupted one).
func RemoveUnusedPairs(dir string, tr Trust) {
	keyName, _ := KeyFileOf(tr)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "connector") || (!strings.HasSuffix(n, ".crt") && !strings.HasSuffix(n, ".key")) {
			continue
		}
		if n != tr.CertFile && n != keyName {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// CheckWritable makes sure dir exists (created 0700) and that a file can
// be written in it, the way Write writes the key: registration checks it
// before it contacts the cloud.
func CheckWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return problem.Newf(400, "state_unwritable",
			"run register as a user who may create that directory, or choose another with --dir",
			"Connector registration failed before contacting the cloud: the state directory %s cannot be created (%v)", dir, err)
	}
	probe := filepath.Join(dir, ".register-probe")
	if err := pki.WriteFileAtomic(probe, []byte("probe\n"), 0o600); err != nil {
		return problem.Newf(400, "state_unwritable",
			"run register as a user who may write that directory, or choose another with --dir",
			"Connector registration failed before contacting the cloud: the state directory %s cannot be written (%v)", dir, err)
	}
	os.Remove(probe)
	return nil
}

// PinnedCA returns the cloud CA that an earlier registration with the
// cloud at url pinned in dir, or nil. Registering again with the same
// cloud reuses it: only a first contact needs --ca-file or
// --ca-fingerprint (issue 20, defect 2).
func PinnedCA(dir, url string) *x509.Certificate {
	raw, err := os.ReadFile(filepath.Join(dir, TrustFile))
	if err != nil {
		return nil
	}
	var tr Trust
	if json.Unmarshal(raw, &tr) != nil || tr.CloudURL != url {
		return nil
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CloudCAFile))
	if err != nil {
		return nil
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil
	}
	return ca
}
