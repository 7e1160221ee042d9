package cloud

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// The sign-in pages at https://CLOUDNAME (docs/identity.md): one flow for
// every application of every tenant, the tenant known from the
// application the sign-in is for.

//go:embed pages/*.html pages/style.css
var pageFiles embed.FS

var pageTemplates = func() map[string]*template.Template {
	base := template.Must(template.ParseFS(pageFiles, "pages/base.html"))
	out := map[string]*template.Template{}
	entries, _ := pageFiles.ReadDir("pages")
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".html")
		if !ok || name == "base" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(pageFiles, "pages/"+e.Name()))
	}
	return out
}()

var styleCSS = func() []byte { b, _ := pageFiles.ReadFile("pages/style.css"); return b }()

// pageCSP is the pages' Content-Security-Policy: no script at all, styles
// from the page's own origin, images inline (the QR code), not framed.
// form-action also governs the redirects that answer a form, and a
// sign-in's answer sends the browser to the application's host (any
// https origin: custom domains cannot be listed), so it allows https:.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'"

// pageData is what every page template gets.
type pageData struct {
	Title string
	Style string // the stylesheet's path on the host serving the page
	Wide  bool   // a page of tiles (My Apps), wider than a form
	Data  any
}

// renderPage writes an HTML page from pages/NAME.html.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t := pageTemplates[name]
	var buf bytes.Buffer
	style := "/static/style.css"
	if host, _ := edge.NormalizeHost(r.Host); host != s.settings.Name {
		style = ownPathPrefix + "style.css"
	}
	if t == nil || t.ExecuteTemplate(&buf, "base", pageData{Style: style, Wide: name == "myapps", Data: data}) != nil {
		s.log.Error("rendering a page failed", "page", name)
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make browsers send Origin: null with the forms
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func serveStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(styleCSS)
}

// csrfToken returns the token to put in a form (field "csrf"), setting
// its cookie when the browser has none. The cookie is __Host-: an
// application host (a subdomain) cannot plant one.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validSecret(c.Value, "") {
		return c.Value
	}
	v := newSecret("")
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return v
}

var errCSRF = problem.New(http.StatusForbidden, "csrf", "open the sign-in page again and send the form from there",
	"The form was not sent from this sign-in page (its security token is missing or wrong)")

// checkCSRF checks a POSTed form: its token must match the cookie, and an
// Origin header, when sent, must be the cloud's.
func (s *Server) checkCSRF(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && o != s.origin(s.settings.Name) {
		return errCSRF
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validSecret(c.Value, "") {
		return errCSRF
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		return errCSRF
	}
	return nil
}

// maxFormBytes bounds a sign-in form.
const maxFormBytes = 16 << 10

// signinRoutes adds the sign-in pages to the cloud's mux.
func (s *Server) signinRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /signin", s.handleSigninPage)
	mux.HandleFunc("POST /signin", s.handleSigninPost)
	mux.HandleFunc("GET /signin/mfa", s.handleMFAPage)
	mux.HandleFunc("POST /signin/mfa", s.handleMFAPost)
	mux.HandleFunc("GET /signin/enroll", s.handleEnrollPage)
	mux.HandleFunc("POST /signin/enroll", s.handleEnrollPost)
	mux.HandleFunc("GET /signout", s.handleSignout)
	mux.HandleFunc("POST /signout", s.handleSignout)
	mux.HandleFunc("GET /static/style.css", serveStyle)
	mux.HandleFunc("GET /{$}", s.handleHome)
	mux.HandleFunc("POST /{$}", s.handleHomePost)
}

// errBadFlow: a sign-in link that names no application using sign-in.
var errBadFlow = problem.New(http.StatusBadRequest, "bad_signin_link",
	"open the application's own address: it brings you here with a valid link",
	"This sign-in link does not lead to an application that uses Sallyport sign-in")

