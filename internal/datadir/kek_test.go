package datadir

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/store/sqlite"
)

// TestKEKWrap: a wrapped key unwraps only with its key-encryption key and
// for its own row; a damaged value is refused; a plaintext value (a data
// directory not migrated yet) passes through; nothing is wrapped twice.
func TestKEKWrap(t *testing.T) {
	k1, _ := newKEK(bytes.Repeat([]byte{1}, 32))
	k2, _ := newKEK(bytes.Repeat([]byte{2}, 32))
	plain := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
	w := k1.wrap(plain, tenantCAPurpose("t_a"))
	if !isWrapped(w) || bytes.Contains(w, []byte("secret")) {
		t.Fatalf("wrapped value %q", w)
	}
	if again := k1.wrap(w, tenantCAPurpose("t_a")); !bytes.Equal(again, w) {
		t.Error("a wrapped value was wrapped again")
	}
	if w2 := k1.wrap(plain, tenantCAPurpose("t_a")); bytes.Equal(w2, w) {
		t.Error("two wraps of one key are equal: the nonce is not random")
	}
	damaged := append([]byte(nil), w...)
	damaged[len(damaged)-3] ^= 'A' ^ 'B'
	tests := []struct {
		name    string
		k       *kek
		stored  []byte
		purpose string
		want    []byte // nil: an error
	}{
		{"own row", k1, w, tenantCAPurpose("t_a"), plain},
		{"another tenant's row", k1, w, tenantCAPurpose("t_b"), nil},
		{"an application's row", k1, w, appCertPurpose("t_a", "a_1"), nil},
		{"a signing key's row", k1, w, signingKeyPurpose("t_a", "kid"), nil},
		{"signing key, own row", k1, k1.wrap(plain, signingKeyPurpose("t_a", "kid1")), signingKeyPurpose("t_a", "kid1"), plain},
		{"signing key, another kid", k1, k1.wrap(plain, signingKeyPurpose("t_a", "kid1")), signingKeyPurpose("t_a", "kid2"), nil},
		{"signing key, another tenant", k1, k1.wrap(plain, signingKeyPurpose("t_a", "kid1")), signingKeyPurpose("t_b", "kid1"), nil},
		{"TOTP secret, own row", k1, k1.wrap(plain, userTOTPPurpose("t_a", "u_1")), userTOTPPurpose("t_a", "u_1"), plain},
		{"TOTP secret, another user", k1, k1.wrap(plain, userTOTPPurpose("t_a", "u_1")), userTOTPPurpose("t_a", "u_2"), nil},
		{"TOTP secret, another tenant", k1, k1.wrap(plain, userTOTPPurpose("t_a", "u_1")), userTOTPPurpose("t_b", "u_1"), nil},
		{"client secret, own row", k1, k1.wrap(plain, idpSecretPurpose("t_a")), idpSecretPurpose("t_a"), plain},
		{"client secret, another tenant", k1, k1.wrap(plain, idpSecretPurpose("t_a")), idpSecretPurpose("t_b"), nil},
		{"client secret as a TOTP secret", k1, k1.wrap(plain, idpSecretPurpose("t_a")), userTOTPPurpose("t_a", ""), nil},
		{"another KEK", k2, w, tenantCAPurpose("t_a"), nil},
		{"damaged", k1, damaged, tenantCAPurpose("t_a"), nil},
		{"truncated", k1, []byte(kekPrefix + "AAAA"), tenantCAPurpose("t_a"), nil},
		{"not base64", k1, []byte(kekPrefix + "!!"), tenantCAPurpose("t_a"), nil},
		{"plaintext of an old data directory", k1, plain, tenantCAPurpose("t_a"), plain},
		{"empty (no custom certificate)", k1, nil, appCertPurpose("t_a", "a_1"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.k.unwrap(tc.stored, tc.purpose)
			switch {
			case tc.want == nil && len(tc.stored) == 0:
				if err != nil || len(got) != 0 {
					t.Errorf("unwrap(empty) = %q, %v", got, err)
				}
			case tc.want == nil:
				if err == nil {
					t.Errorf("unwrap = %q, want an error", got)
				}
			case err != nil || !bytes.Equal(got, tc.want):
				t.Errorf("unwrap = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := newKEK(make([]byte, 16)); err == nil {
		t.Error("a 16-byte KEK was accepted")
	}
}

// kekFixture is a raw SQLite store, the kekStore over it, and one tenant
// with a second user in a user group.
type kekFixture struct {
	raw   store.Store
	ks    *kekStore
	k     *kek
	admin store.User
	user  store.User
	group store.UserGroup
}

func newKEKFixture(t *testing.T) kekFixture {
	t.Helper()
	raw, err := sqlite.Open(filepath.Join(t.TempDir(), StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	k, _ := newKEK(bytes.Repeat([]byte{7}, 32))
	f := kekFixture{raw: raw, k: k, ks: &kekStore{Store: raw, kek: k, log: slog.New(slog.DiscardHandler)}}
	ctx := t.Context()
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	tn := store.Tenant{ID: "t_a", Domain: "alpha.example", Label: "alpha", CreatedAt: now}
	ca := store.TenantCA{TenantID: tn.ID, CertPEM: []byte("cert"), KeyPEM: []byte("ca key")}
	g := store.Group{ID: "g_default", TenantID: tn.ID, Name: "Default", CreatedAt: now}
	f.admin = store.User{ID: "u_admin", TenantID: tn.ID, Name: "admin@alpha.example", Role: store.RoleGlobalAdmin, CreatedAt: now,
		TOTPSecret: []byte("admin totp secret"), MFAEnrolledAt: now, RecoveryCodes: []string{"r1"}}
	if err := f.ks.CreateTenant(ctx, tn, ca, g, f.admin); err != nil {
		t.Fatal(err)
	}
	f.user = store.User{ID: "u_ann", TenantID: tn.ID, Name: "ann@alpha.example", Role: store.RoleUser, CreatedAt: now, External: "https://idp#ann"}
	f.group = store.UserGroup{ID: "ug_staff", TenantID: tn.ID, Name: "Staff", CreatedAt: now}
	for _, err := range []error{
		f.ks.CreateUser(ctx, f.user),
		f.ks.CreateUserGroup(ctx, f.group),
		f.ks.AddUserGroupMember(ctx, tn.ID, f.group.ID, f.user.ID, now),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestKEKStoreSignInSecrets: the users' TOTP secrets and the identity
// providers' client secrets reach the raw store only wrapped (for their
// own row), come back in plaintext through every method returning them,
// and are counted and migrated like the other keys.
func TestKEKStoreSignInSecrets(t *testing.T) {
	ctx := t.Context()
	f := newKEKFixture(t)
	tid := f.user.TenantID
	secret := []byte("ann's totp secret \x00\xff")
	if err := f.ks.SetUserMFA(ctx, tid, f.user.ID, secret, f.user.CreatedAt, []string{"h1", "h2"}); err != nil {
		t.Fatal(err)
	}
	idp := store.IdentityProvider{TenantID: tid, Issuer: "https://idp", ClientID: "sallyport", ClientSecret: []byte("client secret"), EmailClaim: "email"}
	if err := f.ks.SetIdentityProvider(ctx, idp); err != nil {
		t.Fatal(err)
	}

	// The raw store holds wrapped bytes only, bound to their row.
	rawAnn, err := f.raw.UserByID(ctx, tid, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	rawAdmin, err := f.raw.UserByID(ctx, tid, f.admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	rawIdP, err := f.raw.IdentityProviderOf(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name           string
		stored, plain  []byte
		purpose, wrong string
	}{
		{"ann's TOTP secret", rawAnn.TOTPSecret, secret, userTOTPPurpose(tid, f.user.ID), userTOTPPurpose(tid, f.admin.ID)},
		{"the admin's TOTP secret", rawAdmin.TOTPSecret, f.admin.TOTPSecret, userTOTPPurpose(tid, f.admin.ID), userTOTPPurpose("t_b", f.admin.ID)},
		{"the client secret", rawIdP.ClientSecret, idp.ClientSecret, idpSecretPurpose(tid), idpSecretPurpose("t_b")},
	} {
		if !isWrapped(c.stored) || bytes.Contains(c.stored, c.plain) {
			t.Errorf("%s is stored as %q, want it wrapped", c.name, c.stored)
		}
		if got, err := f.k.unwrap(c.stored, c.purpose); err != nil || !bytes.Equal(got, c.plain) {
			t.Errorf("%s unwraps to %q, %v", c.name, got, err)
		}
		if _, err := f.k.unwrap(c.stored, c.wrong); err == nil {
			t.Errorf("%s unwraps for %s", c.name, c.wrong)
		}
	}

	// Every method returning users gives the plaintext secret.
	users := map[string]func() ([]store.User, error){
		"UserByName": func() ([]store.User, error) {
			u, err := f.ks.UserByName(ctx, f.user.Name)
			return []store.User{u}, err
		},
		"UserByID": func() ([]store.User, error) {
			u, err := f.ks.UserByID(ctx, tid, f.user.ID)
			return []store.User{u}, err
		},
		"UserByExternal": func() ([]store.User, error) {
			u, err := f.ks.UserByExternal(ctx, tid, f.user.External)
			return []store.User{u}, err
		},
		"ListUsers":            func() ([]store.User, error) { return f.ks.ListUsers(ctx, tid) },
		"ListUserGroupMembers": func() ([]store.User, error) { return f.ks.ListUserGroupMembers(ctx, tid, f.group.ID) },
	}
	for name, fn := range users {
		us, err := fn()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		found := false
		for _, u := range us {
			switch u.ID {
			case f.user.ID:
				found = true
				if !bytes.Equal(u.TOTPSecret, secret) {
					t.Errorf("%s: ann's TOTP secret is %q, want %q", name, u.TOTPSecret, secret)
				}
			case f.admin.ID:
				if !bytes.Equal(u.TOTPSecret, f.admin.TOTPSecret) {
					t.Errorf("%s: the admin's TOTP secret is %q", name, u.TOTPSecret)
				}
			}
		}
		if !found {
			t.Errorf("%s: ann missing from %+v", name, us)
		}
	}
	if p, err := f.ks.IdentityProviderOf(ctx, tid); err != nil || !bytes.Equal(p.ClientSecret, idp.ClientSecret) {
		t.Errorf("IdentityProviderOf = %q, %v", p.ClientSecret, err)
	}
	if ps, err := f.ks.ListIdentityProviders(ctx); err != nil || len(ps) != 1 || !bytes.Equal(ps[0].ClientSecret, idp.ClientSecret) {
		t.Errorf("ListIdentityProviders = %+v, %v", ps, err)
	}

	// Removing the second factor stores no secret.
	if err := f.ks.SetUserMFA(ctx, tid, f.admin.ID, nil, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	if u, err := f.raw.UserByID(ctx, tid, f.admin.ID); err != nil || u.TOTPSecret != nil {
		t.Errorf("after removal the raw store holds %q, %v", u.TOTPSecret, err)
	}

	// Counted as wrapped keys: a missing KEK file would be refused.
	if n, err := countWrapped(ctx, f.raw); err != nil || n != 3 { // the CA key, ann's secret, the client secret
		t.Errorf("countWrapped = %d, %v; want 3", n, err)
	}
}

// TestKEKStoreSecretMoved: a wrapped secret copied to another row does
// not unwrap there: a user's lookup fails rather than give a user without
// a second factor, and a provider listing drops the secret.
func TestKEKStoreSecretMoved(t *testing.T) {
	ctx := t.Context()
	f := newKEKFixture(t)
	tid := f.user.TenantID
	rawAdmin, err := f.raw.UserByID(ctx, tid, f.admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The admin's wrapped secret, copied to ann's row.
	if err := f.raw.SetUserMFA(ctx, tid, f.user.ID, rawAdmin.TOTPSecret, rawAdmin.MFAEnrolledAt, nil); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"UserByName": func() error { _, err := f.ks.UserByName(ctx, f.user.Name); return err },
		"UserByID":   func() error { _, err := f.ks.UserByID(ctx, tid, f.user.ID); return err },
		"UserByExternal": func() error {
			_, err := f.ks.UserByExternal(ctx, tid, f.user.External)
			return err
		},
		"ListUsers":            func() error { _, err := f.ks.ListUsers(ctx, tid); return err },
		"ListUserGroupMembers": func() error { _, err := f.ks.ListUserGroupMembers(ctx, tid, f.group.ID); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s: a moved TOTP secret was accepted", name)
		}
	}
	if _, err := f.ks.UserByID(ctx, tid, f.admin.ID); err != nil {
		t.Errorf("the admin's own row: %v", err)
	}

	moved := store.IdentityProvider{TenantID: tid, Issuer: "https://idp", ClientID: "c", ClientSecret: f.k.wrap([]byte("s"), idpSecretPurpose("t_b"))}
	if err := f.raw.SetIdentityProvider(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ks.IdentityProviderOf(ctx, tid); err == nil {
		t.Error("IdentityProviderOf: a moved client secret was accepted")
	}
	if ps, err := f.ks.ListIdentityProviders(ctx); err != nil || len(ps) != 1 || ps[0].ClientSecret != nil {
		t.Errorf("ListIdentityProviders = %+v, %v; want the provider without its secret", ps, err)
	}
}

// TestWrapPlaintextSignInSecrets: TOTP and client secrets written in
// plaintext to the raw store are wrapped in place when the store is
// opened, keeping the rest of the row.
func TestWrapPlaintextSignInSecrets(t *testing.T) {
	ctx := t.Context()
	f := newKEKFixture(t)
	tid := f.user.TenantID
	enrolled := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := f.raw.SetUserMFA(ctx, tid, f.user.ID, []byte("plain totp"), enrolled, []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	if err := f.raw.SetIdentityProvider(ctx, store.IdentityProvider{TenantID: tid, Issuer: "https://idp", ClientID: "c", ClientSecret: []byte("plain secret")}); err != nil {
		t.Fatal(err)
	}
	if n, err := wrapPlaintextKeys(ctx, f.raw, f.k); err != nil || n != 2 {
		t.Fatalf("wrapPlaintextKeys = %d, %v; want 2", n, err)
	}
	raw, err := f.raw.UserByID(ctx, tid, f.user.ID)
	if err != nil || !isWrapped(raw.TOTPSecret) || !raw.MFAEnrolledAt.Equal(enrolled) || len(raw.RecoveryCodes) != 1 {
		t.Errorf("raw user after wrapping: %+v, %v", raw, err)
	}
	if u, err := f.ks.UserByID(ctx, tid, f.user.ID); err != nil || string(u.TOTPSecret) != "plain totp" {
		t.Errorf("UserByID = %q, %v", u.TOTPSecret, err)
	}
	if p, err := f.ks.IdentityProviderOf(ctx, tid); err != nil || string(p.ClientSecret) != "plain secret" {
		t.Errorf("IdentityProviderOf = %q, %v", p.ClientSecret, err)
	}
	if n, err := wrapPlaintextKeys(ctx, f.raw, f.k); err != nil || n != 0 {
		t.Errorf("wrapPlaintextKeys again = %d, %v; want 0", n, err)
	}
}

// TestKEKStoreACMEKeys: the ACME private keys (objects named NAME.key)
// reach the raw store only wrapped for their own key, and come back in
// plaintext; certificates and metadata are stored as they are; a wrapped
// key moved to another name does not unwrap; plaintext keys written to
// the raw store are wrapped when it is opened, and all are counted.
func TestKEKStoreACMEKeys(t *testing.T) {
	ctx := t.Context()
	f := newKEKFixture(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	objs := []struct {
		key    string
		value  []byte
		secret bool
	}{
		{"certificates/ca/a.example/a.example.key", []byte("-----BEGIN EC PRIVATE KEY-----\nsite\n"), true},
		{"accounts/ca/ops@contoso.com/ops@contoso.com.key", []byte("-----BEGIN EC PRIVATE KEY-----\naccount\n"), true},
		{"certificates/ca/a.example/a.example.crt", []byte("-----BEGIN CERTIFICATE-----\n"), false},
		{"certificates/ca/a.example/a.example.json", []byte(`{"sans":["a.example"]}`), false},
	}
	for _, o := range objs {
		if err := f.ks.PutACMEObject(ctx, store.ACMEObject{Key: o.key, Value: o.value, Modified: at}); err != nil {
			t.Fatal(err)
		}
		raw, err := f.raw.ACMEObject(ctx, o.key)
		if err != nil {
			t.Fatal(err)
		}
		if wrapped := isWrapped(raw.Value) && !bytes.Contains(raw.Value, o.value); wrapped != o.secret {
			t.Errorf("%s is stored as %q: wrapped %v, want %v", o.key, raw.Value, wrapped, o.secret)
		}
		got, err := f.ks.ACMEObject(ctx, o.key)
		if err != nil || !bytes.Equal(got.Value, o.value) || !got.Modified.Equal(at) {
			t.Errorf("%s reads back as %+v, %v", o.key, got, err)
		}
	}
	if n, err := countWrapped(ctx, f.raw); err != nil || n != 4 { // the CA key, the admin's TOTP secret, the two ACME keys
		t.Errorf("countWrapped = %d, %v; want 4", n, err)
	}

	// The site's wrapped key, moved to another site's name.
	raw, err := f.raw.ACMEObject(ctx, objs[0].key)
	if err != nil {
		t.Fatal(err)
	}
	moved := "certificates/ca/b.example/b.example.key"
	if err := f.raw.PutACMEObject(ctx, store.ACMEObject{Key: moved, Value: raw.Value, Modified: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ks.ACMEObject(ctx, moved); err == nil {
		t.Error("a wrapped ACME key moved to another name was accepted")
	}

	plain := "certificates/ca/c.example/c.example.key"
	if err := f.raw.PutACMEObject(ctx, store.ACMEObject{Key: plain, Value: []byte("plain key"), Modified: at}); err != nil {
		t.Fatal(err)
	}
	if n, err := wrapPlaintextKeys(ctx, f.raw, f.k); err != nil || n != 1 {
		t.Fatalf("wrapPlaintextKeys = %d, %v; want 1", n, err)
	}
	if o, err := f.raw.ACMEObject(ctx, plain); err != nil || !isWrapped(o.Value) || !o.Modified.Equal(at) {
		t.Errorf("the plaintext ACME key is stored as %+v, %v; want it wrapped, its time kept", o, err)
	}
	if o, err := f.ks.ACMEObject(ctx, plain); err != nil || string(o.Value) != "plain key" {
		t.Errorf("the migrated ACME key reads back as %q, %v", o.Value, err)
	}
}
