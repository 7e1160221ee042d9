package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/jackc/pgx/v5"
	"slices"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// codesCol scans the recovery_codes column (a JSON array of hashes); an
// empty array gives nil, so a user without codes reads back as it was made.
type codesCol struct{ codes *[]string }

// Scan implements sql.Scanner.
func (c codesCol) Scan(src any) error {
	*c.codes = nil
	var raw []byte
	switch v := src.(type) {
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	default:
		return fmt.Errorf("postgres: recovery codes column holds %T, want text", src)
	}
	var codes []string
	if err := json.Unmarshal(raw, &codes); err != nil {
		return fmt.Errorf("postgres: recovery codes column: %w", err)
	}
	if len(codes) > 0 {
		*c.codes = codes
	}
	return nil
}

// encodeCodes is the stored form of recovery code hashes ("[]" for none).
func encodeCodes(codes []string) (string, error) {
	if len(codes) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(codes)
	if err != nil {
		return "", fmt.Errorf("postgres: encode recovery codes: %w", err)
	}
	return string(b), nil
}

// nullBlob stores an empty byte slice as NULL.
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// UpdateUser replaces the role, email, display name, disabled flag and
// password hash of the user u.ID of u.TenantID. Its name, external
// identity and second factor are left as they are.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	return execOne(ctx, s.pool, "update user",
		`UPDATE users SET role = ?, email = ?, display_name = ?, disabled = ?, password_hash = ?
		 WHERE tenant_id = ? AND id = ?`,
		string(u.Role), u.Email, u.DisplayName, u.Disabled, u.PasswordHash, u.TenantID, u.ID)
}

// SetUserMFA enrols the user's second factor (secret not nil), or removes
// it with its enrolment time and recovery codes (secret nil).
func (s *Store) SetUserMFA(ctx context.Context, tenantID, userID string, secret []byte, enrolledAt time.Time, recovery []string) error {
	if len(secret) == 0 {
		enrolledAt, recovery = time.Time{}, nil
	}
	codes, err := encodeCodes(recovery)
	if err != nil {
		return err
	}
	return execOne(ctx, s.pool, "set user second factor",
		`UPDATE users SET totp_secret = ?, mfa_enrolled_at = ?, recovery_codes = ? WHERE tenant_id = ? AND id = ?`,
		nullBlob(secret), nanos(enrolledAt), codes, tenantID, userID)
}

// UseRecoveryCode removes one occurrence of hash from the user's recovery
// codes in one transaction that locks the user's row (SELECT ... FOR
// UPDATE), so racing callers see each other's removal; a hash the user
// does not have (or an unknown user) is store.ErrNotFound.
func (s *Store) UseRecoveryCode(ctx context.Context, tenantID, userID, hash string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		scan := func(r scanner) ([]string, error) {
			var codes []string
			err := r.Scan(codesCol{&codes})
			return codes, err
		}
		codes, err := getOne(ctx, tx, scan, "recovery codes",
			`SELECT recovery_codes FROM users WHERE tenant_id = ? AND id = ? FOR UPDATE`, tenantID, userID)
		if err != nil {
			return err
		}
		i := slices.Index(codes, hash)
		if hash == "" || i < 0 {
			return fmt.Errorf("postgres: use recovery code: the user has no such code: %w", store.ErrNotFound)
		}
		enc, err := encodeCodes(slices.Delete(codes, i, i+1))
		if err != nil {
			return err
		}
		return execOne(ctx, tx, "use recovery code",
			`UPDATE users SET recovery_codes = ? WHERE tenant_id = ? AND id = ?`, enc, tenantID, userID)
	})
}

// UserByExternal returns the user of tenantID with the external identity
// external; "" (a local account) never matches.
func (s *Store) UserByExternal(ctx context.Context, tenantID, external string) (store.User, error) {
	return getOne(ctx, s.pool, scanUser, "user by external identity",
		`SELECT `+userCols+` FROM users WHERE tenant_id = ? AND external = ? AND external <> ''`, tenantID, external)
}

