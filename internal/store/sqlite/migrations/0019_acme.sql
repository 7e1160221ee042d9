-- The ACME client's storage (certmagic's key/value space): certificates,
-- their private keys (wrapped by the data directory's key-encryption key)
-- and metadata, ACME accounts. key is a slash-separated path; a key
-- ending in ".key" holds a private key.
CREATE TABLE acme_objects (
    key         TEXT    PRIMARY KEY,
    value       BLOB    NOT NULL,
    modified_at INTEGER NOT NULL
) STRICT;

-- The ACME client's named locks (one order of a certificate at a time):
-- held by owner until expires_at, extended while held, taken over once
-- expired.
CREATE TABLE acme_locks (
    name       TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
