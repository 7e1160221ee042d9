package datadir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// Files of the data directory.
const (
	SettingsFile = "cloud.json"
	CACertFile   = "cloud-ca.pem"
	CAKeyFile    = "cloud-ca.key"
	StoreFile    = "store.db"
)

// Settings is the cloud's settings file (cloud.json).
type Settings struct {
	FormatVersion int    `json:"format_version"`
	Name          string `json:"name"`
	// ConnectorCertLifetime is how long connector certificates live (default 90 days).
	ConnectorCertLifetime Duration `json:"connector_cert_lifetime"`
	// Store is the store's address: "" (or "sqlite:") for store.db in the
	// data directory, "sqlite:PATH", or postgres://USER@HOST:PORT/DATABASE
	// without a password (see CheckStoreURL).
	Store string `json:"store,omitempty"`
	// StorePasswordFile names a file (mode 0600) holding the PostgreSQL
	// password; "" for PGPASSWORD or ~/.pgpass. The password itself is
	// never in this file.
	StorePasswordFile string `json:"store_password_file,omitempty"`
}

// Duration is a time.Duration written as "2160h0m0s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// DefaultConnectorCertLifetime is 90 days.
const DefaultConnectorCertLifetime = 90 * 24 * time.Hour

// InitOptions are the inputs of Init.
type InitOptions struct {
	DataDir string
	Name    string // the cloud's DNS name, e.g. sallyport.example.com
	Tenant  string // first tenant's domain
	// Label is the first tenant's label in default host names
	// (APP-LABEL.NAME); "" for the domain's first label.
	Label         string
	Admin         string // first Global Administrator, USER@DOMAIN
	AdminPassword string // "" to generate one
	// ReleasePublicKeyFile, when set, is the public half of a release key
	// kept offline; otherwise a release key is created in the directory.
	ReleasePublicKeyFile string
	// Store is the store's address (see Settings.Store); "" for SQLite in
	// the data directory. A PostgreSQL database must hold no cloud yet.
	Store string
	// StorePasswordFile is the PostgreSQL password's file (mode 0600),
	// kept in the settings by its absolute path; "" for PGPASSWORD.
	StorePasswordFile string
}

// InitResult says what Init made.
type InitResult struct {
	CACertPath        string
	CAFingerprint     string
	ReleaseKeyID      string
	AdminPassword     string // set only when generated
	TenantID          string
	GeneratedPassword bool
}

