package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// TestIsBusy: isBusy knows SQLite's SQLITE_BUSY by its code (a real one:
// a second connection writing while the first holds the write lock, with
// no busy timeout), also wrapped, and nothing else.
func TestIsBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.ExecContext(ctx, "CREATE TABLE t (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	tx, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	_, busy := b.ExecContext(ctx, "INSERT INTO t VALUES ('b')")
	if busy == nil {
		t.Fatal("a second writer was not refused")
	}
	tx.Commit()
	_, dup := a.ExecContext(ctx, "INSERT INTO t VALUES ('a')")
	if dup == nil {
		t.Fatal("a duplicate key was accepted")
	}

	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"SQLITE_BUSY", busy, true},
		{"SQLITE_BUSY wrapped", fmt.Errorf("sqlite: open x: %w", busy), true},
		{"a constraint violation", dup, false},
		{"a message that only says it", errors.New("database is locked (SQLITE_BUSY)"), false},
	} {
		if got := isBusy(tt.err); got != tt.want {
			t.Errorf("%s: isBusy(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