// TenantSettings returns the tenant's sign-in settings: the zero settings
// (with TenantID) when it never set them, store.ErrNotFound for an unknown
// tenant.
func (s *Store) TenantSettings(ctx context.Context, tenantID string) (store.TenantSettings, error) {
	scan := func(r scanner) (store.TenantSettings, error) {
		var ts store.TenantSettings
		var lifetime, idle int64
		err := r.Scan(&ts.TenantID, &ts.RequireMFA, &lifetime, &idle, timeCol{&ts.UpdatedAt})
		ts.SessionLifetime, ts.SessionIdle = time.Duration(lifetime), time.Duration(idle)
		return ts, err
	}
	return getOne(ctx, s.pool, scan, "tenant settings",
		`SELECT t.id, COALESCE(ts.require_mfa, false), COALESCE(ts.session_lifetime, 0), COALESCE(ts.session_idle, 0), COALESCE(ts.updated_at, 0)
		 FROM tenants t LEFT JOIN tenant_settings ts ON ts.tenant_id = t.id WHERE t.id = ?`, tenantID)
}

// SetTenantSettings creates or replaces the tenant's settings; an unknown
// tenant is store.ErrNotFound.
func (s *Store) SetTenantSettings(ctx context.Context, ts store.TenantSettings) error {
	return exec(ctx, s.pool, "set tenant settings",
		`INSERT INTO tenant_settings (tenant_id, require_mfa, session_lifetime, session_idle, updated_at) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (tenant_id) DO UPDATE SET require_mfa = excluded.require_mfa, session_lifetime = excluded.session_lifetime,
		   session_idle = excluded.session_idle, updated_at = excluded.updated_at`,
		ts.TenantID, ts.RequireMFA, int64(ts.SessionLifetime), int64(ts.SessionIdle), nanos(ts.UpdatedAt))
}

const providerCols = `tenant_id, issuer, client_id, client_secret, ca_pem, groups_claim, email_claim, created_at, updated_at`

func scanProvider(r scanner) (store.IdentityProvider, error) {
	var p store.IdentityProvider
	err := r.Scan(&p.TenantID, &p.Issuer, &p.ClientID, blobCol{&p.ClientSecret}, blobCol{&p.CAPEM},
		&p.GroupsClaim, &p.EmailClaim, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt})
	return p, err
}