// Init creates a new data directory: settings, the cloud CA, the store,
// the first tenant (connector CA, Default group) and its administrator.
// It refuses to touch a directory that already has content, and when it
// fails it removes what it wrote, so the corrected command can run again.
func Init(ctx context.Context, o InitOptions) (_ *InitResult, err error) {
	name, ok := edge.NormalizeHost(o.Name)
	if !ok || !strings.Contains(name, ".") || edge.ValidDNSName(name) == false {
		return nil, problem.Newf(400, "bad_name", "give the DNS name connectors and users will reach the cloud by, for example --name sallyport.example.com",
			"The cloud name %q is not a valid DNS name with at least two labels", o.Name)
	}
	if err := checkEmptyDir(o.DataDir); err != nil {
		return nil, err
	}
	if err := CheckStoreURL(o.Store); err != nil {
		return nil, err
	}
	if o.StorePasswordFile != "" {
		if !IsPostgres(o.Store) {
			return nil, problem.New(400, "store_password_file", "give it only with --store postgres://...", "A store password file is only for a PostgreSQL store")
		}
		if _, err := PasswordFromFile(o.StorePasswordFile); err != nil {
			return nil, err
		}
		if o.StorePasswordFile, err = filepath.Abs(o.StorePasswordFile); err != nil {
			return nil, err
		}
	}
	_, statErr := os.Stat(o.DataDir)
	created := errors.Is(statErr, fs.ErrNotExist)
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, problem.Newf(400, "data_dir", "choose a directory this user may create", "The data directory %s cannot be created (%v)", o.DataDir, err)
	}
	defer func() {
		if err != nil {
			undoInit(o.DataDir, created)
		}
	}()
	// The cloud CA may only sign names equal to or under the cloud's name
	// (X.509 name constraints): it issues nothing else, and even a bug
	// cannot make it mint a certificate for someone else's domain that
	// those who trust it accept.
	ca, err := pki.NewCA("Sallyport cloud CA "+name, 10*365*24*time.Hour, name)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	settings := Settings{FormatVersion: 1, Name: name, ConnectorCertLifetime: Duration(DefaultConnectorCertLifetime),
		Store: o.Store, StorePasswordFile: o.StorePasswordFile}
	js, _ := json.MarshalIndent(settings, "", "  ")
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{CAKeyFile, keyPEM, 0o600},
		{CACertFile, ca.CertPEM, 0o644},
		{SettingsFile, append(js, '\n'), 0o600},
	} {
		if err := pki.WriteFileAtomic(filepath.Join(o.DataDir, f.name), f.data, f.perm); err != nil {
			return nil, problem.Newf(400, "data_dir", "check the directory's permissions and free space", "Writing %s failed (%v)", f.name, err)
		}
	}
	if err := createReleaseKey(o.DataDir, o.ReleasePublicKeyFile); err != nil {
		return nil, err
	}
	releasePub, err := LoadReleaseKey(o.DataDir)
	if err != nil {
		return nil, err
	}
	if IsPostgres(o.Store) {
		// Before the key-encryption key is made: a database holding
		// another cloud's wrapped keys is refused for what it is.
		raw, err := openRawStore(o.DataDir, settings)
		if err != nil {
			return nil, err
		}
		err = checkStoreEmpty(ctx, raw, o.Store)
		raw.Close()
		if err != nil {
			return nil, err
		}
	}
	st, err := OpenStore(o.DataDir, settings)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	res, err := AddTenant(ctx, st, o.Tenant, o.Label, o.Admin, o.AdminPassword)
	if err != nil {
		return nil, err
	}
	res.CACertPath = filepath.Join(o.DataDir, CACertFile)
	res.CAFingerprint = pki.Fingerprint(ca.Cert)
	res.ReleaseKeyID = release.KeyID(releasePub)
	return res, nil
}

// checkStoreEmpty refuses a store that already holds a cloud's tenants:
// init never writes a second cloud into a shared database.
func checkStoreEmpty(ctx context.Context, st store.Store, dsn string) error {
	ts, err := st.ListTenants(ctx)
	if err != nil {
		return err
	}
	if len(ts) > 0 {
		return problem.Newf(409, "store_not_empty", "give an empty database, or serve the existing cloud from its own data directory",
			"The store %s already holds a cloud (%d tenants)", dsn, len(ts))
	}
	return nil
}

