-- 0012_user_groups: the tenant's directory for pre-authentication — user
-- groups, their members, and which users and user groups are assigned to
-- which applications.
--
-- Every row carries its tenant, and every reference is a (tenant_id, id)
-- foreign key, so a membership or an assignment can only join objects of
-- one tenant. Deleting a user, a user group or an application deletes the
-- memberships and assignments that name it (ON DELETE CASCADE).

-- Targets of the (tenant_id, id) foreign keys below.
CREATE UNIQUE INDEX users_tenant_id ON users (tenant_id, id);
CREATE UNIQUE INDEX applications_tenant_id ON applications (tenant_id, id);

-- User groups are a namespace of their own, apart from connector groups:
-- the same name rules, unique in a tenant by name_key (store.GroupKey).
CREATE TABLE user_groups (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name_key),
    UNIQUE (tenant_id, id)
) STRICT;

CREATE TABLE user_group_members (
    tenant_id TEXT    NOT NULL,
    group_id  TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    added_at  INTEGER NOT NULL,
    -- With the tenant in the key, a duplicate is only ever found within a
    -- tenant: another tenant's attempt fails on the foreign keys instead.
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES user_groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX user_group_members_user ON user_group_members (tenant_id, user_id);

-- An assignment names exactly one of a user or a user group.
CREATE TABLE app_assignments (
    tenant_id  TEXT    NOT NULL,
    app_id     TEXT    NOT NULL,
    user_id    TEXT,
    group_id   TEXT,
    created_at INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    FOREIGN KEY (tenant_id, app_id) REFERENCES applications (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, group_id) REFERENCES user_groups (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE UNIQUE INDEX app_assignments_app_user ON app_assignments (tenant_id, app_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX app_assignments_app_group ON app_assignments (tenant_id, app_id, group_id) WHERE group_id IS NOT NULL;
CREATE INDEX app_assignments_user ON app_assignments (tenant_id, user_id);
CREATE INDEX app_assignments_group ON app_assignments (tenant_id, group_id);
