package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/store/storetest"
)

// openT opens the database at path, failing the test on error, and closes
// it at the end of the test.
func openT(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// tempPath returns the path of a database file in a fresh directory.
func tempPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "sallyport.db")
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(tempPath(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// seedTenant creates tenant label.com with its CA, Default group and admin.
func seedTenant(t *testing.T, s *Store, label string) store.Tenant {
	t.Helper()
	id := "tenant-" + label
	tn := store.Tenant{ID: id, Domain: label + ".com", Label: label, CreatedAt: time.Now()}
	ca := store.TenantCA{TenantID: id, CertPEM: []byte("cert"), KeyPEM: []byte("key")}
	g := store.Group{ID: "group-" + label, TenantID: id, Name: "Default", CreatedAt: time.Now()}
	u := store.User{ID: "user-" + label, TenantID: id, Name: "admin@" + label + ".com", Role: store.RoleGlobalAdmin}
	if err := s.CreateTenant(t.Context(), tn, ca, g, u); err != nil {
		t.Fatal(err)
	}
	return tn
}

func TestFileMode(t *testing.T) {
	path := tempPath(t)
	s := openT(t, path)
	seedTenant(t, s, "alpha") // makes SQLite write the -wal file too
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), perm)
		}
	}
}

func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.db")
	s := openT(t, path)
	seedTenant(t, s, "alpha")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
}