// flowOf reads and checks what a sign-in is for, from the query or form:
// rd, a return URL on the host of an application with pre-authentication
// (nothing else: no open redirect), or device, a pending device
// authorization's user code.
func (s *Server) flowOf(ctx context.Context, rd, device string) (signinFlow, store.Tenant, error) {
	t := s.routesNow()
	if device != "" {
		code := normalizeUserCode(device)
		if code == "" {
			return signinFlow{}, store.Tenant{}, errBadFlow
		}
		g, err := s.store.GrantByUserCode(ctx, code, s.now())
		if err != nil {
			return signinFlow{}, store.Tenant{}, problem.New(http.StatusBadRequest, "bad_device_code",
				"start again on your device: the code may have expired", "This device code is not known or has expired")
		}
		ten, ok := t.tenants[g.TenantID]
		if !ok {
			return signinFlow{}, store.Tenant{}, errBadFlow
		}
		return signinFlow{TenantID: g.TenantID, Device: code}, ten, nil
	}
	if rd == "" || len(rd) > maxReturnURL {
		return signinFlow{}, store.Tenant{}, errBadFlow
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Opaque != "" {
		return signinFlow{}, store.Tenant{}, errBadFlow
	}
	host, ok := edge.NormalizeHost(u.Host)
	if !ok || u.Port() != s.urlPort() {
		return signinFlow{}, store.Tenant{}, errBadFlow
	}
	app, ok := t.Lookup(host)
	if !ok || !app.PreAuth {
		return signinFlow{}, store.Tenant{}, errBadFlow
	}
	ten, ok := t.tenants[app.TenantID]
	if !ok {
		return signinFlow{}, store.Tenant{}, errBadFlow
	}
	ret := s.origin(app.ExternalHost) + localReturn(rd)
	return signinFlow{TenantID: app.TenantID, AppID: app.ID, Return: ret}, ten, nil
}

// normalizeUserCode returns a device user code as stored (BCDF-GHJK), or
// "" when it cannot be one.
func normalizeUserCode(c string) string {
	c = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(c))
	if len(c) != 8 {
		return ""
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return ""
		}
	}
	return c[:4] + "-" + c[4:]
}

// signinView is the sign-in form's data.
type signinView struct {
	Tenant  string
	App     string
	Device  string
	RD      string
	Home    bool // the start page's password form: names no tenant (myapps.go)
	CSRF    string
	User    string
	Message string
}

func (s *Server) appName(appID string) string {
	for _, a := range s.routesNow().byHost {
		if a.ID == appID {
			return a.Name
		}
	}
	return ""
}

func (s *Server) handleSigninPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, ten, err := s.flowOf(r.Context(), q.Get("rd"), q.Get("device"))
	if err != nil {
		s.messagePage(w, r, err)
		return
	}
	if sess, u, ok := s.cloudSession(r, f.TenantID); ok {
		s.continueFlow(w, r, u, f, sess.ID, sess.Method)
		return
	}
	// With a provider, sign-in goes straight there; local=1 shows the
	// password form anyway (break-glass for the local accounts that have a
	// password, such as the Global Administrator, when the provider is down).
	if s.tenantHasProvider(f.TenantID) && q.Get("local") != "1" {
		s.startProvider(w, r, ten, f, "")
		return
	}
	s.renderPage(w, r, http.StatusOK, "signin", signinView{Tenant: ten.Domain, App: s.appName(f.AppID), Device: f.Device,
		RD: q.Get("rd"), CSRF: s.csrfToken(w, r)})
}

