package cloud

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/identity"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// Pre-authentication (docs/identity.md): the edge's gate admits a request
// for an application with PreAuth only with a session of a user assigned
// to it. Sessions live in the store (revocable, shared by instances) and
// are cached here once read, so that the request path does no store round
// trip and no hashing beyond one SHA-256 of the cookie: users, their
// groups and the assignments come from the routing snapshot.

// Pre-authentication of an application (store.Application.PreAuth).
const (
	PreAuthSallyport   = "sallyport"   // sign-in at the cloud, assigned users only
	PreAuthPassthrough = "passthrough" // anyone: the application signs users in itself, or is public
)

// Session lifetimes.
const (
	DefaultSessionLifetime = 12 * time.Hour
	DefaultSessionIdle     = time.Hour
	AccessTokenLifetime    = time.Hour
	RefreshTokenLifetime   = 30 * 24 * time.Hour
	// codeLifetime is how long a one-time code taking a browser from the
	// cloud's name to an application host is valid.
	codeLifetime = time.Minute
	// seenEvery is how often a session's last use is written to the store.
	seenEvery = time.Minute
)

// Cookies of Sallyport's own (all __Host-: Secure, Path=/, no Domain, so
// that no application host — a subdomain of the cloud's name — can set
// one for the cloud's name or another host).
const (
	appCookie   = edge.CookiePrefix             // the session on an application host
	cloudCookie = edge.CookiePrefix + "-signin" // the sign-in at the cloud's name
	csrfCookie  = edge.CookiePrefix + "-csrf"
	mfaCookie   = edge.CookiePrefix + "-mfa" // a sign-in waiting for its second factor
)

// Secret prefixes, by what the secret is.
const (
	prefixCookie  = "spc_"
	prefixAccess  = "spa_"
	prefixRefresh = "spr_"
	prefixCode    = "spo_"
	prefixPending = "spm_"
)

// newSecret returns prefix + 32 random bytes, base64url.
func newSecret(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// validSecret reports whether v looks like a secret with prefix: checked
// before any lookup, so that garbage costs nothing.
func validSecret(v, prefix string) bool {
	return len(v) == len(prefix)+43 && strings.HasPrefix(v, prefix)
}

// origin is https://HOST with the cloud's port when it is not 443.
func (s *Server) origin(host string) string {
	if p := s.urlPort(); p != "" {
		return "https://" + host + ":" + p
	}
	return "https://" + host
}

// signinFlow is what a sign-in is for.
type signinFlow struct {
	TenantID string `json:"tenant"`
	AppID    string `json:"app,omitempty"`    // the application to go back to ("" for a device approval)
	Return   string `json:"return,omitempty"` // https://APPHOST/path?query on that application's host
	Device   string `json:"device,omitempty"` // the user code of the device authorization being approved
	// Home: the sign-in started at the cloud's own start page (My Apps,
	// myapps.go) and goes back to https://CLOUDNAME/. Sent to a provider,
	// it has the provider's tenant; at the password form (which does not
	// tell which domains have a tenant) TenantID is set from the user once
	// the password is checked. A flow with neither AppID, Device nor Home
	// is a signed-in user's own enrolment (mfa.go).
	Home bool `json:"home,omitempty"`
}

// sessionSettings returns a tenant's lifetime and idle timeout.
func (s *Server) sessionSettings(tenantID string) (lifetime, idle time.Duration) {
	lifetime, idle = DefaultSessionLifetime, DefaultSessionIdle
	if st, ok := s.routesNow().settings[tenantID]; ok {
		if st.SessionLifetime > 0 {
			lifetime = st.SessionLifetime
		}
		if st.SessionIdle > 0 {
			idle = st.SessionIdle
		}
	}
	return lifetime, idle
}

// newSession creates a session of kind for u and returns its secret.
func (s *Server) newSession(ctx context.Context, u store.User, kind, appID, parentID, method string) (string, store.Session, error) {
	now := s.now().UTC()
	lifetime, _ := s.sessionSettings(u.TenantID)
	prefix := prefixCookie
	switch kind {
	case store.SessionAccess:
		lifetime, prefix = AccessTokenLifetime, prefixAccess
	case store.SessionRefresh:
		lifetime, prefix = RefreshTokenLifetime, prefixRefresh
	}
	secret := newSecret(prefix)
	sess := store.Session{ID: tenancy.NewID("ss"), Hash: hashToken(secret), TenantID: u.TenantID, UserID: u.ID, Kind: kind,
		AppID: appID, ParentID: parentID, Method: method, CreatedAt: now, ExpiresAt: now.Add(lifetime), SeenAt: now}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", store.Session{}, err
	}
	return secret, sess, nil
}

