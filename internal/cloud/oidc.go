package cloud

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/neterr"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// Federation at a tenant's OpenID provider (docs/identity.md, "Federation
// (OpenID Connect)"): when a tenant has a provider, /signin sends the
// browser straight there (authorization code flow with PKCE, state and
// nonce); the provider sends it back to /signin/oidc/callback, where the
// ID token is verified, the user found by ISSUER#SUBJECT or created just
// in time, their user groups set from the groups claim, and the sign-in
// finished as any other.

// OIDCCallbackPath is where providers send the browser back: the redirect
// URI to register at the provider is the cloud's origin with this path.
const OIDCCallbackPath = "/signin/oidc/callback"

const (
	// prefixState is the prefix of an OIDC state.
	prefixState = "sps_"
	// oidcFlowLifetime is how long a sign-in at the provider may take.
	oidcFlowLifetime = 10 * time.Minute
	// providerLifetime is how long a provider's discovery document (and
	// so its endpoints and keys' address) is kept before it is read again.
	providerLifetime = 10 * time.Minute
	// providerTimeout bounds each request to a provider (generous: a
	// provider may make its signing keys on the first request for them).
	providerTimeout = 30 * time.Second
	// maxProviderBody bounds each answer of a provider.
	maxProviderBody = 1 << 20
	// maxGroupsClaim bounds the groups taken from a claim.
	maxGroupsClaim = 1000
	// bindCookie ties a sign-in at the provider to the browser that
	// started it, so that nobody can make a victim's browser finish the
	// sign-in they started (login CSRF).
	bindCookie = appCookie + "-oidc"
)

// oidcState is the server's federation state: the snapshot of the
// tenants that have a provider, and the providers discovered.
type oidcState struct {
	snap     atomic.Pointer[providerSnapshot]
	reloadMu sync.Mutex

	mu     sync.Mutex
	byTen  map[string]*liveProvider // tenant id → provider discovered
	fails  eventlog.Throttle        // event 2930: one per tenant and stage a second
	noSnap atomic.Bool              // the first load failed (logged once)
}

// providerSnapshot is every tenant's provider, read from the store when a
// provider is set or deleted and at most every refresh interval.
type providerSnapshot struct {
	byTenant map[string]store.IdentityProvider
	loadedAt time.Time // monotonic
}

// liveProvider is a provider discovered, with the client that reaches it.
type liveProvider struct {
	key      string // issuer and CA it was made for
	provider *oidc.Provider
	client   *http.Client
	scopes   []string
	until    time.Time // monotonic: discovered again after this
}

// providers returns the current snapshot, reading it from the store when
// there is none or it is older than the refresh interval (one reader at a
// time; the others use the old one meanwhile).
func (s *Server) providers() *providerSnapshot {
	snap := s.oidc.snap.Load()
	if snap != nil && time.Since(snap.loadedAt) < s.cfg.RefreshInterval {
		return snap
	}
	if snap != nil && !s.oidc.reloadMu.TryLock() {
		return snap
	} else if snap == nil {
		s.oidc.reloadMu.Lock()
	}
	defer s.oidc.reloadMu.Unlock()
	if cur := s.oidc.snap.Load(); cur != snap && cur != nil {
		return cur
	}
	if err := s.reloadProviders(context.Background()); err != nil {
		if snap == nil {
			if !s.oidc.noSnap.Swap(true) {
				s.log.Error("reading the tenants' identity providers failed", "error", err.Error())
			}
			return &providerSnapshot{byTenant: map[string]store.IdentityProvider{}}
		}
		s.log.Warn("reading the tenants' identity providers failed; the last ones read are used", "error", err.Error())
		return snap
	}
	return s.oidc.snap.Load()
}

// reloadProviders reads every tenant's provider into a new snapshot.
func (s *Server) reloadProviders(ctx context.Context) error {
	ps, err := s.store.ListIdentityProviders(ctx)
	if err != nil {
		return err
	}
	snap := &providerSnapshot{byTenant: make(map[string]store.IdentityProvider, len(ps)), loadedAt: time.Now()}
	for _, p := range ps {
		snap.byTenant[p.TenantID] = p
	}
	s.oidc.snap.Store(snap)
	s.oidc.noSnap.Store(false)
	return nil
}

// tenantHasProvider reports whether sign-in for the tenant's applications
// goes to its OpenID provider: from memory, no store read per call.
func (s *Server) tenantHasProvider(tenantID string) bool {
	_, ok := s.providers().byTenant[tenantID]
	return ok
}

