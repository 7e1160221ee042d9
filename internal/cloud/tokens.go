package cloud

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// Registration tokens let a connector register without an administrator's
// password (unattended installs). An Application or Global Administrator
// creates one for a group (POST /tokens); the token is shown once, and only
// its SHA-256 hash is stored. A token lives 24 hours and allows one
// registration unless told otherwise (at most 30 days; any number of uses,
// or unlimited until it expires), and can be revoked at any time.

// newRegistrationToken returns a new registration token and its stored
// hash: "spr_" and 32 random bytes in base64url, hashed like API tokens.
func newRegistrationToken() (token, hash string) {
	b := make([]byte, 32)
	rand.Read(b)
	token = api.RegistrationTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

// tokenState is the API state of a registration token at now.
func tokenState(t store.RegistrationToken, now time.Time) string {
	switch err := t.Check(now); {
	case err == nil:
		return api.TokenActive
	case errors.Is(err, store.ErrTokenRevoked):
		return api.TokenRevoked
	case errors.Is(err, store.ErrTokenUsedUp):
		return api.TokenUsedUp
	default:
		return api.TokenExpired
	}
}

func (s *Server) apiRegistrationToken(t store.RegistrationToken, group string) api.RegistrationToken {
	return api.RegistrationToken{
		ID: t.ID, Group: group, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		MaxUses: t.MaxUses, Uses: t.Uses, State: tokenState(t, s.now()), RevokedAt: t.RevokedAt, RevokedBy: t.RevokedBy,
	}
}

// usesText is "USES/MAX" or "USES/unlimited".
func usesText(uses, maxUses int) string {
	if maxUses == 0 {
		return fmt.Sprintf("%d/unlimited", uses)
	}
	return fmt.Sprintf("%d/%d", uses, maxUses)
}

// maxUsesText is "N" or "unlimited".
func maxUsesText(maxUses int) string {
	if maxUses == 0 {
		return "unlimited"
	}
	return fmt.Sprint(maxUses)
}

// tokenAdmin refuses callers below Application Administrator: registration
// tokens, even listed without their secret, are theirs only.
func tokenAdmin(p *principal) error {
	if p.User.Role.CanManage() {
		return nil
	}
	return problem.Newf(http.StatusForbidden, "forbidden",
		"ask an Application or Global Administrator of "+p.Tenant.Domain,
		"%s has the role %s, and registration tokens are managed by Application and Global Administrators only", p.User.Name, roleTitle(p.User.Role))
}

// handleCreateRegistrationToken creates a token (POST /tokens).
func (s *Server) handleCreateRegistrationToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	var in api.CreateRegistrationTokenRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	lifetime := int64(api.DefaultTokenLifetimeSeconds)
	if in.ExpiresInSeconds != nil {
		lifetime = *in.ExpiresInSeconds
	}
	if lifetime > api.MaxTokenLifetimeSeconds {
		return problem.Newf(http.StatusBadRequest, "bad_token_lifetime",
			"give at most 30 days (for example --expires 30d, or expires_in_seconds 2592000), and create a new token when it runs out",
			"A registration token may live at most 30 days, not %s", humanSeconds(lifetime))
	}
	if lifetime < api.MinTokenLifetimeSeconds {
		return problem.Newf(http.StatusBadRequest, "bad_token_lifetime",
			"give at least 1 minute, for example --expires 24h (expires_in_seconds 86400)",
			"A registration token must live at least 1 minute, not %s", humanSeconds(lifetime))
	}
	maxUses := api.DefaultTokenMaxUses
	if in.MaxUses != nil {
		maxUses = *in.MaxUses
	}
	if maxUses < 0 || maxUses > api.MaxTokenMaxUses {
		return problem.Newf(http.StatusBadRequest, "bad_token_uses",
			fmt.Sprintf("give 1 to %d registrations, or 0 for any number until the token expires", api.MaxTokenMaxUses),
			"%d is not a number of registrations a token can allow", maxUses)
	}
	g, err := s.groupByName(ctx, p.Tenant, in.Group)
	if err != nil {
		return err
	}
	secret, hash := newRegistrationToken()
	now := s.now().UTC()
	t := store.RegistrationToken{
		ID: tenancy.NewID("r"), TenantID: p.Tenant.ID, GroupID: g.ID, Hash: hash, CreatedBy: p.User.Name,
		CreatedAt: now, ExpiresAt: now.Add(time.Duration(lifetime) * time.Second), MaxUses: maxUses,
	}
	if err := s.store.CreateRegistrationToken(ctx, t); errors.Is(err, store.ErrNotFound) {
		return problem.Newf(http.StatusNotFound, "no_group", "try again", "The group '%s' was deleted while the token was being created", g.Name)
	} else if err != nil {
		return err
	}
	s.log.Info("registration token created", "token", t.ID, "tenant", p.Tenant.Domain, "group", g.Name, "by", p.User.Name,
		"expires_at", t.ExpiresAt, "max_uses", maxUsesText(t.MaxUses))
	writeJSON(w, http.StatusCreated, api.CreateRegistrationTokenResponse{RegistrationToken: s.apiRegistrationToken(t, g.Name), Token: secret})
	return nil
}

