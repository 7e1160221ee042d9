package cloud

import (
	"context"
	"fmt"
	"net/http"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

func (s *Server) handleListConnectors(w http.ResponseWriter, r *http.Request, p *principal) error {
	cs, err := s.store.ListConnectors(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	names, err := s.groupNames(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.Connector, 0, len(cs))
	for _, c := range cs {
		out = append(out, s.apiConnector(c, names))
	}
	s.withInstances(r.Context(), out)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) connectorStatus(c store.Connector) string {
	if _, live := s.registry.info(c.ID); live {
		return "active"
	}
	if !c.LastSeenAt.IsZero() && s.now().Sub(c.LastSeenAt) < s.cfg.InactiveAfter {
		return "active"
	}
	return "inactive"
}

func (s *Server) apiConnector(c store.Connector, groups map[string]string) api.Connector {
	ac := api.Connector{
		ID: c.ID, Group: groups[c.GroupID], Status: s.connectorStatus(c), Hostname: c.Hostname, Version: c.Version,
		Address: c.LastAddress, CertExpiresAt: c.CertNotAfter, LastSeenAt: c.LastSeenAt, CreatedAt: c.CreatedAt,
	}
	if li, ok := s.registry.info(c.ID); ok {
		ac.Instances, ac.Tunnels, ac.InFlight, ac.Address = 1, li.Tunnels, li.InFlight, li.Address
		ac.TunnelProtocol = li.Protocol
	}
	return ac
}

func (s *Server) connectorByID(ctx context.Context, t store.Tenant, id string) (store.Connector, error) {
	return lookup(ctx, t, id, s.store.ConnectorByID, "no_connector_id", "list the connectors with 'sallyport admin connector list'", "connector %s")
}

func (s *Server) handleGetConnector(w http.ResponseWriter, r *http.Request, p *principal) error {
	c, err := s.connectorByID(r.Context(), p.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	names, err := s.groupNames(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := []api.Connector{s.apiConnector(c, names)}
	s.withInstances(r.Context(), out)
	writeJSON(w, http.StatusOK, out[0])
	return nil
}

// handleDeleteConnector removes a connector at once (even an active one),
// revokes its certificate and closes its live tunnels.
func (s *Server) handleDeleteConnector(w http.ResponseWriter, r *http.Request, p *principal) error {
	c, err := s.connectorByID(r.Context(), p.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	reason := "deleted by " + p.User.Name
	if err := s.store.DeleteConnector(r.Context(), p.Tenant.ID, c.ID, reason, s.now().UTC()); err != nil {
		return err
	}
	s.registry.disconnect(c.ID)
	s.history.forget(historyKey{connectorSeries, p.Tenant.ID, c.ID})
	s.events.Event(eventlog.ConnectorDeleted, fmt.Sprintf("Connector %s (%s) was deleted by %s and its certificate revoked", c.ID, tenancy.DashIfEmpty(c.Hostname), p.User.Name),
		"connector", c.ID, "tenant", p.Tenant.Domain, "by", p.User.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
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
	out := []api.Connector{s.apiConnector(c, names)}
	s.withInstances(ctx, out)
	writeJSON(w, http.StatusOK, out[0])
	return nil
}
