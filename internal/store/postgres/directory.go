package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// userGroupCols is the column list scanUserGroup reads; g is the table's
// alias, and the last column counts the group's members.
const userGroupCols = `g.id, g.tenant_id, g.name, g.created_at,
	(SELECT COUNT(*) FROM user_group_members m WHERE m.group_id = g.id)`

func scanUserGroup(r scanner) (store.UserGroup, error) {
	var g store.UserGroup
	err := r.Scan(&g.ID, &g.TenantID, &g.Name, timeCol{&g.CreatedAt}, &g.Members)
	return g, err
}

// DeleteUser deletes the user id of tenantID; its API tokens, sessions,
// grants, memberships and assignments go with it (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, tenantID, id string) error {
	return execOne(ctx, s.pool, "delete user", `DELETE FROM users WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

// CreateUserGroup inserts g; a name another user group of its tenant has,
// in any case (store.GroupKey), is store.ErrConflict.
func (s *Store) CreateUserGroup(ctx context.Context, g store.UserGroup) error {
	return exec(ctx, s.pool, "create user group",
		`INSERT INTO user_groups (id, tenant_id, name, name_key, created_at) VALUES (?, ?, ?, ?, ?)`,
		g.ID, g.TenantID, g.Name, store.GroupKey(g.Name), nanos(g.CreatedAt))
}

// UserGroupByName returns the user group of tenantID named name in any
// case (store.GroupKey), the exact spelling first.
func (s *Store) UserGroupByName(ctx context.Context, tenantID, name string) (store.UserGroup, error) {
	return getOne(ctx, s.pool, scanUserGroup, "user group by name",
		`SELECT `+userGroupCols+` FROM user_groups g WHERE g.tenant_id = ? AND (g.name = ? OR g.name_key = ?)
		 ORDER BY g.name = ? DESC LIMIT 1`, tenantID, name, store.GroupKey(name), name)
}

// ListUserGroups returns the user groups of tenantID, ordered by name.
func (s *Store) ListUserGroups(ctx context.Context, tenantID string) ([]store.UserGroup, error) {
	return getAll(ctx, s.pool, scanUserGroup, "list user groups",
		`SELECT `+userGroupCols+` FROM user_groups g WHERE g.tenant_id = ? ORDER BY g.name`, tenantID)
}

// DeleteUserGroup deletes the user group id of tenantID; its memberships
// and assignments go with it.
func (s *Store) DeleteUserGroup(ctx context.Context, tenantID, id string) error {
	return execOne(ctx, s.pool, "delete user group", `DELETE FROM user_groups WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

// AddUserGroupMember adds userID to groupID; both must be of tenantID
// (the foreign keys say so, else store.ErrNotFound).
func (s *Store) AddUserGroupMember(ctx context.Context, tenantID, groupID, userID string, at time.Time) error {
	return exec(ctx, s.pool, "add user group member",
		`INSERT INTO user_group_members (tenant_id, group_id, user_id, added_at) VALUES (?, ?, ?, ?)`,
		tenantID, groupID, userID, nanos(at))
}

// RemoveUserGroupMember removes userID from groupID.
func (s *Store) RemoveUserGroupMember(ctx context.Context, tenantID, groupID, userID string) error {
	return execOne(ctx, s.pool, "remove user group member",
		`DELETE FROM user_group_members WHERE tenant_id = ? AND group_id = ? AND user_id = ?`, tenantID, groupID, userID)
}

// ListUserGroupMembers returns the members of groupID, ordered by name.
func (s *Store) ListUserGroupMembers(ctx context.Context, tenantID, groupID string) ([]store.User, error) {
	return getAll(ctx, s.pool, scanUser, "list user group members",
		`SELECT `+prefixed("u.", userCols)+` FROM users u JOIN user_group_members m ON m.user_id = u.id AND m.tenant_id = u.tenant_id
		 WHERE m.tenant_id = ? AND m.group_id = ? ORDER BY u.name`, tenantID, groupID)
}

// UserGroupsOf returns the user groups userID is a member of, by name.
func (s *Store) UserGroupsOf(ctx context.Context, tenantID, userID string) ([]store.UserGroup, error) {
	return getAll(ctx, s.pool, scanUserGroup, "user groups of user",
		`SELECT `+userGroupCols+` FROM user_groups g JOIN user_group_members um ON um.group_id = g.id AND um.tenant_id = g.tenant_id
		 WHERE um.tenant_id = ? AND um.user_id = ? ORDER BY g.name`, tenantID, userID)
}

// Assign inserts a; the application, user or group must be of a.TenantID.
func (s *Store) Assign(ctx context.Context, a store.Assignment) error {
	return exec(ctx, s.pool, "assign application",
		`INSERT INTO app_assignments (tenant_id, app_id, user_id, group_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		a.TenantID, a.AppID, nullable(a.UserID), nullable(a.UserGroupID), nanos(a.CreatedAt))
}

// Unassign deletes the assignment of a.AppID to exactly a.UserID or
// a.UserGroupID.
func (s *Store) Unassign(ctx context.Context, a store.Assignment) error {
	if a.UserID != "" {
		return execOne(ctx, s.pool, "unassign user",
			`DELETE FROM app_assignments WHERE tenant_id = ? AND app_id = ? AND user_id = ?`, a.TenantID, a.AppID, a.UserID)
	}
	return execOne(ctx, s.pool, "unassign user group",
		`DELETE FROM app_assignments WHERE tenant_id = ? AND app_id = ? AND group_id = ?`, a.TenantID, a.AppID, a.UserGroupID)
}

// ListAssignments returns the assignments of appID, oldest first.
func (s *Store) ListAssignments(ctx context.Context, tenantID, appID string) ([]store.Assignment, error) {
	return getAll(ctx, s.pool, scanAssignment, "list assignments",
		`SELECT tenant_id, app_id, user_id, group_id, created_at FROM app_assignments
		 WHERE tenant_id = ? AND app_id = ? ORDER BY created_at, seq`, tenantID, appID)
}

func scanAssignment(r scanner) (store.Assignment, error) {
	var a store.Assignment
	var user, group *string
	err := r.Scan(&a.TenantID, &a.AppID, &user, &group, timeCol{&a.CreatedAt})
	a.UserID, a.UserGroupID = deref(user), deref(group)
	return a, err
}

// IsAssigned reports whether userID is assigned to appID directly or
// through one of its user groups.
func (s *Store) IsAssigned(ctx context.Context, tenantID, appID, userID string) (bool, error) {
	scan := func(r scanner) (bool, error) {
		var ok bool
		err := r.Scan(&ok)
		return ok, err
	}
	return getOne(ctx, s.pool, scan, "is assigned",
		`SELECT EXISTS (SELECT 1 FROM app_assignments WHERE tenant_id = ? AND app_id = ? AND user_id = ?)
		     OR EXISTS (SELECT 1 FROM app_assignments a JOIN user_group_members m ON m.group_id = a.group_id AND m.tenant_id = a.tenant_id
		                WHERE a.tenant_id = ? AND a.app_id = ? AND m.user_id = ?)`,
		tenantID, appID, userID, tenantID, appID, userID)
}

// nullable stores "" as NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// deref reads a nullable column: NULL is "".
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// prefixed qualifies each column of a column list with a table alias
// ("u." + "id, name" is "u.id, u.name").
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
