-- 0001_init: the initial schema of the cloud service's store.
-- Times are INTEGER unix nanoseconds (0 means the zero time).

CREATE TABLE tenants (
    id         TEXT    NOT NULL PRIMARY KEY,
    domain     TEXT    NOT NULL UNIQUE,
    label      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tenant_cas (
    tenant_id TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id),
    cert_pem  BLOB NOT NULL,
    key_pem   BLOB NOT NULL
) STRICT;

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE api_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_expires ON api_tokens (expires_at);

CREATE TABLE connector_groups (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name),
    -- Target of the (tenant_id, group_id) foreign keys below: a connector or
    -- an application can only reference a group of its own tenant.
    UNIQUE (tenant_id, id)
) STRICT;

CREATE TABLE connectors (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    group_id        TEXT    NOT NULL,
    hostname        TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    cert_serial     TEXT    NOT NULL,
    cert_thumbprint TEXT    NOT NULL,
    cert_not_after  INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    last_address    TEXT    NOT NULL,
    FOREIGN KEY (tenant_id, group_id) REFERENCES connector_groups (tenant_id, id)
) STRICT;

CREATE INDEX connectors_tenant ON connectors (tenant_id);
CREATE INDEX connectors_group ON connectors (tenant_id, group_id);

CREATE TABLE revocations (
    serial       TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    connector_id TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    revoked_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX revocations_tenant ON revocations (tenant_id);

CREATE TABLE applications (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    name          TEXT    NOT NULL,
    group_id      TEXT    NOT NULL,
    external_host TEXT    NOT NULL UNIQUE,
    internal_url  TEXT    NOT NULL,
    timeout       TEXT    NOT NULL,
    pre_auth      TEXT    NOT NULL,
    cert_pem      BLOB,
    key_pem       BLOB,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, group_id) REFERENCES connector_groups (tenant_id, id)
) STRICT;

CREATE INDEX applications_group ON applications (tenant_id, group_id);
