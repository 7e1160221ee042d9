package cloud

import (
	"context"
	"net/http"

	"github.com/sallyport/sallyport/internal/console"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// The admin center (internal/console, docs/admin-center.md) at
// https://CLOUDNAME/admin/: its pages call the admin API in process, as
// the user of the browser's session at the cloud's name. The API reads
// that user again from the store (role, disabled) like a token's user.

// consoleUserKey carries, in a request's context, the admin center user
// an in-process API call is made for. Only the console sets it: nothing
// that arrives over the network can.
type consoleUserKey struct{}

// newConsole builds the admin center over api, the admin API's handler.
func (s *Server) newConsole(api http.Handler) *console.Console {
	return console.New(console.Config{
		API: api,
		Who: s.consoleUser,
		As: func(ctx context.Context, u console.User) context.Context {
			return context.WithValue(ctx, consoleUserKey{}, u)
		},
		CSRFToken:     s.csrfToken,
		CheckCSRF:     s.checkCSRF,
		Origin:        s.origin(s.settings.Name),
		CAFingerprint: s.caFingerprint(),
		Log:           s.log,
		Now:           s.now,
		RedirectURI:   s.redirectURI(),
	})
}

// caFingerprint is the cloud CA's fingerprint ("" without a CA).
func (s *Server) caFingerprint() string {
	if s.ca == nil || s.ca.Cert == nil {
		return ""
	}
	return pki.Fingerprint(s.ca.Cert)
}

// consoleUser is the signed-in user of r's session at the cloud's name.
func (s *Server) consoleUser(r *http.Request) (console.User, bool) {
	_, u, ok := s.homeSession(r)
	if !ok {
		return console.User{}, false
	}
	ten := s.routesNow().tenants[u.TenantID]
	return console.User{ID: u.ID, Name: u.Name, TenantID: u.TenantID, Tenant: ten.Domain, Role: string(u.Role)}, true
}

// consolePrincipal authenticates an in-process call of the admin center:
// the user is read again from the store, as for an admin token.
func (s *Server) consolePrincipal(r *http.Request) (*principal, bool, error) {
	cu, ok := r.Context().Value(consoleUserKey{}).(console.User)
	if !ok {
		return nil, false, nil
	}
	gone := problem.New(http.StatusUnauthorized, "unauthenticated", "sign in again at the start page", "Your session's user no longer exists")
	u, err := s.store.UserByID(r.Context(), cu.TenantID, cu.ID)
	if err != nil {
		return nil, true, gone
	}
	t, err := s.store.TenantByID(r.Context(), cu.TenantID)
	if err != nil {
		return nil, true, gone
	}
	if u.Disabled {
		return nil, true, userDisabled(u, t)
	}
	return &principal{User: u, Tenant: t}, true, nil
}

// isAdmin reports whether u may open the admin center (My Apps shows its link).
func isAdmin(u store.User) bool { return u.Role.CanManage() }
