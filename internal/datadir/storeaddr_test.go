package datadir

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/problem/problemtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestCheckStoreURL: a password in the URL is refused, in the user part
// or as a parameter (the decision: never on a command line, never in
// cloud.json); a URL without one is accepted.
func TestCheckStoreURL(t *testing.T) {
	for _, tt := range []struct {
		dsn  string
		code string // "" for accepted
	}{
		{"", ""},
		{"sqlite:", ""},
		{"sqlite:/var/lib/x/store.db", ""},
		{"postgres://sallyport@db.example.com:5432/sallyport", ""},
		{"postgresql://sallyport@db.example.com/sallyport?sslmode=verify-full", ""},
		{"postgres://sallyport:secret@db.example.com/sallyport", "store_password_in_url"},
		{"postgres://sallyport:@db.example.com/sallyport", "store_password_in_url"},
		{"postgres://sallyport@db.example.com/sallyport?password=secret", "store_password_in_url"},
		{"postgres:///sallyport", "store_dsn"},
		{"host=db.example.com user=sallyport", "store_dsn"},
		{"mysql://db.example.com/x", "store_dsn"},
	} {
		t.Run(tt.dsn, func(t *testing.T) {
			err := CheckStoreURL(tt.dsn)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("CheckStoreURL(%q) = %v, want accepted", tt.dsn, err)
				}
				return
			}
			p := problemtest.Want(t, "CheckStoreURL", err, tt.code)
			if p != nil && strings.Contains(p.Error(), "secret") {
				t.Errorf("the refusal repeats the password: %v", p)
			}
		})
	}
}

// TestPasswordFromFile: the file's first line, from a file only its owner
// may read; a file others may read is refused with the chmod step.
func TestPasswordFromFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		code    string
		subs    []string
	}{
		{"0600", "pw-1\n", 0o600, "pw-1", "", nil},
		{"0400", "pw-2", 0o400, "pw-2", "", nil},
		{"crlf and a second line", "pw-3\r\nignored\n", 0o600, "pw-3", "", nil},
		{"0644", "pw\n", 0o644, "", "store_password_file", []string{"may be read by others", "chmod 600"}},
		{"0640", "pw\n", 0o640, "", "store_password_file", []string{"0640"}},
		{"empty", "\n", 0o600, "", "store_password_file", []string{"is empty"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := PasswordFromFile(path)
			if tt.code != "" {
				problemtest.Want(t, "PasswordFromFile", err, tt.code, tt.subs...)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("PasswordFromFile = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	_, err := PasswordFromFile(filepath.Join(dir, "missing"))
	problemtest.Want(t, "PasswordFromFile of a missing file", err, "store_password_file", "cannot be read")
}

// TestWithPassword: the file's password goes into the URL handed to the
// driver, the rest of the URL kept; without a file the URL is unchanged
// (the driver reads PGPASSWORD).
func TestWithPassword(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cr:t/@\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const dsn = "postgres://sallyport@db.example.com:5432/sallyport?sslmode=verify-full"
	got, err := withPassword(dsn, pw)
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://sallyport:s3cr%3At%2F%40@db.example.com:5432/sallyport?sslmode=verify-full"; got != want {
		t.Errorf("withPassword = %q, want %q", got, want)
	}
	if got, _ := withPassword(dsn, ""); got != dsn {
		t.Errorf("withPassword without a file = %q, want %q", got, dsn)
	}
	if msg := redact("failed for "+got, got); strings.Contains(msg, "s3cr") {
		t.Errorf("redact left the password in %q", msg)
	}
}

// TestInitOnPostgres: init on a PostgreSQL database writes the URL and the
// password file's path into cloud.json, never the password, and no
// store.db; a second init on the same database is refused.
func TestInitOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	pw := filepath.Join(t.TempDir(), "pg-password")
	if err := os.WriteFile(pw, []byte("pg-secret-unit-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cloud")
	o := InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com",
		AdminPassword: "a-long-admin-password-1", Store: dsn, StorePasswordFile: pw}
	if _, err := Init(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, SettingsFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "pg-secret-unit-1") {
		t.Errorf("cloud.json holds the store password:\n%s", raw)
	}
	s, err := LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Store != dsn || s.StorePasswordFile != pw {
		t.Errorf("settings store = %q, password file = %q; want %q, %q", s.Store, s.StorePasswordFile, dsn, pw)
	}
	if _, err := os.Stat(filepath.Join(dir, StoreFile)); err == nil {
		t.Errorf("init on PostgreSQL made %s too", StoreFile)
	}
	st, err := OpenStore(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := st.ListTenants(context.Background())
	st.Close()
	if err != nil || len(ts) != 1 || ts[0].Domain != "contoso.com" {
		t.Errorf("tenants in PostgreSQL = %+v, %v", ts, err)
	}

	o.DataDir = filepath.Join(t.TempDir(), "cloud2")
	_, err = Init(context.Background(), o)
	problemtest.Want(t, "a second init on the same database", err, "store_not_empty")
	if _, statErr := os.Stat(o.DataDir); statErr == nil {
		t.Errorf("the refused init left %s behind", o.DataDir)
	}
}