// providerKey is what a discovered provider is valid for.
func providerKey(p store.IdentityProvider) string {
	sum := sha256.Sum256(p.CAPEM)
	return p.Issuer + "\x00" + hex.EncodeToString(sum[:])
}

// providerClient is an HTTP client for the provider: the system's roots
// and p's CA certificates, a timeout, bounded answers, no connection kept
// (sign-ins are rare; nothing lingers when the cloud stops).
func providerClient(caPEM []byte) (*http.Client, error) {
	var roots *x509.CertPool
	if len(caPEM) > 0 {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("no PEM certificate in the CA file")
		}
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives:   true,
		TLSHandshakeTimeout: providerTimeout,
	}
	return &http.Client{Transport: limitedTransport{tr}, Timeout: providerTimeout}, nil
}

// limitedTransport cuts every answer at maxProviderBody bytes.
type limitedTransport struct{ rt http.RoundTripper }

func (l limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, maxProviderBody), resp.Body}
	}
	return resp, err
}

// discover reads p's discovery document (with p's CA) and returns the
// provider and the scopes a sign-in asks for.
func discover(ctx context.Context, p store.IdentityProvider) (*liveProvider, error) {
	client, err := providerClient(p.CAPEM)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, client), p.Issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		Scopes        []string `json:"scopes_supported"`
		ResponseTypes []string `json:"response_types_supported"`
		PKCE          []string `json:"code_challenge_methods_supported"`
	}
	if err := prov.Claims(&meta); err != nil {
		return nil, err
	}
	if prov.Endpoint().AuthURL == "" || prov.Endpoint().TokenURL == "" {
		return nil, errors.New("the discovery document names no authorization or token endpoint")
	}
	if len(meta.ResponseTypes) > 0 && !slices.Contains(meta.ResponseTypes, "code") {
		return nil, errors.New("the provider does not offer the authorization code flow (response type code)")
	}
	if len(meta.PKCE) > 0 && !slices.Contains(meta.PKCE, "S256") {
		return nil, errors.New("the provider does not offer PKCE with S256")
	}
	scopes := []string{oidc.ScopeOpenID, "email", "profile"}
	if slices.Contains(meta.Scopes, "groups") {
		scopes = append(scopes, "groups")
	}
	return &liveProvider{key: providerKey(p), provider: prov, client: client, scopes: scopes, until: time.Now().Add(providerLifetime)}, nil
}

// liveProviderOf returns the tenant's provider discovered, from the cache
// while it is fresh and made for the same issuer and CA.
func (s *Server) liveProviderOf(ctx context.Context, p store.IdentityProvider) (*liveProvider, error) {
	key := providerKey(p)
	s.oidc.mu.Lock()
	lp := s.oidc.byTen[p.TenantID]
	s.oidc.mu.Unlock()
	if lp != nil && lp.key == key && time.Now().Before(lp.until) {
		return lp, nil
	}
	lp, err := discover(ctx, p)
	if err != nil {
		return nil, err
	}
	s.oidc.mu.Lock()
	defer s.oidc.mu.Unlock()
	if s.oidc.byTen == nil {
		s.oidc.byTen = map[string]*liveProvider{}
	}
	s.oidc.byTen[p.TenantID] = lp
	return lp, nil
}

// forgetProvider drops the tenant's discovered provider (set or deleted).
func (s *Server) forgetProvider(tenantID string) {
	s.oidc.mu.Lock()
	defer s.oidc.mu.Unlock()
	delete(s.oidc.byTen, tenantID)
}

// oauthConfig is the OAuth 2.0 client of p at lp.
func (s *Server) oauthConfig(p store.IdentityProvider, lp *liveProvider) *oauth2.Config {
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: string(p.ClientSecret), Endpoint: lp.provider.Endpoint(),
		RedirectURL: s.redirectURI(), Scopes: lp.scopes}
}

// redirectURI is the address providers send the browser back to.
func (s *Server) redirectURI() string { return s.origin(s.settings.Name) + OIDCCallbackPath }

// oidcFlowData is what a sign-in at the provider keeps in its grant.
type oidcFlowData struct {
	Kind     string     `json:"kind"` // "oidc"
	Flow     signinFlow `json:"flow"`
	Issuer   string     `json:"issuer"`
	Nonce    string     `json:"nonce"`
	Verifier string     `json:"verifier"` // PKCE
	Bind     string     `json:"bind"`     // SHA-256 of the browser's bind cookie
}

