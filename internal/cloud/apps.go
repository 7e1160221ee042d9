package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/segment"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// publicNote is the one line that says a passthrough application is
// public.
func publicNote(out api.App) string {
	return fmt.Sprintf("pre-authentication is passthrough: anyone who knows %s reaches the backend", out.ExternalURL)
}

// MaxInternalURLLength bounds internal URLs.
const MaxInternalURLLength = 2048

// ValidAppName reports whether n can name an application: a DNS label of
// lower-case letters, digits and hyphens, since the default external host
// starts with it.
func ValidAppName(n string) bool {
	return len(n) <= 40 && edge.ValidDNSName(n) && !strings.Contains(n, ".")
}

// CheckInternalURL validates an internal URL.
func CheckInternalURL(raw string) (*url.URL, error) {
	bad := func(why string) error {
		return problem.Newf(http.StatusBadRequest, "bad_internal_url",
			"give the URL the connector's machine uses to reach the application, for example http://intranet.corp:8080/",
			"The internal URL %q is not usable: %s", tenancy.Truncate(raw, 120), why)
	}
	if len(raw) > MaxInternalURLLength {
		return nil, bad("it is too long")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("it does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("only http:// and https:// are supported")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, bad("it has no host")
	}
	if u.User != nil {
		return nil, bad("it must not contain credentials")
	}
	if u.Fragment != "" || u.RawQuery != "" {
		return nil, bad("it must not contain a query or fragment")
	}
	if why := badPort(u); why != "" {
		return nil, bad(why)
	}
	if _, ok := edge.NormalizeHost(u.Host); !ok {
		return nil, bad("its host is not a valid name or address")
	}
	return u, nil
}

// badPort says what is wrong with u's port, or "" when it has none or
// a usable one: digits only, 1 to 65535 (url.Parse accepts "99999").
func badPort(u *url.URL) string {
	p := u.Port()
	if p == "" {
		if strings.HasSuffix(u.Host, ":") {
			return "its port is empty (leave the colon out or give a port from 1 to 65535)"
		}
		return ""
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return fmt.Sprintf("its port %q is not a number from 1 to 65535", tenancy.Truncate(p, 20))
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			break
		}
	}
	if n < 1 || n > 65535 {
		return fmt.Sprintf("its port %s is not from 1 to 65535", tenancy.Truncate(p, 20))
	}
	return ""
}

// appRequest is a checked CreateAppRequest.
type appRequest struct {
	app   store.Application
	group store.Group
	note  string // what the administrator still has to do
}

