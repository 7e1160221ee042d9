package datadir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/problem/problemtest"
	"github.com/sallyport/sallyport/internal/store"
)

// TestCopyStore: every kind the Store lists arrives in PostgreSQL equal to
// the SQLite original, wrapped secrets (a TOTP secret, the connector CA's
// key, a signing key) as the same wrapped bytes; the settings change only
// with Switch; a target that is not empty is refused.
func TestCopyStore(t *testing.T) {
	ctx := context.Background()
	dir := initDataDir(t, "")
	fillStore(t, dir)
	dsn := pgtest.DSN(t)

	counts, err := CopyStore(ctx, CopyOptions{DataDir: dir, To: dsn})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, c := range counts {
		n[c.Kind] = c.N
	}
	for kind, want := range map[string]int{"tenants": 1, "tenant CAs": 1, "groups": 2, "users": 2, "users with MFA": 1, "user groups": 1,
		"memberships": 1, "connectors": 1, "applications": 1, "assignments": 2, "registration tokens": 1, "domains": 1,
		"signing keys": 1, "tenant settings": 1, "API tokens": 1, "sessions": 2, "update halts": 1, "identity providers": 1, "releases": 1, "ACME objects": 2} {
		if n[kind] != want {
			t.Errorf("copied %d %s, want %d", n[kind], kind, want)
		}
	}
	if s, _ := LoadSettings(dir); s.Store != "" {
		t.Errorf("without Switch the settings name the store %q", s.Store)
	}

	src, err := openRawStore(dir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := openRawStore(dir, Settings{Store: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if a, b := dump(t, src), dump(t, dst); a != b {
		t.Errorf("the copy differs from the source:\nsource:\n%s\ncopy:\n%s", a, b)
	}
	if u, err := dst.UserByName(ctx, "bob@contoso.com"); err != nil || !strings.HasPrefix(string(u.TOTPSecret), "sallyport-kek-v1:") {
		t.Errorf("the copied TOTP secret is not the wrapped one: %q, %v", u.TOTPSecret, err)
	}

	_, err = CopyStore(ctx, CopyOptions{DataDir: dir, To: dsn, Switch: true})
	problemtest.Want(t, "a copy to a database that is not empty", err, "store_not_empty")
	if s, _ := LoadSettings(dir); s.Store != "" {
		t.Errorf("a refused copy switched the settings to %q", s.Store)
	}
}

// TestCopyStoreSwitch: with Switch the settings name the target and its
// password file, and the cloud opens from there.
func TestCopyStoreSwitch(t *testing.T) {
	dir := initDataDir(t, "")
	dsn := pgtest.DSN(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("copy-secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CopyStore(context.Background(), CopyOptions{DataDir: dir, To: dsn, ToPasswordFile: pw, Switch: true}); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Store != dsn || s.StorePasswordFile != pw {
		t.Fatalf("settings after --switch: store %q, password file %q", s.Store, s.StorePasswordFile)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, SettingsFile)); strings.Contains(string(raw), "copy-secret-1") {
		t.Errorf("cloud.json holds the password")
	}
	st, err := OpenStore(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.UserByName(context.Background(), "admin@contoso.com"); err != nil {
		t.Errorf("the administrator after the switch: %v", err)
	}
}

// fillStore adds one or more rows of every kind the copy lists to the
// data directory's store, through its key-encryption key.
func fillStore(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	s, err := LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	ts, err := st.ListTenants(ctx)
	must("tenants", err)
	tid := ts[0].ID
	now := time.Date(2026, 12, 5, 9, 0, 0, 123456789, time.UTC)
	g := store.Group{ID: "g_site2", TenantID: tid, Name: "Site 2", CreatedAt: now}
	must("group", st.CreateGroup(ctx, g))
	u := store.User{ID: "u_bob", TenantID: tid, Name: "bob@contoso.com", Role: store.RoleUser, PasswordHash: "x", CreatedAt: now, Email: "bob@contoso.com"}
	must("user", st.CreateUser(ctx, u))
	must("mfa", st.SetUserMFA(ctx, tid, u.ID, []byte("totp-secret-12345678"), now, []string{"aa", "bb"}))
	ug := store.UserGroup{ID: "ug_ops", TenantID: tid, Name: "ops", CreatedAt: now}
	must("user group", st.CreateUserGroup(ctx, ug))
	must("member", st.AddUserGroupMember(ctx, tid, ug.ID, u.ID, now))
	must("connector", st.CreateConnector(ctx, store.Connector{ID: "c_1", TenantID: tid, GroupID: g.ID, Hostname: "h", Version: "1",
		CertSerial: "01", CertThumbprint: "tp", CertNotAfter: now.Add(time.Hour), CreatedAt: now, LastSeenAt: now}))
	app := store.Application{ID: "a_web", TenantID: tid, Name: "web", GroupID: g.ID, ExternalHost: "web-contoso.sallyport.test",
		InternalURL: "http://10.0.0.1/", Timeout: "default", PreAuth: "passthrough", CreatedAt: now, UpdatedAt: now}
	must("app", st.CreateApp(ctx, app))
	must("assign user", st.Assign(ctx, store.Assignment{TenantID: tid, AppID: app.ID, UserID: u.ID, CreatedAt: now}))
	must("assign group", st.Assign(ctx, store.Assignment{TenantID: tid, AppID: app.ID, UserGroupID: ug.ID, CreatedAt: now}))
	must("registration token", st.CreateRegistrationToken(ctx, store.RegistrationToken{ID: "rt_1", TenantID: tid, GroupID: g.ID,
		Hash: "h1", CreatedBy: "admin@contoso.com", CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxUses: 3, Uses: 1}))
	must("domain", st.CreateDomain(ctx, store.Domain{TenantID: tid, Domain: "apps.contoso.com", Token: "tok", CreatedAt: now}))
	must("tenant settings", st.SetTenantSettings(ctx, store.TenantSettings{TenantID: tid, RequireMFA: true, SessionIdle: time.Hour, UpdatedAt: now}))
	must("identity provider", st.SetIdentityProvider(ctx, store.IdentityProvider{TenantID: tid, Issuer: "https://idp.example.com",
		ClientID: "cid", ClientSecret: []byte("client-secret"), CreatedAt: now, UpdatedAt: now}))
	must("signing key", st.AddTenantSigningKey(ctx, store.SigningKey{TenantID: tid, KID: "kid-1", KeyPEM: []byte("signing-key"),
		CreatedAt: now, SignFrom: now}, ""))
	must("API token", st.CreateAPIToken(ctx, store.APIToken{ID: "tok_1", UserID: u.ID, TenantID: tid, Hash: "th", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	parent := store.Session{ID: "s_1", Hash: "sh1", TenantID: tid, UserID: u.ID, Kind: store.SessionCloud, Method: "password",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), SeenAt: now}
	must("session", st.CreateSession(ctx, parent))
	child := parent
	child.ID, child.Hash, child.Kind, child.AppID, child.ParentID = "s_2", "sh2", store.SessionApp, app.ID, parent.ID
	must("app session", st.CreateSession(ctx, child))
	must("update halt", st.HaltUpdate(ctx, store.UpdateHalt{TenantID: tid, GroupID: g.ID, Version: "1.2.3", ConnectorID: "c_1", HaltedAt: now}))
	must("release", st.CreateRelease(ctx, store.Release{Version: "1.2.3", OS: "linux", Arch: "amd64", SHA256: "ab", Size: 1,
		Manifest: []byte("{}"), Signature: []byte("sig"), KeyID: "k", PublishedAt: now}))
	must("ACME certificate", st.PutACMEObject(ctx, store.ACMEObject{Key: "certificates/ca/web/web.crt", Value: []byte("cert"), Modified: now}))
	must("ACME key", st.PutACMEObject(ctx, store.ACMEObject{Key: "certificates/ca/web/web.key", Value: []byte("acme-key"), Modified: now}))
}

// dump lists every kind the copy carries, as text to compare.
func dump(t *testing.T, st store.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	add := func(kind string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		fmt.Fprintf(&b, "%s: %+v\n", kind, normalise(v))
	}
	ts, err := st.ListTenants(ctx)
	add("tenants", ts, err)
	for _, x := range ts {
		ca, err := st.TenantCA(ctx, x.ID)
		add("ca", ca, err)
		v1, err := st.ListGroups(ctx, x.ID)
		add("groups", v1, err)
		v2, err := st.ListUsers(ctx, x.ID)
		add("users", v2, err)
		v3, err := st.ListUserGroups(ctx, x.ID)
		add("user groups", v3, err)
		v4, err := st.ListMemberships(ctx, x.ID)
		add("memberships", v4, err)
		v5, err := st.ListConnectors(ctx, x.ID)
		add("connectors", v5, err)
		v6, err := st.ListApps(ctx, x.ID)
		add("apps", v6, err)
		v7, err := st.ListTenantAssignments(ctx, x.ID)
		add("assignments", v7, err)
		v8, err := st.ListRegistrationTokens(ctx, x.ID)
		add("registration tokens", v8, err)
		v9, err := st.ListDomains(ctx, x.ID)
		add("domains", v9, err)
		v10, err := st.TenantSigningKeys(ctx, x.ID)
		add("signing keys", v10, err)
		v11, err := st.TenantSettings(ctx, x.ID)
		add("tenant settings", v11, err)
		v12, err := st.ListAPITokens(ctx, x.ID)
		add("API tokens", v12, err)
		v13, err := st.ListSessions(ctx, x.ID)
		add("sessions", v13, err)
		v14, err := st.ListUpdateHalts(ctx, x.ID)
		add("update halts", v14, err)
	}
	idps, err := st.ListIdentityProviders(ctx)
	add("identity providers", idps, err)
	rs, err := st.ListReleases(ctx, "", "")
	add("releases", rs, err)
	objs, err := st.ListACMEObjects(ctx, "")
	add("ACME objects", objs, err)
	for _, o := range objs {
		o, err := st.ACMEObject(ctx, o.Key)
		add("ACME object", o, err)
	}
	return b.String()
}

// normalise makes byte slices readable in the dump (wrapped secrets are
// text) and leaves the rest to %+v.
func normalise(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
		return string(rv.Bytes())
	}
	return v
}
