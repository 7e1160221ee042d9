package cloud

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/neterr"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// The admin API of a tenant's OpenID provider (PUT, GET and DELETE
// /api/v1/idp), for its Global Administrators only.

const (
	maxIssuerLength   = 2000
	maxClientIDLength = 255
	maxSecretLength   = 4096
	maxClaimLength    = 100
	maxCAPEM          = 256 << 10
)

func noProvider(t store.Tenant) error {
	return problem.Newf(http.StatusNotFound, "no_idp", "set one with 'sallyport admin idp set --issuer URL --client-id ID --client-secret-file FILE'",
		"%s has no identity provider: its users sign in with local accounts", t.Domain)
}

// apiProvider is p as the API shows it (never its secret).
func (s *Server) apiProvider(p store.IdentityProvider, scopes []string) api.IdentityProvider {
	out := api.IdentityProvider{Issuer: p.Issuer, ClientID: p.ClientID, GroupsClaim: p.GroupsClaim, EmailClaim: p.EmailClaim,
		CASubjects: []string{}, RedirectURI: s.redirectURI(), Scopes: scopes, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if out.EmailClaim == "" {
		out.EmailClaim = "email"
	}
	for rest := p.CAPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out.CASubjects = append(out.CASubjects, c.Subject.String())
		}
	}
	return out
}

// checkIssuer refuses an issuer URL that cannot be one: https (http only
// on loopback), a host, no query, fragment or credentials.
func checkIssuer(raw string) (string, error) {
	bad := func(why string) error {
		return problem.Newf(http.StatusBadRequest, "bad_issuer", "give the provider's issuer URL as its discovery document names it, for example https://login.example.com/realms/contoso",
			"%q is not an issuer URL: %s", tenancy.Truncate(raw, 100), why)
	}
	if raw == "" {
		return "", bad("it is empty")
	}
	if len(raw) > maxIssuerLength {
		return "", bad(fmt.Sprintf("it is longer than %d characters", maxIssuerLength))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", bad("it does not parse")
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())):
		return "", bad("it must start with https:// (plain http only for a provider on the cloud's own machine)")
	case u.Host == "" || u.Opaque != "":
		return "", bad("it names no host")
	case u.User != nil:
		return "", bad("it must not hold a user name or password")
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return "", bad("it must not have a query or fragment")
	}
	return raw, nil
}

// checkCAPEM refuses CA PEM that holds no certificate, or anything that
// is not one.
func checkCAPEM(raw string) error {
	bad := func(why string) error {
		return problem.Newf(http.StatusBadRequest, "bad_ca", "give the PEM file of the CA that signs the provider's TLS certificate with --ca-file",
			"The CA certificates given for the identity provider are not usable: %s", why)
	}
	if len(raw) > maxCAPEM {
		return bad(fmt.Sprintf("they are larger than %d KiB", maxCAPEM>>10))
	}
	rest, n := []byte(raw), 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return bad(fmt.Sprintf("the file holds a %s block (a key?), and only certificates belong there", tenancy.Truncate(b.Type, 40)))
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return bad(fmt.Sprintf("certificate %d does not parse (%v)", n+1, err))
		}
		n++
	}
	if n == 0 {
		return bad("no PEM certificate was found")
	}
	return nil
}

// checkClaim refuses a claim name that cannot be one.
func checkClaim(flag, raw string) error {
	if len(raw) > maxClaimLength || !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return problem.Newf(http.StatusBadRequest, "bad_claim", "give the name of a claim of the provider's ID tokens, for example groups",
			"%q is not a claim name for %s: up to %d printable characters without spaces", tenancy.Truncate(raw, 60), flag, maxClaimLength)
	}
	return nil
}