func (s *Server) checkAppRequest(ctx context.Context, t store.Tenant, in api.CreateAppRequest) (*appRequest, error) {
	if !ValidAppName(in.Name) {
		return nil, problem.Newf(http.StatusBadRequest, "bad_app_name",
			"use 1 to 40 lower-case letters, digits and hyphens, for example 'web' or 'expenses-2'",
			"%q is not a valid application name", tenancy.Truncate(in.Name, 80))
	}
	switch in.Type {
	case "", store.AppHTTP:
	case store.AppTCP, store.AppUDP:
		return s.checkNetworkAppRequest(ctx, t, in)
	default:
		return nil, problem.Newf(http.StatusBadRequest, "bad_app_type",
			"use 'http' (a web application), 'tcp' or 'udp' (a network application of private access)",
			"%q is not an application type", tenancy.Truncate(in.Type, 40))
	}
	if len(in.InternalAddresses) > 0 {
		return nil, problem.New(http.StatusBadRequest, "bad_internal_address",
			"give a web application its --internal-url, or create a network application with --type tcp or --type udp",
			"A web (http) application takes no internal addresses")
	}
	iu, err := CheckInternalURL(in.InternalURL)
	if err != nil {
		return nil, err
	}
	g, err := s.groupByName(ctx, t, in.Group)
	if err != nil {
		return nil, err
	}
	host := in.ExternalHost
	if host == "" {
		host = in.Name + "-" + t.Label + "." + s.settings.Name
	}
	host, ok := edge.NormalizeHost(host)
	if !ok || edge.ValidDNSName(host) == false || !strings.Contains(host, ".") {
		return nil, problem.Newf(http.StatusBadRequest, "bad_external_host", "give a DNS name, for example intranet.contoso.com",
			"The external host %q is not a valid DNS name", tenancy.Truncate(in.ExternalHost, 120))
	}
	if host == s.settings.Name {
		return nil, problem.Newf(http.StatusBadRequest, "bad_external_host", "choose another host name",
			"The external host %s is the cloud's own name, which serves the admin API", host)
	}
	kind, err := tenancy.CheckHostOwned(ctx, s.store, s.settings.Name, t, host)
	if err != nil {
		s.events.Event(eventlog.AppHostRefused, fmt.Sprintf("Publishing '%s' of %s at %s was refused: %v", tenancy.Truncate(in.Name, 80), t.Domain, host, err),
			"app", tenancy.Truncate(in.Name, 80), "tenant", t.Domain, "external_host", host)
		return nil, err
	}
	if ih, _ := edge.NormalizeHost(iu.Host); ih == host || ih == s.settings.Name {
		return nil, problem.Newf(http.StatusBadRequest, "request_loop",
			"give the internal address of the application, which the connector reaches inside the site",
			"The internal URL %s points back at the cloud (%s), which would make every request loop", iu, ih)
	}
	timeout := in.Timeout
	if timeout == "" {
		timeout = "default"
	}
	if timeout != "default" && timeout != "long" {
		return nil, problem.Newf(http.StatusBadRequest, "bad_timeout", "use 'default' (85 s) or 'long' (180 s)", "%q is not a backend application timeout", tenancy.Truncate(in.Timeout, 40))
	}
	preauth := in.PreAuth
	if preauth == "" {
		preauth = PreAuthSallyport
	}
	if preauth != PreAuthSallyport && preauth != PreAuthPassthrough {
		return nil, problem.Newf(http.StatusBadRequest, "bad_preauth",
			"use 'sallyport' (users sign in at the cloud and only assigned users get through) or 'passthrough' (anyone who knows the URL reaches the application)",
			"%q is not a pre-authentication", tenancy.Truncate(in.PreAuth, 40))
	}
	backendProxy, err := checkBackendProxy(in.BackendProxy)
	if err != nil {
		return nil, err
	}
	description, err := checkDescription(in.Description)
	if err != nil {
		return nil, err
	}
	if (in.CertPEM == "") != (in.KeyPEM == "") {
		return nil, problem.New(http.StatusBadRequest, "bad_certificate", "give both or neither", "Only one of the certificate and key was given")
	}
	if in.CertPEM != "" {
		if err := checkEdgeCert(in.CertPEM, in.KeyPEM, host); err != nil {
			return nil, err
		}
	}
	note := ""
	if kind == tenancy.HostProven && in.CertPEM == "" && !s.edgeCertCovers(host) && s.acme == nil {
		note = fmt.Sprintf("Browsers will not trust https://%s/ until it has a certificate for that name: publish it with --cert-file and --key-file, or turn ACME on for the cloud ('cloud serve --acme-email')", host)
	}
	gnote, err := s.groupConnectorNote(ctx, t, g)
	if err != nil {
		return nil, err
	}
	if gnote != "" && note != "" {
		note += ". " + gnote
	} else if gnote != "" {
		note = gnote
	}
	now := s.now().UTC()
	return &appRequest{group: g, note: note, app: store.Application{
		ID: tenancy.NewID("a"), TenantID: t.ID, Name: in.Name, GroupID: g.ID, Type: store.AppHTTP, ExternalHost: host,
		InternalURL: iu.String(), Timeout: timeout, PreAuth: preauth,
		CertPEM: []byte(in.CertPEM), KeyPEM: []byte(in.KeyPEM), Affinity: in.Affinity, BackendProxy: backendProxy, DetailedErrors: in.DetailedErrors, KeepAuthorization: in.KeepAuthorization, Description: description, CreatedAt: now, UpdatedAt: now,
	}}, nil
}

