-- Connector releases published at the cloud (global: the operator's builds
-- serve every tenant) and the update turn of each connector group.
CREATE TABLE releases (
    version      TEXT    NOT NULL,
    os           TEXT    NOT NULL,
    arch         TEXT    NOT NULL,
    major        INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    manifest     BLOB    NOT NULL,
    signature    BLOB    NOT NULL,
    key_id       TEXT    NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (version, os, arch)
);

CREATE TABLE update_turns (
    tenant_id    TEXT    NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    group_id     TEXT    NOT NULL REFERENCES connector_groups(id) ON DELETE CASCADE,
    connector_id TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    taken_at     INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);
