package postgres

import (
	"context"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// userCols is the column list scanUser reads.
const userCols = `id, tenant_id, name, role, password_hash, created_at,
	email, display_name, disabled, external, totp_secret, mfa_enrolled_at, recovery_codes`

func scanUser(r scanner) (store.User, error) {
	var u store.User
	err := r.Scan(&u.ID, &u.TenantID, &u.Name, &u.Role, &u.PasswordHash, timeCol{&u.CreatedAt},
		&u.Email, &u.DisplayName, &u.Disabled, &u.External, blobCol{&u.TOTPSecret}, timeCol{&u.MFAEnrolledAt},
		codesCol{&u.RecoveryCodes})
	return u, err
}

func insertUser(ctx context.Context, q querier, u store.User) error {
	codes, err := encodeCodes(u.RecoveryCodes)
	if err != nil {
		return err
	}
	return exec(ctx, q, "create user",
		`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.TenantID, u.Name, string(u.Role), u.PasswordHash, nanos(u.CreatedAt),
		u.Email, u.DisplayName, u.Disabled, u.External, nullBlob(u.TOTPSecret), nanos(u.MFAEnrolledAt), codes)
}

// CreateUser inserts u; a name already taken in any tenant is
// store.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return insertUser(ctx, s.pool, u)
}

// UserByName returns the user named name, whatever its tenant.
func (s *Store) UserByName(ctx context.Context, name string) (store.User, error) {
	return getOne(ctx, s.pool, scanUser, "user by name",
		`SELECT `+userCols+` FROM users WHERE name = ?`, name)
}

// UserByID returns the user id of tenantID.
func (s *Store) UserByID(ctx context.Context, tenantID, id string) (store.User, error) {
	return getOne(ctx, s.pool, scanUser, "user by id",
		`SELECT `+userCols+` FROM users WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

// ListUsers returns the users of tenantID, ordered by name.
func (s *Store) ListUsers(ctx context.Context, tenantID string) ([]store.User, error) {
	return getAll(ctx, s.pool, scanUser, "list users",
		`SELECT `+userCols+` FROM users WHERE tenant_id = ? ORDER BY name`, tenantID)
}

// tokenCols is the column list scanToken reads.
const tokenCols = `id, user_id, tenant_id, hash, created_at, expires_at`

func scanToken(r scanner) (store.APIToken, error) {
	var t store.APIToken
	err := r.Scan(&t.ID, &t.UserID, &t.TenantID, &t.Hash, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt})
	return t, err
}

// CreateAPIToken inserts t.
func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) error {
	return exec(ctx, s.pool, "create API token",
		`INSERT INTO api_tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.TenantID, t.Hash, nanos(t.CreatedAt), nanos(t.ExpiresAt))
}

// APITokenByHash returns the token whose SHA-256 hex hash is hash. It does
// not check expiry.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (store.APIToken, error) {
	return getOne(ctx, s.pool, scanToken, "API token by hash",
		`SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash)
}

// ListAPITokens returns the tenant's tokens, expired or not.
func (s *Store) ListAPITokens(ctx context.Context, tenantID string) ([]store.APIToken, error) {
	return getAll(ctx, s.pool, scanToken, "list API tokens",
		`SELECT `+tokenCols+` FROM api_tokens WHERE tenant_id = ? ORDER BY created_at, id`, tenantID)
}

// DeleteAPIToken deletes the token id.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) error {
	return execOne(ctx, s.pool, "delete API token", `DELETE FROM api_tokens WHERE id = ?`, id)
}

// DeleteExpiredAPITokens deletes the tokens whose ExpiresAt is before now
// (a zero ExpiresAt counts as expired).
func (s *Store) DeleteExpiredAPITokens(ctx context.Context, now time.Time) error {
	return exec(ctx, s.pool, "delete expired API tokens",
		`DELETE FROM api_tokens WHERE expires_at < ?`, nanos(now))
}
