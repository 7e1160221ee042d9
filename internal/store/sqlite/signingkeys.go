package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sallyport/sallyport/internal/store"
)

const signingKeyCols = `tenant_id, kid, key_pem, created_at, sign_from, sign_until`

func scanSigningKey(r scanner) (store.SigningKey, error) {
	var k store.SigningKey
	err := r.Scan(&k.TenantID, &k.KID, blobCol{&k.KeyPEM}, timeCol{&k.CreatedAt}, timeCol{&k.SignFrom}, timeCol{&k.SignUntil})
	return k, err
}

// TenantSigningKeys returns the tenant's signing keys by SignFrom.
func (s *Store) TenantSigningKeys(ctx context.Context, tenantID string) ([]store.SigningKey, error) {
	return getAll(ctx, s.db, scanSigningKey, "list signing keys",
		`SELECT `+signingKeyCols+` FROM tenant_signing_keys WHERE tenant_id = ? ORDER BY sign_from, kid`, tenantID)
}

// AddTenantSigningKey stores k: the tenant's first key (replaces ""), or
// the successor of the key replaces, which gets k.SignFrom as its end, in
// one write transaction so that two rotating callers cannot both succeed.
func (s *Store) AddTenantSigningKey(ctx context.Context, k store.SigningKey, replaces string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if replaces == "" {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenant_signing_keys WHERE tenant_id = ?`, k.TenantID).Scan(&n); err != nil {
				return mapErr("count signing keys", err)
			}
			if n > 0 {
				return fmt.Errorf("sqlite: add first signing key: the tenant has %d: %w", n, store.ErrConflict)
			}
		} else {
			old, err := getOne(ctx, tx, scanSigningKey, "signing key",
				`SELECT `+signingKeyCols+` FROM tenant_signing_keys WHERE tenant_id = ? AND kid = ?`, k.TenantID, replaces)
			if err != nil {
				return err
			}
			if !old.SignUntil.IsZero() {
				return fmt.Errorf("sqlite: replace signing key %s: already replaced: %w", replaces, store.ErrConflict)
			}
			if err := execOne(ctx, tx, "end signing key",
				`UPDATE tenant_signing_keys SET sign_until = ? WHERE tenant_id = ? AND kid = ?`,
				nanos(k.SignFrom), k.TenantID, replaces); err != nil {
				return err
			}
		}
		return exec(ctx, tx, "add signing key",
			`INSERT INTO tenant_signing_keys (`+signingKeyCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
			k.TenantID, k.KID, k.KeyPEM, nanos(k.CreatedAt), nanos(k.SignFrom), nanos(k.SignUntil))
	})
}

// DeleteTenantSigningKey removes the tenant's key.
func (s *Store) DeleteTenantSigningKey(ctx context.Context, tenantID, kid string) error {
	return execOne(ctx, s.db, "delete signing key",
		`DELETE FROM tenant_signing_keys WHERE tenant_id = ? AND kid = ?`, tenantID, kid)
}