func TestWALMode(t *testing.T) {
	s := openT(t, tempPath(t))
	var mode string
	if err := s.db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

// migrationRows returns schema_migrations as version → applied_at.
func migrationRows(t *testing.T, s *Store) map[int]int64 {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int]int64{}
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		m[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReopenKeepsDataAndMigrations(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := seedTenant(t, s, "alpha")
	before := migrationRows(t, s)
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != len(ms) {
		t.Fatalf("%d migrations recorded, want %d", len(before), len(ms))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openT(t, path)
	got, err := s2.TenantByID(t.Context(), want.ID)
	if err != nil || got.Domain != want.Domain {
		t.Fatalf("after reopen: TenantByID = %+v, %v", got, err)
	}
	after := migrationRows(t, s2)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("migrations re-run: before %v, after %v", before, after)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if !errors.Is(err, ErrSchemaTooNew) {
		if s2 != nil {
			_ = s2.Close()
		}
		t.Fatalf("Open of a newer database: err = %v, want ErrSchemaTooNew", err)
	}
}

// runAll runs fn(0..n-1) in n goroutines and returns the first error.
func runAll(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func TestConcurrentOpenOfNewFile(t *testing.T) {
	path := tempPath(t)
	stores := make([]*Store, 4)
	err := runAll(len(stores), func(i int) error {
		s, err := Open(path)
		stores[i] = s
		return err
	})
	for _, s := range stores {
		if s != nil {
			_ = s.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := len(migrationRows(t, openT(t, path))); n == 0 {
		t.Fatal("no migration recorded")
	}
}

// writeLoop performs n write transactions of several kinds through s, in
// tenant tid, with ids prefixed by who.
func writeLoop(ctx context.Context, s *Store, tid, gid, who string, n int) error {
	for i := range n {
		id := fmt.Sprintf("%s-%d", who, i)
		c := store.Connector{ID: id, TenantID: tid, GroupID: gid, CertSerial: "serial-" + id, CreatedAt: time.Now()}
		if err := s.CreateConnector(ctx, c); err != nil {
			return err
		}
		if err := s.UpdateConnectorSeen(ctx, tid, id, time.Now(), "192.0.2.1:1", "h", "v"); err != nil {
			return err
		}
		if _, err := s.ListConnectors(ctx, tid); err != nil {
			return err
		}
		if err := s.DeleteConnector(ctx, tid, id, "test", time.Now()); err != nil {
			return err
		}
	}
	return nil
}

func TestTwoStoresOnOneFile(t *testing.T) {
	path := tempPath(t)
	s1, s2 := openT(t, path), openT(t, path)
	tn := seedTenant(t, s1, "alpha")
	stores := []*Store{s1, s2}
	err := runAll(len(stores), func(i int) error {
		return writeLoop(t.Context(), stores[i], tn.ID, "group-alpha", fmt.Sprintf("store%d", i), 50)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if _, err := s.Revocation(t.Context(), fmt.Sprintf("serial-store%d-49", i)); err != nil {
			t.Fatalf("revocation written through store %d: %v", i, err)
		}
	}
}

// helperEnv, when set, makes TestTwoProcessesOnOneFile act as the second
// process writing to the database file it names.
const helperEnv = "SALLYPORT_STORE_HELPER_DB"

func TestTwoProcessesOnOneFile(t *testing.T) {
	if path := os.Getenv(helperEnv); path != "" {
		s := openT(t, path)
		if err := writeLoop(t.Context(), s, "tenant-alpha", "group-alpha", "child", 50); err != nil {
			t.Fatal(err)
		}
		return
	}
	path := tempPath(t)
	s := openT(t, path)
	tn := seedTenant(t, s, "alpha")
	cmd := osexec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestTwoProcessesOnOneFile$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var out []byte
	err := runAll(2, func(i int) error {
		if i == 0 {
			var err error
			out, err = cmd.CombinedOutput()
			return err
		}
		return writeLoop(t.Context(), s, tn.ID, "group-alpha", "parent", 50)
	})
	if err != nil {
		t.Fatalf("%v\nchild output:\n%s", err, out)
	}
	for _, who := range []string{"parent", "child"} {
		if _, err := s.Revocation(t.Context(), "serial-"+who+"-49"); err != nil {
			t.Fatalf("revocation written by the %s: %v", who, err)
		}
	}
}

func TestConcurrentGoroutinesOneStore(t *testing.T) {
	s := openT(t, tempPath(t))
	tn := seedTenant(t, s, "alpha")
	err := runAll(8, func(i int) error {
		return writeLoop(t.Context(), s, tn.ID, "group-alpha", fmt.Sprintf("g%d", i), 20)
	})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListConnectors(t.Context(), tn.ID); err != nil || len(l) != 0 {
		t.Fatalf("ListConnectors = %d, %v; want none left", len(l), err)
	}
}

// TestMigrationMergedOutOfOrder opens a database that has every migration
// but 0003 (as one written by a release that shipped 0004 before 0003
// existed): the missing migration is applied, and the data is kept.
func TestMigrationMergedOutOfOrder(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tn := seedTenant(t, s, "alpha")
	for _, q := range []string{`DROP TABLE registration_tokens`, `DELETE FROM schema_migrations WHERE version = 3`} {
		if _, err := s.db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openT(t, path)
	if _, ok := migrationRows(t, s2)[3]; !ok {
		t.Fatal("migration 0003 was not applied to a database already at 0004")
	}
	tok := store.RegistrationToken{ID: "r_1", TenantID: tn.ID, GroupID: "group-alpha", Hash: "h", CreatedBy: "admin@alpha.com",
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), MaxUses: 1}
	if err := s2.CreateRegistrationToken(t.Context(), tok); err != nil {
		t.Fatalf("registration tokens after the late migration: %v", err)
	}
	if got, err := s2.TenantByID(t.Context(), tn.ID); err != nil || got.Domain != tn.Domain {
		t.Fatalf("after the late migration: TenantByID = %+v, %v", got, err)
	}
}

// TestGroupNameKeyMigration is issue 20 item 7's migration 0011: groups
// whose names differ only by case, made before names were compared without
// regard to case, do not stop the migration, keep their names and stay
// reachable by their exact names; new ones in any case are refused.
func TestGroupNameKeyMigration(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tn := seedTenant(t, s, "alpha")
	for _, q := range []string{
		`DROP INDEX connector_groups_name_key`,
		`ALTER TABLE connector_groups DROP COLUMN name_key`,
		`DELETE FROM schema_migrations WHERE version = 11`,
		`INSERT INTO connector_groups (id, tenant_id, name, created_at) VALUES ('g1', '` + tn.ID + `', 'branch', 1), ('g2', '` + tn.ID + `', 'BRANCH', 2), ('g3', '` + tn.ID + `', 'Branch', 3), ('g4', '` + tn.ID + `', 'default', 4)`,
	} {
		if _, err := s.db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openT(t, path)
	if _, ok := migrationRows(t, s2)[11]; !ok {
		t.Fatal("migration 0011 was not applied")
	}
	for name, id := range map[string]string{"branch": "g1", "BRANCH": "g2", "Branch": "g3", "bRaNcH": "g1", "default": "g4"} {
		if g, err := s2.GroupByName(t.Context(), tn.ID, name); err != nil || g.ID != id || (name != "bRaNcH" && g.Name != name) {
			t.Errorf("GroupByName(%q) = %+v, %v; want %s", name, g, err, id)
		}
	}
	err = s2.CreateGroup(t.Context(), store.Group{ID: "g5", TenantID: tn.ID, Name: "BrAnCh", CreatedAt: time.Now()})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateGroup of a name taken in another case after the migration: %v, want ErrConflict", err)
	}
}

// TestUserGroupsMigration is migration 0012 on a database made before it:
// users and applications that already exist can be assigned, and
// deleting them still takes their memberships and assignments.
func TestUserGroupsMigration(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tn := seedTenant(t, s, "alpha")
	app := store.Application{ID: "app-1", TenantID: tn.ID, Name: "wiki", GroupID: "group-alpha", ExternalHost: "wiki-alpha.example",
		InternalURL: "http://wiki/", Timeout: "default", PreAuth: "passthrough", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TABLE app_assignments`, `DROP TABLE user_group_members`, `DROP TABLE user_groups`,
		`DROP INDEX users_tenant_id`, `DROP INDEX applications_tenant_id`,
		`DELETE FROM schema_migrations WHERE version = 12`,
	} {
		if _, err := s.db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openT(t, path)
	if _, ok := migrationRows(t, s2)[12]; !ok {
		t.Fatal("migration 0012 was not applied")
	}
	ctx := t.Context()
	g := store.UserGroup{ID: "ug-1", TenantID: tn.ID, Name: "Staff", CreatedAt: time.Now()}
	for _, step := range []error{
		s2.CreateUserGroup(ctx, g),
		s2.AddUserGroupMember(ctx, tn.ID, g.ID, "user-alpha", time.Now()),
		s2.Assign(ctx, store.Assignment{TenantID: tn.ID, AppID: app.ID, UserGroupID: g.ID, CreatedAt: time.Now()}),
	} {
		if step != nil {
			t.Fatalf("after the migration: %v", step)
		}
	}
	if ok, err := s2.IsAssigned(ctx, tn.ID, app.ID, "user-alpha"); err != nil || !ok {
		t.Fatalf("IsAssigned of a user made before the migration = %v, %v", ok, err)
	}
	if err := s2.DeleteUser(ctx, tn.ID, "user-alpha"); err != nil {
		t.Fatal(err)
	}
	if gs, err := s2.ListUserGroups(ctx, tn.ID); err != nil || len(gs) != 1 || gs[0].Members != 0 {
		t.Errorf("user groups after deleting their member = %+v, %v; want Staff with 0 members", gs, err)
	}
}

// TestSignInMigration is migration 0015 on a database made before it: the
// users already there read back with the zero sign-in fields (enabled, no
// profile, a local account, no second factor), and can then be given
// them, sessions and grants; deleting one still ends its sessions.
func TestSignInMigration(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tn := seedTenant(t, s, "alpha")
	ctx := t.Context()
	before, err := s.UserByID(ctx, tn.ID, "user-alpha")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TABLE grants`, `DROP TABLE sessions`, `DROP TABLE identity_providers`, `DROP TABLE tenant_settings`,
		`DROP INDEX users_tenant_external`,
		`ALTER TABLE users DROP COLUMN email`, `ALTER TABLE users DROP COLUMN display_name`, `ALTER TABLE users DROP COLUMN disabled`,
		`ALTER TABLE users DROP COLUMN external`, `ALTER TABLE users DROP COLUMN totp_secret`,
		`ALTER TABLE users DROP COLUMN mfa_enrolled_at`, `ALTER TABLE users DROP COLUMN recovery_codes`,
		`DELETE FROM schema_migrations WHERE version = 15`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openT(t, path)
	if _, ok := migrationRows(t, s2)[15]; !ok {
		t.Fatal("migration 0015 was not applied")
	}
	after, err := s2.UserByID(ctx, tn.ID, "user-alpha")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) || after.Disabled || after.External != "" || after.TOTPSecret != nil || after.RecoveryCodes != nil {
		t.Fatalf("a user made before the migration reads back as %+v, want %+v", after, before)
	}
	if ts, err := s2.TenantSettings(ctx, tn.ID); err != nil || ts != (store.TenantSettings{TenantID: tn.ID}) {
		t.Errorf("TenantSettings after the migration = %+v, %v; want the defaults", ts, err)
	}
	now := time.Now()
	sess := store.Session{ID: "s-1", Hash: "h-1", TenantID: tn.ID, UserID: "user-alpha", Kind: store.SessionCloud, Method: "password", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	for _, step := range []error{
		s2.SetUserMFA(ctx, tn.ID, "user-alpha", []byte("secret"), now, []string{"r1"}),
		s2.UseRecoveryCode(ctx, tn.ID, "user-alpha", "r1"),
		s2.CreateSession(ctx, sess),
		s2.CreateGrant(ctx, store.Grant{Hash: "g-1", Kind: store.GrantCode, TenantID: tn.ID, UserID: "user-alpha", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}),
		s2.DeleteUser(ctx, tn.ID, "user-alpha"),
	} {
		if step != nil {
			t.Fatalf("after the migration: %v", step)
		}
	}
	if _, err := s2.SessionByHash(ctx, sess.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session of a deleted user: %v, want ErrNotFound", err)
	}
	if _, err := s2.GrantByHash(ctx, store.GrantCode, "g-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the grant of a deleted user: %v, want ErrNotFound", err)
	}
}
