// Package sqlite owns the SQLite implementation of store.Store: opening the
// database file (WAL, busy timeout, foreign keys, immediate write
// transactions), applying the embedded schema migrations, and the SQL of
// every Store method.
//
// Several processes may open the same file at once (an operator command
// while the server runs): WAL lets readers proceed beside a writer, and the
// busy timeout makes writers wait for each other instead of failing.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sallyport/sallyport/internal/store"
)

// maxConns bounds the connection pool: writers beyond it queue in Go
// rather than spin in SQLite's busy handler, and readers still run beside
// the one writer WAL allows.
const maxConns = 8

// busyTimeout is how long a connection waits for another writer (in this
// process or another one) before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a store.Store backed by one SQLite database file. It is safe for
// concurrent use by several goroutines, and several processes may open the
// same file.
type Store struct {
	db *sql.DB
}

var _ store.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating the file with mode 0600
// if it does not exist, and brings its schema up to date. It fails if the
// database was written by a newer binary (see ErrSchemaTooNew).
func Open(path string) (*Store, error) {
	if err := createFile(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := migrateRetrying(context.Background(), db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// migrateRetrying runs migrate again while it fails with SQLITE_BUSY, for
// at most busyTimeout. Processes opening a new file at once race to switch
// it to WAL and to create the schema, and SQLite reports some of those
// conflicts at once instead of calling the busy handler. Every migration
// checks, in its transaction, whether another process applied it, so a
// repeat is harmless.
func migrateRetrying(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := migrate(ctx, db)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait + time.Duration(rand.Int64N(int64(wait))))
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY ("database is
// locked"), extended codes (SQLITE_BUSY_SNAPSHOT, ...) included.
func isBusy(err error) bool {
	var se *sqlitedrv.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// createFile creates path with mode 0600 unless it already exists, so that
// SQLite (which would use 0644) never creates the file holding secrets.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return f.Close()
}

// dsn returns the modernc.org/sqlite data source name for path: a file: URI
// (with the characters SQLite's URI parser treats specially escaped) and the
// connection pragmas.
func dsn(path string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate",
		escaped, busyTimeout.Milliseconds())
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE), committing if it
// returns nil and rolling back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// getOne runs a query expected to return one row and scans it; no row is
// store.ErrNotFound. what names the operation in errors.
func getOne[T any](ctx context.Context, q querier, scan func(scanner) (T, error), what, query string, args ...any) (T, error) {
	v, err := scan(q.QueryRowContext(ctx, query, args...))
	if err != nil {
		return v, mapErr(what, err)
	}
	return v, nil
}

// getAll runs a query and scans every row. It returns an empty, non-nil
// slice when no row matches.
func getAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), what, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, mapErr(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(what, err)
	}
	return out, nil
}

// exec runs a statement, mapping constraint violations to store errors.
func exec(ctx context.Context, q querier, what, query string, args ...any) error {
	_, err := q.ExecContext(ctx, query, args...)
	return mapErr(what, err)
}

// execOne runs an UPDATE or DELETE that must affect exactly one row: none is
// store.ErrNotFound.
func execOne(ctx context.Context, q querier, what, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return mapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// mapErr wraps err with the operation name and translates SQLite results to
// the store's sentinels: no row is store.ErrNotFound, a unique or primary key
// violation is store.ErrConflict, and a foreign key violation (the referenced
// tenant, user or group does not exist in that tenant) is store.ErrNotFound.
func mapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	var se *sqlitedrv.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("sqlite: %s: %w: %w", what, store.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("sqlite: %s: referenced row missing: %w: %w", what, store.ErrNotFound, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// nanos converts t to the stored form: unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// timeCol scans a stored unix-nanosecond column into a UTC time.Time
// (0 gives the zero time).
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(src any) error {
	n, ok := src.(int64)
	if !ok {
		return fmt.Errorf("sqlite: time column holds %T, want int64", src)
	}
	*c.t = time.Time{}
	if n != 0 {
		*c.t = time.Unix(0, n).UTC()
	}
	return nil
}

// blobCol scans a nullable BLOB column, giving nil for NULL or empty.
type blobCol struct{ b *[]byte }

// Scan implements sql.Scanner.
func (c blobCol) Scan(src any) error {
	*c.b = nil
	switch v := src.(type) {
	case nil:
	case []byte:
		if len(v) > 0 {
			*c.b = append([]byte(nil), v...)
		}
	default:
		return fmt.Errorf("sqlite: blob column holds %T, want []byte", src)
	}
	return nil
}
