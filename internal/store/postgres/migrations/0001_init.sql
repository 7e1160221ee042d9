-- 0001_init: the schema of the cloud service's store, equal to the SQLite
-- store's after all its migrations (internal/store/sqlite/migrations).
--
-- Times are BIGINT unix nanoseconds, 0 for the zero time: timestamptz
-- keeps microseconds only, and a store must return exactly the time it was
-- given (storetest). Text columns use the "C" collation, so that ORDER BY
-- and equality are byte-wise as in SQLite, whatever the database's locale.
-- Every tenant's object carries its tenant, and references to users,
-- groups and applications are (tenant_id, id) foreign keys, so a row can
-- only join objects of its own tenant.

CREATE TABLE tenants (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    domain     TEXT COLLATE "C" NOT NULL UNIQUE,
    label      TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tenant_cas (
    tenant_id TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES tenants (id),
    cert_pem  BYTEA NOT NULL,
    key_pem   BYTEA NOT NULL
);

CREATE TABLE users (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id       TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    name            TEXT COLLATE "C" NOT NULL UNIQUE,
    role            TEXT COLLATE "C" NOT NULL,
    password_hash   TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL,
    email           TEXT COLLATE "C" NOT NULL DEFAULT '',
    display_name    TEXT COLLATE "C" NOT NULL DEFAULT '',
    disabled        BOOLEAN NOT NULL DEFAULT false,
    -- "ISSUER#SUBJECT" at the tenant's OpenID provider; '' for a local account.
    external        TEXT COLLATE "C" NOT NULL DEFAULT '',
    totp_secret     BYTEA,
    mfa_enrolled_at BIGINT NOT NULL DEFAULT 0,
    -- A JSON array of the SHA-256 hashes (hex) of the unused recovery codes.
    recovery_codes  TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    UNIQUE (tenant_id, id)
);

CREATE INDEX users_tenant ON users (tenant_id);
CREATE UNIQUE INDEX users_tenant_external ON users (tenant_id, external) WHERE external <> '';

CREATE TABLE api_tokens (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    hash       TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_expires ON api_tokens (expires_at);

-- name_key holds store.GroupKey(name): names are unique in a tenant by it.
CREATE TABLE connector_groups (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    name       TEXT COLLATE "C" NOT NULL,
    name_key   TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, name_key),
    UNIQUE (tenant_id, id)
);

CREATE TABLE connectors (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id       TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    group_id        TEXT COLLATE "C" NOT NULL,
    hostname        TEXT COLLATE "C" NOT NULL,
    version         TEXT COLLATE "C" NOT NULL,
    cert_serial     TEXT COLLATE "C" NOT NULL,
    cert_thumbprint TEXT COLLATE "C" NOT NULL,
    cert_not_after  BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    last_address    TEXT COLLATE "C" NOT NULL,
    previous_serial TEXT COLLATE "C" NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, group_id) REFERENCES connector_groups (tenant_id, id)
);

CREATE INDEX connectors_tenant ON connectors (tenant_id);
CREATE INDEX connectors_group ON connectors (tenant_id, group_id);

CREATE TABLE revocations (
    serial       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    connector_id TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    revoked_at   BIGINT NOT NULL
);

CREATE INDEX revocations_tenant ON revocations (tenant_id);

CREATE TABLE applications (
    id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id          TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    name               TEXT COLLATE "C" NOT NULL,
    group_id           TEXT COLLATE "C" NOT NULL,
    external_host      TEXT COLLATE "C" NOT NULL UNIQUE,
    internal_url       TEXT COLLATE "C" NOT NULL,
    timeout            TEXT COLLATE "C" NOT NULL,
    pre_auth           TEXT COLLATE "C" NOT NULL,
    cert_pem           BYTEA,
    key_pem            BYTEA,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    affinity           BOOLEAN NOT NULL DEFAULT false,
    backend_proxy      TEXT COLLATE "C" NOT NULL DEFAULT '',
    detailed_errors    BOOLEAN NOT NULL DEFAULT false,
    keep_authorization BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES connector_groups (tenant_id, id)
);

CREATE INDEX applications_group ON applications (tenant_id, group_id);

