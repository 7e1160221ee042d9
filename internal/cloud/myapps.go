package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/segment"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// The cloud's start page, https://CLOUDNAME/ (docs/identity.md, "My
// Apps"): signed out, it asks for the user name and sends the browser to
// the tenant's OpenID provider or to the password form (home realm
// discovery); signed in, it shows the applications the user is assigned
// to. It reads only the routing snapshot, and the store for a verified
// custom domain.

// discoverView is the data of the start page's first form.
type discoverView struct {
	CSRF    string
	User    string
	Message string
}

// myAppsView is the data of My Apps.
type myAppsView struct {
	User   string
	Tenant string
	Ask    string // whom to ask for an assignment
	Apps   []appTile
	// NetApps are the network applications (tcp, udp) the user is
	// assigned to, with the commands that reach them: no links.
	NetApps []netTile
	Login   string // the network sign-in command, shown with NetApps
	CSRF    string
	Admin   bool // an administrator: My Apps links the admin center
}

// appTile is one application of My Apps.
type appTile struct {
	Name        string
	URL         string
	Description string
}

// netTile is one network application of My Apps.
type netTile struct {
	Name, Type, Description string
	Addresses               string   // the internal addresses, comma-separated
	Commands                []string // how to use it, one command a line
}

// handleHome serves GET /: My Apps for a signed-in browser, the user name
// form otherwise.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	if _, u, ok := s.homeSession(r); ok {
		s.renderPage(w, r, http.StatusOK, "myapps", s.myApps(u, s.csrfToken(w, r)))
		return
	}
	s.renderPage(w, r, http.StatusOK, "discover", discoverView{CSRF: s.csrfToken(w, r)})
}

// handleHomePost takes the user name of the start page: the tenant of
// its domain with an OpenID provider sends the browser there; any other
// domain, a tenant's or not, gets the same password form. Whether the
// user exists is never looked up here.
func (s *Server) handleHomePost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.messagePage(w, r, problem.New(http.StatusBadRequest, "bad_form", "open the sign-in page again", "The sign-in form could not be read"))
		return
	}
	if err := s.checkCSRF(r); err != nil {
		s.messagePage(w, r, err)
		return
	}
	view := discoverView{CSRF: s.csrfToken(w, r), User: tenancy.Truncate(r.PostFormValue("user"), 200)}
	name, err := tenancy.CheckUserName("bad_user_name", view.User, "")
	if err == nil {
		err = s.signin.admit(sourceOf(r.RemoteAddr))
	}
	if err != nil {
		p := problem.Public(err)
		view.Message = p.Error()
		var re *retryError
		if errors.As(err, &re) {
			w.Header().Set("Retry-After", fmt.Sprint(retrySeconds(re.after)))
		}
		s.renderPage(w, r, p.Status, "discover", view)
		return
	}
	ten, ok, err := s.realmOf(r.Context(), name[strings.LastIndexByte(name, '@')+1:])
	if err != nil {
		s.messagePage(w, r, err)
		return
	}
	if ok && s.tenantHasProvider(ten.ID) {
		s.startProvider(w, r, ten, signinFlow{TenantID: ten.ID, Home: true}, name)
		return
	}
	s.renderPage(w, r, http.StatusOK, "signin", signinView{Home: true, User: name, CSRF: view.CSRF})
}

// realmOf returns the tenant whose users have names of domain: the tenant
// of that primary domain, or the one that verified it ('admin domain').
// The store is read for every domain, a tenant's primary one too, so that
// the answer's time does not tell a tenant's domain from another.
func (s *Server) realmOf(ctx context.Context, domain string) (store.Tenant, bool, error) {
	t := s.routesNow()
	d, err := s.store.VerifiedDomain(ctx, domain)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Tenant{}, false, err
	}
	for _, ten := range t.tenants {
		if ten.Domain == domain {
			return ten, true, nil
		}
	}
	if err != nil {
		return store.Tenant{}, false, nil
	}
	ten, ok := t.tenants[d.TenantID]
	return ten, ok, nil
}

// homeSession returns the browser's cloud session and its user, of
// whichever tenant, if the user may still sign in.
func (s *Server) homeSession(r *http.Request) (*cachedSession, *dirUser, bool) {
	c, err := r.Cookie(cloudCookie)
	if err != nil {
		return nil, nil, false
	}
	cs, err := s.sessionOf(r.Context(), sourceOf(r.RemoteAddr), c.Value, prefixCookie, store.SessionCloud, "")
	if err != nil || cs == nil {
		return nil, nil, false
	}
	u, ok := s.routesNow().users[cs.UserID]
	if !ok || u.Disabled || u.TenantID != cs.TenantID {
		return nil, nil, false
	}
	return cs, u, true
}

// myApps lists the pre-authenticated applications of u's tenant that u is
// assigned to, directly or through a user group, by name. Passthrough
// applications assign nobody and are not listed.
func (s *Server) myApps(u *dirUser, csrf string) myAppsView {
	t := s.routesNow()
	ten := t.tenants[u.TenantID]
	v := myAppsView{User: u.Name, Tenant: ten.Domain, CSRF: csrf, Ask: "an administrator of " + ten.Domain, Admin: isAdmin(u.User)}
	if admins := t.admins[u.TenantID]; len(admins) > 0 {
		v.Ask = strings.Join(admins[:min(len(admins), 3)], " or ")
	}
	for _, a := range t.byHost {
		if a.TenantID != u.TenantID || !a.PreAuth || !t.assigned(a.ID, u) {
			continue
		}
		v.Apps = append(v.Apps, appTile{Name: a.Name, URL: s.origin(a.ExternalHost) + "/", Description: t.descriptions[a.ID]})
	}
	sort.Slice(v.Apps, func(i, j int) bool { return v.Apps[i].Name < v.Apps[j].Name })
	for k, a := range t.netApps {
		if k.tenantID != u.TenantID || !t.assigned(a.ID, u) {
			continue
		}
		v.NetApps = append(v.NetApps, netTile{Name: a.Name, Type: a.Type, Description: t.descriptions[a.ID],
			Addresses: strings.Join(a.Segments.Strings(), ", "), Commands: netCommands(a)})
	}
	sort.Slice(v.NetApps, func(i, j int) bool { return v.NetApps[i].Name < v.NetApps[j].Name })
	if len(v.NetApps) > 0 {
		v.Login = "sallyport access login " + s.origin(s.settings.Name) + "/ --user " + u.Name
	}
	return v
}

// netCommands are the client commands that reach a network application
// (docs/private-access.md, "The client"): 'access tcp' or 'access udp'
// (with --dest when it has no single address), and for a host on port 22
// OpenSSH's ProxyCommand line.
func netCommands(a *netApp) []string {
	cmd := "sallyport access " + a.Type + " " + a.Name
	if singleAddress(a.Segments) == "" {
		cmd += " --dest HOST:PORT"
	}
	out := []string{cmd}
	if a.Type != "tcp" {
		return out
	}
	for _, seg := range a.Segments {
		if seg.PortLo > 22 || seg.PortHi < 22 {
			continue
		}
		host, ok := seg.OneHost()
		switch {
		case ok:
		case seg.Kind == segment.Wildcard:
			host = "HOST." + seg.Host
		default:
			host = "HOST"
		}
		return append(out, "ssh -o ProxyCommand='sallyport access stdio %h %p' "+host)
	}
	return out
}