// sessionCache holds the sessions read from the store, by hash (and
// their hashes by id, so that sessions ended elsewhere, notified by id,
// are dropped without a walk of the whole cache).
type sessionCache struct {
	mu     sync.RWMutex
	byHash map[string]*cachedSession
	byID   map[string]string
}

// maxCachedSessions bounds the cache; past it, expired entries go first,
// then the cache starts over (sessions are read again from the store).
const maxCachedSessions = 1 << 20

type cachedSession struct {
	store.Session
	seen   atomic.Int64 // unix nanos of the last use seen by this process
	stored atomic.Int64 // the last use written to the store

	mu           sync.Mutex // guards the assertion
	assertion    string
	assertionExp time.Time
}

func (c *sessionCache) get(hash string) *cachedSession {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byHash[hash]
}

func (c *sessionCache) put(cs *cachedSession, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byHash == nil {
		c.byHash, c.byID = map[string]*cachedSession{}, map[string]string{}
	}
	if len(c.byHash) >= maxCachedSessions {
		c.expireLocked(now)
		if len(c.byHash) >= maxCachedSessions {
			c.byHash, c.byID = map[string]*cachedSession{}, map[string]string{}
		}
	}
	c.byHash[cs.Hash] = cs
	c.byID[cs.ID] = cs.Hash
}

// drop forgets the sessions with these ids and those of user ("" for
// none): revocation reaches the request path at once.
func (c *sessionCache) drop(ids []string, user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if h, ok := c.byID[id]; ok {
			delete(c.byHash, h)
			delete(c.byID, id)
		}
	}
	if user == "" {
		return
	}
	for h, cs := range c.byHash {
		if cs.UserID == user {
			delete(c.byHash, h)
			delete(c.byID, cs.ID)
		}
	}
}

// clear forgets every cached session (they are read again from the
// store when used).
func (c *sessionCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byHash, c.byID = nil, nil
}

// all returns the cached sessions' ids and hashes.
func (c *sessionCache) all() []store.Session {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]store.Session, 0, len(c.byHash))
	for _, cs := range c.byHash {
		out = append(out, store.Session{ID: cs.ID, Hash: cs.Hash})
	}
	return out
}

func (c *sessionCache) expire(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
}

func (c *sessionCache) expireLocked(now time.Time) {
	for h, cs := range c.byHash {
		if !now.Before(cs.ExpiresAt) {
			delete(c.byHash, h)
			delete(c.byID, cs.ID)
		}
	}
}

// sessionOf returns the unexpired session with secret, of kind (and for
// the application appID when not ""), from the cache or the store. The
// store is read only for a secret of the right form, and a source's reads
// are rate-limited like sign-in attempts.
func (s *Server) sessionOf(ctx context.Context, src, secret, prefix, kind, appID string) (*cachedSession, error) {
	if !validSecret(secret, prefix) {
		return nil, nil
	}
	hash := hashToken(secret)
	cs := s.sessions.get(hash)
	if cs == nil {
		if err := s.signin.admit(src); err != nil {
			return nil, err
		}
		sess, err := s.store.SessionByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		cs = &cachedSession{Session: sess}
		cs.stored.Store(sess.SeenAt.UnixNano())
		cs.seen.Store(sess.SeenAt.UnixNano())
		s.sessions.put(cs, s.now())
	}
	if cs.Kind != kind || (appID != "" && cs.AppID != appID) {
		return nil, nil
	}
	now := s.now()
	_, idle := s.sessionSettings(cs.TenantID)
	last := time.Unix(0, max(cs.seen.Load(), cs.stored.Load()))
	if !now.Before(cs.ExpiresAt) || (kind != store.SessionAccess && kind != store.SessionRefresh && now.Sub(last) >= idle) {
		return nil, nil
	}
	cs.seen.Store(now.UnixNano())
	if now.Sub(time.Unix(0, cs.stored.Load())) >= seenEvery {
		cs.stored.Store(now.UnixNano())
		s.store.TouchSession(context.WithoutCancel(ctx), cs.TenantID, cs.ID, now.UTC())
	}
	return cs, nil
}

