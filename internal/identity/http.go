package identity

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// The paths under an issuer (https://CLOUDNAME/t/LABEL).
const (
	JWKSSuffix      = "/.well-known/jwks.json"
	DiscoverySuffix = "/.well-known/openid-configuration"
)

// Patterns are the routes Handler serves, for the cloud's mux at its own
// name.
var Patterns = []string{"GET /t/{label}" + JWKSSuffix, "GET /t/{label}" + DiscoverySuffix}

// MaxAge is how long a client may cache the JWKS and the discovery
// document: far less than PublishAhead, so a new key is seen before it
// signs.
const MaxAge = 5 * time.Minute

// Discovery is the OpenID discovery document of an issuer: only what is
// true of it (no authorization endpoint: the cloud signs assertions, it is
// not an OpenID provider for clients).
type Discovery struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
}

// DiscoveryOf returns the discovery document of the tenant with label.
func (s *Service) DiscoveryOf(label string) Discovery {
	return Discovery{
		Issuer: s.Issuer(label), JWKSURI: s.JWKSURL(label),
		IDTokenSigningAlgValuesSupported: []string{Alg},
		SubjectTypesSupported:            []string{"public"},
		ClaimsSupported:                  []string{"iss", "aud", "sub", "email", "name", "groups", "iat", "nbf", "exp", "jti"},
	}
}

// Handler serves the JWKS and discovery document of each tenant, found by
// its label with lookup (the cloud's route table). A label no tenant has
// is writeErr's 404 (not_found), which says nothing of tenants; so are
// store failures, as writeErr says them. Both documents are public and
// cacheable for MaxAge. The first fetch of a tenant's JWKS makes its
// first key (first need).
func (s *Service) Handler(lookup func(label string) (store.Tenant, bool), writeErr func(http.ResponseWriter, *http.Request, error)) http.Handler {
	mux := http.NewServeMux()
	tenantOf := func(w http.ResponseWriter, r *http.Request) (store.Tenant, bool) {
		t, ok := lookup(r.PathValue("label"))
		if !ok {
			writeErr(w, r, problem.New(http.StatusNotFound, "not_found", "check the issuer's address: https://CLOUDNAME/t/LABEL, with the tenant's label",
				"There is no issuer at this address"))
		}
		return t, ok
	}
	mux.HandleFunc(Patterns[0], func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenantOf(w, r)
		if !ok {
			return
		}
		now := s.cfg.Now()
		keys, err := s.keys(r.Context(), t, now, true)
		if err != nil {
			writeErr(w, r, err)
			return
		}
		writePublic(w, r, jwks(keys, now, s.cfg.Policy.RetainAfter))
	})
	mux.HandleFunc(Patterns[1], func(w http.ResponseWriter, r *http.Request) {
		if t, ok := tenantOf(w, r); ok {
			writePublic(w, r, s.DiscoveryOf(t.Label))
		}
	})
	return mux
}

// writePublic writes v as a public, cacheable JSON document.
func writePublic(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(MaxAge/time.Second)))
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