-- max_uses 0 means unlimited until expires_at; revoked_at 0 means not
-- revoked. Deleting a group deletes its tokens.
CREATE TABLE registration_tokens (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    group_id   TEXT COLLATE "C" NOT NULL,
    hash       TEXT COLLATE "C" NOT NULL UNIQUE,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    max_uses   BIGINT NOT NULL CHECK (max_uses >= 0),
    uses       BIGINT NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revoked_at BIGINT NOT NULL DEFAULT 0,
    revoked_by TEXT COLLATE "C" NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, group_id) REFERENCES connector_groups (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX registration_tokens_tenant ON registration_tokens (tenant_id, created_at);
CREATE INDEX registration_tokens_group ON registration_tokens (tenant_id, group_id);

-- Releases are global: the operator's builds serve every tenant.
CREATE TABLE releases (
    version      TEXT COLLATE "C" NOT NULL,
    os           TEXT COLLATE "C" NOT NULL,
    arch         TEXT COLLATE "C" NOT NULL,
    major        BOOLEAN NOT NULL,
    sha256       TEXT COLLATE "C" NOT NULL,
    size         BIGINT NOT NULL,
    manifest     BYTEA NOT NULL,
    signature    BYTEA NOT NULL,
    key_id       TEXT COLLATE "C" NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (version, os, arch)
);

CREATE TABLE update_turns (
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    group_id     TEXT COLLATE "C" NOT NULL REFERENCES connector_groups (id) ON DELETE CASCADE,
    connector_id TEXT COLLATE "C" NOT NULL,
    version      TEXT COLLATE "C" NOT NULL,
    taken_at     BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);

CREATE TABLE update_halts (
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    group_id     TEXT COLLATE "C" NOT NULL REFERENCES connector_groups (id) ON DELETE CASCADE,
    version      TEXT COLLATE "C" NOT NULL,
    connector_id TEXT COLLATE "C" NOT NULL,
    halted_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, version)
);

-- A domain is verified by at most one tenant across the cloud; pending
-- claims of other tenants do not block the owner.
CREATE TABLE domains (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    domain      TEXT COLLATE "C" NOT NULL,
    token       TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    verified_at BIGINT NOT NULL DEFAULT 0,
    verified_by TEXT COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, domain)
);

CREATE UNIQUE INDEX domains_verified ON domains (domain) WHERE verified_at <> 0;

-- The tenant's directory for pre-authentication. User groups are a
-- namespace of their own, apart from connector groups.
CREATE TABLE user_groups (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    name       TEXT COLLATE "C" NOT NULL,
    name_key   TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name_key),
    UNIQUE (tenant_id, id)
);

CREATE TABLE user_group_members (
    tenant_id TEXT COLLATE "C" NOT NULL,
    group_id  TEXT COLLATE "C" NOT NULL,
    user_id   TEXT COLLATE "C" NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES user_groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX user_group_members_user ON user_group_members (tenant_id, user_id);

-- An assignment names exactly one of a user or a user group. seq orders
-- assignments made in the same nanosecond (SQLite's rowid).
CREATE TABLE app_assignments (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  TEXT COLLATE "C" NOT NULL,
    app_id     TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C",
    group_id   TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    FOREIGN KEY (tenant_id, app_id) REFERENCES applications (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, group_id) REFERENCES user_groups (tenant_id, id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX app_assignments_app_user ON app_assignments (tenant_id, app_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX app_assignments_app_group ON app_assignments (tenant_id, app_id, group_id) WHERE group_id IS NOT NULL;
CREATE INDEX app_assignments_user ON app_assignments (tenant_id, user_id);
CREATE INDEX app_assignments_group ON app_assignments (tenant_id, group_id);

-- Each tenant's keys for the identity assertions; key_pem is wrapped by
-- the caller. sign_until 0: no successor yet.
CREATE TABLE tenant_signing_keys (
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kid        TEXT COLLATE "C" NOT NULL,
    key_pem    BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    sign_from  BIGINT NOT NULL,
    sign_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, kid)
);

-- A tenant without a row has the default settings. Durations are BIGINT
-- nanoseconds (0: the cloud's default).
CREATE TABLE tenant_settings (
    tenant_id        TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    require_mfa      BOOLEAN NOT NULL,
    session_lifetime BIGINT NOT NULL,
    session_idle     BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- At most one OpenID provider per tenant.
CREATE TABLE identity_providers (
    tenant_id     TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    issuer        TEXT COLLATE "C" NOT NULL,
    client_id     TEXT COLLATE "C" NOT NULL,
    client_secret BYTEA,
    ca_pem        BYTEA,
    groups_claim  TEXT COLLATE "C" NOT NULL,
    email_claim   TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- A session's parent_id names the session it was made from ('' for none).
CREATE TABLE sessions (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    hash       TEXT COLLATE "C" NOT NULL UNIQUE,
    tenant_id  TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    app_id     TEXT COLLATE "C" NOT NULL,
    parent_id  TEXT COLLATE "C" NOT NULL,
    method     TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_parent ON sessions (tenant_id, parent_id) WHERE parent_id <> '';
CREATE INDEX sessions_expires ON sessions (expires_at);

-- A grant is found by its kind and hash; user_id is NULL until the user is
-- known. A device authorization's user_code is unique among the unexpired
-- grants: CreateGrant checks it under an advisory lock on the code (an
-- expired grant keeps its code until it is deleted, so no unique index can
-- say it).
CREATE TABLE grants (
    kind       TEXT COLLATE "C" NOT NULL,
    hash       TEXT COLLATE "C" NOT NULL,
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    app_id     TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C",
    user_code  TEXT COLLATE "C" NOT NULL,
    status     TEXT COLLATE "C" NOT NULL,
    data       BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    polled_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX grants_user_code ON grants (user_code, expires_at) WHERE user_code <> '';
CREATE INDEX grants_expires ON grants (expires_at);
CREATE INDEX grants_user ON grants (tenant_id, user_id) WHERE user_id IS NOT NULL;
