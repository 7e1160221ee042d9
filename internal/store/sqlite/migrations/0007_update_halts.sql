-- Releases halted in a connector group after a connector rolled them back:
-- the group's other updaters do not install them automatically.
CREATE TABLE update_halts (
    tenant_id    TEXT    NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    group_id     TEXT    NOT NULL REFERENCES connector_groups(id) ON DELETE CASCADE,
    version      TEXT    NOT NULL,
    connector_id TEXT    NOT NULL,
    halted_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, group_id, version)
);
