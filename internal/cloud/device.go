package cloud

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// Clients that are not browsers sign in with the OAuth 2.0 device
// authorization grant (RFC 8628) at the cloud's own name: `sallyport access
// login APP-URL` asks POST /oauth/device_authorization for a code, the user
// opens https://CLOUDNAME/device in any browser, signs in and approves, and
// the client, polling POST /oauth/token, gets an access token for that one
// application (a SessionAccess, 1 h) and a refresh token (a
// SessionRefresh) that is replaced at each use. A replaced refresh token
// presented again ends the whole sign-in: someone holds a copy
// (RFC 6819 §5.2.2.3, OAuth 2.0 Security BCP §4.14).

// DeviceClientID is the client_id of `sallyport access` (a public client:
// it has no secret).
const DeviceClientID = "sallyport-cli"

// prefixDevice starts a device code (the secret the client polls with).
const prefixDevice = "spd_"

// Device flow parameters.
const (
	deviceCodeLifetime = 10 * time.Minute
	devicePollInterval = 5 * time.Second
	deviceSlowDownStep = 5 * time.Second // RFC 8628 §3.5: slow_down adds 5 s
	deviceGrantType    = "urn:ietf:params:oauth:grant-type:device_code"
	// userCodeAlphabet has no vowels (no words) and no look-alike digits
	// (RFC 8628 §6.1): 20^8 codes, about 34 bits, for a code that lives
	// 10 minutes behind the sign-in rate limit.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLen      = 8
	// grantRefreshUsed marks a replaced refresh token (by its hash) and
	// names the hash of the token that replaced it: a reuse follows that
	// chain to the sign-in's current refresh token and ends it.
	grantRefreshUsed = "refresh-used"
	maxReuseChain    = 10000 // replacements followed at most
	maxOAuthForm     = 16 << 10
)

// Device grant statuses.
const (
	devicePending  = "pending"
	deviceApproved = "approved"
	deviceDenied   = "denied"
)

// deviceData is what a device grant keeps besides the store's fields.
type deviceData struct {
	App      string `json:"app"`      // the application's name, for the approval page
	Host     string `json:"host"`     // its external host (the cloud's name for a network sign-in)
	Interval int    `json:"interval"` // seconds the client must wait between polls
	// Network: a network sign-in (accessnet.go), for every network
	// application of the tenant the user is assigned to; the grant has no
	// application.
	Network bool `json:"network,omitempty"`
}

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return e.desc }

