package datadir

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// KEKFile is the data directory's key-encryption key: 32 random bytes
// (0600) that wrap the tenant CA keys, the applications' edge keys, the
// tenants' signing keys, the users' TOTP secrets, the identity providers'
// client secrets and the ACME private keys in the store, so that a copy of
// the database alone holds no usable key. It
// is backed up apart from the store, and every instance sharing a store
// needs the same file.
const KEKFile = "store-kek.key"

// kekPrefix starts a wrapped key in the store: version 1 is AES-256-GCM,
// base64 of nonce || ciphertext, with the row's purpose as associated data.
// A stored key without it is a plaintext key of an older data directory.
const kekPrefix = "sallyport-kek-v1:"

// kek wraps and unwraps keys kept in the store.
type kek struct{ aead cipher.AEAD }

func newKEK(key []byte) (*kek, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("it holds %d bytes, not 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &kek{aead: aead}, nil
}

// Purposes bind a wrapped key to its row: a value moved to another row
// (another tenant, another application) does not unwrap there.
func tenantCAPurpose(tenantID string) string       { return "tenant-ca:" + tenantID }
func appCertPurpose(tenantID, appID string) string { return "app-cert:" + tenantID + "/" + appID }
func signingKeyPurpose(tenantID, kid string) string {
	return "tenant-signing-key:" + tenantID + "/" + kid
}
func userTOTPPurpose(tenantID, userID string) string { return "user-totp:" + tenantID + "/" + userID }
func idpSecretPurpose(tenantID string) string        { return "idp-secret:" + tenantID }
func acmeKeyPurpose(key string) string               { return "acme:" + key }

// acmeSecret reports whether the ACME object at key is a private key
// (certmagic names them NAME.key: a certificate's, an account's), the
// objects wrapped; certificates and metadata are public.
func acmeSecret(key string) bool { return strings.HasSuffix(key, ".key") }

// wrap seals a plaintext key for the row named by purpose. An empty key
// (an application without its own certificate) stays empty.
func (k *kek) wrap(plain []byte, purpose string) []byte {
	if len(plain) == 0 || isWrapped(plain) {
		return plain
	}
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	sealed := k.aead.Seal(nonce, nonce, plain, []byte(purpose))
	return []byte(kekPrefix + base64.StdEncoding.EncodeToString(sealed))
}

// unwrap opens a wrapped key of the row named by purpose; a key without
// the prefix (not migrated yet) is returned as it is.
func (k *kek) unwrap(stored []byte, purpose string) ([]byte, error) {
	if !isWrapped(stored) {
		return stored, nil
	}
	sealed, err := base64.StdEncoding.DecodeString(string(stored[len(kekPrefix):]))
	if err != nil || len(sealed) < k.aead.NonceSize() {
		return nil, fmt.Errorf("the wrapped key of %s is damaged", purpose)
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
	if err != nil {
		return nil, fmt.Errorf("the key of %s does not unwrap with %s: the file is not the one it was wrapped with, or the value was moved from another row", purpose, KEKFile)
	}
	return plain, nil
}

func isWrapped(b []byte) bool { return bytes.HasPrefix(b, []byte(kekPrefix)) }

// createKEK writes a new key-encryption key to dataDir, unless one is
// there already (another process made it first): it is never replaced.
func createKEK(dataDir string) error {
	path := filepath.Join(dataDir, KEKFile)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	// Written complete under a temporary name, then linked into place:
	// the link fails if the file exists, so two processes never overwrite
	// each other's key (a rename would).
	tmp := fmt.Sprintf("%s.new-%x", path, key[:4])
	if err := pki.WriteFileAtomic(tmp, key, 0o600); err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// loadKEK reads the data directory's key-encryption key; ok is false when
// the file does not exist.
func loadKEK(dataDir string) (k *kek, ok bool, err error) {
	path := filepath.Join(dataDir, KEKFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err == nil {
		k, err = newKEK(raw)
	}
	if err != nil {
		return nil, false, problem.Newf(400, "kek_damaged", fmt.Sprintf("restore %s from the data directory's backup", path),
			"The key-encryption key %s cannot be used (%v)", path, err)
	}
	return k, true, nil
}

// openKEK loads the key-encryption key of dataDir for st. A data directory
// made before it existed gets one, and the plaintext keys in the store are
// wrapped with it in place (wrapped reports how many). A missing file while
// the store holds wrapped keys is refused: they could not be read.
func openKEK(ctx context.Context, dataDir string, st store.Store) (k *kek, wrapped int, err error) {
	k, ok, err := loadKEK(dataDir)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		n, err := countWrapped(ctx, st)
		if err != nil {
			return nil, 0, err
		}
		if n > 0 {
			path := filepath.Join(dataDir, KEKFile)
			return nil, 0, problem.Newf(500, "kek_missing", fmt.Sprintf("restore %s from the data directory's backup (it is backed up apart from the store), or copy it from another instance", path),
				"The key-encryption key %s is missing, but the store holds %d keys wrapped with it", path, n)
		}
		if err := createKEK(dataDir); err != nil {
			return nil, 0, problem.Newf(400, "data_dir", "check the data directory's permissions and free space", "Writing %s failed (%v)", KEKFile, err)
		}
		if k, _, err = loadKEK(dataDir); err != nil {
			return nil, 0, err
		}
	}
	wrapped, err = wrapPlaintextKeys(ctx, st, k)
	return k, wrapped, err
}

// countWrapped counts the wrapped keys in the store.
func countWrapped(ctx context.Context, st store.Store) (int, error) {
	n := 0
	tenants, err := st.ListTenants(ctx)
	if err != nil {
		return 0, err
	}
	for _, t := range tenants {
		ca, err := st.TenantCA(ctx, t.ID)
		if err != nil {
			return 0, err
		}
		if isWrapped(ca.KeyPEM) {
			n++
		}
		keys, err := st.TenantSigningKeys(ctx, t.ID)
		if err != nil {
			return 0, err
		}
		for _, k := range keys {
			if isWrapped(k.KeyPEM) {
				n++
			}
		}
		users, err := st.ListUsers(ctx, t.ID)
		if err != nil {
			return 0, err
		}
		for _, u := range users {
			if isWrapped(u.TOTPSecret) {
				n++
			}
		}
	}
	providers, err := st.ListIdentityProviders(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range providers {
		if isWrapped(p.ClientSecret) {
			n++
		}
	}
	apps, err := st.ListAllApps(ctx)
	if err != nil {
		return 0, err
	}
	for _, a := range apps {
		if isWrapped(a.KeyPEM) {
			n++
		}
	}
	objs, err := acmeKeys(ctx, st)
	for _, o := range objs {
		if isWrapped(o.Value) {
			n++
		}
	}
	return n, err
}

// acmeKeys returns the ACME objects that are private keys, with their
// values as stored.
func acmeKeys(ctx context.Context, st store.Store) ([]store.ACMEObject, error) {
	list, err := st.ListACMEObjects(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []store.ACMEObject
	for _, o := range list {
		if !acmeSecret(o.Key) {
			continue
		}
		if o, err = st.ACMEObject(ctx, o.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// wrapPlaintextKeys wraps, in place, every key of the store still in
// plaintext (a data directory older than the key-encryption key), and any
// TOTP or client secret written in plaintext by a store not opened
// through the data directory.
func wrapPlaintextKeys(ctx context.Context, st store.Store, k *kek) (int, error) {
	n := 0
	tenants, err := st.ListTenants(ctx)
	if err != nil {
		return 0, err
	}
	for _, t := range tenants {
		ca, err := st.TenantCA(ctx, t.ID)
		if err != nil {
			return n, err
		}
		if len(ca.KeyPEM) > 0 && !isWrapped(ca.KeyPEM) {
			if err := st.SetTenantCAKey(ctx, t.ID, k.wrap(ca.KeyPEM, tenantCAPurpose(t.ID))); err != nil {
				return n, err
			}
			n++
		}
		users, err := st.ListUsers(ctx, t.ID)
		if err != nil {
			return n, err
		}
		for _, u := range users {
			if len(u.TOTPSecret) == 0 || isWrapped(u.TOTPSecret) {
				continue
			}
			err := st.SetUserMFA(ctx, u.TenantID, u.ID, k.wrap(u.TOTPSecret, userTOTPPurpose(u.TenantID, u.ID)), u.MFAEnrolledAt, u.RecoveryCodes)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, err
			}
			n++
		}
	}
	providers, err := st.ListIdentityProviders(ctx)
	if err != nil {
		return n, err
	}
	for _, p := range providers {
		if len(p.ClientSecret) == 0 || isWrapped(p.ClientSecret) {
			continue
		}
		p.ClientSecret = k.wrap(p.ClientSecret, idpSecretPurpose(p.TenantID))
		if err := st.SetIdentityProvider(ctx, p); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		n++
	}
	apps, err := st.ListAllApps(ctx)
	if err != nil {
		return n, err
	}
	for _, a := range apps {
		if len(a.KeyPEM) == 0 || isWrapped(a.KeyPEM) {
			continue
		}
		a.KeyPEM = k.wrap(a.KeyPEM, appCertPurpose(a.TenantID, a.ID))
		if err := st.UpdateApp(ctx, a); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		n++
	}
	objs, err := acmeKeys(ctx, st)
	if err != nil {
		return n, err
	}
	for _, o := range objs {
		if len(o.Value) == 0 || isWrapped(o.Value) {
			continue
		}
		o.Value = k.wrap(o.Value, acmeKeyPurpose(o.Key))
		if err := st.PutACMEObject(ctx, o); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// kekStore is the store as the cloud uses it: the tenant CA keys, the
// applications' edge keys, the tenants' signing keys, the users' TOTP
// secrets, the identity providers' client secrets and the ACME private
// keys (certificates' and accounts') are wrapped on their way in and
// unwrapped on their way out; everything else goes straight
// through. The store itself
// stays dumb: it keeps what it is given.
type kekStore struct {
	store.Store
	kek *kek
	log *slog.Logger
}

// Unwrap returns the store itself (store.FeedOf looks through it).
func (s *kekStore) Unwrap() store.Store { return s.Store }

func (s *kekStore) CreateTenant(ctx context.Context, t store.Tenant, ca store.TenantCA, g store.Group, u store.User) error {
	ca.KeyPEM = s.kek.wrap(ca.KeyPEM, tenantCAPurpose(ca.TenantID))
	u.TOTPSecret = s.kek.wrap(u.TOTPSecret, userTOTPPurpose(u.TenantID, u.ID))
	return s.Store.CreateTenant(ctx, t, ca, g, u)
}

func (s *kekStore) TenantCA(ctx context.Context, tenantID string) (store.TenantCA, error) {
	ca, err := s.Store.TenantCA(ctx, tenantID)
	if err != nil {
		return ca, err
	}
	if ca.KeyPEM, err = s.kek.unwrap(ca.KeyPEM, tenantCAPurpose(ca.TenantID)); err != nil {
		return store.TenantCA{}, err
	}
	return ca, nil
}

func (s *kekStore) SetTenantCAKey(ctx context.Context, tenantID string, keyPEM []byte) error {
	return s.Store.SetTenantCAKey(ctx, tenantID, s.kek.wrap(keyPEM, tenantCAPurpose(tenantID)))
}

func (s *kekStore) CreateApp(ctx context.Context, a store.Application) error {
	a.KeyPEM = s.kek.wrap(a.KeyPEM, appCertPurpose(a.TenantID, a.ID))
	return s.Store.CreateApp(ctx, a)
}

func (s *kekStore) UpdateApp(ctx context.Context, a store.Application) error {
	a.KeyPEM = s.kek.wrap(a.KeyPEM, appCertPurpose(a.TenantID, a.ID))
	return s.Store.UpdateApp(ctx, a)
}

func (s *kekStore) AppByName(ctx context.Context, tenantID, name string) (store.Application, error) {
	a, err := s.Store.AppByName(ctx, tenantID, name)
	if err != nil {
		return a, err
	}
	s.unwrapApp(&a)
	return a, nil
}

func (s *kekStore) ListApps(ctx context.Context, tenantID string) ([]store.Application, error) {
	as, err := s.Store.ListApps(ctx, tenantID)
	for i := range as {
		s.unwrapApp(&as[i])
	}
	return as, err
}

func (s *kekStore) ListAllApps(ctx context.Context) ([]store.Application, error) {
	as, err := s.Store.ListAllApps(ctx)
	for i := range as {
		s.unwrapApp(&as[i])
	}
	return as, err
}

// unwrapApp unwraps an application's edge key. One that does not unwrap
// is dropped with its certificate (the edge then presents the cloud's
// own), and logged: one bad row must not take every application down.
func (s *kekStore) unwrapApp(a *store.Application) {
	key, err := s.kek.unwrap(a.KeyPEM, appCertPurpose(a.TenantID, a.ID))
	if err != nil {
		s.log.Error("an application's edge key cannot be used", "app", a.Name, "tenant", a.TenantID, "error", err.Error())
		a.CertPEM, a.KeyPEM = nil, nil
		return
	}
	a.KeyPEM = key
}

// AddTenantSigningKey wraps the key (signing keys are made by this
// version, so always wrapped: none waits in plaintext to be migrated).
func (s *kekStore) AddTenantSigningKey(ctx context.Context, k store.SigningKey, replaces string) error {
	k.KeyPEM = s.kek.wrap(k.KeyPEM, signingKeyPurpose(k.TenantID, k.KID))
	return s.Store.AddTenantSigningKey(ctx, k, replaces)
}

// TenantSigningKeys unwraps the tenant's signing keys. One that does not
// unwrap is an error: signing with another key, or publishing a set
// without it, would break the backends that verify.
func (s *kekStore) TenantSigningKeys(ctx context.Context, tenantID string) ([]store.SigningKey, error) {
	ks, err := s.Store.TenantSigningKeys(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for i := range ks {
		if ks[i].KeyPEM, err = s.kek.unwrap(ks[i].KeyPEM, signingKeyPurpose(ks[i].TenantID, ks[i].KID)); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// CreateUser wraps the user's TOTP secret, if it has one.
func (s *kekStore) CreateUser(ctx context.Context, u store.User) error {
	u.TOTPSecret = s.kek.wrap(u.TOTPSecret, userTOTPPurpose(u.TenantID, u.ID))
	return s.Store.CreateUser(ctx, u)
}

// SetUserMFA wraps the TOTP secret (nil, a removal, stays nil).
func (s *kekStore) SetUserMFA(ctx context.Context, tenantID, userID string, secret []byte, enrolledAt time.Time, recovery []string) error {
	return s.Store.SetUserMFA(ctx, tenantID, userID, s.kek.wrap(secret, userTOTPPurpose(tenantID, userID)), enrolledAt, recovery)
}

func (s *kekStore) UserByName(ctx context.Context, name string) (store.User, error) {
	return s.unwrapUser(s.Store.UserByName(ctx, name))
}

func (s *kekStore) UserByID(ctx context.Context, tenantID, id string) (store.User, error) {
	return s.unwrapUser(s.Store.UserByID(ctx, tenantID, id))
}

func (s *kekStore) UserByExternal(ctx context.Context, tenantID, external string) (store.User, error) {
	return s.unwrapUser(s.Store.UserByExternal(ctx, tenantID, external))
}

func (s *kekStore) ListUsers(ctx context.Context, tenantID string) ([]store.User, error) {
	return s.unwrapUsers(s.Store.ListUsers(ctx, tenantID))
}

func (s *kekStore) ListUserGroupMembers(ctx context.Context, tenantID, groupID string) ([]store.User, error) {
	return s.unwrapUsers(s.Store.ListUserGroupMembers(ctx, tenantID, groupID))
}

// unwrapUser unwraps a user's TOTP secret. One that does not unwrap is an
// error, not a user without a second factor: that would let the user in
// on the password alone.
func (s *kekStore) unwrapUser(u store.User, err error) (store.User, error) {
	if err != nil {
		return u, err
	}
	if u.TOTPSecret, err = s.kek.unwrap(u.TOTPSecret, userTOTPPurpose(u.TenantID, u.ID)); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// unwrapUsers unwraps the TOTP secrets of users, failing as a whole if
// one does not unwrap (see unwrapUser).
func (s *kekStore) unwrapUsers(us []store.User, err error) ([]store.User, error) {
	if err != nil {
		return us, err
	}
	for i := range us {
		if us[i], err = s.unwrapUser(us[i], nil); err != nil {
			return nil, err
		}
	}
	return us, nil
}

// SetIdentityProvider wraps the provider's client secret.
func (s *kekStore) SetIdentityProvider(ctx context.Context, p store.IdentityProvider) error {
	p.ClientSecret = s.kek.wrap(p.ClientSecret, idpSecretPurpose(p.TenantID))
	return s.Store.SetIdentityProvider(ctx, p)
}

// IdentityProviderOf unwraps the provider's client secret; one that does
// not unwrap is an error.
func (s *kekStore) IdentityProviderOf(ctx context.Context, tenantID string) (store.IdentityProvider, error) {
	p, err := s.Store.IdentityProviderOf(ctx, tenantID)
	if err != nil {
		return p, err
	}
	if p.ClientSecret, err = s.kek.unwrap(p.ClientSecret, idpSecretPurpose(p.TenantID)); err != nil {
		return store.IdentityProvider{}, err
	}
	return p, nil
}

// ListIdentityProviders unwraps every provider's client secret. One that
// does not unwrap is dropped and logged (sign-in at that provider then
// fails at its token endpoint): one bad row must not take the other
// tenants' sign-in down.
func (s *kekStore) ListIdentityProviders(ctx context.Context) ([]store.IdentityProvider, error) {
	ps, err := s.Store.ListIdentityProviders(ctx)
	for i := range ps {
		secret, uerr := s.kek.unwrap(ps[i].ClientSecret, idpSecretPurpose(ps[i].TenantID))
		if uerr != nil {
			s.log.Error("an identity provider's client secret cannot be used", "tenant", ps[i].TenantID, "error", uerr.Error())
		}
		ps[i].ClientSecret = secret
	}
	return ps, err
}

// PutACMEObject wraps the value of a private key (a key ending in
// ".key"); certificates and metadata are stored as they are.
func (s *kekStore) PutACMEObject(ctx context.Context, o store.ACMEObject) error {
	if acmeSecret(o.Key) {
		o.Value = s.kek.wrap(o.Value, acmeKeyPurpose(o.Key))
	}
	return s.Store.PutACMEObject(ctx, o)
}

// ACMEObject unwraps the value of a private key; one that does not unwrap
// is an error (the ACME client then orders a new certificate, or makes a
// new account). Size stays the stored value's.
func (s *kekStore) ACMEObject(ctx context.Context, key string) (store.ACMEObject, error) {
	o, err := s.Store.ACMEObject(ctx, key)
	if err != nil || !acmeSecret(o.Key) {
		return o, err
	}
	if o.Value, err = s.kek.unwrap(o.Value, acmeKeyPurpose(o.Key)); err != nil {
		return store.ACMEObject{}, err
	}
	return o, nil
}
