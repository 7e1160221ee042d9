package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sallyport/sallyport/internal/store"
)

// acmeUnder is the condition "key is prefix or under it" (? bound to
// prefix, prefix+"/" and prefix+"0": '0' follows '/', so the range holds
// exactly the keys starting with prefix+"/" in the column's "C" order,
// a range of the primary key's index).
const acmeUnder = `(key = ? OR (key > ? AND key < ?))`

func underArgs(prefix string) []any { return []any{prefix, prefix + "/", prefix + "0"} }

// PutACMEObject creates or replaces the object at o.Key.
func (s *Store) PutACMEObject(ctx context.Context, o store.ACMEObject) error {
	if o.Value == nil {
		o.Value = []byte{}
	}
	return exec(ctx, s.pool, "put ACME object",
		`INSERT INTO acme_objects (key, value, modified_at) VALUES (?, ?, ?)
		 ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified_at = excluded.modified_at`,
		o.Key, o.Value, nanos(o.Modified))
}

// ACMEObject returns the object at key with its value.
func (s *Store) ACMEObject(ctx context.Context, key string) (store.ACMEObject, error) {
	return getOne(ctx, s.pool, func(r scanner) (store.ACMEObject, error) {
		var o store.ACMEObject
		err := r.Scan(&o.Key, blobCol{&o.Value}, &o.Size, timeCol{&o.Modified})
		return o, err
	}, "ACME object", `SELECT key, value, octet_length(value)::BIGINT, modified_at FROM acme_objects WHERE key = ?`, key)
}

// ListACMEObjects returns the objects at prefix and under it, by key.
func (s *Store) ListACMEObjects(ctx context.Context, prefix string) ([]store.ACMEObject, error) {
	scan := func(r scanner) (store.ACMEObject, error) {
		var o store.ACMEObject
		err := r.Scan(&o.Key, &o.Size, timeCol{&o.Modified})
		return o, err
	}
	const cols = `SELECT key, octet_length(value)::BIGINT, modified_at FROM acme_objects`
	if prefix == "" {
		return getAll(ctx, s.pool, scan, "list ACME objects", cols+` ORDER BY key`)
	}
	return getAll(ctx, s.pool, scan, "list ACME objects", cols+` WHERE `+acmeUnder+` ORDER BY key`, underArgs(prefix)...)
}

// DeleteACMEObjects deletes the objects at prefix and under it.
func (s *Store) DeleteACMEObjects(ctx context.Context, prefix string) (int, error) {
	if prefix == "" {
		return execCount(ctx, s.pool, "delete ACME objects", `DELETE FROM acme_objects`)
	}
	return execCount(ctx, s.pool, "delete ACME objects", `DELETE FROM acme_objects WHERE `+acmeUnder, underArgs(prefix)...)
}

// TakeACMELock gives the lock to l.Owner unless another owner holds it
// unexpired at now: one upsert whose update applies only then (the
// conflicting row is locked while it decides, so racing callers on any
// instance take it one at a time).
func (s *Store) TakeACMELock(ctx context.Context, l store.ACMELock, now time.Time) (store.ACMELock, error) {
	var out store.ACMELock
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		n, err := execCount(ctx, tx, "take ACME lock",
			`INSERT INTO acme_locks (name, owner, expires_at) VALUES (?, ?, ?)
			 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			 WHERE acme_locks.owner = excluded.owner OR acme_locks.expires_at <= ?`,
			l.Name, l.Owner, nanos(l.ExpiresAt), nanos(now))
		if err != nil {
			return err
		}
		out, err = getOne(ctx, tx, scanACMELock, "ACME lock", `SELECT name, owner, expires_at FROM acme_locks WHERE name = ?`, l.Name)
		if err == nil && n == 0 {
			err = store.ErrConflict
		}
		return err
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return store.ACMELock{}, err
	}
	return out, err
}

func scanACMELock(r scanner) (store.ACMELock, error) {
	var l store.ACMELock
	err := r.Scan(&l.Name, &l.Owner, timeCol{&l.ExpiresAt})
	return l, err
}

// ReleaseACMELock ends owner's hold of the lock.
func (s *Store) ReleaseACMELock(ctx context.Context, name, owner string) error {
	return execOne(ctx, s.pool, "release ACME lock", `DELETE FROM acme_locks WHERE name = ? AND owner = ?`, name, owner)
}