// undoInit removes what a failed Init wrote to dir, which was empty or
// did not exist (created) before.
func undoInit(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func checkEmptyDir(dir string) error {
	if dir == "" {
		return problem.New(400, "data_dir", "give one with --data-dir", "No data directory was given")
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return problem.Newf(400, "data_dir", "choose another directory with --data-dir", "The data directory %s cannot be read (%v)", dir, err)
	}
	if len(entries) > 0 {
		return problem.Newf(409, "data_dir_exists",
			"choose an empty or new directory, or add a tenant to the existing cloud with 'sallyport cloud tenant add'",
			"The data directory %s is not empty, and init never overwrites an existing cloud", dir)
	}
	return nil
}

// LoadSettings reads the data directory's settings file.
func LoadSettings(dataDir string) (Settings, error) {
	var s Settings
	raw, err := os.ReadFile(filepath.Join(dataDir, SettingsFile))
	if err != nil {
		return s, problem.Newf(400, "data_dir",
			fmt.Sprintf("create a cloud with 'sallyport cloud init --data-dir %s ...' or give the right --data-dir", dataDir),
			"%s is not a Sallyport cloud data directory (%s cannot be read)", dataDir, SettingsFile)
	}
	if err := json.Unmarshal(raw, &s); err != nil || s.Name == "" {
		return s, problem.Newf(400, "data_dir", "restore it from a backup", "The settings file %s is damaged", filepath.Join(dataDir, SettingsFile))
	}
	if s.ConnectorCertLifetime <= 0 {
		s.ConnectorCertLifetime = Duration(DefaultConnectorCertLifetime)
	}
	return s, nil
}

// OpenStore opens the store a data directory's settings name, with its
// key-encryption key (KEKFile): keys are wrapped on their way into the
// store and unwrapped on their way out. A data directory older than the
// key gets one, and its plaintext keys are wrapped in place.
func OpenStore(dataDir string, s Settings) (store.Store, error) {
	st, n, err := OpenStoreCount(dataDir, s, slog.Default())
	if n > 0 {
		slog.Default().Info("the store's keys were wrapped with the new key-encryption key", "keys", n, "file", filepath.Join(dataDir, KEKFile))
	}
	return st, err
}

// OpenStoreCount is OpenStore, logging to log and saying how many
// plaintext keys it wrapped (the server writes an event of them).
func OpenStoreCount(dataDir string, s Settings, log *slog.Logger) (store.Store, int, error) {
	st, err := openRawStore(dataDir, s)
	if err != nil {
		return nil, 0, err
	}
	k, n, err := openKEK(context.Background(), dataDir, st)
	if err != nil {
		st.Close()
		return nil, 0, err
	}
	return &kekStore{Store: st, kek: k, log: log}, n, nil
}

// AddTenant creates a tenant with its connector CA, Default group and a
// Global Administrator. label is the tenant's label in default host names
// ("" for the domain's first label); one that clashes with another
// tenant's is refused (see tenancy.CheckLabel). It is safe while the cloud serves.
func AddTenant(ctx context.Context, st store.Store, domain, label, admin, password string) (*InitResult, error) {
	domain, ok := edge.NormalizeHost(domain)
	if !ok || !strings.Contains(domain, ".") || !edge.ValidDNSName(domain) {
		return nil, problem.Newf(400, "bad_domain", "give the organisation's DNS domain, for example --tenant contoso.com",
			"The tenant domain %q is not a valid domain name", domain)
	}
	admin, err := tenancy.CheckUserName("bad_admin", admin, "")
	if err != nil {
		return nil, err
	}
	if _, d, _ := tenancy.SplitUser(admin); d != domain {
		return nil, problem.Newf(400, "bad_admin",
			fmt.Sprintf("give an administrator of that domain, for example --admin admin@%s", domain),
			"The administrator %q is not a user name of the tenant's domain %s", admin, domain)
	}
	if _, err := st.TenantByDomain(ctx, domain); err == nil {
		return nil, problem.Newf(409, "tenant_exists", "choose another domain, or manage the existing tenant with 'sallyport admin'",
			"A tenant for %s already exists", domain)
	}
	label, err = tenancy.CheckLabel(ctx, st, domain, label)
	if err != nil {
		return nil, err
	}
	res := &InitResult{}
	if password == "" {
		password = tenancy.GeneratePassword()
		res.AdminPassword = password
		res.GeneratedPassword = true
	} else if err := tenancy.CheckPassword(password); err != nil {
		return nil, err
	}
	hash, err := tenancy.HashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	ca, err := pki.NewCA("Sallyport connector CA "+domain, 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	t := store.Tenant{ID: tenancy.NewID("t"), Domain: domain, Label: label, CreatedAt: now}
	g := store.Group{ID: tenancy.NewID("g"), TenantID: t.ID, Name: tenancy.DefaultGroup, CreatedAt: now}
	u := store.User{ID: tenancy.NewID("u"), TenantID: t.ID, Name: admin, Role: store.RoleGlobalAdmin, PasswordHash: hash, CreatedAt: now}
	err = st.CreateTenant(ctx, t, store.TenantCA{TenantID: t.ID, CertPEM: ca.CertPEM, KeyPEM: keyPEM}, g, u)
	if errors.Is(err, store.ErrConflict) {
		return nil, problem.Newf(409, "tenant_exists", "choose another domain, or manage the existing tenant with 'sallyport admin'",
			"A tenant for %s (or the user %s) already exists", domain, admin)
	}
	if err != nil {
		return nil, err
	}
	res.TenantID = t.ID
	return res, nil
}

// EventsFile is the cloud's event log in its data directory.
const EventsFile = "events.jsonl"