// handleListRegistrationTokens lists the tenant's tokens, newest first,
// without the tokens themselves (GET /tokens).
func (s *Server) handleListRegistrationTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := tokenAdmin(p); err != nil {
		return err
	}
	ts, err := s.store.ListRegistrationTokens(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	names, err := s.groupNames(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.RegistrationToken, 0, len(ts))
	for _, t := range ts {
		out = append(out, s.apiRegistrationToken(t, names[t.GroupID]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleRevokeRegistrationToken revokes a token at once (DELETE
// /tokens/{id}). The token stays listed, as revoked; revoking it again
// keeps the first revocation.
func (s *Server) handleRevokeRegistrationToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	id := r.PathValue("id")
	t, err := s.store.RevokeRegistrationToken(ctx, p.Tenant.ID, id, p.User.Name, s.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return problem.Newf(http.StatusNotFound, "no_token", "list the registration tokens with 'sallyport admin token list'",
			"There is no registration token %s in %s", tenancy.Truncate(id, 80), p.Tenant.Domain)
	} else if err != nil {
		return err
	}
	group := ""
	if g, err := s.store.GroupByID(ctx, p.Tenant.ID, t.GroupID); err == nil {
		group = g.Name
	}
	s.log.Info("registration token revoked", "token", t.ID, "tenant", p.Tenant.Domain, "group", group, "by", p.User.Name,
		"created_by", t.CreatedBy, "uses", usesText(t.Uses, t.MaxUses))
	writeJSON(w, http.StatusOK, s.apiRegistrationToken(t, group))
	return nil
}

// tokenStep is the recommended step of every refused registration token.
const tokenStep = "ask an administrator of your tenant for a new registration token ('sallyport admin token create')"

// tokenRegistrant authorises a registration by a registration token: the
// connector joins the token's tenant and group. The token is checked here
// (for a clear refusal before anything else) and used, atomically, later.
func (s *Server) tokenRegistrant(ctx context.Context, in *api.RegisterRequest) (registrant, error) {
	if in.User != "" || in.Password != "" {
		return registrant{}, problem.New(http.StatusBadRequest, "bad_request",
			"send one or the other", "The registration request carries both a registration token and a user name or password")
	}
	secret := strings.TrimSpace(in.Token)
	if strings.HasPrefix(secret, "spt_") {
		return registrant{}, problem.New(http.StatusUnauthorized, "registration_token_unknown",
			"create a registration token with 'sallyport admin token create' and register with it", "Connector registration failed: the token given is an admin sign-in token (from 'sallyport admin login'), not a registration token")
	}
	unknown := problem.New(http.StatusUnauthorized, "registration_token_unknown",
		"check that you copied the whole token (it starts with "+api.RegistrationTokenPrefix+"), or "+tokenStep, "Connector registration failed: the registration token is not known to this cloud")
	if len(secret) > 200 || !strings.HasPrefix(secret, api.RegistrationTokenPrefix) {
		return registrant{}, unknown
	}
	tok, err := s.store.RegistrationTokenByHash(ctx, hashToken(secret))
	if errors.Is(err, store.ErrNotFound) {
		return registrant{}, unknown
	} else if err != nil {
		return registrant{}, err
	}
	if err := tok.Check(s.now()); err != nil {
		return registrant{}, tokenRefusal(tok, err)
	}
	t, err := s.store.TenantByID(ctx, tok.TenantID)
	if err != nil {
		return registrant{}, err
	}
	g, err := s.store.GroupByID(ctx, tok.TenantID, tok.GroupID)
	if errors.Is(err, store.ErrNotFound) {
		return registrant{}, unknown // the group was just deleted, and its tokens with it
	} else if err != nil {
		return registrant{}, err
	}
	if in.Group != "" && in.Group != g.Name {
		return registrant{}, problem.Newf(http.StatusForbidden, "registration_token_group",
			fmt.Sprintf("run register again without --group (or with --group '%s'), or ask an administrator for a token of group '%s'", g.Name, tenancy.Truncate(in.Group, 80)),
			"Connector registration failed: the registration token %s is for the connector group '%s', not '%s'", tok.ID, g.Name, tenancy.Truncate(in.Group, 80))
	}
	return registrant{tenant: t, group: g, groupChosen: true, user: tok.CreatedBy, token: &tok}, nil
}

// tokenRefusal explains why a registration token cannot be used: err is
// what RegistrationToken.Check or UseRegistrationToken returned.
func tokenRefusal(t store.RegistrationToken, err error) error {
	switch {
	case errors.Is(err, store.ErrTokenRevoked):
		return problem.Newf(http.StatusUnauthorized, "registration_token_revoked", tokenStep,
			"Connector registration failed: the registration token %s was revoked on %s by %s",
			t.ID, t.RevokedAt.UTC().Format(time.RFC3339), t.RevokedBy)
	case errors.Is(err, store.ErrTokenExpired):
		return problem.Newf(http.StatusUnauthorized, "registration_token_expired", tokenStep,
			"Connector registration failed: the registration token %s expired on %s", t.ID, t.ExpiresAt.UTC().Format(time.RFC3339))
	case errors.Is(err, store.ErrTokenUsedUp):
		made := fmt.Sprintf("it allowed %d registrations and all %d have been made", t.MaxUses, t.Uses)
		if t.MaxUses == 1 {
			made = "it allowed 1 registration, which has been made"
		}
		return problem.Newf(http.StatusUnauthorized, "registration_token_used_up", tokenStep,
			"Connector registration failed: the registration token %s is used up: %s", t.ID, made)
	case errors.Is(err, store.ErrNotFound):
		return problem.New(http.StatusUnauthorized, "registration_token_unknown",
			tokenStep, "Connector registration failed: the registration token is not known to this cloud")
	}
	return err
}

// humanSeconds writes a number of seconds in the largest whole unit:
// "45 days", "3 hours", "90 seconds".
func humanSeconds(sec int64) string {
	units := []struct {
		n    int64
		name string
	}{{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}}
	for _, u := range units {
		if sec%u.n == 0 && (sec != 0 || u.n == 1) {
			v := sec / u.n
			if v == 1 || v == -1 {
				return fmt.Sprintf("%d %s", v, u.name)
			}
			return fmt.Sprintf("%d %ss", v, u.name)
		}
	}
	return fmt.Sprintf("%d seconds", sec)
}