// providerFailed logs event 2930 (throttled per tenant and stage).
func (s *Server) providerFailed(t store.Tenant, issuer, stage string, err error) {
	if held, ok := s.oidc.fails.Allow(t.ID + "\x00" + stage); ok {
		s.events.Event(eventlog.IdentityProviderFailed, fmt.Sprintf("A sign-in at the identity provider %s of %s failed (%s): %s", issuer, t.Domain, stage, tenancy.Truncate(err.Error(), 300)),
			"tenant", t.Domain, "issuer", issuer, "stage", stage, "error", tenancy.Truncate(err.Error(), 300), "suppressed", fmt.Sprint(held))
	}
}

// startProvider sends the browser to the tenant's OpenID provider (with
// loginHint as login_hint when not ""), or shows the error page when the
// provider cannot be reached.
func (s *Server) startProvider(w http.ResponseWriter, r *http.Request, t store.Tenant, f signinFlow, loginHint string) {
	p, ok := s.providers().byTenant[t.ID]
	if !ok {
		s.signinFailed(w, r, f, http.StatusServiceUnavailable, fmt.Sprintf("The identity provider of %s was removed just now: open the application's address again to sign in", t.Domain))
		return
	}
	lp, err := s.liveProviderOf(r.Context(), p)
	if err != nil {
		s.providerFailed(t, p.Issuer, "discovery", err)
		s.signinFailed(w, r, f, http.StatusBadGateway, fmt.Sprintf("The identity provider of %s cannot be reached (%s): try again in a minute, and if it keeps failing tell an administrator of %s",
			t.Domain, reachWhy(err), t.Domain))
		return
	}
	bind := ""
	if c, err := r.Cookie(bindCookie); err == nil && validSecret(c.Value, "") {
		bind = c.Value // a flow in another tab keeps working
	} else {
		bind = newSecret("")
		http.SetCookie(w, &http.Cookie{Name: bindCookie, Value: bind, Path: "/", MaxAge: int(oidcFlowLifetime / time.Second),
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	state, nonce, verifier := newSecret(prefixState), newSecret(""), oauth2.GenerateVerifier()
	data, _ := json.Marshal(oidcFlowData{Kind: "oidc", Flow: f, Issuer: p.Issuer, Nonce: nonce, Verifier: verifier, Bind: hashToken(bind)})
	now := s.now().UTC()
	if err := s.store.CreateGrant(r.Context(), store.Grant{Hash: hashToken(state), Kind: store.GrantFlow, TenantID: t.ID, AppID: f.AppID,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(oidcFlowLifetime)}); err != nil {
		s.messagePage(w, r, err)
		return
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if loginHint != "" {
		// The user name typed at the start page, so that the provider need
		// not ask for it again (OpenID Connect Core 1.0, 3.1.2.1).
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", loginHint))
	}
	to := s.oauthConfig(p, lp).AuthCodeURL(state, opts...)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, to, http.StatusFound)
}

// reachWhy says in a few words why a provider could not be reached.
func reachWhy(err error) string {
	var mismatch *oidc.IssuerMismatchError
	if errors.As(err, &mismatch) {
		return fmt.Sprintf("its discovery document names the issuer %s", tenancy.Truncate(mismatch.Discovered, 200))
	}
	switch neterr.Classify(err) {
	case neterr.DNS:
		return "its name does not resolve"
	case neterr.Refused:
		return "the connection was refused"
	case neterr.Timeout:
		return "it did not answer in time"
	case neterr.CertUnknownAuthority:
		return "its TLS certificate is not signed by a trusted CA"
	case neterr.CertHostname:
		return "its TLS certificate is for another name"
	case neterr.CertInvalid:
		return "its TLS certificate is not valid (expired, or not yet valid)"
	case neterr.NotTLS:
		return "it does not speak TLS there"
	case neterr.Closed:
		return "it closed the connection"
	}
	if k := neterr.Classify(err); k.IsTLS() {
		return "the TLS handshake failed"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return tenancy.Truncate(err.Error(), 160)
}

// handleOIDCCallback is where the provider sends the browser back
// (GET /signin/oidc/callback?state=…&code=… or error=…).
func (s *Server) handleOIDCCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	expired := func() {
		s.signinFailed(w, r, signinFlow{}, http.StatusBadRequest,
			"This sign-in at the identity provider has expired, was finished already, or was started in another browser; open the application's address again to sign in")
	}
	state := q.Get("state")
	if !validSecret(state, prefixState) {
		expired()
		return
	}
	// Taken once: a replayed callback finds nothing.
	g, err := s.store.TakeGrant(r.Context(), store.GrantFlow, hashToken(state), s.now())
	var d oidcFlowData
	if err != nil || json.Unmarshal(g.Data, &d) != nil || d.Kind != "oidc" {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.messagePage(w, r, err)
			return
		}
		expired()
		return
	}
	f := d.Flow
	c, cerr := r.Cookie(bindCookie)
	if cerr != nil || subtle.ConstantTimeCompare([]byte(hashToken(c.Value)), []byte(d.Bind)) != 1 {
		s.signinFailed(w, r, f, http.StatusBadRequest, "This sign-in was started in another browser (or its cookie was lost): open the application's address again in this browser to sign in")
		return
	}
	t, ok := s.routesNow().tenants[g.TenantID]
	if !ok || t.ID != f.TenantID {
		expired()
		return
	}
	if e := q.Get("error"); e != "" {
		desc := tenancy.Truncate(strings.Map(printable, q.Get("error_description")), 200)
		s.providerFailed(t, d.Issuer, "authorize", fmt.Errorf("%s: %s", tenancy.Truncate(e, 60), desc))
		msg := fmt.Sprintf("The identity provider of %s did not sign you in (%s", t.Domain, tenancy.Truncate(strings.Map(printable, e), 60))
		if desc != "" {
			msg += ": " + desc
		}
		msg += "): try again, and if it keeps failing ask an administrator of " + t.Domain + " whether your account may use this application"
		s.signinFailed(w, r, f, http.StatusForbidden, msg)
		return
	}
	p, ok := s.providers().byTenant[t.ID]
	if !ok || p.Issuer != d.Issuer {
		s.signinFailed(w, r, f, http.StatusConflict, fmt.Sprintf("The identity provider of %s changed during your sign-in: open the application's address again to sign in", t.Domain))
		return
	}
	u, err := s.federatedUser(r.Context(), t, p, d, q.Get("code"))
	if err != nil {
		pr := problem.Public(err)
		if pr.Status >= 500 {
			s.log.Error("a sign-in at an identity provider failed", "tenant", t.Domain, "error", err.Error())
		}
		msg := pr.Message
		if pr.Step != "" {
			msg += "; " + pr.Step
		}
		s.signinFailed(w, r, f, pr.Status, msg)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: bindCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	s.finishSignIn(w, r, u, t, f, "oidc")
}

// printable keeps a provider's text to printable characters.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}

// signinRefusal is a refused sign-in: the page's status and sentence.
func signinRefusal(status int, code, format string, args ...any) error {
	return problem.Newf(status, code, "", format, args...)
}

// federatedUser exchanges the code, verifies the ID token, and returns the
// user it names: found by ISSUER#SUBJECT, or created (just in time), with
// their user groups set from the groups claim.
func (s *Server) federatedUser(ctx context.Context, t store.Tenant, p store.IdentityProvider, d oidcFlowData, code string) (store.User, error) {
	retry := "try again, and if it keeps failing tell an administrator of " + t.Domain
	if code == "" || len(code) > 2048 {
		return store.User{}, signinRefusal(http.StatusBadRequest, "oidc_no_code", "The identity provider of %s sent you back without a sign-in code: %s", t.Domain, retry)
	}
	lp, err := s.liveProviderOf(ctx, p)
	if err != nil {
		s.providerFailed(t, p.Issuer, "discovery", err)
		return store.User{}, signinRefusal(http.StatusBadGateway, "oidc_unreachable", "The identity provider of %s cannot be reached (%s): %s", t.Domain, reachWhy(err), retry)
	}
	cctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, lp.client), providerTimeout)
	defer cancel()
	tok, err := s.oauthConfig(p, lp).Exchange(cctx, code, oauth2.VerifierOption(d.Verifier))
	cancel()
	if err != nil {
		s.providerFailed(t, p.Issuer, "exchange", err)
		return store.User{}, signinRefusal(http.StatusBadGateway, "oidc_exchange", "The identity provider of %s did not accept this sign-in's code: %s (an administrator checks the client with 'sallyport admin idp show')", t.Domain, retry)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		err := errors.New("the token response holds no id_token")
		s.providerFailed(t, p.Issuer, "id_token", err)
		return store.User{}, signinRefusal(http.StatusBadGateway, "oidc_id_token", "The identity provider of %s answered without an ID token: %s", t.Domain, retry)
	}
	vctx, vcancel := context.WithTimeout(oidc.ClientContext(ctx, lp.client), providerTimeout)
	defer vcancel()
	idt, err := lp.provider.VerifierContext(oidc.ClientContext(ctx, lp.client), &oidc.Config{ClientID: p.ClientID, Now: s.now}).Verify(vctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(d.Nonce)) != 1 {
		err = errors.New("the ID token's nonce is not the one this sign-in sent (a token of another sign-in)")
	}
	if err != nil {
		s.providerFailed(t, p.Issuer, "id_token", err)
		return store.User{}, signinRefusal(http.StatusUnauthorized, "oidc_id_token", "The ID token from the identity provider of %s was refused (%s): %s", t.Domain, tokenWhy(err), retry)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		s.providerFailed(t, p.Issuer, "claims", err)
		return store.User{}, signinRefusal(http.StatusBadGateway, "oidc_claims", "The ID token from the identity provider of %s cannot be read: %s", t.Domain, retry)
	}
	external := idt.Issuer + "#" + idt.Subject
	emailClaim := p.EmailClaim
	if emailClaim == "" {
		emailClaim = "email"
	}
	email, _ := claims[emailClaim].(string)
	if v, ok := claims["email_verified"].(bool); ok && !v && emailClaim == "email" {
		s.providerFailed(t, p.Issuer, "claims", fmt.Errorf("the email address %q of %s is not verified", tenancy.Truncate(email, 100), external))
		return store.User{}, signinRefusal(http.StatusForbidden, "oidc_email_unverified",
			"Your email address %s is not verified at the identity provider of %s: verify it there, then sign in again", tenancy.Truncate(email, 100), t.Domain)
	}
	display, _ := claims["name"].(string)
	display = tenancy.Truncate(strings.Map(printable, display), 200)
	groups, err := groupsOf(claims, p.GroupsClaim)
	if err != nil {
		s.providerFailed(t, p.Issuer, "claims", err)
	}

	u, created, err := s.jitUser(ctx, t, external, email, display)
	if err != nil {
		return store.User{}, err
	}
	if u.Disabled {
		return store.User{}, signinRefusal(http.StatusForbidden, "disabled", "Your account %s is disabled: ask an administrator of %s to enable it", u.Name, t.Domain)
	}
	added, removed, unknown := []string{}, []string{}, []string{}
	if p.GroupsClaim != "" {
		if added, removed, unknown, err = s.syncGroups(ctx, t, u, groups); err != nil {
			return store.User{}, err
		}
	}
	if created || len(added)+len(removed)+len(unknown) > 0 {
		what := "changed user groups"
		if created {
			what = "was created on first sign-in (role user, no password)"
		}
		s.events.Event(eventlog.FederatedUserSynced, fmt.Sprintf("%s of the identity provider %s %s; user groups added: %s; removed: %s; not known, ignored: %s",
			u.Name, p.Issuer, what, dashList(added), dashList(removed), dashList(unknown)),
			"tenant", t.Domain, "user", u.Name, "external", tenancy.Truncate(external, 300), "created", fmt.Sprint(created),
			"added", strings.Join(added, ","), "removed", strings.Join(removed, ","), "unknown_groups", tenancy.Truncate(strings.Join(unknown, ","), 500))
	}
	if created || len(added)+len(removed) > 0 {
		// The gate's directory snapshot learns the user and their groups.
		if err := s.refreshRoutes(ctx); err != nil {
			return store.User{}, err
		}
	}
	return u, nil
}

func dashList(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// tokenWhy says in a few words why an ID token was refused.
func tokenWhy(err error) string {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &exp):
		return "it has expired: check that the clocks of the cloud and the provider are right"
	case strings.Contains(msg, "fetching keys"):
		return "the provider's keys could not be fetched to check it"
	case strings.Contains(msg, "audience"):
		return "it was issued to another client"
	case strings.Contains(msg, "signature"):
		return "its signature does not verify with the provider's keys"
	case strings.Contains(msg, "nonce"):
		return "it belongs to another sign-in"
	case strings.Contains(msg, "issuer"):
		return "it was issued by another issuer"
	}
	return "it is not valid"
}