// endUserSessions ends every session of a user (sign-out, deletion,
// disabling, a reset second factor) and logs why.
func (s *Server) endUserSessions(ctx context.Context, tenantID, userID, userName, reason string) (int, error) {
	ids, err := s.store.DeleteUserSessions(ctx, tenantID, userID)
	s.sessions.drop(ids, userID)
	if err != nil {
		return 0, err
	}
	if reason != "" {
		s.events.Event(eventlog.SessionsEnded, fmt.Sprintf("%d sessions of %s ended: %s", len(ids), userName, reason),
			"tenant", tenantID, "user", userName, "sessions", fmt.Sprint(len(ids)), "reason", reason)
	}
	return len(ids), nil
}

// dirUser is a user as the gate needs it (the routing snapshot).
type dirUser struct {
	store.User
	Groups   []string        // the user groups' names, by name
	groupIDs map[string]bool // their ids
}

// appAccess is who is assigned to an application.
type appAccess struct {
	users, groups map[string]bool
}

// assigned reports whether u may reach the application appID.
func (t *routeTable) assigned(appID string, u *dirUser) bool {
	a := t.access[appID]
	if a == nil {
		return false
	}
	if a.users[u.ID] {
		return true
	}
	for g := range u.groupIDs {
		if a.groups[g] {
			return true
		}
	}
	return false
}

// Admit implements edge.Gate.
func (s *Server) Admit(w http.ResponseWriter, r *http.Request, app *edge.App, rid string) (*edge.Identity, string) {
	if strings.HasPrefix(r.URL.Path, ownPathPrefix) {
		return nil, s.serveOwnPath(w, r, app, rid)
	}
	src := sourceOf(r.RemoteAddr)
	var cs *cachedSession
	var err error
	bearer := false
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && strings.HasPrefix(tok, prefixAccess) {
		bearer = true
		cs, err = s.sessionOf(r.Context(), src, strings.TrimSpace(tok), prefixAccess, store.SessionAccess, app.ID)
	} else if c, cerr := r.Cookie(appCookie); cerr == nil {
		cs, err = s.sessionOf(r.Context(), src, c.Value, prefixCookie, store.SessionApp, app.ID)
	}
	if err != nil {
		p := problem.Public(err)
		var re *retryError
		if errors.As(err, &re) {
			w.Header().Set("Retry-After", fmt.Sprint(retrySeconds(re.after)))
		}
		edge.WritePage(w, r, p, rid)
		return nil, p.Code
	}
	t := s.routesNow()
	var u *dirUser
	if cs != nil && cs.TenantID == app.TenantID {
		u = t.users[cs.UserID]
	}
	if u == nil || u.Disabled {
		if cs != nil {
			// Deleted or disabled since: the session is over.
			s.sessions.drop([]string{cs.ID}, "")
		}
		return nil, s.askSignIn(w, r, app, rid, bearer)
	}
	if !t.assigned(app.ID, u) {
		s.refuseUnassigned(w, r, app, u, rid)
		return nil, "not_assigned"
	}
	assertion, err := s.assertionFor(r.Context(), cs, app, u)
	if err != nil {
		s.log.Error("minting an identity assertion failed", "app", app.Name, "tenant", app.Tenant, "error", err.Error())
		p := problem.New(http.StatusServiceUnavailable, "assertion_failed", "retry in a moment; if it persists, tell the cloud's operator (the cloud's log has the cause)",
			"The cloud could not sign your identity for the application")
		edge.WritePage(w, r, p, rid)
		return nil, p.Code
	}
	return &edge.Identity{User: u.Name, Email: u.Email, Groups: u.Groups, Assertion: assertion, Bearer: bearer}, ""
}

// assertionFor returns the session's assertion for app, minted again when
// half its lifetime has passed (signing each request would cost an ECDSA
// signature per request).
func (s *Server) assertionFor(ctx context.Context, cs *cachedSession, app *edge.App, u *dirUser) (string, error) {
	now := s.now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.assertion != "" && now.Before(cs.assertionExp) {
		return cs.assertion, nil
	}
	ten, ok := s.routesNow().tenants[app.TenantID]
	if !ok {
		return "", fmt.Errorf("tenant %s is not in the routing table", app.TenantID)
	}
	name := u.DisplayName
	if name == "" {
		name = u.Name
	}
	a, err := s.identity.Mint(ctx, ten, identity.App{ExternalHost: app.ExternalHost}, identity.User{ID: u.ID, Name: name, Email: u.Email, Groups: u.Groups})
	if err != nil {
		return "", err
	}
	cs.assertion, cs.assertionExp = a, now.Add(identity.DefaultPolicy().Lifetime/2)
	return a, nil
}

