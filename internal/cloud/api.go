package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// apiHandler routes the admin API and registration endpoint.
func (s *Server) apiHandler() http.Handler {
	mux := http.NewServeMux()
	p := api.Prefix
	mux.HandleFunc("POST "+p+"/login", s.handleLogin)
	mux.HandleFunc("POST "+p+"/connectors/register", s.handleRegister)
	mux.HandleFunc("GET "+p+"/me", s.authed(false, s.handleMe))
	mux.HandleFunc("GET "+p+"/users", s.authed(false, s.handleListUsers))
	mux.HandleFunc("POST "+p+"/users", s.authed(true, s.handleCreateUser))
	mux.HandleFunc("GET "+p+"/groups", s.authed(false, s.handleListGroups))
	mux.HandleFunc("POST "+p+"/groups", s.authed(true, s.handleCreateGroup))
	mux.HandleFunc("PATCH "+p+"/groups/{name}", s.authed(true, s.handleUpdateGroup))
	mux.HandleFunc("DELETE "+p+"/groups/{name}", s.authed(true, s.handleDeleteGroup))
	mux.HandleFunc("GET "+p+"/apps", s.authed(false, s.handleListApps))
	mux.HandleFunc("POST "+p+"/apps", s.authed(true, s.handleCreateApp))
	mux.HandleFunc("GET "+p+"/apps/{name}", s.authed(false, s.handleGetApp))
	mux.HandleFunc("GET "+p+"/apps/{name}/diagnose", s.authed(false, s.handleDiagnoseApp))
	mux.HandleFunc("PATCH "+p+"/apps/{name}", s.authed(true, s.handleUpdateApp))
	mux.HandleFunc("DELETE "+p+"/apps/{name}", s.authed(true, s.handleDeleteApp))
	mux.HandleFunc("GET "+p+"/domains", s.authed(false, s.handleListDomains))
	mux.HandleFunc("POST "+p+"/domains", s.authed(true, s.handleCreateDomain))
	mux.HandleFunc("POST "+p+"/domains/{domain}/verify", s.authed(true, s.handleVerifyDomain))
	mux.HandleFunc("DELETE "+p+"/domains/{domain}", s.authed(true, s.handleDeleteDomain))
	mux.HandleFunc("GET "+p+"/connectors", s.authed(false, s.handleListConnectors))
	mux.HandleFunc("GET "+p+"/requests/{id}", s.authed(false, s.handleShowRequest))
	mux.HandleFunc("GET "+p+"/connectors/{id}", s.authed(false, s.handleGetConnector))
	mux.HandleFunc("DELETE "+p+"/connectors/{id}", s.authed(true, s.handleDeleteConnector))
	mux.HandleFunc("POST "+p+"/connectors/{id}/move", s.authed(true, s.handleMoveConnector))
	mux.HandleFunc("GET "+p+"/tokens", s.authed(false, s.handleListRegistrationTokens))
	mux.HandleFunc("POST "+p+"/tokens", s.authed(true, s.handleCreateRegistrationToken))
	mux.HandleFunc("DELETE "+p+"/tokens/{id}", s.authed(true, s.handleRevokeRegistrationToken))
	mux.HandleFunc("GET "+CRLPath, s.handleCRL)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem.Newf(http.StatusNotFound, "not_found", "see docs/api.md for the routes of the admin API",
			"There is no admin API route %s %s", r.Method, truncate(r.URL.Path, 100)))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// The cloud's own name is only ever served over TLS (the one port has
		// no plain HTTP): browsers that open the admin API remember it. Only
		// this name, not its subdomains: those are applications' hosts, and
		// their headers are the applications' own.
		w.Header().Set("Strict-Transport-Security", "max-age=63072000")
		mux.ServeHTTP(w, r)
	})
}

type apiFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// authed authenticates the caller; manage requires at least the
// Application Administrator role.
func (s *Server) authed(manage bool, f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil && manage && !p.User.Role.CanManage() {
			err = problem.Newf(http.StatusForbidden, "forbidden",
				"ask a Global Administrator of "+p.Tenant.Domain+" to do it, or to give you the Application Administrator role",
				"%s has the role %s, and changing the tenant's configuration needs at least Application Administrator", p.User.Name, roleTitle(p.User.Role))
		}
		if err == nil {
			err = f(w, r, p)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

func roleTitle(r store.Role) string {
	switch r {
	case store.RoleGlobalAdmin:
		return "Global Administrator"
	case store.RoleAppAdmin:
		return "Application Administrator"
	default:
		return "User"
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *retryError
	if errors.As(err, &re) {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(re.after)))
	}
	p := problem.Public(err)
	if p.Status >= 500 {
		s.log.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p *problem.Problem) {
	w.Header().Set("Content-Type", "application/json")
	if p.Status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: p.Code, Message: p.Error(), Step: p.Step}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON body of at most api.MaxBody bytes with no unknown fields.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem.New(http.StatusUnsupportedMediaType, "bad_request", "The request body is not JSON", "send it with Content-Type: application/json")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, api.MaxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.Newf(http.StatusBadRequest, "bad_request", "see docs/api.md for the shape of this request",
			"The request body is not valid JSON for this request (%s)", truncate(err.Error(), 120))
	}
	if dec.More() {
		return problem.New(http.StatusBadRequest, "bad_request", "The request body holds more than one JSON value", "send exactly one object")
	}
	return nil
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	src := sourceOf(r.RemoteAddr)
	if err := s.signin.admit(src); err != nil {
		s.writeError(w, r, err)
		return
	}
	var in api.LoginRequest
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, t, err := s.checkPassword(r.Context(), src, in.User, in.Password)
	if err != nil {
		s.log.Info("sign-in failed", "user", truncate(in.User, 80), "address", r.RemoteAddr)
		s.writeError(w, r, err)
		return
	}
	tok, hash := newToken()
	now := s.now().UTC()
	at := store.APIToken{ID: NewID("k"), UserID: u.ID, TenantID: u.TenantID, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(TokenLifetime)}
	if err := s.store.CreateAPIToken(r.Context(), at); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.store.DeleteExpiredAPITokens(r.Context(), now)
	writeJSON(w, http.StatusOK, api.LoginResponse{Token: tok, ExpiresAt: at.ExpiresAt, User: u.Name, Tenant: t.Domain, Role: string(u.Role)})
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, api.Me{User: p.User.Name, Tenant: p.Tenant.Domain, TenantID: p.Tenant.ID, Role: string(p.User.Role)})
	return nil
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	us, err := s.store.ListUsers(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.User, 0, len(us))
	for _, u := range us {
		out = append(out, api.User{ID: u.ID, Name: u.Name, Role: string(u.Role), Tenant: p.Tenant.Domain, CreatedAt: u.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	if p.User.Role != store.RoleGlobalAdmin {
		return problem.Newf(http.StatusForbidden, "forbidden", "ask a Global Administrator of "+p.Tenant.Domain,
			"%s is an %s, and only a Global Administrator manages users", p.User.Name, roleTitle(p.User.Role))
	}
	var in api.CreateUserRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	name, err := checkUserName("bad_user_name", in.Name, p.Tenant.Domain)
	if err != nil {
		return err
	}
	role := store.Role(in.Role)
	if !role.Valid() {
		return problem.Newf(http.StatusBadRequest, "bad_role", "use global-admin, app-admin or user", "%q is not a role", truncate(in.Role, 40))
	}
	if err := CheckPassword(in.Password); err != nil {
		return err
	}
	hash, err := s.hashPasswordFor(r.Context(), sourceOf(r.RemoteAddr), in.Password)
	if err != nil {
		return err
	}
	u := store.User{ID: NewID("u"), TenantID: p.Tenant.ID, Name: name, Role: role, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(r.Context(), u); errors.Is(err, store.ErrConflict) {
		return problem.Newf(http.StatusConflict, "user_exists", "choose another name", "The user %s already exists", name)
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.User{ID: u.ID, Name: u.Name, Role: string(u.Role), Tenant: p.Tenant.Domain, CreatedAt: u.CreatedAt})
	return nil
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
	name, err := checkGroupName(in.Name)
	if err != nil {
		return err
	}
	g := store.Group{ID: NewID("g"), TenantID: p.Tenant.ID, Name: name, CreatedAt: s.now().UTC()}
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
		name = DefaultGroup
	}
	g, err := s.store.GroupByName(ctx, t.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return g, problem.Newf(http.StatusNotFound, "no_group", "list the groups with 'sallyport admin group list', or create it with 'sallyport admin group create'",
			"There is no connector group '%s' in %s", truncate(name, 80), t.Domain)
	}
	return g, err
}

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
	writeJSON(w, http.StatusOK, out)
	return nil
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
	c, err := s.store.ConnectorByID(ctx, t.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return c, problem.Newf(http.StatusNotFound, "no_connector_id", "list the connectors with 'sallyport admin connector list'",
			"There is no connector %s in %s", truncate(id, 80), t.Domain)
	}
	return c, err
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
	writeJSON(w, http.StatusOK, s.apiConnector(c, names))
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
	s.events.Event(eventlog.ConnectorDeleted, fmt.Sprintf("Connector %s (%s) was deleted by %s and its certificate revoked", c.ID, dashIfEmpty(c.Hostname), p.User.Name),
		"connector", c.ID, "tenant", p.Tenant.Domain, "by", p.User.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
