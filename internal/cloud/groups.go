package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
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
	name, err := checkGroupName(in.Name)
	if err != nil {
		return err
	}
	if g.Name == DefaultGroup {
		return problem.New(http.StatusConflict, "default_group", "The group 'Default' cannot be renamed, because new connectors join it",
			"create another group with 'sallyport admin group create' instead")
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
	if g.Name == DefaultGroup {
		return problem.New(http.StatusConflict, "default_group", "The group 'Default' cannot be deleted, because new connectors join it",
			"leave it empty if you do not use it")
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
			connNames = append(connNames, c.ID+" ("+dashIfEmpty(c.Hostname)+")")
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

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// handleMoveConnector assigns a connector to another group without
// registering it again (POST /connectors/{id}/move).
func (s *Server) handleMoveConnector(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	c, err := s.connectorByID(ctx, p.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	var in api.MoveConnectorRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	g, err := s.groupByName(ctx, p.Tenant, in.Group)
	if err != nil {
		return err
	}
	if err := s.store.MoveConnector(ctx, p.Tenant.ID, c.ID, g.ID); err != nil {
		return err
	}
	c.GroupID = g.ID
	s.registry.setGroup(c.ID, g.ID, s.routesNow())
	s.events.Event(eventlog.ConnectorMoved, fmt.Sprintf("Connector %s was moved to group '%s' by %s", c.ID, g.Name, p.User.Name), "connector", c.ID, "tenant", p.Tenant.Domain)
	names, err := s.groupNames(ctx, p.Tenant.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.apiConnector(c, names))
	return nil
}