// checkNetworkAppRequest checks the request of a network application
// (tcp or udp): internal addresses, and none of a web application's
// fields. It is never public: every connection is a signed-in, assigned
// user's.
func (s *Server) checkNetworkAppRequest(ctx context.Context, t store.Tenant, in api.CreateAppRequest) (*appRequest, error) {
	not := func(what, step string) error {
		return problem.Newf(http.StatusBadRequest, "not_for_network_app", step,
			"A %s application takes no %s: it is reached through its internal addresses, not over HTTP", in.Type, what)
	}
	switch {
	case len(in.InternalAddresses) == 0:
		return nil, problem.Newf(http.StatusBadRequest, "no_internal_address",
			"give one or more --internal-address HOST:PORT, for example db.corp:5432 or 10.1.0.0/24:22",
			"A %s application needs at least one internal address", in.Type)
	case in.InternalURL != "":
		return nil, not("internal URL", "give its destinations with --internal-address HOST:PORT instead")
	case in.ExternalHost != "":
		return nil, not("external host", "leave the external host out: users reach it with 'sallyport access'")
	case in.PreAuth == PreAuthPassthrough:
		return nil, not("passthrough pre-authentication", "leave the pre-authentication out: only signed-in users assigned to it reach it")
	case in.PreAuth != "" && in.PreAuth != PreAuthSallyport:
		return nil, problem.Newf(http.StatusBadRequest, "bad_preauth", "leave the pre-authentication out", "%q is not a pre-authentication", tenancy.Truncate(in.PreAuth, 40))
	case in.BackendProxy != "":
		return nil, not("backend proxy", "leave the backend proxy out: the connector dials the internal addresses itself")
	case in.CertPEM != "" || in.KeyPEM != "":
		return nil, not("certificate", "leave the certificate and key out")
	case in.Affinity:
		return nil, not("session affinity", "leave session affinity out")
	case in.KeepAuthorization:
		return nil, not("keep-authorization setting", "leave keep-authorization out")
	case in.DetailedErrors:
		return nil, not("detailed error pages", "leave detailed errors out")
	case in.Timeout != "" && in.Timeout != "default":
		return nil, not("backend timeout", "leave the timeout out")
	}
	set, err := segment.ParseSet(in.InternalAddresses)
	if err != nil {
		return nil, problem.New(http.StatusBadRequest, "bad_internal_address",
			"write each as HOST:PORT or HOST:LOW-HIGH, HOST a name, *.DOMAIN, an IP address or a CIDR prefix, for example db.corp:5432 or 10.1.0.0/24:22", err.Error())
	}
	description, err := checkDescription(in.Description)
	if err != nil {
		return nil, err
	}
	g, err := s.groupByName(ctx, t, in.Group)
	if err != nil {
		return nil, err
	}
	note, err := s.groupConnectorNote(ctx, t, g)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	return &appRequest{group: g, note: note, app: store.Application{
		ID: tenancy.NewID("a"), TenantID: t.ID, Name: in.Name, GroupID: g.ID, Type: in.Type, InternalAddresses: set.Strings(),
		Timeout: "default", PreAuth: PreAuthSallyport, Description: description, CreatedAt: now, UpdatedAt: now,
	}}, nil
}

// appConflict says why a refused a: its name is taken in the tenant, or its
// external host is published by another application, named when it is
// the tenant's own and never named when it is another tenant's.
func (s *Server) appConflict(ctx context.Context, t store.Tenant, a store.Application) error {
	if _, err := s.store.AppByName(ctx, t.ID, a.Name); err == nil {
		return problem.Newf(http.StatusConflict, "app_exists", "choose another name, or change the existing one with 'sallyport admin app update "+a.Name+"'",
			"An application named '%s' already exists", a.Name)
	}
	all, err := s.store.ListAllApps(ctx)
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.ExternalHost != a.ExternalHost {
			continue
		}
		if o.TenantID == t.ID {
			return problem.Newf(http.StatusConflict, "app_exists", "choose another external host, or stop publishing '"+o.Name+"' first ('sallyport admin app delete "+o.Name+"')",
				"The external host %s is already used by the application '%s'", a.ExternalHost, o.Name)
		}
		break
	}
	return problem.Newf(http.StatusConflict, "app_exists", "choose another external host",
		"The external host %s is already used by another tenant's application", a.ExternalHost)
}

