package postgres

import (
	"context"
	"fmt"
	"github.com/jackc/pgx/v5"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// regTokenCols is the column list scanRegToken reads.
const regTokenCols = `id, tenant_id, group_id, hash, created_by, created_at, expires_at,
	max_uses, uses, revoked_at, revoked_by`

func scanRegToken(r scanner) (store.RegistrationToken, error) {
	var t store.RegistrationToken
	err := r.Scan(&t.ID, &t.TenantID, &t.GroupID, &t.Hash, &t.CreatedBy, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt},
		&t.MaxUses, &t.Uses, timeCol{&t.RevokedAt}, &t.RevokedBy)
	return t, err
}

// CreateRegistrationToken inserts t. Its group must belong to its tenant,
// otherwise the result is store.ErrNotFound.
func (s *Store) CreateRegistrationToken(ctx context.Context, t store.RegistrationToken) error {
	return exec(ctx, s.pool, "create registration token",
		`INSERT INTO registration_tokens (`+regTokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.TenantID, t.GroupID, t.Hash, t.CreatedBy, nanos(t.CreatedAt), nanos(t.ExpiresAt),
		t.MaxUses, t.Uses, nanos(t.RevokedAt), t.RevokedBy)
}

// ListRegistrationTokens returns the tokens of tenantID, newest first.
func (s *Store) ListRegistrationTokens(ctx context.Context, tenantID string) ([]store.RegistrationToken, error) {
	return getAll(ctx, s.pool, scanRegToken, "list registration tokens",
		`SELECT `+regTokenCols+` FROM registration_tokens WHERE tenant_id = ? ORDER BY created_at DESC, id`, tenantID)
}

// RegistrationTokenByHash returns the token whose SHA-256 hex hash is hash.
func (s *Store) RegistrationTokenByHash(ctx context.Context, hash string) (store.RegistrationToken, error) {
	return regTokenByHash(ctx, s.pool, hash)
}

func regTokenByHash(ctx context.Context, q querier, hash string) (store.RegistrationToken, error) {
	return getOne(ctx, q, scanRegToken, "registration token by hash",
		`SELECT `+regTokenCols+` FROM registration_tokens WHERE hash = ?`, hash)
}

// RevokeRegistrationToken revokes the token id of tenantID (a token
// already revoked keeps its first revocation) and returns it.
func (s *Store) RevokeRegistrationToken(ctx context.Context, tenantID, id, by string, at time.Time) (store.RegistrationToken, error) {
	var out store.RegistrationToken
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := exec(ctx, tx, "revoke registration token",
			`UPDATE registration_tokens SET revoked_at = ?, revoked_by = ?
			 WHERE tenant_id = ? AND id = ? AND revoked_at = 0`, nanos(at), by, tenantID, id)
		if err != nil {
			return err
		}
		out, err = getOne(ctx, tx, scanRegToken, "registration token by id",
			`SELECT `+regTokenCols+` FROM registration_tokens WHERE tenant_id = ? AND id = ?`, tenantID, id)
		return err
	})
	return out, err
}

// UseRegistrationToken checks the token with hash and counts one use, in
// one transaction that locks the token's row (SELECT ... FOR UPDATE), so
// concurrent callers are serialised and the count never exceeds MaxUses.
func (s *Store) UseRegistrationToken(ctx context.Context, hash string, now time.Time) (store.RegistrationToken, error) {
	var out store.RegistrationToken
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t, err := getOne(ctx, tx, scanRegToken, "registration token by hash",
			`SELECT `+regTokenCols+` FROM registration_tokens WHERE hash = ? FOR UPDATE`, hash)
		if err != nil {
			return err
		}
		out = t
		if err := t.Check(now); err != nil {
			return fmt.Errorf("postgres: use registration token %s: %w", t.ID, err)
		}
		if err := execOne(ctx, tx, "use registration token",
			`UPDATE registration_tokens SET uses = uses + 1 WHERE id = ?`, t.ID); err != nil {
			return err
		}
		out.Uses++
		return nil
	})
	return out, err
}