func (s *Server) handleSigninPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.messagePage(w, r, problem.New(http.StatusBadRequest, "bad_form", "open the sign-in page again", "The sign-in form could not be read"))
		return
	}
	if err := s.checkCSRF(r); err != nil {
		s.messagePage(w, r, err)
		return
	}
	var f signinFlow
	var ten store.Tenant
	if r.PostFormValue("home") == "1" {
		// The start page's password form (myapps.go): the tenant is the
		// user's, known once the password is checked below.
		f.Home = true
	} else {
		var err error
		if f, ten, err = s.flowOf(r.Context(), r.PostFormValue("rd"), r.PostFormValue("device")); err != nil {
			s.messagePage(w, r, err)
			return
		}
	}
	view := signinView{Tenant: ten.Domain, App: s.appName(f.AppID), Device: f.Device, RD: r.PostFormValue("rd"), Home: f.Home,
		CSRF: s.csrfToken(w, r), User: tenancy.Truncate(r.PostFormValue("user"), 200)}
	src := sourceOf(r.RemoteAddr)
	fail := func(status int, reason, msg string) {
		s.logSigninFailure(ten, view.User, reason, r.RemoteAddr)
		view.Message = msg
		s.renderPage(w, r, status, "signin", view)
	}
	if err := s.signin.admit(src); err != nil {
		var re *retryError
		if errors.As(err, &re) {
			w.Header().Set("Retry-After", fmt.Sprint(retrySeconds(re.after)))
		}
		fail(http.StatusTooManyRequests, "rate limited", problem.Public(err).Error())
		return
	}
	u, ut, err := s.checkPassword(r.Context(), src, view.User, r.PostFormValue("password"))
	if err != nil {
		p := problem.Public(err)
		fail(p.Status, p.Code, p.Error())
		return
	}
	if f.Home {
		f.TenantID, ten = ut.ID, ut
	}
	if ut.ID != ten.ID {
		fail(http.StatusForbidden, "other tenant", fmt.Sprintf("%s is an account of %s, and this application belongs to %s: sign in with an account of %s", u.Name, ut.Domain, ten.Domain, ten.Domain))
		return
	}
	if u.Disabled {
		fail(http.StatusForbidden, "disabled", "This account is disabled: ask an administrator of "+ten.Domain+" to enable it")
		return
	}
	if len(u.TOTPSecret) > 0 {
		s.startSecondFactor(w, r, u, f, "mfa")
		return
	}
	if st := s.routesNow().settings[ten.ID]; st.RequireMFA {
		s.startSecondFactor(w, r, u, f, "enroll")
		return
	}
	s.finishSignIn(w, r, u, ten, f, "password")
}

// logSigninFailure writes event 2921 and counts the failure.
func (s *Server) logSigninFailure(ten store.Tenant, user, reason, addr string) {
	s.events.Event(eventlog.SignInFailed, fmt.Sprintf("Sign-in of %q failed: %s", tenancy.Truncate(user, 80), reason),
		"tenant", ten.Domain, "user", tenancy.Truncate(user, 80), "reason", reason, "address", addr)
	s.metrics.signin(ten.ID, "password", "failed")
}

// signinFailed shows the sign-in error page for the flow (one sentence
// and what to do), logs event 2921 and counts the failure.
func (s *Server) signinFailed(w http.ResponseWriter, r *http.Request, f signinFlow, status int, message string) {
	ten := s.routesNow().tenants[f.TenantID]
	s.events.Event(eventlog.SignInFailed, "Sign-in failed: "+message, "tenant", ten.Domain, "reason", message, "address", r.RemoteAddr)
	s.metrics.signin(f.TenantID, "oidc", "failed")
	s.renderPage(w, r, status, "message", messageView{Title: "Sign-in failed", Message: message, Retry: s.retryURL(f)})
}

// retryURL is where a failed sign-in starts again.
func (s *Server) retryURL(f signinFlow) string {
	if f.Device != "" {
		return "/device?user_code=" + url.QueryEscape(f.Device)
	}
	if f.Return != "" {
		return f.Return
	}
	if f.Home {
		return "/"
	}
	return ""
}

// messageView is the data of the message page.
type messageView struct {
	Title   string
	Message string
	Step    string
	Retry   string
}

// messagePage answers with a page that says what went wrong.
func (s *Server) messagePage(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.Public(err)
	if p.Status >= 500 {
		s.log.Error("sign-in page failed", "path", r.URL.Path, "error", err.Error())
	}
	s.renderPage(w, r, p.Status, "message", messageView{Title: http.StatusText(p.Status), Message: p.Message, Step: p.Step})
}

// cloudSession returns the browser's signed-in cloud session for the
// tenant, if it has one and its user may still sign in.
func (s *Server) cloudSession(r *http.Request, tenantID string) (store.Session, store.User, bool) {
	c, err := r.Cookie(cloudCookie)
	if err != nil {
		return store.Session{}, store.User{}, false
	}
	cs, err := s.sessionOf(r.Context(), sourceOf(r.RemoteAddr), c.Value, prefixCookie, store.SessionCloud, "")
	if err != nil || cs == nil || cs.TenantID != tenantID {
		return store.Session{}, store.User{}, false
	}
	u, ok := s.routesNow().users[cs.UserID]
	if !ok || u.Disabled {
		return store.Session{}, store.User{}, false
	}
	return cs.Session, u.User, true
}