// handleSetIdentityProvider creates or replaces the tenant's provider
// (PUT /idp), after reading its discovery document.
func (s *Server) handleSetIdentityProvider(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireGlobalAdmin(p, "the identity provider"); err != nil {
		return err
	}
	var in api.SetIdentityProviderRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	issuer, err := checkIssuer(strings.TrimSpace(in.Issuer))
	if err != nil {
		return err
	}
	if in.ClientID == "" || len(in.ClientID) > maxClientIDLength || strings.ContainsFunc(in.ClientID, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return problem.Newf(http.StatusBadRequest, "bad_client_id", "give the client id the provider gave the client registered for this cloud",
			"The client id %q is empty, longer than %d characters or holds control characters", tenancy.Truncate(in.ClientID, 60), maxClientIDLength)
	}
	if in.ClientSecret == "" || len(in.ClientSecret) > maxSecretLength {
		return problem.Newf(http.StatusBadRequest, "bad_client_secret", "put the secret the provider gave for the client on the first line of the file given to --client-secret-file",
			"The client secret is empty or longer than %d bytes", maxSecretLength)
	}
	if in.CAPEM != "" {
		if err := checkCAPEM(in.CAPEM); err != nil {
			return err
		}
	}
	groups := "groups"
	if in.GroupsClaim != nil {
		groups = *in.GroupsClaim
	}
	email := in.EmailClaim
	if email == "" {
		email = "email"
	}
	if err := checkClaim("--groups-claim", groups); err != nil {
		return err
	}
	if err := checkClaim("--email-claim", email); err != nil {
		return err
	}
	now := s.now().UTC()
	prov := store.IdentityProvider{TenantID: p.Tenant.ID, Issuer: issuer, ClientID: in.ClientID, ClientSecret: []byte(in.ClientSecret),
		GroupsClaim: groups, EmailClaim: email, CreatedAt: now, UpdatedAt: now}
	if in.CAPEM != "" {
		prov.CAPEM = []byte(in.CAPEM)
	}
	lp, err := discover(r.Context(), prov)
	if err != nil {
		return problem.Newf(http.StatusBadGateway, "idp_unreachable", discoveryStep(prov, err),
			"The identity provider's discovery document %s could not be read (%s)", tenancy.Truncate(strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", 200), reachWhy(err)).Wrap(err)
	}
	ctx := r.Context()
	if old, err := s.store.IdentityProviderOf(ctx, p.Tenant.ID); err == nil {
		prov.CreatedAt = old.CreatedAt
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := s.store.SetIdentityProvider(ctx, prov); err != nil {
		return err
	}
	s.forgetProvider(p.Tenant.ID)
	if err := s.reloadProviders(ctx); err != nil {
		return err
	}
	s.events.Event(eventlog.IdentityProviderSet, fmt.Sprintf("%s set the identity provider of %s to %s (client %s): sign-in for its applications goes there", p.User.Name, p.Tenant.Domain, issuer, in.ClientID),
		"tenant", p.Tenant.Domain, "issuer", issuer, "client_id", in.ClientID, "user", p.User.Name)
	writeJSON(w, http.StatusOK, s.apiProvider(prov, lp.scopes))
	return nil
}

// discoveryStep is what to do when the discovery at set failed.
func discoveryStep(p store.IdentityProvider, err error) string {
	var mismatch *oidc.IssuerMismatchError
	switch {
	case neterr.Classify(err) == neterr.CertUnknownAuthority && len(p.CAPEM) > 0:
		return "give with --ca-file the CA that signs the provider's certificate (the one given does not)"
	case neterr.Classify(err) == neterr.CertUnknownAuthority:
		return "give the CA that signs the provider's certificate with --ca-file"
	case errors.As(err, &mismatch):
		return "give --issuer exactly as the provider names itself (mind the trailing slash)"
	}
	return "check the issuer URL, and that the cloud's machine reaches it (DNS, firewall, proxy), then run the command again"
}

// handleGetIdentityProvider shows the tenant's provider (GET /idp).
func (s *Server) handleGetIdentityProvider(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireGlobalAdmin(p, "the identity provider"); err != nil {
		return err
	}
	prov, err := s.store.IdentityProviderOf(r.Context(), p.Tenant.ID)
	if errors.Is(err, store.ErrNotFound) {
		return noProvider(p.Tenant)
	} else if err != nil {
		return err
	}
	// The scopes come from the discovery document: a provider that does
	// not answer soon leaves them out rather than hold the answer up.
	var scopes []string
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if lp, err := s.liveProviderOf(ctx, prov); err == nil {
		scopes = lp.scopes
	}
	writeJSON(w, http.StatusOK, s.apiProvider(prov, scopes))
	return nil
}

// handleDeleteIdentityProvider removes the tenant's provider (DELETE /idp).
func (s *Server) handleDeleteIdentityProvider(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireGlobalAdmin(p, "the identity provider"); err != nil {
		return err
	}
	ctx := r.Context()
	prov, err := s.store.IdentityProviderOf(ctx, p.Tenant.ID)
	if errors.Is(err, store.ErrNotFound) {
		return noProvider(p.Tenant)
	} else if err != nil {
		return err
	}
	if err := s.store.DeleteIdentityProvider(ctx, p.Tenant.ID); errors.Is(err, store.ErrNotFound) {
		return noProvider(p.Tenant)
	} else if err != nil {
		return err
	}
	s.forgetProvider(p.Tenant.ID)
	if err := s.reloadProviders(ctx); err != nil {
		return err
	}
	s.events.Event(eventlog.IdentityProviderDeleted, fmt.Sprintf("%s removed the identity provider %s of %s: sign-in for its applications is with local accounts again", p.User.Name, prov.Issuer, p.Tenant.Domain),
		"tenant", p.Tenant.Domain, "issuer", prov.Issuer, "user", p.User.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
