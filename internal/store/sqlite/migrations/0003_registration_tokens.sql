-- Registration tokens: an administrator creates one so that a connector can
-- register without a password (unattended installs). Only the SHA-256 hash
-- of the token is stored. max_uses 0 means unlimited until expires_at;
-- revoked_at 0 means not revoked. Deleting a group deletes its tokens.
CREATE TABLE registration_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    group_id   TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    max_uses   INTEGER NOT NULL CHECK (max_uses >= 0),
    uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revoked_at INTEGER NOT NULL DEFAULT 0,
    revoked_by TEXT    NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, group_id) REFERENCES connector_groups (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX registration_tokens_tenant ON registration_tokens (tenant_id, created_at);
CREATE INDEX registration_tokens_group ON registration_tokens (tenant_id, group_id);
