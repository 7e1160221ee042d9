-- The ACME client's storage (certmagic's key/value space): certificates,
-- their private keys (wrapped by the data directory's key-encryption key)
-- and metadata, ACME accounts, shared by every instance. key is a
-- slash-separated path; a key ending in ".key" holds a private key. Its
-- collation is "C" (byte order) so that a prefix is a range of the
-- primary key's index whatever the database's locale.
CREATE TABLE acme_objects (
    key         TEXT COLLATE "C" PRIMARY KEY,
    value       BYTEA  NOT NULL,
    modified_at BIGINT NOT NULL
);

-- The ACME client's named locks (one instance at a time orders a
-- certificate): held by owner until expires_at, extended while held,
-- taken over once expired.
CREATE TABLE acme_locks (
    name       TEXT   PRIMARY KEY,
    owner      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