// isNavigation reports whether a request is a browser's page navigation,
// which is sent to sign in; other clients get 401.
func isNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html") && r.Header.Get("X-Requested-With") == "" &&
		r.Header.Get("Upgrade") == ""
}

// askSignIn answers a request without a valid session: a browser goes to
// sign in, other clients get 401 with WWW-Authenticate.
func (s *Server) askSignIn(w http.ResponseWriter, r *http.Request, app *edge.App, rid string, bearer bool) string {
	if _, err := r.Cookie(appCookie); err == nil {
		http.SetCookie(w, &http.Cookie{Name: appCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	if isNavigation(r) && !bearer {
		ret := s.origin(app.ExternalHost) + r.URL.RequestURI()
		if len(ret) > maxReturnURL {
			ret = s.origin(app.ExternalHost) + "/"
		}
		http.Redirect(w, r, s.origin(s.settings.Name)+"/signin?rd="+url.QueryEscape(ret), http.StatusFound)
		return "signin_redirect"
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="sallyport", authorization_uri=%q`, s.origin(s.settings.Name)+"/oauth/device_authorization"))
	msg, step := "Sign-in is required for this application", fmt.Sprintf("sign in with 'sallyport access login %s', then send the token of 'sallyport access token' as Authorization: Bearer", s.origin(app.ExternalHost))
	if bearer {
		msg, step = "The access token is not valid for this application (expired, revoked, or for another application)", fmt.Sprintf("get a new one with 'sallyport access token %s'", s.origin(app.ExternalHost))
	}
	edge.WritePage(w, r, problem.New(http.StatusUnauthorized, "signin_required", step, msg), rid)
	return "signin_required"
}

// refuseUnassigned answers a signed-in user who is not assigned to app:
// 403, saying who they are, whom to ask, and how to sign out.
func (s *Server) refuseUnassigned(w http.ResponseWriter, r *http.Request, app *edge.App, u *dirUser, rid string) {
	if _, ok := s.refusals.Allow(u.ID + "/" + app.ID); ok {
		s.events.Event(eventlog.AccessRefused, fmt.Sprintf("%s is not assigned to application '%s'", u.Name, app.Name),
			"tenant", app.Tenant, "app", app.Name, "user", u.Name, "reason", "not assigned", "request_id", rid)
	}
	ask := "an administrator of " + app.Tenant
	if admins := s.routesNow().admins[app.TenantID]; len(admins) > 0 {
		ask = strings.Join(admins[:min(3, len(admins))], " or ") + " (a Global Administrator of " + app.Tenant + ")"
	}
	p := problem.Newf(http.StatusForbidden, "not_assigned",
		fmt.Sprintf("ask %s to assign you to it ('sallyport admin app assign %s --user %s'), or sign out and sign in as another user", ask, app.Name, u.Name),
		"You are signed in as %s, and you are not assigned to the application '%s'", u.Name, app.Name)
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		edge.WritePage(w, r, p, rid)
		return
	}
	s.renderPage(w, r, http.StatusForbidden, "forbidden", map[string]any{
		"User": u.Name, "App": app.Name, "Tenant": app.Tenant, "Step": p.Step, "RequestID": rid,
		"SignOut": ownPathPrefix + "signout",
	})
}

// ownPathPrefix starts the paths the gate answers itself on a
// pre-authenticated application's host: they never reach the backend.
const ownPathPrefix = "/.sallyport/"

// maxReturnURL bounds a return URL carried through sign-in.
const maxReturnURL = 2048

// codeData is a one-time code's data.
type codeData struct {
	Return string `json:"return"`
	Parent string `json:"parent"` // the cloud session
	Method string `json:"method"`
}

// serveOwnPath serves the gate's paths on an application host.
func (s *Server) serveOwnPath(w http.ResponseWriter, r *http.Request, app *edge.App, rid string) string {
	switch strings.TrimPrefix(r.URL.Path, ownPathPrefix) {
	case "auth":
		return s.exchangeCode(w, r, app, rid)
	case "signout":
		if c, err := r.Cookie(appCookie); err == nil {
			if cs, _ := s.sessionOf(r.Context(), sourceOf(r.RemoteAddr), c.Value, prefixCookie, store.SessionApp, app.ID); cs != nil {
				s.signOut(r.Context(), cs.TenantID, cs.UserID, r.RemoteAddr)
			}
		}
		http.SetCookie(w, &http.Cookie{Name: appCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, s.origin(s.settings.Name)+"/signout", http.StatusSeeOther)
		return "signout"
	case "style.css":
		serveStyle(w, r)
		return "static"
	}
	edge.WritePage(w, r, problem.New(http.StatusNotFound, "not_found", "check the address", "There is no page here"), rid)
	return "not_found"
}

// exchangeCode turns a one-time code from the cloud's sign-in into this
// application host's session cookie.
func (s *Server) exchangeCode(w http.ResponseWriter, r *http.Request, app *edge.App, rid string) string {
	bad := func(msg string) string {
		p := problem.New(http.StatusBadRequest, "bad_signin_code", "open the application's address again to sign in", msg)
		edge.WritePage(w, r, p, rid)
		return p.Code
	}
	code := r.URL.Query().Get("code")
	if !validSecret(code, prefixCode) {
		return bad("This sign-in link is not valid")
	}
	if err := s.signin.admit(sourceOf(r.RemoteAddr)); err != nil {
		edge.WritePage(w, r, problem.Public(err), rid)
		return "rate_limited"
	}
	g, err := s.store.TakeGrant(r.Context(), store.GrantCode, hashToken(code), s.now())
	if err != nil || g.AppID != app.ID || g.TenantID != app.TenantID {
		return bad("This sign-in link was used already, has expired, or is for another application")
	}
	var d codeData
	if err := json.Unmarshal(g.Data, &d); err != nil {
		return bad("This sign-in link is damaged")
	}
	u, ok := s.routesNow().users[g.UserID]
	if !ok || u.Disabled {
		return bad("The user of this sign-in link cannot sign in any more")
	}
	secret, sess, err := s.newSession(r.Context(), u.User, store.SessionApp, app.ID, d.Parent, d.Method)
	if err != nil {
		edge.WritePage(w, r, problem.Public(err), rid)
		return "internal"
	}
	http.SetCookie(w, &http.Cookie{Name: appCookie, Value: secret, Path: "/", Expires: sess.ExpiresAt, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, localReturn(d.Return), http.StatusSeeOther)
	return "signin_complete"
}

// localReturn is the path and query of a checked return URL (the browser
// stays on the host it is on), "/" when there is none.
func localReturn(ret string) string {
	u, err := url.Parse(ret)
	if err != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	u.Scheme, u.Host, u.User, u.Fragment = "", "", nil, ""
	out := u.RequestURI()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") || strings.HasPrefix(out, "/\\") || strings.ContainsAny(out, "\r\n\t ") {
		return "/"
	}
	return out
}

// signOut ends every session of the user.
func (s *Server) signOut(ctx context.Context, tenantID, userID, addr string) {
	u, ok := s.routesNow().users[userID]
	name := userID
	if ok {
		name = u.Name
	}
	n, err := s.endUserSessions(ctx, tenantID, userID, name, "")
	if err != nil {
		s.log.Error("ending sessions failed", "user", name, "error", err.Error())
		return
	}
	s.events.Event(eventlog.SignedOut, fmt.Sprintf("%s signed out: %d sessions ended", name, n),
		"tenant", tenantID, "user", name, "sessions", fmt.Sprint(n), "address", addr)
	s.metrics.signin(tenantID, "signout", "ok")
}

// IssueAccessToken makes an access token (Authorization: Bearer) of the
// user for the tenant's application, valid for lifetime (0: the default
// hour), as if the user had signed in with 'sallyport access login': the
// demo prints one so that its curl line reaches a pre-authenticated app.
func (s *Server) IssueAccessToken(ctx context.Context, tenantDomain, userName, appName string, lifetime time.Duration) (string, error) {
	ten, err := s.store.TenantByDomain(ctx, tenantDomain)
	if err != nil {
		return "", err
	}
	u, err := s.store.UserByName(ctx, userName)
	if err != nil || u.TenantID != ten.ID {
		return "", fmt.Errorf("no user %s in %s", userName, tenantDomain)
	}
	a, err := s.store.AppByName(ctx, ten.ID, appName)
	if err != nil {
		return "", err
	}
	if lifetime <= 0 {
		lifetime = AccessTokenLifetime
	}
	now := s.now().UTC()
	secret := newSecret(prefixAccess)
	sess := store.Session{ID: tenancy.NewID("ss"), Hash: hashToken(secret), TenantID: ten.ID, UserID: u.ID, Kind: store.SessionAccess,
		AppID: a.ID, Method: "issued", CreatedAt: now, ExpiresAt: now.Add(lifetime), SeenAt: now}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", err
	}
	return secret, nil
}
