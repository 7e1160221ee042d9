// Package console is the admin center: the web pages an administrator
// uses at https://CLOUDNAME/admin/ (docs/admin-center.md). It renders
// server-side html/template pages embedded in the binary, with one small
// script of its own (live regions and copy buttons) and no other.
//
// The console has no rule of its own: every page reads and every form
// changes through the admin API (/api/v1, docs/api.md), called in
// process as the signed-in user. What the API refuses, the page shows
// with the API's own sentence. The console cannot reach the store: the
// package walls (internal/arch_test.go) forbid it.
package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/api"
)

// Prefix is where the console lives on the cloud's own name.
const Prefix = "/admin"

// User is the signed-in user a page is rendered for.
type User struct {
	ID       string
	Name     string
	TenantID string
	Tenant   string // the tenant's primary domain
	Role     string // "global-admin", "app-admin" or "user"
}

// Admin reports whether u may open the admin center at all: Global and
// Application Administrators (what each may change, the API decides).
func (u User) Admin() bool { return u.Role == "global-admin" || u.Role == "app-admin" }

// RoleTitle is the role as the pages name it.
func (u User) RoleTitle() string {
	switch u.Role {
	case "global-admin":
		return "Global Administrator"
	case "app-admin":
		return "Application Administrator"
	}
	return "User"
}

// Config is what the cloud gives the console.
type Config struct {
	// API is the admin API's handler (routes under /api/v1).
	API http.Handler
	// Who returns the signed-in user of r's session at the cloud's name.
	Who func(r *http.Request) (User, bool)
	// As returns ctx carrying u: the API authenticates a request made
	// with it as u (it reads u again from the store).
	As func(ctx context.Context, u User) context.Context
	// CSRFToken returns the token for a form (field "csrf"), setting its
	// cookie when needed; CheckCSRF checks a POSTed form.
	CSRFToken func(w http.ResponseWriter, r *http.Request) string
	CheckCSRF func(r *http.Request) error
	// Origin is the cloud's own origin, https://CLOUDNAME[:PORT].
	Origin string
	// CAFingerprint is the cloud CA's "sha256:HEX" fingerprint, for the
	// ready 'connector register' command of a new registration token.
	CAFingerprint string
	// RedirectURI is the address an OpenID provider sends the browser
	// back to (https://CLOUDNAME[:PORT]/signin/oidc/callback): the
	// identity provider page shows it to copy even before one is set.
	RedirectURI string
	Log         *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Console serves the admin center.
type Console struct {
	cfg Config
	mux *http.ServeMux
	pat []string
}

// handlerFunc is a page: it renders or redirects, or returns an error
// that the console turns into an error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request, u User) error

// New returns the console.
func New(cfg Config) *Console {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux()}
	c.mux.HandleFunc("GET "+Prefix+"/static/{file}", serveStatic)
	for _, rt := range c.routes() {
		c.handle(rt.pattern, rt.h)
	}
	c.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.page(func(w http.ResponseWriter, r *http.Request, u User) error {
			return &APIError{Status: http.StatusNotFound, Code: "not_found",
				Message: "There is no page " + truncate(r.URL.Path, 100) + " in the admin center: open the overview and follow its links."}
		})(w, r)
	})
	return c
}

// route is one page of the admin center.
type route struct {
	pattern string // "GET /admin/…" or "POST /admin/…"
	h       handlerFunc
}

