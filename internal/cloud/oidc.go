package cloud

import (
	"net/http"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// tenantHasProvider reports whether sign-in for the tenant's applications
// goes to its OpenID provider. (Federation lands with the oidc lane; this
// file is replaced by it.)
func (s *Server) tenantHasProvider(tenantID string) bool { return false }

// startProvider sends the browser to the tenant's OpenID provider.
func (s *Server) startProvider(w http.ResponseWriter, r *http.Request, t store.Tenant, f signinFlow) {
	s.messagePage(w, r, problem.New(http.StatusNotImplemented, "no_provider", "sign in with a local account", "Federated sign-in is not available"))
}
