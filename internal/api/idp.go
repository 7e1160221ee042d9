package api

import "time"

// SetIdentityProviderRequest is PUT /api/v1/idp: the tenant's OpenID
// provider, created or replaced. The cloud reads the issuer's discovery
// document before it stores anything.
type SetIdentityProviderRequest struct {
	Issuer       string `json:"issuer"`           // https://login.example.com/...: the provider's issuer URL, exactly as its discovery document names it
	ClientID     string `json:"client_id"`        // the client registered at the provider for this cloud
	ClientSecret string `json:"client_secret"`    // its secret; never shown again
	CAPEM        string `json:"ca_pem,omitempty"` // PEM certificates to trust for the provider's TLS, besides the system's
	// GroupsClaim is the ID token claim whose groups become the user's
	// user groups; absent: "groups"; "": no group mapping.
	GroupsClaim *string `json:"groups_claim,omitempty"`
	// EmailClaim is the ID token claim that holds the user's email
	// address, and so the user name; absent or "": "email".
	EmailClaim string `json:"email_claim,omitempty"`
}

// IdentityProvider is the tenant's OpenID provider as the API shows it:
// never with its client secret.
type IdentityProvider struct {
	Issuer      string `json:"issuer"`
	ClientID    string `json:"client_id"`
	GroupsClaim string `json:"groups_claim"` // "": no group mapping
	EmailClaim  string `json:"email_claim"`
	// CASubjects are the subjects of the extra CA certificates trusted for
	// the provider (none: the system's roots only).
	CASubjects []string `json:"ca_subjects"`
	// RedirectURI is the address to register at the provider:
	// https://CLOUDNAME[:PORT]/signin/oidc/callback.
	RedirectURI string `json:"redirect_uri"`
	// Scopes are what a sign-in asks the provider for ("groups" only when
	// its discovery document lists it); set by PUT, and by GET from the
	// provider's discovery document when it can be read (else absent).
	Scopes    []string  `json:"scopes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}
