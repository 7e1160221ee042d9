-- 0015_signin: sign-in for pre-authentication — the users' profile and
-- second factor, each tenant's sign-in settings and OpenID provider, the
-- signed-in users' sessions, and the short-lived grants of sign-ins in
-- progress (one-time codes, OpenID states, device authorizations).
--
-- As in 0012, every row carries its tenant and every reference to a user
-- is a (tenant_id, id) foreign key, so a session or a grant can only name a
-- user of its own tenant; deleting a user deletes its sessions and grants
-- (ON DELETE CASCADE). Secrets (the TOTP secret, the provider's client
-- secret) are stored as the caller gives them: the data directory's store
-- wraps them. Tokens and codes are stored only as SHA-256 hashes.

-- The user's profile and second factor. Existing users get the zero
-- values: no email, no display name, enabled, a local account, no second
-- factor, no recovery codes.
ALTER TABLE users ADD COLUMN email           TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN display_name    TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
-- "ISSUER#SUBJECT" at the tenant's OpenID provider; '' for a local account.
ALTER TABLE users ADD COLUMN external        TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN totp_secret     BLOB;
ALTER TABLE users ADD COLUMN mfa_enrolled_at INTEGER NOT NULL DEFAULT 0;
-- A JSON array of the SHA-256 hashes (hex) of the unused recovery codes.
ALTER TABLE users ADD COLUMN recovery_codes  TEXT    NOT NULL DEFAULT '[]';

CREATE UNIQUE INDEX users_tenant_external ON users (tenant_id, external) WHERE external <> '';

-- A tenant without a row has the default settings. Durations are INTEGER
-- nanoseconds (0: the cloud's default).
CREATE TABLE tenant_settings (
    tenant_id        TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    require_mfa      INTEGER NOT NULL CHECK (require_mfa IN (0, 1)),
    session_lifetime INTEGER NOT NULL,
    session_idle     INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- At most one OpenID provider per tenant.
CREATE TABLE identity_providers (
    tenant_id     TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    issuer        TEXT    NOT NULL,
    client_id     TEXT    NOT NULL,
    client_secret BLOB,
    ca_pem        BLOB,
    groups_claim  TEXT    NOT NULL,
    email_claim   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- A session's parent_id names the session it was made from ('' for none):
-- ending a session ends those made from it (the store does it, in the
-- transaction that deletes the parent).
CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    hash       TEXT    NOT NULL UNIQUE,
    tenant_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    app_id     TEXT    NOT NULL,
    parent_id  TEXT    NOT NULL,
    method     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_parent ON sessions (tenant_id, parent_id) WHERE parent_id <> '';
CREATE INDEX sessions_expires ON sessions (expires_at);

-- A grant is found by its kind and hash. user_id is NULL until the user is
-- known. A device authorization's user_code is unique among the unexpired
-- grants: CreateGrant checks it in its transaction (an expired grant keeps
-- its code until it is deleted, so no unique index can say it).
CREATE TABLE grants (
    kind       TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    app_id     TEXT    NOT NULL,
    user_id    TEXT,
    user_code  TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    data       BLOB,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    polled_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX grants_user_code ON grants (user_code, expires_at) WHERE user_code <> '';
CREATE INDEX grants_expires ON grants (expires_at);
CREATE INDEX grants_user ON grants (tenant_id, user_id) WHERE user_id IS NOT NULL;
