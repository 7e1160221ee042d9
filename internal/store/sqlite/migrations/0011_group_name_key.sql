-- Group names are unique in a tenant case-insensitively ('default' beside
-- 'Default' is refused): name_key holds store.GroupKey(name). Names were
-- ASCII until now, so lower() computes the key of every existing row. Rows
-- that already differ only by case keep working: all but the oldest get a
-- key no valid name can have (" #" and the id), so the index builds.
ALTER TABLE connector_groups ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE connector_groups SET name_key = lower(name);
UPDATE connector_groups SET name_key = name_key || ' #' || id
WHERE EXISTS (SELECT 1 FROM connector_groups o
              WHERE o.tenant_id = connector_groups.tenant_id AND lower(o.name) = lower(connector_groups.name)
                AND o.rowid < connector_groups.rowid);
CREATE UNIQUE INDEX connector_groups_name_key ON connector_groups (tenant_id, name_key);