// SetIdentityProvider creates the tenant's provider, or replaces every
// field of the one it has but CreatedAt (it keeps when the provider was
// first set). An unknown tenant is store.ErrNotFound.
func (s *Store) SetIdentityProvider(ctx context.Context, p store.IdentityProvider) error {
	return exec(ctx, s.pool, "set identity provider",
		`INSERT INTO identity_providers (`+providerCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (tenant_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
		   client_secret = excluded.client_secret, ca_pem = excluded.ca_pem, groups_claim = excluded.groups_claim,
		   email_claim = excluded.email_claim, updated_at = excluded.updated_at`,
		p.TenantID, p.Issuer, p.ClientID, nullBlob(p.ClientSecret), nullBlob(p.CAPEM),
		p.GroupsClaim, p.EmailClaim, nanos(p.CreatedAt), nanos(p.UpdatedAt))
}

// IdentityProviderOf returns the tenant's provider.
func (s *Store) IdentityProviderOf(ctx context.Context, tenantID string) (store.IdentityProvider, error) {
	return getOne(ctx, s.pool, scanProvider, "identity provider",
		`SELECT `+providerCols+` FROM identity_providers WHERE tenant_id = ?`, tenantID)
}

// ListIdentityProviders returns every tenant's provider, by tenant id.
func (s *Store) ListIdentityProviders(ctx context.Context) ([]store.IdentityProvider, error) {
	return getAll(ctx, s.pool, scanProvider, "list identity providers",
		`SELECT `+providerCols+` FROM identity_providers ORDER BY tenant_id`)
}

// DeleteIdentityProvider removes the tenant's provider. The users it
// created stay (with their External identity).
func (s *Store) DeleteIdentityProvider(ctx context.Context, tenantID string) error {
	return execOne(ctx, s.pool, "delete identity provider", `DELETE FROM identity_providers WHERE tenant_id = ?`, tenantID)
}

const sessionCols = `id, hash, tenant_id, user_id, kind, app_id, parent_id, method, created_at, expires_at, seen_at`

func scanSession(r scanner) (store.Session, error) {
	var ss store.Session
	err := r.Scan(&ss.ID, &ss.Hash, &ss.TenantID, &ss.UserID, &ss.Kind, &ss.AppID, &ss.ParentID, &ss.Method,
		timeCol{&ss.CreatedAt}, timeCol{&ss.ExpiresAt}, timeCol{&ss.SeenAt})
	return ss, err
}

// CreateSession inserts ss: a user not of ss.TenantID is
// store.ErrNotFound, an id or hash already stored store.ErrConflict.
func (s *Store) CreateSession(ctx context.Context, ss store.Session) error {
	return exec(ctx, s.pool, "create session",
		`INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ss.ID, ss.Hash, ss.TenantID, ss.UserID, ss.Kind, ss.AppID, ss.ParentID, ss.Method,
		nanos(ss.CreatedAt), nanos(ss.ExpiresAt), nanos(ss.SeenAt))
}

// SessionByHash returns the session with hash, expired or not.
func (s *Store) SessionByHash(ctx context.Context, hash string) (store.Session, error) {
	return getOne(ctx, s.pool, scanSession, "session by hash",
		`SELECT `+sessionCols+` FROM sessions WHERE hash = ?`, hash)
}

// ListSessions returns the tenant's sessions, expired or not, parents
// (no parent_id) first.
func (s *Store) ListSessions(ctx context.Context, tenantID string) ([]store.Session, error) {
	return getAll(ctx, s.pool, scanSession, "list sessions",
		`SELECT `+sessionCols+` FROM sessions WHERE tenant_id = ? ORDER BY parent_id <> '', created_at, id`, tenantID)
}

// TouchSession sets the session's SeenAt to seen unless it is later
// already.
func (s *Store) TouchSession(ctx context.Context, tenantID, id string, seen time.Time) error {
	return execOne(ctx, s.pool, "touch session",
		`UPDATE sessions SET seen_at = GREATEST(seen_at, ?) WHERE tenant_id = ? AND id = ?`, nanos(seen), tenantID, id)
}

// DeleteSession deletes the session and every session made from it, at
// any depth, in one statement: under READ COMMITTED, separate reads and
// deletes would miss (and not report) a session another instance made in
// between. The ids ended are returned, the session's own first, then the
// others by id.
func (s *Store) DeleteSession(ctx context.Context, tenantID, id string) ([]string, error) {
	ids, err := getAll(ctx, s.pool, scanString, "delete session",
		`WITH RECURSIVE tree (id) AS (
		     SELECT id FROM sessions WHERE tenant_id = ? AND id = ?
		     UNION
		     SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id
		     WHERE s.tenant_id = ? AND s.parent_id <> ''
		 )
		 DELETE FROM sessions WHERE tenant_id = ? AND id IN (SELECT id FROM tree) RETURNING id`,
		tenantID, id, tenantID, tenantID)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("postgres: delete session: %w", store.ErrNotFound)
	}
	slices.SortFunc(ids, func(a, b string) int {
		switch {
		case a == id:
			return -1
		case b == id:
			return 1
		}
		return strings.Compare(a, b)
	})
	return ids, nil
}

// DeleteUserSessions deletes every session of the user in one statement,
// returning the ids it deleted by id (empty when it had none, or is
// unknown).
func (s *Store) DeleteUserSessions(ctx context.Context, tenantID, userID string) ([]string, error) {
	ids, err := getAll(ctx, s.pool, scanString, "delete sessions of user",
		`DELETE FROM sessions WHERE tenant_id = ? AND user_id = ? RETURNING id`, tenantID, userID)
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// DeleteExpiredSessions deletes the sessions whose ExpiresAt is before
// now, returning how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	return execCount(ctx, s.pool, "delete expired sessions", `DELETE FROM sessions WHERE expires_at < ?`, nanos(now))
}

const grantCols = `kind, hash, tenant_id, app_id, user_id, user_code, status, data, created_at, expires_at, polled_at`

func scanGrant(r scanner) (store.Grant, error) {
	var g store.Grant
	var user *string
	err := r.Scan(&g.Kind, &g.Hash, &g.TenantID, &g.AppID, &user, &g.UserCode, &g.Status, blobCol{&g.Data},
		timeCol{&g.CreatedAt}, timeCol{&g.ExpiresAt}, timeCol{&g.PolledAt})
	g.UserID = deref(user)
	return g, err
}