// groupConnectorNote says, when g has no active connector, that requests
// to its applications will fail until one connects and how to get one;
// "" when one is active.
func (s *Server) groupConnectorNote(ctx context.Context, t store.Tenant, g store.Group) (string, error) {
	cs, err := s.store.ListConnectors(ctx, t.ID)
	if err != nil {
		return "", err
	}
	n := 0
	for _, c := range cs {
		if c.GroupID != g.ID {
			continue
		}
		if s.connectorStatus(c) == "active" {
			return "", nil
		}
		n++
	}
	register := "'sallyport admin token create --group " + shellWord(g.Name) + "', then 'sallyport connector register' with that token on a machine that reaches the application"
	if n == 0 {
		return fmt.Sprintf("The group '%s' has no connector yet, so requests will get an error page until one joins it: create a registration token with %s", g.Name, register), nil
	}
	return fmt.Sprintf("None of the %d connectors of the group '%s' is active, so requests will get an error page until one connects: start one with 'sallyport connector run' on its machine, or create a registration token with %s", n, g.Name, register), nil
}

// shellWord quotes w for a POSIX shell when it is not a plain word.
func shellWord(w string) string {
	for _, c := range w {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.", c)) {
			return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return w
}

// edgeCertCovers reports whether the configured edge certificate covers host.
func (s *Server) edgeCertCovers(host string) bool {
	if s.edgeCert == nil {
		return false
	}
	leaf := s.edgeCert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(s.edgeCert.Certificate[0]); err != nil {
			return false
		}
	}
	return leaf.VerifyHostname(host) == nil
}