func oauthErr(status int, code, desc string) *oauthError {
	return &oauthError{status: status, code: code, desc: desc}
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="sallyport"`)
	}
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.desc})
}

// writeOAuthFailure answers err: an *oauthError as is, anything else as a
// server error (logged).
func (s *Server) writeOAuthFailure(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	if errors.As(err, &oe) {
		writeOAuthError(w, oe)
		return
	}
	var re *retryError
	if errors.As(err, &re) {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(re.after)))
		writeOAuthError(w, oauthErr(http.StatusTooManyRequests, "slow_down", re.Problem.Error()))
		return
	}
	s.log.Error("device flow request failed", "path", r.URL.Path, "error", err.Error())
	writeOAuthError(w, oauthErr(http.StatusInternalServerError, "server_error",
		"The cloud could not complete the request because of an internal error; try again, and if it persists tell the cloud's operator"))
}

// parseOAuthForm reads a form-encoded POST body (bounded).
func parseOAuthForm(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return oauthErr(http.StatusBadRequest, "invalid_request", "The request body is not a form: send it with Content-Type: application/x-www-form-urlencoded (RFC 6749)")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxOAuthForm)
	if err := r.ParseForm(); err != nil {
		return oauthErr(http.StatusBadRequest, "invalid_request", "The request body is not a valid form of at most 16 KiB")
	}
	return nil
}

// checkClient checks client_id (required on the device authorization,
// optional on the token endpoint as RFC 6749 §3.2.1 allows for a client
// that authenticates no other way).
func checkClient(r *http.Request, required bool) error {
	id := r.PostForm.Get("client_id")
	if id == DeviceClientID || (id == "" && !required) {
		return nil
	}
	return oauthErr(http.StatusUnauthorized, "invalid_client", fmt.Sprintf("The client %q is not known to this cloud: use the client_id %s (sallyport access login)", tenancy.Truncate(id, 60), DeviceClientID))
}

// newUserCode is 8 letters of userCodeAlphabet, uniformly drawn, as
// stored and shown: BCDF-GHJK (normalizeUserCode reads what users type).
func newUserCode() string {
	var b strings.Builder
	n := big.NewInt(int64(len(userCodeAlphabet)))
	for k := range userCodeLen {
		if k == userCodeLen/2 {
			b.WriteByte('-')
		}
		i, _ := rand.Int(rand.Reader, n)
		b.WriteByte(userCodeAlphabet[i.Int64()])
	}
	return b.String()
}

// errNoSignInApp: one answer for an unknown host and an application
// without pre-authentication, so the endpoint tells nothing about which
// hosts exist.
var errNoSignInApp = oauthErr(http.StatusBadRequest, "invalid_target",
	"No application at this URL uses sign-in: check the URL (https://HOST/ of the application), or use the application without 'sallyport access' if it is public")

// deviceApp finds the pre-authenticated application a resource URL names.
func (s *Server) deviceApp(resource string) (*edge.App, error) {
	if resource == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The request names no application: send resource=https://APPHOST/ (RFC 8707)")
	}
	u, err := url.Parse(resource)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_target", "The resource is not an https:// URL of an application: send resource=https://APPHOST/")
	}
	host, ok := edge.NormalizeHost(u.Host)
	if !ok {
		return nil, errNoSignInApp
	}
	app, ok := s.routesNow().Lookup(host)
	if !ok || !app.PreAuth {
		return nil, errNoSignInApp
	}
	return app, nil
}

// handleDeviceAuthorization is RFC 8628 §3.1–3.2.
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	if err := s.deviceAuthorization(w, r); err != nil {
		s.writeOAuthFailure(w, r, err)
	}
}

func (s *Server) deviceAuthorization(w http.ResponseWriter, r *http.Request) error {
	if err := s.signin.admit(sourceOf(r.RemoteAddr)); err != nil {
		return err
	}
	if err := parseOAuthForm(w, r); err != nil {
		return err
	}
	if err := checkClient(r, true); err != nil {
		return err
	}
	d := deviceData{Interval: int(devicePollInterval / time.Second)}
	var tenantID, appID string
	if ten, ok, err := s.networkTarget(r.Context(), r.PostForm.Get("resource"), r.PostForm.Get("login_hint")); err != nil {
		return err
	} else if ok {
		tenantID, d.App, d.Host, d.Network = ten.ID, networkAppsName, s.settings.Name, true
	} else {
		app, err := s.deviceApp(r.PostForm.Get("resource"))
		if err != nil {
			return err
		}
		tenantID, appID, d.App, d.Host = app.TenantID, app.ID, app.Name, app.ExternalHost
	}
	now := s.now()
	data, _ := json.Marshal(d)
	code := newSecret(prefixDevice)
	g := store.Grant{Hash: hashToken(code), Kind: store.GrantDevice, TenantID: tenantID, AppID: appID,
		Status: devicePending, Data: data, CreatedAt: now, ExpiresAt: now.Add(deviceCodeLifetime)}
	var err error
	for attempt := 0; ; attempt++ {
		g.UserCode = newUserCode()
		err = s.store.CreateGrant(r.Context(), g)
		if !errors.Is(err, store.ErrConflict) || attempt == 4 {
			break
		}
	}
	if err != nil {
		return err
	}
	shown := g.UserCode
	verify := s.origin(s.settings.Name) + "/device"
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               code,
		"user_code":                 shown,
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?user_code=" + url.QueryEscape(shown),
		"expires_in":                int(deviceCodeLifetime / time.Second),
		"interval":                  int(devicePollInterval / time.Second),
	})
	return nil
}

// deviceView is the data of pages/device.html.
type deviceView struct {
	Form     bool   // the form to type a code
	Message  string // a sentence: why the code cannot be approved, or the outcome
	Code     string // the user code, BCDF-GHJK
	App      string
	Host     string
	Tenant   string
	User     string
	CSRF     string
	Approve  bool // the Approve / Deny form
	Approved bool // the outcome page: approved (else denied) when Done
	Done     bool
	Network  bool // a network sign-in: every network application the user is assigned to
}

// deviceGrantFor looks up the grant of a typed user code; a page was
// written when ok is false.
func (s *Server) deviceGrantFor(w http.ResponseWriter, r *http.Request, typed string) (store.Grant, deviceData, bool) {
	var g store.Grant
	// User codes are short (about 34 bits): each look-up costs a token
	// of the address's sign-in bucket, so that nobody enumerates them.
	if err := s.signin.admit(sourceOf(r.RemoteAddr)); err != nil {
		var re *retryError
		if errors.As(err, &re) {
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(re.after)))
		}
		s.renderPage(w, r, http.StatusTooManyRequests, "device", deviceView{Form: true, Message: problem.Public(err).Error()})
		return g, deviceData{}, false
	}
	code := normalizeUserCode(typed)
	err := store.ErrNotFound
	if code != "" {
		g, err = s.store.GrantByUserCode(r.Context(), code, s.now())
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("looking up a device code failed", "error", err.Error())
		}
		s.renderPage(w, r, http.StatusNotFound, "device", deviceView{Form: true,
			Message: "This code is not valid or has expired: check it against the one your terminal shows, or run 'sallyport access login' again for a new one."})
		return g, deviceData{}, false
	}
	var d deviceData
	json.Unmarshal(g.Data, &d)
	if g.Status != devicePending {
		s.renderPage(w, r, http.StatusConflict, "device", deviceView{Code: g.UserCode, App: d.App,
			Message: "This code was already " + g.Status + ": nothing more to do here; run 'sallyport access login' again to sign in anew."})
		return g, d, false
	}
	return g, d, true
}

// deviceUser is the signed-in user who may decide on g, or false (the
// answer written: a redirect to sign-in, or a page saying why not).
func (s *Server) deviceUser(w http.ResponseWriter, r *http.Request, g store.Grant, d deviceData) (store.User, store.Tenant, bool) {
	_, u, ok := s.cloudSession(r, g.TenantID)
	if !ok || u.TenantID != g.TenantID {
		http.Redirect(w, r, "/signin?device="+url.QueryEscape(g.UserCode), http.StatusSeeOther)
		return u, store.Tenant{}, false
	}
	t, err := s.store.TenantByID(r.Context(), g.TenantID)
	if err != nil {
		s.renderDeviceError(w, r, err)
		return u, t, false
	}
	// A network sign-in is for any user of the tenant: each stream is
	// checked against the application's assignments (accessnet.go).
	assigned := d.Network
	if !d.Network {
		var err error
		if assigned, err = s.store.IsAssigned(r.Context(), g.TenantID, g.AppID, u.ID); err != nil {
			s.renderDeviceError(w, r, err)
			return u, t, false
		}
	}
	if !assigned || u.Disabled {
		s.renderPage(w, r, http.StatusForbidden, "device", deviceView{Code: g.UserCode, App: d.App, Host: d.Host, Tenant: t.Domain, User: u.Name,
			Message: fmt.Sprintf("You are signed in as %s, who is not assigned to the application %s: ask an administrator of %s to assign you (sallyport admin app assign %s --user %s), then open this page again.",
				u.Name, d.App, t.Domain, d.App, u.Name)})
		return u, t, false
	}
	return u, t, true
}

func (s *Server) renderDeviceError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("device approval failed", "error", err.Error())
	s.renderPage(w, r, http.StatusInternalServerError, "device", deviceView{
		Message: "The cloud could not look this sign-in up because of an internal error: reload the page, and if it persists tell the cloud's operator."})
}

// handleDevicePage is GET /device: the form to type a code, or, with
// ?user_code=, the approval page (after sign-in).
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	typed := r.URL.Query().Get("user_code")
	if typed == "" {
		s.renderPage(w, r, http.StatusOK, "device", deviceView{Form: true})
		return
	}
	g, d, ok := s.deviceGrantFor(w, r, typed)
	if !ok {
		return
	}
	u, t, ok := s.deviceUser(w, r, g, d)
	if !ok {
		return
	}
	s.renderPage(w, r, http.StatusOK, "device", deviceView{Approve: true, Code: g.UserCode, App: d.App, Host: d.Host,
		Tenant: t.Domain, User: u.Name, CSRF: s.csrfToken(w, r), Network: d.Network})
}

// handleDeviceDecision is POST /device: Approve or Deny.
func (s *Server) handleDeviceDecision(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxOAuthForm)
	if err := r.ParseForm(); err != nil {
		s.renderPage(w, r, http.StatusBadRequest, "device", deviceView{Form: true, Message: "The form could not be read: type the code again."})
		return
	}
	if err := s.checkCSRF(r); err != nil {
		s.renderPage(w, r, http.StatusForbidden, "device", deviceView{Form: true,
			Message: "The form expired or was not sent from this page: type the code again and approve from the page that opens."})
		return
	}
	action := r.PostForm.Get("action")
	if action != "approve" && action != "deny" {
		s.renderPage(w, r, http.StatusBadRequest, "device", deviceView{Form: true, Message: "The form did not say whether to approve or deny: type the code again."})
		return
	}
	s.deviceMu.Lock()
	defer s.deviceMu.Unlock()
	g, d, ok := s.deviceGrantFor(w, r, r.PostForm.Get("user_code"))
	if !ok {
		return
	}
	u, t, ok := s.deviceUser(w, r, g, d)
	if !ok {
		return
	}
	g.UserID, g.Status = u.ID, deviceApproved
	if action == "deny" {
		g.Status = deviceDenied
	}
	if err := s.store.UpdateGrant(r.Context(), g); err != nil {
		s.renderDeviceError(w, r, err)
		return
	}
	s.events.Event(eventlog.DeviceDecided, fmt.Sprintf("%s %s the sign-in of a device (sallyport access) to the application %s of %s", u.Name, g.Status, d.App, t.Domain),
		"tenant", t.Domain, "app", d.App, "user", u.Name, "decision", g.Status, "address", sourceOf(r.RemoteAddr))
	msg := "You denied the sign-in: the device gets no access. You can close this window."
	if g.Status == deviceApproved {
		msg = fmt.Sprintf("You approved the sign-in: the device now has access to %s as %s. You can close this window and go back to your terminal.", d.App, u.Name)
	}
	s.renderPage(w, r, http.StatusOK, "device", deviceView{Done: true, Approved: g.Status == deviceApproved, Code: g.UserCode,
		App: d.App, Host: d.Host, Tenant: t.Domain, User: u.Name, Message: msg})
}

// tokenAnswer is RFC 6749 §5.1, with who was signed in.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	// RefreshExpiresIn: when the sign-in ends (the refresh token's expiry).
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	User             string `json:"user"`
	App              string `json:"app"`
}

// handleToken is POST /oauth/token: the device code grant (RFC 8628
// §3.4) and the refresh token grant (RFC 6749 §6).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	var (
		ans *tokenAnswer
		err error
	)
	if err = parseOAuthForm(w, r); err == nil {
		if err = checkClient(r, false); err == nil {
			switch gt := r.PostForm.Get("grant_type"); gt {
			case deviceGrantType:
				ans, err = s.deviceToken(r.Context(), r)
			case "refresh_token":
				ans, err = s.refreshToken(r.Context(), r)
			case "":
				err = oauthErr(http.StatusBadRequest, "invalid_request", "The request has no grant_type: send "+deviceGrantType+" or refresh_token")
			default:
				err = oauthErr(http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("The grant type %q is not supported here: send %s or refresh_token", tenancy.Truncate(gt, 80), deviceGrantType))
			}
		}
	}
	if err != nil {
		s.writeOAuthFailure(w, r, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, ans)
}

const errLoginAgain = " run 'sallyport access login' again"

// deviceToken answers a poll with a device code.
func (s *Server) deviceToken(ctx context.Context, r *http.Request) (*tokenAnswer, error) {
	code := r.PostForm.Get("device_code")
	if code == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The request has no device_code")
	}
	hash := hashToken(code)
	s.deviceMu.Lock()
	defer s.deviceMu.Unlock()
	g, err := s.store.GrantByHash(ctx, store.GrantDevice, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "The device code is not known: it was used already or never issued;"+errLoginAgain)
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(g.ExpiresAt) {
		return nil, oauthErr(http.StatusBadRequest, "expired_token", "The code was not approved within 10 minutes and expired;"+errLoginAgain)
	}
	var d deviceData
	json.Unmarshal(g.Data, &d)
	switch g.Status {
	case devicePending:
		interval := time.Duration(max(d.Interval, 1)) * time.Second
		slow := !g.PolledAt.IsZero() && now.Sub(g.PolledAt) < interval
		if slow {
			d.Interval += int(deviceSlowDownStep / time.Second)
			g.Data, _ = json.Marshal(d)
		}
		g.PolledAt = now
		if err := s.store.UpdateGrant(ctx, g); err != nil {
			return nil, err
		}
		if slow {
			return nil, oauthErr(http.StatusBadRequest, "slow_down", fmt.Sprintf("The device polls too often: wait %d s between polls", d.Interval))
		}
		return nil, oauthErr(http.StatusBadRequest, "authorization_pending", "The sign-in is not approved yet: open the verification URL, sign in and approve the code")
	case deviceDenied:
		s.store.TakeGrant(ctx, store.GrantDevice, hash, now)
		s.metrics.signin(g.TenantID, "device", "failed")
		return nil, oauthErr(http.StatusBadRequest, "access_denied", "The sign-in was denied in the browser;"+errLoginAgain+" if that was a mistake")
	case deviceApproved:
	default:
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "The device code is in an unknown state;"+errLoginAgain)
	}
	if g, err = s.store.TakeGrant(ctx, store.GrantDevice, hash, now); errors.Is(err, store.ErrNotFound) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "The device code was used already;"+errLoginAgain)
	} else if err != nil {
		return nil, err
	}
	u, t, appID, appName, err := s.deviceSubject(ctx, g.TenantID, g.UserID, g.AppID)
	if err != nil {
		s.metrics.signin(g.TenantID, "device", "failed")
		return nil, err
	}
	ans, _, err := s.issueTokens(ctx, u, appID, appName)
	if err != nil {
		return nil, err
	}
	s.metrics.signin(t.ID, "device", "ok")
	s.events.Event(eventlog.AccessTokenIssued, fmt.Sprintf("%s signed a device (sallyport access) in to the application %s of %s", u.Name, appName, t.Domain),
		"tenant", t.Domain, "app", appName, "user", u.Name, "grant", "device_code", "address", sourceOf(r.RemoteAddr))
	return ans, nil
}

// deviceSubject checks that the user may still get tokens for the
// application: it exists, uses pre-authentication, and the user exists,
// is enabled and assigned. appID "" is a network sign-in (accessnet.go):
// the user need only exist and be enabled; it returns the application's
// id and name (networkAppsName for a network sign-in).
func (s *Server) deviceSubject(ctx context.Context, tenantID, userID, appID string) (store.User, store.Tenant, string, string, error) {
	t, err := s.store.TenantByID(ctx, tenantID)
	if err != nil {
		return store.User{}, t, "", "", oauthErr(http.StatusBadRequest, "invalid_grant", "The organisation of this sign-in no longer exists")
	}
	name := networkAppsName
	var app *edge.App
	if appID != "" {
		if app = s.tenantApp(tenantID, appID); app == nil || !app.PreAuth {
			return store.User{}, t, "", "", oauthErr(http.StatusBadRequest, "invalid_grant", "The application of this sign-in no longer exists or no longer uses sign-in")
		}
		name = app.Name
	}
	u, err := s.store.UserByID(ctx, tenantID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return u, t, "", "", oauthErr(http.StatusBadRequest, "invalid_grant", "The user of this sign-in was deleted: ask an administrator of "+t.Domain+" for an account")
	} else if err != nil {
		return u, t, "", "", err
	}
	if u.Disabled {
		return u, t, "", "", oauthErr(http.StatusBadRequest, "invalid_grant", fmt.Sprintf("The user %s is disabled: ask an administrator of %s to enable the account", u.Name, t.Domain))
	}
	if app == nil {
		return u, t, "", name, nil
	}
	ok, err := s.store.IsAssigned(ctx, tenantID, appID, userID)
	if err != nil {
		return u, t, "", "", err
	}
	if !ok {
		return u, t, "", "", oauthErr(http.StatusBadRequest, "invalid_grant", fmt.Sprintf("%s is not assigned to the application %s: ask an administrator of %s to assign you (sallyport admin app assign %s --user %s)", u.Name, app.Name, t.Domain, app.Name, u.Name))
	}
	return u, t, app.ID, name, nil
}

// issueTokens makes a refresh session and an access session made from
// it (so that ending the refresh session ends its access token too), for
// the application appID ("" for a network sign-in).
func (s *Server) issueTokens(ctx context.Context, u store.User, appID, appName string) (*tokenAnswer, store.Session, error) {
	refresh, rs, err := s.newSession(ctx, u, store.SessionRefresh, appID, "", "device")
	if err != nil {
		return nil, rs, err
	}
	access, as, err := s.newSession(ctx, u, store.SessionAccess, appID, rs.ID, "device")
	if err != nil {
		return nil, rs, err
	}
	now := s.now()
	return &tokenAnswer{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(as.ExpiresAt.Sub(now) / time.Second),
		RefreshToken: refresh, RefreshExpiresIn: int(rs.ExpiresAt.Sub(now) / time.Second), User: u.Name, App: appName}, rs, nil
}

// refreshToken answers the refresh token grant: a new access token and a
// new refresh token; the old refresh token (and its access tokens) ends,
// and is remembered so that a reuse ends the sign-in.
func (s *Server) refreshToken(ctx context.Context, r *http.Request) (*tokenAnswer, error) {
	tok := r.PostForm.Get("refresh_token")
	if tok == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The request has no refresh_token")
	}
	hash := hashToken(tok)
	now := s.now()
	s.deviceMu.Lock()
	defer s.deviceMu.Unlock()
	sess, err := s.store.SessionByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.Kind != store.SessionRefresh) {
		return nil, s.refreshReused(ctx, r, hash)
	}
	if err != nil {
		return nil, err
	}
	if !now.Before(sess.ExpiresAt) {
		s.endSession(ctx, sess)
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "The sign-in expired;"+errLoginAgain)
	}
	u, t, appID, appName, err := s.deviceSubject(ctx, sess.TenantID, sess.UserID, sess.AppID)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			s.endSession(ctx, sess)
		}
		return nil, err
	}
	// Ending the old token first is the claim: of two instances (deviceMu
	// is this one's only) refreshing the same token at once, one ends it
	// and the other finds it gone.
	if _, err := s.endSession(ctx, sess); errors.Is(err, store.ErrNotFound) {
		return nil, s.refreshReused(ctx, r, hash)
	} else if err != nil {
		return nil, err
	}
	ans, next, err := s.issueTokens(ctx, u, appID, appName)
	if err != nil {
		return nil, err
	}
	used, _ := json.Marshal(usedData{Next: next.Hash})
	if err := s.store.CreateGrant(ctx, store.Grant{Hash: hash, Kind: grantRefreshUsed, TenantID: sess.TenantID, AppID: sess.AppID, UserID: sess.UserID,
		Data: used, CreatedAt: now, ExpiresAt: sess.ExpiresAt}); err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	s.events.Event(eventlog.AccessTokenIssued, fmt.Sprintf("The device sign-in of %s to the application %s of %s was refreshed", u.Name, appName, t.Domain),
		"tenant", t.Domain, "app", appName, "user", u.Name, "grant", "refresh_token", "address", sourceOf(r.RemoteAddr))
	return ans, nil
}

// endSession ends a refresh session and the access tokens made from it,
// in the store and in the gate's cache.
func (s *Server) endSession(ctx context.Context, sess store.Session) ([]string, error) {
	ids, err := s.store.DeleteSession(ctx, sess.TenantID, sess.ID)
	s.sessions.drop(append(ids, sess.ID), "")
	return ids, err
}

// handleRevoke is POST /oauth/revoke (RFC 7009): `sallyport access
// logout` ends its sign-in at the cloud. A refresh token ends with its
// access token; an access token alone. As the RFC says, an unknown or
// already ended token is answered 200 too: the client's goal is met.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	err := s.signin.admit(sourceOf(r.RemoteAddr))
	if err == nil {
		err = parseOAuthForm(w, r)
	}
	if err == nil {
		err = checkClient(r, false)
	}
	if err != nil {
		s.writeOAuthFailure(w, r, err)
		return
	}
	tok := r.PostForm.Get("token")
	if !validSecret(tok, prefixRefresh) && !validSecret(tok, prefixAccess) {
		w.WriteHeader(http.StatusOK)
		return
	}
	s.deviceMu.Lock()
	defer s.deviceMu.Unlock()
	sess, err := s.store.SessionByHash(r.Context(), hashToken(tok))
	if err == nil && (sess.Kind == store.SessionRefresh || sess.Kind == store.SessionAccess) {
		_, err = s.endSession(r.Context(), sess)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeOAuthFailure(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// tenantApp is the tenant's published application with id, or nil.
func (s *Server) tenantApp(tenantID, id string) *edge.App {
	if a := s.appByID(id); a != nil && a.TenantID == tenantID {
		return a
	}
	return nil
}

// usedData is a replaced refresh token's record.
type usedData struct {
	Next string `json:"next"` // the hash of the refresh token that replaced it
}

// refreshReused handles a refresh token that is not a live one: a
// replaced token ends its whole sign-in, following the replacements to
// the current refresh token (event 2933); any other is simply refused.
func (s *Server) refreshReused(ctx context.Context, r *http.Request, hash string) error {
	refused := oauthErr(http.StatusBadRequest, "invalid_grant", "The refresh token is not valid: the sign-in ended (signed out, expired, or ended by an administrator);"+errLoginAgain)
	used, err := s.store.GrantByHash(ctx, grantRefreshUsed, hash)
	if errors.Is(err, store.ErrNotFound) {
		return refused
	}
	if err != nil {
		return err
	}
	ended := 0
	g := used
	for range maxReuseChain {
		var d usedData
		json.Unmarshal(g.Data, &d)
		if d.Next == "" {
			break
		}
		if sess, err := s.store.SessionByHash(ctx, d.Next); err == nil && sess.Kind == store.SessionRefresh && sess.TenantID == used.TenantID {
			if ids, err := s.endSession(ctx, sess); err == nil {
				ended = len(ids)
			}
			break
		}
		if g, err = s.store.GrantByHash(ctx, grantRefreshUsed, d.Next); err != nil {
			break
		}
	}
	s.metrics.signin(used.TenantID, "device", "failed")
	tenant, user, app := used.TenantID, used.UserID, used.AppID
	if t, err := s.store.TenantByID(ctx, used.TenantID); err == nil {
		tenant = t.Domain
	}
	if u, err := s.store.UserByID(ctx, used.TenantID, used.UserID); err == nil {
		user = u.Name
	}
	if a := s.tenantApp(used.TenantID, used.AppID); a != nil {
		app = a.Name
	}
	s.events.Event(eventlog.RefreshTokenReused, fmt.Sprintf("A replaced refresh token of %s for the application %s of %s was presented again: someone may hold a copy of it; the sign-in was ended (%d sessions)", user, app, tenant, ended),
		"tenant", tenant, "app", app, "user", user, "sessions", strconv.Itoa(ended), "address", sourceOf(r.RemoteAddr))
	return oauthErr(http.StatusBadRequest, "invalid_grant", "The refresh token was already used, so a copy of it may be in other hands: the sign-in was ended for safety;"+errLoginAgain)
}
