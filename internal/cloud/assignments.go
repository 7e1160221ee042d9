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
)

// Assignment kinds as the API names them.
const (
	assigneeUser      = "user"
	assigneeUserGroup = "user-group"
)

// assignmentsNote says whether a's assignments decide who reaches it: not
// for a passthrough application, and the note must not let an
// administrator believe an assignment protects anything there.
func assignmentsNote(a store.Application) string {
	if a.PreAuth == PreAuthSallyport {
		return ""
	}
	return fmt.Sprintf("'%s' uses pre-authentication %s, so anyone who can reach it gets through, assigned or not; assignments take effect once it uses pre-authentication at the cloud ('sallyport admin app update %s --pre-auth sallyport')",
		a.Name, a.PreAuth, a.Name)
}

// apiAssignments returns the application's assignments with the names of
// their users and user groups.
func (s *Server) apiAssignments(ctx context.Context, t store.Tenant, a store.Application) ([]api.Assignment, error) {
	as, err := s.store.ListAssignments(ctx, t.ID, a.ID)
	if err != nil || len(as) == 0 {
		return []api.Assignment{}, err
	}
	us, err := s.store.ListUsers(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	gs, err := s.store.ListUserGroups(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(us)+len(gs))
	for _, u := range us {
		names[u.ID] = u.Name
	}
	for _, g := range gs {
		names[g.ID] = g.Name
	}
	out := make([]api.Assignment, 0, len(as))
	for _, x := range as {
		if x.UserID != "" {
			out = append(out, api.Assignment{Kind: assigneeUser, Name: names[x.UserID], CreatedAt: x.CreatedAt})
		} else {
			out = append(out, api.Assignment{Kind: assigneeUserGroup, Name: names[x.UserGroupID], CreatedAt: x.CreatedAt})
		}
	}
	return out, nil
}

// handleListAssignments lists an application's assignments (GET
// /apps/{name}/assignments).
func (s *Server) handleListAssignments(w http.ResponseWriter, r *http.Request, p *principal) error {
	a, err := s.appByName(r.Context(), p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	out, err := s.apiAssignments(r.Context(), p.Tenant, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// assignee is the user or user group an assignment request names.
type assignee struct {
	kind, name string
	store      store.Assignment // TenantID, AppID and one of UserID, UserGroupID
}

// what names the assignee in a sentence: "ann@contoso.com" or "the user
// group 'Staff'".
func (x assignee) what() string {
	if x.kind == assigneeUser {
		return x.name
	}
	return "the user group '" + x.name + "'"
}

// subject is what() at the start of a sentence.
func (x assignee) subject() string {
	if x.kind == assigneeUser {
		return x.name
	}
	return "The user group '" + x.name + "'"
}

// resolveAssignee finds the user or user group of the tenant that in names
// (exactly one of them) for application a.
func (s *Server) resolveAssignee(ctx context.Context, t store.Tenant, a store.Application, in api.AssignRequest) (assignee, error) {
	x := assignee{store: store.Assignment{TenantID: t.ID, AppID: a.ID, CreatedAt: s.now().UTC()}}
	switch {
	case (in.User == "") == (in.UserGroup == ""):
		return x, problem.New(http.StatusBadRequest, "bad_assignment", "give exactly one of --user USER and --user-group GROUP (user or user_group in the API)",
			"An assignment names either one user or one user group")
	case in.User != "":
		u, err := s.userByName(ctx, t, in.User)
		if err != nil {
			return x, err
		}
		x.kind, x.name, x.store.UserID = assigneeUser, u.Name, u.ID
	default:
		g, err := s.userGroupByName(ctx, t, in.UserGroup)
		if err != nil {
			return x, err
		}
		x.kind, x.name, x.store.UserGroupID = assigneeUserGroup, g.Name, g.ID
	}
	return x, nil
}

// handleAssign assigns a user or a user group to an application (POST
// /apps/{name}/assignments).
func (s *Server) handleAssign(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	a, err := s.appByName(ctx, p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	var in api.AssignRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	x, err := s.resolveAssignee(ctx, p.Tenant, a, in)
	if err != nil {
		return err
	}
	switch err := s.store.Assign(ctx, x.store); {
	case errors.Is(err, store.ErrConflict):
		return problem.Newf(http.StatusConflict, "already_assigned", "see the assignments with 'sallyport admin app show "+a.Name+"'",
			"%s is already assigned to the application '%s'", x.subject(), a.Name)
	case errors.Is(err, store.ErrNotFound):
		return problem.Newf(http.StatusConflict, "directory_changed", "try again",
			"The application '%s' or %s was deleted while the assignment was being made", a.Name, x.what())
	case err != nil:
		return err
	}
	if err := s.directoryChanged(ctx); err != nil {
		return err
	}
	s.events.Event(eventlog.AppAssigned, fmt.Sprintf("%s was assigned to the application '%s' of %s by %s", x.subject(), a.Name, p.Tenant.Domain, p.User.Name),
		"tenant", p.Tenant.Domain, "app", a.Name, "assignee", x.name, "kind", x.kind, "user", p.User.Name)
	writeJSON(w, http.StatusCreated, api.Assignment{Kind: x.kind, Name: x.name, CreatedAt: x.store.CreatedAt, Note: assignmentsNote(a)})
	return nil
}

// handleUnassign removes an assignment (DELETE
// /apps/{name}/assignments/users/{assignee} or
// /apps/{name}/assignments/user-groups/{assignee}).
func (s *Server) handleUnassign(kind string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		ctx := r.Context()
		a, err := s.appByName(ctx, p.Tenant, r.PathValue("name"))
		if err != nil {
			return err
		}
		in := api.AssignRequest{User: r.PathValue("assignee")}
		if kind == assigneeUserGroup {
			in = api.AssignRequest{UserGroup: r.PathValue("assignee")}
		}
		x, err := s.resolveAssignee(ctx, p.Tenant, a, in)
		if err != nil {
			return err
		}
		if err := s.store.Unassign(ctx, x.store); errors.Is(err, store.ErrNotFound) {
			return s.notAssigned(ctx, p.Tenant, a, x)
		} else if err != nil {
			return err
		}
		if err := s.directoryChanged(ctx); err != nil {
			return err
		}
		s.events.Event(eventlog.AppUnassigned, fmt.Sprintf("%s was unassigned from the application '%s' of %s by %s", x.subject(), a.Name, p.Tenant.Domain, p.User.Name),
			"tenant", p.Tenant.Domain, "app", a.Name, "assignee", x.name, "kind", x.kind, "user", p.User.Name)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// notAssigned refuses to unassign what is not assigned; a user who
// reaches the application through a user group is told so.
func (s *Server) notAssigned(ctx context.Context, t store.Tenant, a store.Application, x assignee) error {
	step := "see the assignments with 'sallyport admin app show " + a.Name + "'"
	if x.kind == assigneeUser {
		if ok, err := s.store.IsAssigned(ctx, t.ID, a.ID, x.store.UserID); err != nil {
			return err
		} else if ok {
			return problem.Newf(http.StatusNotFound, "not_assigned",
				"unassign the user group with 'sallyport admin app unassign "+a.Name+" --user-group GROUP', or remove the user from it with 'sallyport admin user-group remove-member GROUP "+x.name+"'",
				"%s is not assigned to the application '%s' directly, only as a member of an assigned user group", x.name, a.Name)
		}
	}
	return problem.Newf(http.StatusNotFound, "not_assigned", step, "%s is not assigned to the application '%s'", x.subject(), a.Name)
}