// groupsOf reads the groups claim: a list of strings or one string.
func groupsOf(claims map[string]any, claim string) ([]string, error) {
	if claim == "" {
		return nil, nil
	}
	switch v := claims[claim].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if len(out) == maxGroupsClaim {
				return out, fmt.Errorf("the claim %s names more than %d groups; the rest are ignored", claim, maxGroupsClaim)
			}
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("the claim %s is neither a list of strings nor a string", claim)
	}
}

// jitUser finds the tenant's user with this provider identity, or creates
// one named by the email address. A name held by another account is
// refused: a provider identity is never joined to an existing account.
func (s *Server) jitUser(ctx context.Context, t store.Tenant, external, email, display string) (store.User, bool, error) {
	u, err := s.store.UserByExternal(ctx, t.ID, external)
	if err == nil {
		if (email != "" && !strings.EqualFold(email, u.Email)) || (display != "" && display != u.DisplayName) {
			if email != "" {
				u.Email = strings.ToLower(email)
			}
			if display != "" {
				u.DisplayName = display
			}
			if err := s.store.UpdateUser(ctx, u); err != nil {
				return store.User{}, false, err
			}
		}
		return u, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, err
	}
	admin := "ask an administrator of " + t.Domain
	if email == "" {
		return store.User{}, false, signinRefusal(http.StatusForbidden, "oidc_no_email",
			"The identity provider of %s gave no email address for your account, and Sallyport needs one of %s as your user name: %s to have the provider send it (or to point 'admin idp set --email-claim' at a claim that holds it)",
			t.Domain, t.Domain, admin)
	}
	name, err := tenancy.CheckUserName("oidc_bad_email", email, t.Domain)
	if err != nil {
		return store.User{}, false, signinRefusal(http.StatusForbidden, "oidc_bad_email",
			"Your email address %s at the identity provider is not a user name of %s, so no account can be made for it: %s to give you an address of %s at the provider",
			tenancy.Truncate(email, 100), t.Domain, admin, t.Domain)
	}
	taken := signinRefusal(http.StatusConflict, "oidc_name_taken",
		"The user name %s is already taken by an account that did not come from this identity provider, and Sallyport never joins the two: %s to delete that account ('sallyport admin user delete %s') so that yours is made at your next sign-in, or sign in to it with its own password",
		name, admin, name)
	if _, err := s.store.UserByName(ctx, name); err == nil {
		return store.User{}, false, taken // not this identity's: UserByExternal found none
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, err
	}
	u = store.User{ID: tenancy.NewID("u"), TenantID: t.ID, Name: name, Role: store.RoleUser, CreatedAt: s.now().UTC(),
		Email: strings.ToLower(email), DisplayName: display, External: external}
	if err := s.store.CreateUser(ctx, u); errors.Is(err, store.ErrConflict) {
		// Made meanwhile by a sign-in of the same identity in another
		// browser, or the name was taken.
		if again, err := s.store.UserByExternal(ctx, t.ID, external); err == nil {
			return again, false, nil
		}
		return store.User{}, false, taken
	} else if err != nil {
		return store.User{}, false, err
	}
	return u, true, nil
}

