package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// groupExists refuses name, which another group of t has in some case.
func (s *Server) groupExists(ctx context.Context, t store.Tenant, name string) error {
	if g, err := s.store.GroupByName(ctx, t.ID, name); err == nil && g.Name != name {
		return problem.Newf(http.StatusConflict, "group_exists", "choose another name; group names are compared without regard to case",
			"The group '%s' already exists in %s as '%s'", name, t.Domain, g.Name)
	}
	return problem.Newf(http.StatusConflict, "group_exists", "choose another name", "The group '%s' already exists in %s", name, t.Domain)
}

// handleUpdateGroup renames a group (PATCH /groups/{name}).
func (s *Server) handleUpdateGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	g, err := s.groupByName(r.Context(), p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	var in api.UpdateGroupRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	name, err := tenancy.CheckGroupName(in.Name)
	if err != nil {
		return err
	}
	if g.Name == tenancy.DefaultGroup {
		return problem.New(http.StatusConflict, "default_group", "create another group with 'sallyport admin group create' instead", "The group 'Default' cannot be renamed, because new connectors join it")
	}
	if err := s.store.RenameGroup(r.Context(), p.Tenant.ID, g.ID, name); errors.Is(err, store.ErrConflict) {
		return s.groupExists(r.Context(), p.Tenant, name)
	} else if err != nil {
		return err
	}
	if err := s.refreshRoutes(r.Context()); err != nil {
		return err
	}
	g.Name = name
	writeJSON(w, http.StatusOK, api.Group{ID: g.ID, Name: g.Name, CreatedAt: g.CreatedAt})
	return nil
}

// handleDeleteGroup deletes a group nobody uses (DELETE /groups/{name}).
func (s *Server) handleDeleteGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	g, err := s.groupByName(ctx, p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	if g.Name == tenancy.DefaultGroup {
		return problem.New(http.StatusConflict, "default_group", "leave it empty if you do not use it", "The group 'Default' cannot be deleted, because new connectors join it")
	}
	if users, err := s.groupUsers(ctx, p.Tenant.ID, g.ID); err != nil {
		return err
	} else if users != "" {
		return problem.Newf(http.StatusConflict, "group_in_use",
			"move the connectors with 'sallyport admin connector move ID --group OTHER' and the applications with 'sallyport admin app update NAME --group OTHER' first",
			"The group '%s' is still used by %s", g.Name, users)
	}
	if err := s.store.DeleteGroup(ctx, p.Tenant.ID, g.ID); errors.Is(err, store.ErrConflict) {
		return problem.Newf(http.StatusConflict, "group_in_use", "try again", "The group '%s' came into use while it was being deleted", g.Name)
	} else if err != nil {
		return err
	}
	if err := s.refreshRoutes(ctx); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// groupUsers names the applications and connectors of a group, or "".
func (s *Server) groupUsers(ctx context.Context, tenantID, groupID string) (string, error) {
	apps, err := s.store.ListApps(ctx, tenantID)
	if err != nil {
		return "", err
	}
	cs, err := s.store.ListConnectors(ctx, tenantID)
	if err != nil {
		return "", err
	}
	var appNames, connNames []string
	for _, a := range apps {
		if a.GroupID == groupID {
			appNames = append(appNames, "'"+a.Name+"'")
		}
	}
	for _, c := range cs {
		if c.GroupID == groupID {
			connNames = append(connNames, c.ID+" ("+tenancy.DashIfEmpty(c.Hostname)+")")
		}
	}
	var parts []string
	if len(appNames) > 0 {
		parts = append(parts, "application"+plural(len(appNames))+" "+listSome(appNames))
	}
	if len(connNames) > 0 {
		parts = append(parts, "connector"+plural(len(connNames))+" "+listSome(connNames))
	}
	return strings.Join(parts, " and "), nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func listSome(names []string) string {
	const most = 5
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
}

func (s *Server) handleListGroups(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	gs, err := s.store.ListGroups(ctx, p.Tenant.ID)
	if err != nil {
		return err
	}
	cs, err := s.store.ListConnectors(ctx, p.Tenant.ID)
	if err != nil {
		return err
	}
	apps, err := s.store.ListApps(ctx, p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.Group, 0, len(gs))
	for _, g := range gs {
		ag := api.Group{ID: g.ID, Name: g.Name, CreatedAt: g.CreatedAt}
		for _, c := range cs {
			if c.GroupID == g.ID {
				ag.Connectors++
				if s.connectorStatus(c) == "active" {
					ag.ActiveConnectors++
				}
			}
		}
		for _, a := range apps {
			if a.GroupID == g.ID {
				ag.Apps++
			}
		}
		out = append(out, ag)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in api.CreateGroupRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	name, err := tenancy.CheckGroupName(in.Name)
	if err != nil {
		return err
	}
	g := store.Group{ID: tenancy.NewID("g"), TenantID: p.Tenant.ID, Name: name, CreatedAt: s.now().UTC()}
	if err := s.store.CreateGroup(r.Context(), g); errors.Is(err, store.ErrConflict) {
		return s.groupExists(r.Context(), p.Tenant, name)
	} else if err != nil {
		return err
	}
	if err := s.refreshRoutes(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.Group{ID: g.ID, Name: g.Name, CreatedAt: g.CreatedAt})
	return nil
}

// groupByName finds a group of the caller's tenant, with a clear error.
func (s *Server) groupByName(ctx context.Context, t store.Tenant, name string) (store.Group, error) {
	if name == "" {
		name = tenancy.DefaultGroup
	}
	return lookup(ctx, t, name, s.store.GroupByName, "no_group", "list the groups with 'sallyport admin group list', or create it with 'sallyport admin group create'",
		"connector group '%s'")
}

func (s *Server) groupNames(ctx context.Context, tenantID string) (map[string]string, error) {
	gs, err := s.store.ListGroups(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(gs))
	for _, g := range gs {
		m[g.ID] = g.Name
	}
	return m, nil
}