// CreateGrant inserts g in one transaction: a kind and hash already
// stored, or a UserCode of a grant unexpired at g.CreatedAt, is
// store.ErrConflict; an unknown tenant, or a UserID not of g.TenantID,
// store.ErrNotFound. The user code is checked under an advisory lock on
// the code, held until the insert commits: two callers (on any instance)
// cannot both pass the check.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if g.UserCode != "" {
			if err := lockKey(ctx, tx, "sallyport grant user code "+g.UserCode); err != nil {
				return err
			}
			var taken bool
			if err := tx.QueryRow(ctx,
				`SELECT EXISTS (SELECT 1 FROM grants WHERE user_code = $1 AND expires_at >= $2)`,
				g.UserCode, nanos(g.CreatedAt)).Scan(&taken); err != nil {
				return mapErr("check user code", err)
			}
			if taken {
				return fmt.Errorf("postgres: create grant: the user code is in use: %w", store.ErrConflict)
			}
		}
		return exec(ctx, tx, "create grant",
			`INSERT INTO grants (`+grantCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.Kind, g.Hash, g.TenantID, g.AppID, nullable(g.UserID), g.UserCode, g.Status, nullBlob(g.Data),
			nanos(g.CreatedAt), nanos(g.ExpiresAt), nanos(g.PolledAt))
	})
}

// TakeGrant deletes and returns, in one statement, the grant of kind with
// hash unless it expired before now: a racing DELETE waits for the row
// lock and then finds the row gone. An expired grant is left for
// DeleteExpiredGrants.
func (s *Store) TakeGrant(ctx context.Context, kind, hash string, now time.Time) (store.Grant, error) {
	g, err := getOne(ctx, s.pool, scanGrant, "take grant",
		`DELETE FROM grants WHERE kind = ? AND hash = ? AND expires_at >= ? RETURNING `+grantCols,
		kind, hash, nanos(now))
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// GrantByHash returns the grant of kind with hash, expired or not.
func (s *Store) GrantByHash(ctx context.Context, kind, hash string) (store.Grant, error) {
	return getOne(ctx, s.pool, scanGrant, "grant by hash",
		`SELECT `+grantCols+` FROM grants WHERE kind = ? AND hash = ?`, kind, hash)
}

// GrantByUserCode returns the device grant with userCode that has not
// expired at now.
func (s *Store) GrantByUserCode(ctx context.Context, userCode string, now time.Time) (store.Grant, error) {
	return getOne(ctx, s.pool, scanGrant, "grant by user code",
		`SELECT `+grantCols+` FROM grants WHERE kind = ? AND user_code = ? AND user_code <> '' AND expires_at >= ?
		 ORDER BY expires_at DESC LIMIT 1`, store.GrantDevice, userCode, nanos(now))
}

// UpdateGrant replaces the UserID, Status, Data and PolledAt of the grant
// of g.Kind with g.Hash; a UserID not of the grant's tenant is
// store.ErrNotFound.
func (s *Store) UpdateGrant(ctx context.Context, g store.Grant) error {
	return execOne(ctx, s.pool, "update grant",
		`UPDATE grants SET user_id = ?, status = ?, data = ?, polled_at = ? WHERE kind = ? AND hash = ?`,
		nullable(g.UserID), g.Status, nullBlob(g.Data), nanos(g.PolledAt), g.Kind, g.Hash)
}

// DeleteExpiredGrants deletes the grants whose ExpiresAt is before now,
// returning how many.
func (s *Store) DeleteExpiredGrants(ctx context.Context, now time.Time) (int, error) {
	return execCount(ctx, s.pool, "delete expired grants", `DELETE FROM grants WHERE expires_at < ?`, nanos(now))
}

// ListMemberships returns every membership of the tenant's user groups, by
// group then user id.
func (s *Store) ListMemberships(ctx context.Context, tenantID string) ([]store.Membership, error) {
	scan := func(r scanner) (store.Membership, error) {
		var m store.Membership
		err := r.Scan(&m.TenantID, &m.UserGroupID, &m.UserID, timeCol{&m.AddedAt})
		return m, err
	}
	return getAll(ctx, s.pool, scan, "list memberships",
		`SELECT tenant_id, group_id, user_id, added_at FROM user_group_members WHERE tenant_id = ? ORDER BY group_id, user_id`, tenantID)
}

// ListTenantAssignments returns every assignment of the tenant, by
// application, then oldest first.
func (s *Store) ListTenantAssignments(ctx context.Context, tenantID string) ([]store.Assignment, error) {
	return getAll(ctx, s.pool, scanAssignment, "list tenant assignments",
		`SELECT tenant_id, app_id, user_id, group_id, created_at FROM app_assignments
		 WHERE tenant_id = ? ORDER BY app_id, created_at, seq`, tenantID)
}

func scanString(r scanner) (string, error) {
	var v string
	err := r.Scan(&v)
	return v, err
}
