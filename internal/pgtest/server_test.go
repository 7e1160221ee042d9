package pgtest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestDSN: each test gets its own empty database on the one server, and
// can write to it.
func TestDSN(t *testing.T) {
	a, b := DSN(t), DSN(t)
	if a == b {
		t.Fatalf("two databases share the address %s", a)
	}
	for _, dsn := range []string{a, b} {
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(context.Background()) }()
		var tables int
		if err := conn.QueryRow(t.Context(), `SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("%s: %d tables in a new database, want 0", dsn, tables)
		}
		if _, err := conn.Exec(t.Context(), `CREATE TABLE t (x int)`); err != nil {
			t.Errorf("%s: %v", dsn, err)
		}
	}
}

// TestBadBinDir: SALLYPORT_PG_BIN set to a directory without the programs
// is an error of its own (a test fails rather than skip).
func TestBadBinDir(t *testing.T) {
	t.Setenv("SALLYPORT_PG_BIN", t.TempDir())
	_, err := findBin()
	if !errors.Is(err, errBadEnv) || !strings.Contains(err.Error(), "does not hold initdb") {
		t.Fatalf("findBin = %v, want the SALLYPORT_PG_BIN error", err)
	}
}

func TestDBName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"TestConformance/Tenants", "testconformance_tenants"},
		{"TestX/é", "testx___"},
		{strings.Repeat("a", 50) + "Z", strings.Repeat("a", 39) + "z"},
	} {
		if got := dbName(c.in); got != c.want {
			t.Errorf("dbName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestVersionOf(t *testing.T) {
	if got := versionOf("/usr/lib/postgresql/15/bin"); got != 15 {
		t.Errorf("versionOf = %d, want 15", got)
	}
	if got := versionOf("/usr/lib/postgresql/x/bin"); got != 0 {
		t.Errorf("versionOf(x) = %d, want 0", got)
	}
}

// TestClusterRestart: a test's own cluster stops (connections refused)
// and starts again on the same address, its data kept.
func TestClusterRestart(t *testing.T) {
	c := NewCluster(t)
	dsn := c.DSN(t)
	ctx := t.Context()
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(`CREATE TABLE kept (x INT)`); err != nil {
		t.Fatal(err)
	}
	c.Stop(t)
	if err := exec(`SELECT 1`); err == nil {
		t.Fatal("a stopped cluster took a connection")
	}
	c.Start(t)
	if err := exec(`SELECT * FROM kept`); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}
