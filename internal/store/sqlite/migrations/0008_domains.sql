-- Domains a tenant claims for publishing applications: pending until
-- proven (a DNS TXT record, or the operator vouching for it). A domain is
-- verified by at most one tenant across the cloud; pending claims of other
-- tenants do not block the owner.
CREATE TABLE domains (
    tenant_id   TEXT    NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    domain      TEXT    NOT NULL,
    token       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    verified_at INTEGER NOT NULL DEFAULT 0,
    verified_by TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, domain)
) STRICT;

CREATE UNIQUE INDEX domains_verified ON domains (domain) WHERE verified_at != 0;