// routes is every page and form of the admin center: one line each, so
// that the table test that refuses non-administrators sees them all.
func (c *Console) routes() []route {
	return []route{
		{"GET " + Prefix + "/{$}", c.overviewPage},
		{"GET " + Prefix + "/connectors", c.connectorsPage},
		{"GET " + Prefix + "/connectors/{id}", c.connectorPage},
		{"POST " + Prefix + "/connectors/{id}/move", c.moveConnector},
		{"GET " + Prefix + "/connectors/{id}/delete", c.deleteConnectorPage},
		{"POST " + Prefix + "/connectors/{id}/delete", c.deleteConnector},
		{"GET " + Prefix + "/groups", c.groupsPage},
		{"POST " + Prefix + "/groups", c.createGroup},
		{"GET " + Prefix + "/groups/{name}", c.groupPage},
		{"POST " + Prefix + "/groups/{name}/rename", c.renameGroup},
		{"GET " + Prefix + "/groups/{name}/delete", c.deleteGroupPage},
		{"POST " + Prefix + "/groups/{name}/delete", c.deleteGroup},
		{"GET " + Prefix + "/tokens", c.tokensPage},
		{"POST " + Prefix + "/tokens", c.createToken},
		{"GET " + Prefix + "/tokens/{id}/revoke", c.revokeTokenPage},
		{"POST " + Prefix + "/tokens/{id}/revoke", c.revokeToken},
		{"GET " + Prefix + "/apps", c.appsPage},
		{"GET " + Prefix + "/apps/new", c.newAppPage},
		{"POST " + Prefix + "/apps", c.createApp},
		{"GET " + Prefix + "/apps/{name}", c.appPage},
		{"POST " + Prefix + "/apps/{name}", c.updateApp},
		{"POST " + Prefix + "/apps/{name}/test", c.testApp},
		{"GET " + Prefix + "/apps/{name}/delete", c.deleteAppPage},
		{"POST " + Prefix + "/apps/{name}/delete", c.deleteApp},
		{"POST " + Prefix + "/apps/{name}/assignments", c.assign},
		{"GET " + Prefix + "/apps/{name}/assignments/{kind}/{assignee}/delete", c.unassignPage},
		{"POST " + Prefix + "/apps/{name}/assignments/{kind}/{assignee}/delete", c.unassign},
		{"GET " + Prefix + "/users", c.usersPage},
		{"GET " + Prefix + "/users/new", c.newUserPage},
		{"POST " + Prefix + "/users", c.createUser},
		{"GET " + Prefix + "/users/{name}", c.userPage},
		{"POST " + Prefix + "/users/{name}/{action}", c.userAction},
		{"GET " + Prefix + "/users/{name}/delete", c.deleteUserPage},
		{"POST " + Prefix + "/users/{name}/delete", c.deleteUser},
		{"GET " + Prefix + "/user-groups", c.userGroupsPage},
		{"POST " + Prefix + "/user-groups", c.createUserGroup},
		{"GET " + Prefix + "/user-groups/{name}", c.userGroupPage},
		{"POST " + Prefix + "/user-groups/{name}/members", c.addMember},
		{"POST " + Prefix + "/user-groups/{name}/members/{user}/remove", c.removeMember},
		{"GET " + Prefix + "/user-groups/{name}/delete", c.deleteUserGroupPage},
		{"POST " + Prefix + "/user-groups/{name}/delete", c.deleteUserGroup},
		{"GET " + Prefix + "/idp", c.idpPage},
		{"POST " + Prefix + "/idp", c.setIdP},
		{"GET " + Prefix + "/idp/delete", c.deleteIdPPage},
		{"POST " + Prefix + "/idp/delete", c.deleteIdP},
		{"GET " + Prefix + "/domains", c.domainsPage},
		{"POST " + Prefix + "/domains", c.addDomain},
		{"POST " + Prefix + "/domains/{domain}/verify", c.verifyDomain},
		{"GET " + Prefix + "/domains/{domain}/delete", c.deleteDomainPage},
		{"POST " + Prefix + "/domains/{domain}/delete", c.deleteDomain},
		{"GET " + Prefix + "/events", c.eventsPage},
		{"GET " + Prefix + "/requests", c.requestPage},
		{"GET " + Prefix + "/updates", c.updatesPage},
	}
}

// Patterns lists the patterns of every page and form (for tests).
func (c *Console) Patterns() []string {
	out := append([]string(nil), c.pat...)
	sort.Strings(out)
	return out
}

func (c *Console) handle(pattern string, h handlerFunc) {
	c.pat = append(c.pat, pattern)
	c.mux.HandleFunc(pattern, c.page(h))
}

// ServeHTTP serves every path under Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// errForbidden is the answer to a signed-in user who is no administrator.
var errForbidden = &APIError{Status: http.StatusForbidden, Code: "forbidden",
	Message: "The admin center is for Global and Application Administrators: your applications are on My Apps; ask a Global Administrator of your organisation for a role if you need one."}

// page wraps a page: signed-out browsers go to the sign-in at the
// start page, users who are not administrators get 403, and a POST needs
// its form's CSRF token.
func (c *Console) page(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := c.cfg.Who(r)
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
			c.errorPage(w, r, User{}, &APIError{Status: http.StatusUnauthorized, Code: "unauthenticated",
				Message: "You are not signed in (or your session ended): sign in again at the start page and send the form again."})
			return
		}
		if !u.Admin() {
			c.errorPage(w, r, u, errForbidden)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				c.errorPage(w, r, u, &APIError{Status: http.StatusBadRequest, Code: "bad_form",
					Message: "The form could not be read (it is over 64 KiB or not a form): open the page again and send it from there."})
				return
			}
			if err := c.cfg.CheckCSRF(r); err != nil {
				c.errorPage(w, r, u, &APIError{Status: http.StatusForbidden, Code: "csrf",
					Message: "The form was not sent from this admin center (its security token is missing or wrong): open the page again and send the form from there."})
				return
			}
		}
		if err := h(w, r, u); err != nil {
			c.errorPage(w, r, u, err)
		}
	}
}

