package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
)

// idpForm is what the identity provider form holds: the current
// settings, or what was typed (never the client secret).
type idpForm struct {
	Issuer, ClientID, GroupsClaim, EmailClaim, CAPEM string
}

// idpView is the data of the identity provider page.
type idpView struct {
	Provider    *api.IdentityProvider // nil: none is set
	RedirectURI string
	Form        idpForm
	Error       string
}

// showIdP renders the identity provider page with v's form and error.
func (c *Console) showIdP(w http.ResponseWriter, r *http.Request, u User, status int, v idpView, typed bool) error {
	var p api.IdentityProvider
	err := c.Call(r, u, http.MethodGet, "/idp", nil, &p)
	var ae *APIError
	switch {
	case err == nil:
		v.Provider = &p
		v.RedirectURI = p.RedirectURI
		if !typed {
			v.Form = idpForm{Issuer: p.Issuer, ClientID: p.ClientID, GroupsClaim: p.GroupsClaim, EmailClaim: p.EmailClaim}
		}
	case errors.As(err, &ae) && ae.Code == "no_idp":
		if !typed {
			v.Form = idpForm{GroupsClaim: "groups", EmailClaim: "email"}
		}
	default:
		return err
	}
	if v.RedirectURI == "" {
		v.RedirectURI = c.cfg.RedirectURI
	}
	c.render(w, r, u, status, "idp", "idp", v)
	return nil
}

// idpPage shows the tenant's identity provider (Global Administrators:
// the API refuses the others, and the page shows its sentence), the
// redirect URI to register at the provider, and the form that sets it.
func (c *Console) idpPage(w http.ResponseWriter, r *http.Request, u User) error {
	return c.showIdP(w, r, u, http.StatusOK, idpView{}, false)
}

// setIdP sets or replaces the identity provider (PUT /api/v1/idp: the
// cloud reads the provider's discovery document first).
func (c *Console) setIdP(w http.ResponseWriter, r *http.Request, u User) error {
	f := r.PostForm
	form := idpForm{Issuer: strings.TrimSpace(f.Get("issuer")), ClientID: strings.TrimSpace(f.Get("client_id")),
		GroupsClaim: strings.TrimSpace(f.Get("groups_claim")), EmailClaim: strings.TrimSpace(f.Get("email_claim")), CAPEM: strings.TrimSpace(f.Get("ca_pem"))}
	in := api.SetIdentityProviderRequest{Issuer: form.Issuer, ClientID: form.ClientID, ClientSecret: f.Get("client_secret"),
		CAPEM: form.CAPEM, GroupsClaim: &form.GroupsClaim, EmailClaim: form.EmailClaim}
	var p api.IdentityProvider
	if err := c.Call(r, u, http.MethodPut, "/idp", in, &p); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showIdP(w, r, u, ae.Status, idpView{Form: form, Error: ae.Message}, true)
	}
	return c.done(w, r, Prefix+"/idp", fmt.Sprintf("Sign-in for your tenant's applications now goes to %s (client %s): register the redirect URI %s for the client at the provider.", p.Issuer, p.ClientID, p.RedirectURI))
}

// deleteIdPPage asks for confirmation before the provider is removed.
func (c *Console) deleteIdPPage(w http.ResponseWriter, r *http.Request, u User) error {
	var p api.IdentityProvider
	if err := c.Call(r, u, http.MethodGet, "/idp", nil, &p); err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "confirm-action", "idp", actionConfirm{
		Heading: "Remove the identity provider",
		What:    fmt.Sprintf("Sign-in for your tenant's applications stops going to %s (client %s): your users sign in with local accounts again.", p.Issuer, p.ClientID),
		Action:  Prefix + "/idp/delete", Button: "Remove the identity provider", Back: Prefix + "/idp"})
	return nil
}

// deleteIdP removes the provider.
func (c *Console) deleteIdP(w http.ResponseWriter, r *http.Request, u User) error {
	if err := c.Call(r, u, http.MethodDelete, "/idp", nil, nil); err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/idp", "Removed the identity provider: your users sign in with local accounts again.")
}