// syncGroups makes u's memberships of the tenant's user groups exactly
// the groups named (by store.GroupKey); names that are no user group of
// the tenant are returned as unknown.
func (s *Server) syncGroups(ctx context.Context, t store.Tenant, u store.User, names []string) (added, removed, unknown []string, err error) {
	all, err := s.store.ListUserGroups(ctx, t.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	byKey := make(map[string]store.UserGroup, len(all))
	for _, g := range all {
		byKey[store.GroupKey(g.Name)] = g
	}
	want := map[string]store.UserGroup{}
	seenUnknown := map[string]bool{}
	for _, n := range names {
		if g, ok := byKey[store.GroupKey(n)]; ok {
			want[g.ID] = g
		} else if k := store.GroupKey(n); !seenUnknown[k] {
			seenUnknown[k] = true
			unknown = append(unknown, tenancy.Truncate(strings.Map(printable, n), 64))
		}
	}
	have, err := s.store.UserGroupsOf(ctx, t.ID, u.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	now := s.now().UTC()
	isMember := map[string]bool{}
	for _, g := range have {
		isMember[g.ID] = true
		if _, ok := want[g.ID]; ok {
			continue
		}
		if err := s.store.RemoveUserGroupMember(ctx, t.ID, g.ID, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil, err
		}
		removed = append(removed, g.Name)
	}
	for id, g := range want {
		if isMember[id] {
			continue
		}
		if err := s.store.AddUserGroupMember(ctx, t.ID, id, u.ID, now); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil, err
		}
		added = append(added, g.Name)
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(unknown)
	return added, removed, unknown, nil
}

// isLoopbackHost reports whether host (no port) is a loopback address or
// localhost: the only hosts an issuer may be reached at over plain HTTP
// (a provider on the cloud's own machine, as in tests).
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
