// Package postgres owns the PostgreSQL implementation of store.Store:
// connecting (a pgx connection pool), applying the embedded schema
// migrations under an advisory lock, and the SQL of every Store method.
//
// Several cloud instances may open one database at once: migrations are
// applied once (the first instance to take the lock applies them, the
// others find them recorded), and every check-then-write rule of the Store
// contract (a registration token's uses, a device code's uniqueness, an
// update turn, a signing key's rotation, a domain's verification) runs in
// one transaction that locks the row or key it decides on, so racing
// callers on any instance are serialised. It must not import any package
// of ours but store.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sallyport/sallyport/internal/store"
)

// SQLSTATE codes mapped to the store's sentinels.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// defaultConnectTimeout bounds each connection attempt when the address
// sets no connect_timeout.
const defaultConnectTimeout = 10 * time.Second

// Store is a store.Store backed by a PostgreSQL database. It is safe for
// concurrent use by several goroutines, and several processes (cloud
// instances, operator commands) may open the same database.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the PostgreSQL database dsn names (a postgres:// URL or
// a key=value string, as libpq takes; pgxpool's pool_max_conns and the
// other pool_ parameters apply; connect_timeout defaults to 10 s), checks
// that it answers, and brings its
// schema up to date. It fails if the database was written by a newer
// binary (see ErrSchemaTooNew).
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where(cfg), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		err = fmt.Errorf("postgres: cannot reach the database %s (%w); check that PostgreSQL runs there and accepts this user and password", where(cfg), err)
		if transient(err) {
			err = unreachable{err}
		}
		return nil, err
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate %s: %w", where(cfg), err)
	}
	return &Store{pool: pool}, nil
}

// ErrUnreachable marks an Open that failed because the server could not
// be reached, or does not take connections yet (starting, shutting down,
// full): trying again later may succeed. A refused user or password, a
// missing database or a schema too new is not it.
var ErrUnreachable = errors.New("postgres: the database cannot be reached")

// unreachable is an error of Open that Is ErrUnreachable, with the
// message of its cause.
type unreachable struct{ err error }

func (u unreachable) Error() string        { return u.err.Error() }
func (u unreachable) Unwrap() error        { return u.err }
func (u unreachable) Is(target error) bool { return target == ErrUnreachable }

// transient reports whether err, a failure to connect or to run a
// statement, may pass by itself: the network, a timeout, or the server
// saying it cannot take connections now (class 57P: starting up,
// shutting down; 53300: too many connections; class 08: connection
// exceptions).
func transient(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "08") || pe.Code == "53300"
	}
	return true
}

// parseDSN reads the pool's configuration from dsn, with
// defaultConnectTimeout unless dsn sets connect_timeout.
func parseDSN(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: the store address is not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE): %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without one a silent host (a firewall dropping packets) holds
		// Open for the system's TCP timeout, minutes on Linux.
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	return cfg, nil
}

// where names the database of cfg for errors: host, port and database,
// never the password.
func where(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%q at %s:%d as user %q", c.Database, c.Host, c.Port, c.User)
}

// Close closes the connection pool, waiting for connections in use to be
// returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// scanner is what pgx.Row and pgx.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// numbered turns the ? placeholders of query into PostgreSQL's $1, $2, ...
// The queries are written with ? as the SQLite store's are, so the two
// read alike side by side; none has a ? inside a literal.
func numbered(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// inTx runs fn in a transaction (READ COMMITTED: fn locks what it decides
// on), committing if it returns nil and rolling back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return mapErr("commit", err)
	}
	return nil
}

// getOne runs a query expected to return one row and scans it; no row is
// store.ErrNotFound. what names the operation in errors.
func getOne[T any](ctx context.Context, q querier, scan func(scanner) (T, error), what, query string, args ...any) (T, error) {
	v, err := scan(q.QueryRow(ctx, numbered(query), args...))
	if err != nil {
		return v, mapErr(what, err)
	}
	return v, nil
}

// getAll runs a query and scans every row. It returns an empty, non-nil
// slice when no row matches.
func getAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), what, query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, numbered(query), args...)
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
	_, err := q.Exec(ctx, numbered(query), args...)
	return mapErr(what, err)
}

// execOne runs an UPDATE or DELETE that must affect exactly one row: none is
// store.ErrNotFound.
func execOne(ctx context.Context, q querier, what, query string, args ...any) error {
	n, err := execCount(ctx, q, what, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// execCount runs a statement and returns how many rows it changed.
func execCount(ctx context.Context, q querier, what, query string, args ...any) (int, error) {
	tag, err := q.Exec(ctx, numbered(query), args...)
	if err != nil {
		return 0, mapErr(what, err)
	}
	return int(tag.RowsAffected()), nil
}

// lockKey takes a transaction-level advisory lock on key (released at
// commit or rollback), for a rule no row can be locked for: the
// uniqueness of a device code among unexpired grants.
func lockKey(ctx context.Context, tx pgx.Tx, key string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key)
	return mapErr("lock "+key, err)
}

// mapErr wraps err with the operation name and translates PostgreSQL
// results to the store's sentinels: no row is store.ErrNotFound, a unique
// violation (23505) is store.ErrConflict, and a foreign key violation
// (23503: the referenced tenant, user or group does not exist in that
// tenant) is store.ErrNotFound.
func mapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case uniqueViolation:
			return fmt.Errorf("postgres: %s: %w: %w", what, store.ErrConflict, err)
		case foreignKeyViolation:
			return fmt.Errorf("postgres: %s: referenced row missing: %w: %w", what, store.ErrNotFound, err)
		}
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// nanos converts t to the stored form: unix nanoseconds, 0 for the zero
// time. timestamptz would keep microseconds only.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// timeCol scans a stored unix-nanosecond column into a UTC time.Time
// (0 gives the zero time).
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner (pgx scans into one).
func (c timeCol) Scan(src any) error {
	n, ok := src.(int64)
	if !ok {
		return fmt.Errorf("postgres: time column holds %T, want int64", src)
	}
	*c.t = time.Time{}
	if n != 0 {
		*c.t = time.Unix(0, n).UTC()
	}
	return nil
}

// blobCol scans a nullable BYTEA column, giving nil for NULL or empty.
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
		return fmt.Errorf("postgres: bytea column holds %T, want []byte", src)
	}
	return nil
}
