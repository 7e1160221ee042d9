-- Each tenant's keys for the identity assertions (Sallyport-Assertion,
-- ES256) the cloud signs to backends. key_pem is the private key, wrapped
-- with the data directory's key-encryption key by the caller. A key is
-- published from created_at, signs from sign_from until sign_until (0: no
-- successor yet), and is deleted once it has been retired long enough.
CREATE TABLE tenant_signing_keys (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kid        TEXT    NOT NULL,
    key_pem    BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    sign_from  INTEGER NOT NULL,
    sign_until INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, kid)
) STRICT;
