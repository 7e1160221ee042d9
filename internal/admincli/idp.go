package admincli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/sallyport/sallyport/internal/api"
)

// SetIdentityProvider sets the tenant's OpenID provider (the cloud reads
// its discovery document first) and prints the redirect URI to register.
func (c *Client) SetIdentityProvider(ctx context.Context, o Output, in api.SetIdentityProviderRequest) error {
	var p api.IdentityProvider
	if err := c.Do(ctx, http.MethodPut, "/idp", in, &p); err != nil {
		return err
	}
	return o.Emit(p, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Sign-in for your tenant's applications now goes to %s (client %s).\n", p.Issuer, p.ClientID)
		fmt.Fprintf(tw, "Register this redirect URI for the client at the provider: %s\n", p.RedirectURI)
	})
}

// ShowIdentityProvider prints the tenant's OpenID provider, never its
// client secret.
func (c *Client) ShowIdentityProvider(ctx context.Context, o Output) error {
	var p api.IdentityProvider
	if err := c.Do(ctx, http.MethodGet, "/idp", nil, &p); err != nil {
		return err
	}
	return o.Emit(p, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Issuer:\t%s\n", p.Issuer)
		fmt.Fprintf(tw, "Client ID:\t%s\n", p.ClientID)
		fmt.Fprintf(tw, "Client secret:\t(set; never shown)\n")
		fmt.Fprintf(tw, "Redirect URI:\t%s\n", p.RedirectURI)
		fmt.Fprintf(tw, "Email claim:\t%s\n", p.EmailClaim)
		groups := p.GroupsClaim
		if groups == "" {
			groups = "- (no group mapping)"
		}
		fmt.Fprintf(tw, "Groups claim:\t%s\n", groups)
		fmt.Fprintf(tw, "Extra CAs:\t%s\n", dash(strings.Join(p.CASubjects, "; ")))
		scopes := strings.Join(p.Scopes, " ")
		if scopes == "" {
			scopes = "- (the discovery document cannot be read now)"
		}
		fmt.Fprintf(tw, "Scopes:\t%s\n", scopes)
		fmt.Fprintf(tw, "Updated:\t%s\n", when(p.UpdatedAt))
	})
}

// DeleteIdentityProvider removes the tenant's OpenID provider.
func (c *Client) DeleteIdentityProvider(ctx context.Context, o Output) error {
	if err := c.Do(ctx, http.MethodDelete, "/idp", nil, nil); err != nil {
		return err
	}
	return o.Emit(map[string]bool{"deleted": true}, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "Removed the identity provider: your users sign in with local accounts again.")
	})
}
