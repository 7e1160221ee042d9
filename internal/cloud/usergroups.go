package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// requireGlobalAdmin refuses anyone but a Global Administrator; what
// names the thing only they manage ("users", "user groups").
func requireGlobalAdmin(p *principal, what string) error {
	if p.User.Role == store.RoleGlobalAdmin {
		return nil
	}
	article := "a"
	if p.User.Role == store.RoleAppAdmin {
		article = "an"
	}
	return problem.Newf(http.StatusForbidden, "forbidden", "ask a Global Administrator of "+p.Tenant.Domain,
		"%s is %s %s, and only a Global Administrator manages %s", p.User.Name, article, roleTitle(p.User.Role), what)
}

func apiUserGroup(g store.UserGroup) api.UserGroup {
	return api.UserGroup{ID: g.ID, Name: g.Name, MemberCount: g.Members, CreatedAt: g.CreatedAt}
}

// userGroupByName finds a user group of the caller's tenant, with a clear error.
func (s *Server) userGroupByName(ctx context.Context, t store.Tenant, name string) (store.UserGroup, error) {
	return lookup(ctx, t, name, s.store.UserGroupByName, "no_user_group", "list the user groups with 'sallyport admin user-group list', or create it with 'sallyport admin user-group create'",
		"user group '%s'")
}

// userGroupToChange is the user group a change names in its path
// ({name}), for a Global Administrator only.
func (s *Server) userGroupToChange(r *http.Request, p *principal) (store.UserGroup, error) {
	if err := requireGlobalAdmin(p, "user groups"); err != nil {
		return store.UserGroup{}, err
	}
	return s.userGroupByName(r.Context(), p.Tenant, r.PathValue("name"))
}

// userByName finds a user of the caller's tenant by its name (any case),
// with a clear error: a user of another tenant is not found.
func (s *Server) userByName(ctx context.Context, t store.Tenant, raw string) (store.User, error) {
	name, err := tenancy.CheckUserName("bad_user_name", raw, t.Domain)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.TenantID != t.ID) {
		return store.User{}, problem.Newf(http.StatusNotFound, "no_user", "list the users with 'sallyport admin user list', or create it with 'sallyport admin user create'",
			"There is no user %s in %s", name, t.Domain)
	}
	return u, err
}