// finishSignIn: the user is authenticated. It creates the cloud session
// and its cookie, logs the sign-in, and goes on with the flow.
func (s *Server) finishSignIn(w http.ResponseWriter, r *http.Request, u store.User, t store.Tenant, f signinFlow, method string) {
	if _, ok := s.routesNow().users[u.ID]; !ok {
		// A user made just now (on first sign-in at a provider).
		if err := s.refreshRoutes(r.Context()); err != nil {
			s.messagePage(w, r, err)
			return
		}
	}
	secret, sess, err := s.newSession(r.Context(), u, store.SessionCloud, "", "", method)
	if err != nil {
		s.messagePage(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cloudCookie, Value: secret, Path: "/", Expires: sess.ExpiresAt, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: mfaCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	s.events.Event(eventlog.SignedIn, fmt.Sprintf("%s signed in (%s)", u.Name, method),
		"tenant", t.Domain, "user", u.Name, "method", method, "address", r.RemoteAddr)
	s.metrics.signin(t.ID, method, "ok")
	s.continueFlow(w, r, u, f, sess.ID, method)
}

// continueFlow sends a signed-in browser on: to the application's host
// with a one-time code, back to the device approval, or to the start page.
func (s *Server) continueFlow(w http.ResponseWriter, r *http.Request, u store.User, f signinFlow, parent, method string) {
	if f.Device != "" {
		http.Redirect(w, r, "/device?user_code="+url.QueryEscape(f.Device), http.StatusSeeOther)
		return
	}
	if f.Home {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	app := s.appByID(f.AppID)
	if app == nil {
		s.messagePage(w, r, errBadFlow)
		return
	}
	code := newSecret(prefixCode)
	data, _ := json.Marshal(codeData{Return: f.Return, Parent: parent, Method: method})
	now := s.now().UTC()
	if err := s.store.CreateGrant(r.Context(), store.Grant{Hash: hashToken(code), Kind: store.GrantCode, TenantID: f.TenantID, AppID: f.AppID,
		UserID: u.ID, Data: data, CreatedAt: now, ExpiresAt: now.Add(codeLifetime)}); err != nil {
		s.messagePage(w, r, err)
		return
	}
	http.Redirect(w, r, s.origin(app.ExternalHost)+ownPathPrefix+"auth?code="+url.QueryEscape(code), http.StatusSeeOther)
}

// appByID finds an application in the routing snapshot.
func (s *Server) appByID(id string) *edge.App {
	if id == "" {
		return nil
	}
	for _, a := range s.routesNow().byHost {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// handleSignout ends the browser's sign-in. A GET does so too (the link
// on an application's pages, and where an application host's sign-out
// sends the browser); a POST is a form of the cloud's pages (My Apps) and
// must carry its CSRF token.
func (s *Server) handleSignout(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := s.checkCSRF(r); err != nil {
			s.messagePage(w, r, err)
			return
		}
	}
	if c, err := r.Cookie(cloudCookie); err == nil {
		if cs, _ := s.sessionOf(r.Context(), sourceOf(r.RemoteAddr), c.Value, prefixCookie, store.SessionCloud, ""); cs != nil {
			s.signOut(r.Context(), cs.TenantID, cs.UserID, r.RemoteAddr)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cloudCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	s.renderPage(w, r, http.StatusOK, "message", messageView{Title: "Signed out",
		Message: "You are signed out of every application of your organisation, in every browser"})
}

// pendingData is a sign-in waiting for its second factor (or its
// enrolment), kept as a grant whose secret is in the mfa cookie.
type pendingData struct {
	Stage  string     `json:"stage"` // "mfa" or "enroll"
	Flow   signinFlow `json:"flow"`
	Secret string     `json:"secret,omitempty"` // enroll: the TOTP secret offered (base32)
	Codes  []string   `json:"codes,omitempty"`  // enroll: hashes of the recovery codes offered
}

// pendingLifetime is how long a sign-in waits for its second factor.
const pendingLifetime = 5 * time.Minute

// startSecondFactor keeps the signed-in-with-password state and sends the
// browser to the second factor's page.
func (s *Server) startSecondFactor(w http.ResponseWriter, r *http.Request, u store.User, f signinFlow, stage string) {
	secret := newSecret(prefixPending)
	data, _ := json.Marshal(pendingData{Stage: stage, Flow: f})
	now := s.now().UTC()
	if err := s.store.CreateGrant(r.Context(), store.Grant{Hash: hashToken(secret), Kind: store.GrantFlow, TenantID: u.TenantID, AppID: f.AppID,
		UserID: u.ID, Data: data, CreatedAt: now, ExpiresAt: now.Add(pendingLifetime)}); err != nil {
		s.messagePage(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: mfaCookie, Value: secret, Path: "/", MaxAge: int(pendingLifetime / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/signin/"+stage, http.StatusSeeOther)
}

var errNoPending = problem.New(http.StatusBadRequest, "signin_expired", "open the application's address again to sign in",
	"This sign-in has expired or was finished already")

// pending returns the sign-in waiting for its second factor, its data and
// its user.
func (s *Server) pending(r *http.Request, stage string) (store.Grant, pendingData, store.User, store.Tenant, error) {
	var d pendingData
	c, err := r.Cookie(mfaCookie)
	if err != nil || !validSecret(c.Value, prefixPending) {
		return store.Grant{}, d, store.User{}, store.Tenant{}, errNoPending
	}
	g, err := s.store.GrantByHash(r.Context(), store.GrantFlow, hashToken(c.Value))
	if err != nil || !s.now().Before(g.ExpiresAt) || json.Unmarshal(g.Data, &d) != nil || d.Stage != stage {
		return store.Grant{}, d, store.User{}, store.Tenant{}, errNoPending
	}
	u, err := s.store.UserByID(r.Context(), g.TenantID, g.UserID)
	if err != nil || u.Disabled {
		return store.Grant{}, d, store.User{}, store.Tenant{}, errNoPending
	}
	ten, ok := s.routesNow().tenants[g.TenantID]
	if !ok {
		return store.Grant{}, d, store.User{}, store.Tenant{}, errNoPending
	}
	return g, d, u, ten, nil
}

// mfaView is the data of the second factor's pages.
type mfaView struct {
	User     string
	Tenant   string
	CSRF     string
	Message  string
	QR       template.URL // enroll: data: URL of the QR code
	Secret   string       // enroll: the secret to type instead
	Recovery []string     // enroll: the recovery codes, shown once
}

func (s *Server) handleMFAPage(w http.ResponseWriter, r *http.Request) {
	_, _, u, ten, err := s.pending(r, "mfa")
	if err != nil {
		s.messagePage(w, r, err)
		return
	}
	s.renderPage(w, r, http.StatusOK, "mfa", mfaView{User: u.Name, Tenant: ten.Domain, CSRF: s.csrfToken(w, r)})
}

func (s *Server) handleMFAPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := s.checkCSRF(r); err != nil {
		s.messagePage(w, r, err)
		return
	}
	g, d, u, ten, err := s.pending(r, "mfa")
	if err != nil {
		s.messagePage(w, r, err)
		return
	}
	src := sourceOf(r.RemoteAddr)
	view := mfaView{User: u.Name, Tenant: ten.Domain, CSRF: s.csrfToken(w, r)}
	if err := s.signin.admit(src); err == nil {
		err = s.signin.checkAccount(src, u.Name)
	}
	if err != nil {
		view.Message = problem.Public(err).Error()
		s.renderPage(w, r, http.StatusTooManyRequests, "mfa", view)
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	method := ""
	switch {
	case s.totp.check(u, code, s.now()):
		method = "password+totp"
	case looksLikeRecoveryCode(code):
		if s.store.UseRecoveryCode(r.Context(), u.TenantID, u.ID, hashRecoveryCode(code)) == nil {
			method = "recovery-code"
		}
	}
	if method == "" {
		s.signin.failed(src, u.Name)
		s.logSigninFailure(ten, u.Name, "wrong second factor code", r.RemoteAddr)
		view.Message = "The code is wrong or was used already: type the current 6-digit code of your authenticator app, or one of your recovery codes"
		s.renderPage(w, r, http.StatusUnauthorized, "mfa", view)
		return
	}
	if _, err := s.store.TakeGrant(r.Context(), store.GrantFlow, g.Hash, s.now()); err != nil {
		s.messagePage(w, r, errNoPending)
		return
	}
	s.signin.succeeded(u.Name)
	if method == "recovery-code" {
		left := len(u.RecoveryCodes) - 1
		s.events.Event(eventlog.RecoveryCodeUsed, fmt.Sprintf("%s signed in with a recovery code; %d left", u.Name, left),
			"tenant", ten.Domain, "user", u.Name, "left", fmt.Sprint(left))
	}
	s.finishSignIn(w, r, u, ten, d.Flow, method)
}
