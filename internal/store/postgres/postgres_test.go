package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/store/storetest"
)

// TestMain checks, once every test has closed its stores, that no
// goroutine of a connection pool outlives it.
func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// openT opens a store on a new, empty database and closes it at the end of
// the test.
func openT(t *testing.T) (*Store, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dsn
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.Context(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestMigrateConcurrently: instances starting at once against an empty
// database migrate it once (the advisory lock), and none fails — without
// the lock, concurrent CREATE TABLEs fail on the catalog's unique index.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.DSN(t)
	const instances = 8
	var wg sync.WaitGroup
	errs := make([]error, instances)
	stores := make([]*Store, instances)
	for i := range instances {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: Open: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var rows, tables int
	q := stores[0].pool
	if err := q.QueryRow(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(ms) {
		t.Errorf("schema_migrations holds %d rows, want %d (one per migration)", rows, len(ms))
	}
	if err := q.QueryRow(t.Context(), `SELECT COUNT(*) FROM pg_tables WHERE tablename = 'tenants'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 1 {
		t.Errorf("%d tables named tenants, want 1", tables)
	}
	// Every instance works on the one schema.
	for i, s := range stores {
		if _, err := s.ListTenants(t.Context()); err != nil {
			t.Errorf("instance %d: ListTenants: %v", i, err)
		}
	}
}

// TestReopen: opening a migrated database applies nothing again.
func TestReopen(t *testing.T) {
	s, dsn := openT(t)
	seed := store.Tenant{ID: "t1", Domain: "alpha.com", Label: "alpha", CreatedAt: time.Unix(1, 2).UTC()}
	ca := store.TenantCA{TenantID: "t1", CertPEM: []byte("c"), KeyPEM: []byte("k")}
	g := store.Group{ID: "g1", TenantID: "t1", Name: "Default"}
	u := store.User{ID: "u1", TenantID: "t1", Name: "admin@alpha.com", Role: store.RoleGlobalAdmin}
	if err := s.CreateTenant(t.Context(), seed, ca, g, u); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer s2.Close()
	got, err := s2.TenantByID(t.Context(), "t1")
	if err != nil || got != seed {
		t.Fatalf("TenantByID after reopening = %+v, %v; want %+v", got, err, seed)
	}
}

// TestSchemaTooNew: a database migrated by a newer binary is refused.
func TestSchemaTooNew(t *testing.T) {
	s, dsn := openT(t)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), dsn)
	if err == nil {
		s2.Close()
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
}

// TestUnreachable: a database nobody answers for is one sentence naming
// where it looked and what to check, without the password.
func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://cloud:s3cret@127.0.0.1:1/sallyport?connect_timeout=5")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"cannot reach the database", `"sallyport"`, "127.0.0.1:1", "check that PostgreSQL runs"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error %q shows the password", msg)
	}
}

// TestConnectTimeout: an address without connect_timeout gets the
// default, one with it keeps its own (a silent host must not hold Open for
// the system's TCP timeout).
func TestConnectTimeout(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		want time.Duration
	}{
		{"postgres://cloud@db.example:5432/sallyport", defaultConnectTimeout},
		{"postgres://cloud@db.example:5432/sallyport?connect_timeout=3", 3 * time.Second},
		{"host=db.example dbname=sallyport", defaultConnectTimeout},
	} {
		cfg, err := parseDSN(c.dsn)
		if err != nil {
			t.Fatalf("parseDSN(%q): %v", c.dsn, err)
		}
		if got := cfg.ConnConfig.ConnectTimeout; got != c.want {
			t.Errorf("parseDSN(%q): connect timeout %v, want %v", c.dsn, got, c.want)
		}
	}
}

// TestBadDSN: an address that is no PostgreSQL address says so.
func TestBadDSN(t *testing.T) {
	_, err := Open(t.Context(), "postgres://[::1")
	if err == nil || !strings.Contains(err.Error(), "not a PostgreSQL URL") {
		t.Fatalf("Open = %v, want an error naming the address's form", err)
	}
}

func TestNumbered(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`a = ? AND b = ?`, `a = $1 AND b = $2`},
		{`é ? ü ?`, `é $1 ü $2`},
	} {
		if got := numbered(c.in); got != c.want {
			t.Errorf("numbered(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