// handleListUserGroups lists the tenant's user groups (GET /user-groups).
func (s *Server) handleListUserGroups(w http.ResponseWriter, r *http.Request, p *principal) error {
	gs, err := s.store.ListUserGroups(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.UserGroup, 0, len(gs))
	for _, g := range gs {
		out = append(out, apiUserGroup(g))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleGetUserGroup shows a user group with its members (GET /user-groups/{name}).
func (s *Server) handleGetUserGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	g, err := s.userGroupByName(r.Context(), p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	return s.writeUserGroup(w, r.Context(), http.StatusOK, p.Tenant, g)
}

// writeUserGroup answers with g and its members.
func (s *Server) writeUserGroup(w http.ResponseWriter, ctx context.Context, status int, t store.Tenant, g store.UserGroup) error {
	us, err := s.store.ListUserGroupMembers(ctx, t.ID, g.ID)
	if err != nil {
		return err
	}
	out := apiUserGroup(g)
	out.MemberCount, out.Members = len(us), make([]string, 0, len(us))
	for _, u := range us {
		out.Members = append(out.Members, u.Name)
	}
	writeJSON(w, status, out)
	return nil
}

// handleCreateUserGroup creates a user group (POST /user-groups).
func (s *Server) handleCreateUserGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireGlobalAdmin(p, "user groups"); err != nil {
		return err
	}
	var in api.CreateUserGroupRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	name, err := tenancy.CheckUserGroupName(in.Name)
	if err != nil {
		return err
	}
	g := store.UserGroup{ID: tenancy.NewID("ug"), TenantID: p.Tenant.ID, Name: name, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUserGroup(r.Context(), g); errors.Is(err, store.ErrConflict) {
		if other, err := s.store.UserGroupByName(r.Context(), p.Tenant.ID, name); err == nil && other.Name != name {
			return problem.Newf(http.StatusConflict, "user_group_exists", "choose another name; user group names are compared without regard to case",
				"The user group '%s' already exists in %s as '%s'", name, p.Tenant.Domain, other.Name)
		}
		return problem.Newf(http.StatusConflict, "user_group_exists", "choose another name", "The user group '%s' already exists in %s", name, p.Tenant.Domain)
	} else if err != nil {
		return err
	}
	s.events.Event(eventlog.UserGroupCreated, fmt.Sprintf("User group '%s' of %s was created by %s", g.Name, p.Tenant.Domain, p.User.Name),
		"tenant", p.Tenant.Domain, "user_group", g.Name, "user", p.User.Name)
	writeJSON(w, http.StatusCreated, apiUserGroup(g))
	return nil
}

// handleDeleteUserGroup deletes a user group with its memberships and
// assignments (DELETE /user-groups/{name}).
func (s *Server) handleDeleteUserGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	g, err := s.userGroupToChange(r, p)
	if err != nil {
		return err
	}
	if err := s.store.DeleteUserGroup(r.Context(), p.Tenant.ID, g.ID); errors.Is(err, store.ErrNotFound) {
		return problem.Newf(http.StatusNotFound, "no_user_group", "list the user groups with 'sallyport admin user-group list'",
			"The user group '%s' was deleted meanwhile", g.Name)
	} else if err != nil {
		return err
	}
	if err := s.directoryChanged(r.Context()); err != nil {
		return err
	}
	s.events.Event(eventlog.UserGroupDeleted, fmt.Sprintf("User group '%s' of %s was deleted by %s, with its %d member%s and its assignments", g.Name, p.Tenant.Domain, p.User.Name, g.Members, plural(g.Members)),
		"tenant", p.Tenant.Domain, "user_group", g.Name, "user", p.User.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleAddUserGroupMember adds a user to a user group (POST
// /user-groups/{name}/members): 200 with the group and its members.
func (s *Server) handleAddUserGroupMember(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	g, err := s.userGroupToChange(r, p)
	if err != nil {
		return err
	}
	var in api.AddMemberRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	u, err := s.userByName(ctx, p.Tenant, in.User)
	if err != nil {
		return err
	}
	switch err := s.store.AddUserGroupMember(ctx, p.Tenant.ID, g.ID, u.ID, s.now().UTC()); {
	case errors.Is(err, store.ErrConflict):
		return problem.Newf(http.StatusConflict, "already_member", "see the members with 'sallyport admin user-group show "+shellWord(g.Name)+"'",
			"%s is already a member of the user group '%s'", u.Name, g.Name)
	case errors.Is(err, store.ErrNotFound):
		return problem.Newf(http.StatusConflict, "directory_changed", "try again",
			"The user %s or the user group '%s' was deleted while the member was being added", u.Name, g.Name)
	case err != nil:
		return err
	}
	if err := s.directoryChanged(r.Context()); err != nil {
		return err
	}
	s.events.Event(eventlog.UserGroupMemberAdded, fmt.Sprintf("%s was added to the user group '%s' of %s by %s", u.Name, g.Name, p.Tenant.Domain, p.User.Name),
		"tenant", p.Tenant.Domain, "user_group", g.Name, "member", u.Name, "user", p.User.Name)
	return s.writeUserGroup(w, ctx, http.StatusOK, p.Tenant, g)
}

// handleRemoveUserGroupMember removes a user from a user group (DELETE
// /user-groups/{name}/members/{user}): 200 with the group and its members.
func (s *Server) handleRemoveUserGroupMember(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	g, err := s.userGroupToChange(r, p)
	if err != nil {
		return err
	}
	u, err := s.userByName(ctx, p.Tenant, r.PathValue("user"))
	if err != nil {
		return err
	}
	if err := s.store.RemoveUserGroupMember(ctx, p.Tenant.ID, g.ID, u.ID); errors.Is(err, store.ErrNotFound) {
		return problem.Newf(http.StatusNotFound, "not_member", "see the members with 'sallyport admin user-group show "+shellWord(g.Name)+"'",
			"%s is not a member of the user group '%s'", u.Name, g.Name)
	} else if err != nil {
		return err
	}
	if err := s.directoryChanged(r.Context()); err != nil {
		return err
	}
	s.events.Event(eventlog.UserGroupMemberRemoved, fmt.Sprintf("%s was removed from the user group '%s' of %s by %s", u.Name, g.Name, p.Tenant.Domain, p.User.Name),
		"tenant", p.Tenant.Domain, "user_group", g.Name, "member", u.Name, "user", p.User.Name)
	return s.writeUserGroup(w, ctx, http.StatusOK, p.Tenant, g)
}
