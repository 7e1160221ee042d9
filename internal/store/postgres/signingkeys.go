package postgres

import (
	"context"
	"fmt"
	"github.com/jackc/pgx/v5"

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
	return getAll(ctx, s.pool, scanSigningKey, "list signing keys",
		`SELECT `+signingKeyCols+` FROM tenant_signing_keys WHERE tenant_id = ? ORDER BY sign_from, kid`, tenantID)
}

// AddTenantSigningKey stores k: the tenant's first key (replaces ""), or
// the successor of the key replaces, which gets k.SignFrom as its end, in
// one transaction that first locks the tenant's row, so that two rotating
// callers (on any instance) cannot both succeed.
func (s *Store) AddTenantSigningKey(ctx context.Context, k store.SigningKey, replaces string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := getOne(ctx, tx, scanString, "lock tenant",
			`SELECT id FROM tenants WHERE id = ? FOR NO KEY UPDATE`, k.TenantID); err != nil {
			return err
		}
		if replaces == "" {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM tenant_signing_keys WHERE tenant_id = $1`, k.TenantID).Scan(&n); err != nil {
				return mapErr("count signing keys", err)
			}
			if n > 0 {
				return fmt.Errorf("postgres: add first signing key: the tenant has %d: %w", n, store.ErrConflict)
			}
		} else {
			old, err := getOne(ctx, tx, scanSigningKey, "signing key",
				`SELECT `+signingKeyCols+` FROM tenant_signing_keys WHERE tenant_id = ? AND kid = ?`, k.TenantID, replaces)
			if err != nil {
				return err
			}
			if !old.SignUntil.IsZero() {
				return fmt.Errorf("postgres: replace signing key %s: already replaced: %w", replaces, store.ErrConflict)
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
	return execOne(ctx, s.pool, "delete signing key",
		`DELETE FROM tenant_signing_keys WHERE tenant_id = ? AND kid = ?`, tenantID, kid)
}