// maxForm bounds a form of the admin center.
const maxForm = 64 << 10

// APIError is an error answer of the admin API (or of the console), with
// the API's sentence.
type APIError struct {
	Status  int
	Code    string
	Message string
	Step    string
}

func (e *APIError) Error() string { return e.Message }

// Call calls the admin API as u: method and path (under /api/v1, e.g.
// "/groups"), in (JSON-encoded when not nil) and out (decoded when not
// nil). An error answer is an *APIError with the API's sentence.
func (c *Console) Call(r *http.Request, u User, method, path string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.cfg.As(r.Context(), u), method, api.Prefix+path, body)
	if err != nil {
		return err
	}
	req.Host = r.Host
	req.RemoteAddr = r.RemoteAddr
	req.TLS = r.TLS
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{h: http.Header{}}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 400 {
		var eb api.ErrorBody
		if json.Unmarshal(rec.body.Bytes(), &eb) != nil || eb.Error.Message == "" {
			return &APIError{Status: rec.status, Code: "api_error", Message: fmt.Sprintf("The admin API answered %d without an explanation: see the cloud's log.", rec.status)}
		}
		return &APIError{Status: rec.status, Code: eb.Error.Code, Message: eb.Error.Message, Step: eb.Error.Step}
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("reading the admin API's answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// recorder is the response of an in-process API call.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"pathEscape": url.PathEscape,
	// domID makes a name part of an element id: HTML ids hold no spaces,
	// and group names may (escaped as in a path, so two names stay two ids).
	"domID": url.PathEscape,
}

// templates holds one template per page: layout.html plus the page's file.
var templates = func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	entries, _ := fs.ReadDir(templateFiles, "templates")
	out := map[string]*template.Template{}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFiles, "templates/"+e.Name()))
	}
	return out
}()

// CSP is the console's Content-Security-Policy: its own script and
// styles only, nothing inline, not framed, forms only to itself.
const CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// view is what every page template gets.
type view struct {
	Title string
	Nav   string // the menu entry to mark as current
	User  User
	CSRF  string
	Flash string // what the last form did, once
	Data  any
}

// render writes page name (templates/NAME.html) with data.
func (c *Console) render(w http.ResponseWriter, r *http.Request, u User, status int, name, nav string, data any) {
	t := templates[name]
	v := view{Nav: nav, User: u, Data: data, CSRF: c.cfg.CSRFToken(w, r), Flash: c.takeFlash(w, r)}
	var buf bytes.Buffer
	if t == nil {
		c.cfg.Log.Error("admin center: no template", "page", name)
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.cfg.Log.Error("admin center: rendering a page failed", "page", name, "error", err.Error())
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	setHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// errorView is the data of the error page.
type errorView struct {
	Status  int
	Message string
	Code    string
}

// errorPage shows err: an *APIError with its sentence and status, any
// other error as a 500 that names the cloud's log.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, u User, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		c.cfg.Log.Error("admin center page failed", "path", r.URL.Path, "error", err.Error())
		ae = &APIError{Status: http.StatusInternalServerError, Code: "internal",
			Message: "The admin center could not show this page because of an internal error: the cloud's log has the details; try again."}
	}
	c.render(w, r, u, ae.Status, "error", "", errorView{Status: ae.Status, Message: ae.Message, Code: ae.Code})
}

// flashCookie carries what a form did to the page it redirects to.
const flashCookie = "__Host-sallyport-flash"

// done answers a form that succeeded: back to path (under Prefix), which
// shows msg once.
func (c *Console) done(w http.ResponseWriter, r *http.Request, path, msg string) error {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(truncate(msg, 300))),
		Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 60})
	http.Redirect(w, r, path, http.StatusSeeOther)
	return nil
}

func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) string {
	k, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	b, err := base64.RawURLEncoding.DecodeString(k.Value)
	if err != nil || len(b) > 400 {
		return ""
	}
	return string(b)
}

// serveStatic serves the console's stylesheet and script.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := staticFiles.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

// truncate cuts s to n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