func checkEdgeCert(certPEM, keyPEM, host string) error {
	c, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return problem.Newf(http.StatusBadRequest, "bad_certificate", "give a PEM certificate chain and its matching PEM private key", "The certificate cannot be used (%v)", err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err == nil {
		err = leaf.VerifyHostname(host)
	}
	if err != nil {
		return problem.Newf(http.StatusBadRequest, "bad_certificate", "give a certificate whose names include the external host", "The certificate does not cover %s", host)
	}
	return nil
}

func (s *Server) handleCreateApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in api.CreateAppRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	ar, err := s.checkAppRequest(r.Context(), p.Tenant, in)
	if err != nil {
		return err
	}
	if err := s.store.CreateApp(r.Context(), ar.app); errors.Is(err, store.ErrConflict) {
		return s.appConflict(r.Context(), p.Tenant, ar.app)
	} else if err != nil {
		return err
	}
	if err := s.refreshRoutes(r.Context()); err != nil {
		return err
	}
	if ar.app.IsNetwork() {
		addrs := strings.Join(ar.app.InternalAddresses, ", ")
		s.events.Event(eventlog.NetworkAppCreated, fmt.Sprintf("Network application '%s' (%s) of %s was created for %s by %s", ar.app.Name, ar.app.Type, p.Tenant.Domain, addrs, p.User.Name),
			"app", ar.app.Name, "tenant", p.Tenant.Domain, "type", ar.app.Type, "internal_addresses", strings.Join(ar.app.InternalAddresses, ","), "user", p.User.Name)
	} else {
		s.events.Event(eventlog.AppPublished, fmt.Sprintf("Application '%s' of %s was published at %s with pre-authentication %s by %s", ar.app.Name, p.Tenant.Domain, ar.app.ExternalHost, ar.app.PreAuth, p.User.Name),
			"app", ar.app.Name, "tenant", p.Tenant.Domain, "internal_url", ar.app.InternalURL, "preauth", ar.app.PreAuth)
	}
	out := s.apiApp(ar.app, ar.group.Name)
	out.Note = ar.note
	if ar.app.PreAuth == PreAuthPassthrough {
		out.PublicNote = publicNote(out)
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) apiApp(a store.Application, group string) api.App {
	if a.IsNetwork() {
		return api.App{
			ID: a.ID, Name: a.Name, Group: group, Type: a.Type, InternalAddresses: a.InternalAddresses, Timeout: a.Timeout, PreAuth: a.PreAuth,
			Description: a.Description, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		}
	}
	u := "https://" + a.ExternalHost
	if port := s.publicPort(); port != "" && port != "443" {
		u += ":" + port
	}
	return api.App{
		ID: a.ID, Name: a.Name, Group: group, Type: store.AppHTTP, ExternalHost: a.ExternalHost, ExternalURL: u + "/",
		InternalURL: a.InternalURL, Timeout: a.Timeout, PreAuth: a.PreAuth, Affinity: a.Affinity, BackendProxy: a.BackendProxy, DetailedErrors: a.DetailedErrors, KeepAuthorization: a.KeepAuthorization, Description: a.Description, CustomCert: len(a.CertPEM) > 0,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
}

func (s *Server) publicPort() string {
	i := strings.LastIndexByte(s.cfg.Listen, ':')
	if i < 0 {
		return ""
	}
	return s.cfg.Listen[i+1:]
}

func (s *Server) appByName(ctx context.Context, t store.Tenant, name string) (store.Application, error) {
	return lookup(ctx, t, name, s.store.AppByName, "no_app", "list the applications with 'sallyport admin app list'", "application '%s'")
}

func (s *Server) handleListApps(w http.ResponseWriter, r *http.Request, p *principal) error {
	apps, err := s.store.ListApps(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	names, err := s.groupNames(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.App, 0, len(apps))
	for _, a := range apps {
		out = append(out, s.apiApp(a, names[a.GroupID]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleGetApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	a, err := s.appByName(r.Context(), p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	names, err := s.groupNames(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	as, err := s.apiAssignments(r.Context(), p.Tenant, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.AppDetail{App: s.apiApp(a, names[a.GroupID]), Assignments: as, AssignmentsNote: assignmentsNote(a),
		Certificate: s.appCertificate(r.Context(), a)})
	return nil
}

func (s *Server) handleUpdateApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	a, err := s.appByName(r.Context(), p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	var in api.UpdateAppRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	req := api.CreateAppRequest{Name: a.Name, Type: a.Type, InternalAddresses: a.InternalAddresses, InternalURL: a.InternalURL, ExternalHost: a.ExternalHost, Timeout: a.Timeout,
		PreAuth: a.PreAuth, CertPEM: string(a.CertPEM), KeyPEM: string(a.KeyPEM), Affinity: a.Affinity, BackendProxy: a.BackendProxy, DetailedErrors: a.DetailedErrors, KeepAuthorization: a.KeepAuthorization, Description: a.Description}
	names, err := s.groupNames(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	req.Group = names[a.GroupID]
	if in.InternalURL != nil {
		req.InternalURL = *in.InternalURL
	}
	if in.InternalAddresses != nil {
		req.InternalAddresses = *in.InternalAddresses
	}
	if in.Group != nil {
		req.Group = *in.Group
	}
	if in.Timeout != nil {
		req.Timeout = *in.Timeout
	}
	if in.Affinity != nil {
		req.Affinity = *in.Affinity
	}
	if in.BackendProxy != nil {
		req.BackendProxy = *in.BackendProxy
	}
	if in.DetailedErrors != nil {
		req.DetailedErrors = *in.DetailedErrors
	}
	if in.KeepAuthorization != nil {
		req.KeepAuthorization = *in.KeepAuthorization
	}
	if in.Description != nil {
		req.Description = *in.Description
	}
	if in.PreAuth != nil {
		req.PreAuth = *in.PreAuth
		if req.PreAuth == "" {
			return problem.New(http.StatusBadRequest, "bad_preauth", "use 'sallyport' or 'passthrough'", "The pre-authentication given is empty")
		}
	}
	ar, err := s.checkAppRequest(r.Context(), p.Tenant, req)
	if err != nil {
		return err
	}
	ar.app.ID, ar.app.CreatedAt = a.ID, a.CreatedAt
	if err := s.store.UpdateApp(r.Context(), ar.app); err != nil {
		return err
	}
	if err := s.refreshRoutes(r.Context()); err != nil {
		return err
	}
	out := s.apiApp(ar.app, ar.group.Name)
	out.Note = ar.note
	if from, to := strings.Join(a.InternalAddresses, ","), strings.Join(ar.app.InternalAddresses, ","); a.IsNetwork() && from != to {
		s.events.Event(eventlog.NetworkAppAddressesChanged, fmt.Sprintf("The internal addresses of the network application '%s' of %s were changed from %s to %s by %s", a.Name, p.Tenant.Domain,
			strings.Join(a.InternalAddresses, ", "), strings.Join(ar.app.InternalAddresses, ", "), p.User.Name),
			"tenant", p.Tenant.Domain, "app", a.Name, "from", from, "to", to, "user", p.User.Name)
	}
	if a.PreAuth != ar.app.PreAuth {
		s.events.Event(eventlog.AppPreAuthChanged, fmt.Sprintf("The pre-authentication of the application '%s' of %s was changed from %s to %s by %s", a.Name, p.Tenant.Domain, a.PreAuth, ar.app.PreAuth, p.User.Name),
			"tenant", p.Tenant.Domain, "app", a.Name, "from", a.PreAuth, "to", ar.app.PreAuth, "user", p.User.Name)
		if ar.app.PreAuth == PreAuthPassthrough {
			out.PublicNote = publicNote(out)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleDeleteApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	a, err := s.appByName(r.Context(), p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteApp(r.Context(), p.Tenant.ID, a.Name); err != nil {
		return err
	}
	if err := s.refreshRoutes(r.Context()); err != nil {
		return err
	}
	s.history.forget(historyKey{appSeries, p.Tenant.ID, a.ID})
	s.events.Event(eventlog.AppDeleted, fmt.Sprintf("Application '%s' of %s was deleted by %s", a.Name, p.Tenant.Domain, p.User.Name), "app", a.Name, "tenant", p.Tenant.Domain)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var _ = fmt.Sprintf

// checkBackendProxy validates an application's forward proxy URL.
func checkBackendProxy(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	bad := func(why string) error {
		return problem.Newf(http.StatusBadRequest, "bad_backend_proxy", "give it as http://HOST:PORT, as the connector's machine reaches the proxy",
			"The backend proxy %q is not usable: %s", tenancy.Truncate(raw, 120), why)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || len(raw) > MaxInternalURLLength:
		return "", bad("it does not parse")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", bad("only http:// and https:// proxies are supported")
	case u.Hostname() == "":
		return "", bad("it has no host")
	case u.User != nil:
		return "", bad("it must not contain credentials")
	case badPort(u) != "":
		return "", bad(badPort(u))
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", bad("it must not contain a path or query")
	}
	return u.Scheme + "://" + u.Host, nil
}

// MaxDescriptionLength bounds an application's description, in characters.
const MaxDescriptionLength = 200

// checkDescription returns an application's description with its outer
// spaces removed, or refuses one that is too long or holds a character
// that is not printable (a line break, a control or format character).
func checkDescription(raw string) (string, error) {
	d := strings.TrimSpace(raw)
	if n := utf8.RuneCountInString(d); n > MaxDescriptionLength {
		return "", problem.Newf(http.StatusBadRequest, "bad_description", fmt.Sprintf("shorten it to %d characters", MaxDescriptionLength),
			"The description has %d characters, more than %d", n, MaxDescriptionLength)
	}
	for _, c := range d {
		if c == utf8.RuneError || !unicode.IsPrint(c) {
			return "", problem.Newf(http.StatusBadRequest, "bad_description", "use one line of printable text",
				"The description holds the character %U, which is not printable", c)
		}
	}
	return d, nil
}
