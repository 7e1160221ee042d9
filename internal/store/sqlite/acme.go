package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// acmeUnder is the condition "key is prefix or under it" (? bound to
// prefix, prefix+"/" and prefix+"0": '0' follows '/', so the range holds
// exactly the keys starting with prefix+"/", in the index's byte order).
const acmeUnder = `(key = ? OR (key > ? AND key < ?))`

func underArgs(prefix string) []any { return []any{prefix, prefix + "/", prefix + "0"} }

// PutACMEObject creates or replaces the object at o.Key.
func (s *Store) PutACMEObject(ctx context.Context, o store.ACMEObject) error {
	if o.Value == nil {
		o.Value = []byte{}
	}
	return exec(ctx, s.db, "put ACME object",
		`INSERT INTO acme_objects (key, value, modified_at) VALUES (?, ?, ?)
		 ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified_at = excluded.modified_at`,
		o.Key, o.Value, nanos(o.Modified))
}

// ACMEObject returns the object at key with its value.
func (s *Store) ACMEObject(ctx context.Context, key string) (store.ACMEObject, error) {
	return getOne(ctx, s.db, func(r scanner) (store.ACMEObject, error) {
		var o store.ACMEObject
		err := r.Scan(&o.Key, blobCol{&o.Value}, &o.Size, timeCol{&o.Modified})
		return o, err
	}, "ACME object", `SELECT key, value, length(value), modified_at FROM acme_objects WHERE key = ?`, key)
}

// ListACMEObjects returns the objects at prefix and under it, by key.
func (s *Store) ListACMEObjects(ctx context.Context, prefix string) ([]store.ACMEObject, error) {
	scan := func(r scanner) (store.ACMEObject, error) {
		var o store.ACMEObject
		err := r.Scan(&o.Key, &o.Size, timeCol{&o.Modified})
		return o, err
	}
	const cols = `SELECT key, length(value), modified_at FROM acme_objects`
	if prefix == "" {
		return getAll(ctx, s.db, scan, "list ACME objects", cols+` ORDER BY key`)
	}
	return getAll(ctx, s.db, scan, "list ACME objects", cols+` WHERE `+acmeUnder+` ORDER BY key`, underArgs(prefix)...)
}

// DeleteACMEObjects deletes the objects at prefix and under it.
func (s *Store) DeleteACMEObjects(ctx context.Context, prefix string) (int, error) {
	q, args := `DELETE FROM acme_objects`, []any(nil)
	if prefix != "" {
		q, args = q+` WHERE `+acmeUnder, underArgs(prefix)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, mapErr("delete ACME objects", err)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr("delete ACME objects", err)
}

// TakeACMELock gives the lock to l.Owner unless another owner holds it
// unexpired at now.
func (s *Store) TakeACMELock(ctx context.Context, l store.ACMELock, now time.Time) (store.ACMELock, error) {
	var out store.ACMELock
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO acme_locks (name, owner, expires_at) VALUES (?, ?, ?)
			 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			 WHERE acme_locks.owner = excluded.owner OR acme_locks.expires_at <= ?`,
			l.Name, l.Owner, nanos(l.ExpiresAt), nanos(now))
		if err != nil {
			return mapErr("take ACME lock", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapErr("take ACME lock", err)
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
	return execOne(ctx, s.db, "release ACME lock", `DELETE FROM acme_locks WHERE name = ? AND owner = ?`, name, owner)
}
