package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/console"
	"github.com/sallyport/sallyport/internal/identity"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
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
	mux.HandleFunc("GET "+p+"/users/{name}", s.authed(false, s.handleGetUser))
	mux.HandleFunc("DELETE "+p+"/users/{name}", s.authed(false, s.handleDeleteUser))
	mux.HandleFunc("POST "+p+"/users/{name}/disable", s.authed(false, s.handleUserAction("disabled")))
	mux.HandleFunc("POST "+p+"/users/{name}/enable", s.authed(false, s.handleUserAction("enabled")))
	mux.HandleFunc("POST "+p+"/users/{name}/reset-mfa", s.authed(false, s.handleUserAction("mfa-reset")))
	mux.HandleFunc("GET "+p+"/tenant", s.authed(false, s.handleGetTenantSettings))
	mux.HandleFunc("PATCH "+p+"/tenant", s.authed(false, s.handleUpdateTenantSettings))
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
	mux.HandleFunc("GET "+p+"/apps/{name}/assignments", s.authed(false, s.handleListAssignments))
	mux.HandleFunc("POST "+p+"/apps/{name}/assignments", s.authed(true, s.handleAssign))
	mux.HandleFunc("DELETE "+p+"/apps/{name}/assignments/users/{assignee}", s.authed(true, s.handleUnassign(assigneeUser)))
	mux.HandleFunc("DELETE "+p+"/apps/{name}/assignments/user-groups/{assignee}", s.authed(true, s.handleUnassign(assigneeUserGroup)))
	// User groups are managed by Global Administrators only: each handler
	// checks that first, so that its refusal names the role needed.
	mux.HandleFunc("GET "+p+"/user-groups", s.authed(false, s.handleListUserGroups))
	mux.HandleFunc("POST "+p+"/user-groups", s.authed(false, s.handleCreateUserGroup))
	mux.HandleFunc("GET "+p+"/user-groups/{name}", s.authed(false, s.handleGetUserGroup))
	mux.HandleFunc("DELETE "+p+"/user-groups/{name}", s.authed(false, s.handleDeleteUserGroup))
	mux.HandleFunc("POST "+p+"/user-groups/{name}/members", s.authed(false, s.handleAddUserGroupMember))
	mux.HandleFunc("DELETE "+p+"/user-groups/{name}/members/{user}", s.authed(false, s.handleRemoveUserGroupMember))
	// The identity provider: Global Administrators only (each handler
	// checks, so that its refusal names the role needed).
	mux.HandleFunc("GET "+p+"/idp", s.authed(false, s.handleGetIdentityProvider))
	mux.HandleFunc("PUT "+p+"/idp", s.authed(false, s.handleSetIdentityProvider))
	mux.HandleFunc("DELETE "+p+"/idp", s.authed(false, s.handleDeleteIdentityProvider))
	mux.HandleFunc("GET "+OIDCCallbackPath, s.handleOIDCCallback)
	mux.HandleFunc("GET "+p+"/domains", s.authed(false, s.handleListDomains))
	mux.HandleFunc("POST "+p+"/domains", s.authed(true, s.handleCreateDomain))
	mux.HandleFunc("POST "+p+"/domains/{domain}/verify", s.authed(true, s.handleVerifyDomain))
	mux.HandleFunc("DELETE "+p+"/domains/{domain}", s.authed(true, s.handleDeleteDomain))
	mux.HandleFunc("GET "+p+"/overview", s.authed(false, s.handleOverview))
	mux.HandleFunc("GET "+p+"/connectors", s.authed(false, s.handleListConnectors))
	mux.HandleFunc("GET "+p+"/requests/{id}", s.authed(false, s.handleShowRequest))
	mux.HandleFunc("GET "+p+"/events", s.authed(false, s.handleListEvents))
	mux.HandleFunc("GET "+p+"/updates", s.authed(false, s.handleUpdates))
	mux.HandleFunc("GET "+p+"/connectors/{id}", s.authed(false, s.handleGetConnector))
	mux.HandleFunc("DELETE "+p+"/connectors/{id}", s.authed(true, s.handleDeleteConnector))
	mux.HandleFunc("POST "+p+"/connectors/{id}/move", s.authed(true, s.handleMoveConnector))
	mux.HandleFunc("GET "+p+"/tokens", s.authed(false, s.handleListRegistrationTokens))
	mux.HandleFunc("POST "+p+"/tokens", s.authed(true, s.handleCreateRegistrationToken))
	mux.HandleFunc("DELETE "+p+"/tokens/{id}", s.authed(true, s.handleRevokeRegistrationToken))
	mux.HandleFunc("GET "+CRLPath, s.handleCRL)
	// The device flow (RFC 8628) of 'sallyport access': device.go.
	mux.HandleFunc("POST /oauth/device_authorization", s.handleDeviceAuthorization)
	mux.HandleFunc("POST /oauth/token", s.handleToken)
	mux.HandleFunc("POST /oauth/revoke", s.handleRevoke)
	mux.HandleFunc("GET /device", s.handleDevicePage)
	mux.HandleFunc("POST /device", s.handleDeviceDecision)
	// Each tenant's issuer: its JWKS and discovery document, public.
	keys := s.identity.Handler(s.tenantByLabel, s.writeError)
	for _, p := range identity.Patterns {
		mux.Handle(p, keys)
	}
	s.signinRoutes(mux)
	mux.Handle(console.Prefix+"/", s.newConsole(mux))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem.Newf(http.StatusNotFound, "not_found", "see docs/api.md for the routes of the admin API",
			"There is no admin API route %s %s", r.Method, tenancy.Truncate(r.URL.Path, 100)))
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
// lookup finds a record of tenant t by key (a name or an id) with find;
// a record that is not there is a 404 problem with code and step, "There
// is no " what " in DOMAIN", what holding the key (cut to 80 runes) as %s.
func lookup[T any](ctx context.Context, t store.Tenant, key string, find func(ctx context.Context, tenantID, key string) (T, error), code, step, what string) (T, error) {
	v, err := find(ctx, t.ID, key)
	if errors.Is(err, store.ErrNotFound) {
		return v, problem.Newf(http.StatusNotFound, code, step, "There is no "+what+" in %s", tenancy.Truncate(key, 80), t.Domain)
	}
	return v, err
}

func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem.New(http.StatusUnsupportedMediaType, "bad_request", "send it with Content-Type: application/json", "The request body is not JSON")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, api.MaxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.Newf(http.StatusBadRequest, "bad_request", "see docs/api.md for the shape of this request",
			"The request body is not valid JSON for this request (%s)", tenancy.Truncate(err.Error(), 120))
	}
	if dec.More() {
		return problem.New(http.StatusBadRequest, "bad_request", "send exactly one object", "The request body holds more than one JSON value")
	}
	return nil
}
