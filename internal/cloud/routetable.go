package cloud

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/segment"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Backend application timeouts.
const (
	TimeoutDefault = 85 * time.Second
	TimeoutLong    = 180 * time.Second
)

// timeoutFor maps a timeout name to its duration.
func timeoutFor(name string) time.Duration {
	if name == "long" {
		return TimeoutLong
	}
	return TimeoutDefault
}

// routeTable is an immutable snapshot of every published application,
// rebuilt from the store after each change and periodically.
type routeTable struct {
	byHost  map[string]*edge.App
	certs   map[string]*tls.Certificate // custom edge certificates by host
	configs map[string]*tunnel.Config   // by group id
	labels  map[string]store.Tenant     // tenants by label, for their issuer URLs
	// The directory, for the gate (preauth.go): no store read per request.
	tenants  map[string]store.Tenant         // by id
	users    map[string]*dirUser             // every tenant's users, by id
	access   map[string]*appAccess           // who is assigned, by application id
	settings map[string]store.TenantSettings // by tenant id
	admins   map[string][]string             // Global Administrators' names by tenant id, by name (whom to ask)
	// descriptions of the applications, by id, for My Apps (myapps.go):
	// the edge has no use for them.
	descriptions map[string]string
	// netApps are the network applications (tcp, udp) by tenant id and
	// name: never in byHost, so the edge routes no host to them and no
	// certificate is asked for them.
	netApps map[netAppKey]*netApp
}

type netAppKey struct{ tenantID, name string }

// netApp is a network application as private access needs it.
type netApp struct {
	ID, TenantID, Tenant, Name, GroupID, Type string
	Group                                     string // the group's name, for messages
	Segments                                  segment.Set
}

// addNetworkApp adds a network application: to netApps and to its
// group's configuration (type and segments, no host, no internal URL).
func (t *routeTable) addNetworkApp(a store.Application, tenant string) {
	set, err := segment.ParseSet(a.InternalAddresses)
	if err != nil {
		set = nil // written by the API, which parsed them: cannot happen; the app then covers nothing
	}
	na := &netApp{ID: a.ID, TenantID: a.TenantID, Tenant: tenant, Name: a.Name, GroupID: a.GroupID, Type: a.Type, Segments: set}
	if cfg := t.configs[a.GroupID]; cfg != nil {
		na.Group = cfg.Group
	}
	t.netApps[netAppKey{a.TenantID, a.Name}] = na
	if a.Description != "" {
		t.descriptions[a.ID] = a.Description
	}
	if cfg := t.configs[a.GroupID]; cfg != nil {
		cfg.Apps = append(cfg.Apps, tunnel.AppConfig{ID: a.ID, Name: a.Name, Type: a.Type, Segments: set.Strings(), Timeout: timeoutFor(a.Timeout)})
	}
}

// networkApp returns the network application of a tenant by name.
func (t *routeTable) networkApp(tenantID, name string) (*netApp, bool) {
	a, ok := t.netApps[netAppKey{tenantID, name}]
	return a, ok
}

// Lookup implements edge.Routes.
func (t *routeTable) Lookup(host string) (*edge.App, bool) {
	a, ok := t.byHost[host]
	return a, ok
}

// loadRoutes builds a routeTable from the store.
func (s *Server) loadRoutes(ctx context.Context) (*routeTable, error) {
	apps, err := s.store.ListAllApps(ctx)
	if err != nil {
		return nil, err
	}
	tenants, err := s.store.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	t := &routeTable{byHost: map[string]*edge.App{}, certs: map[string]*tls.Certificate{}, configs: map[string]*tunnel.Config{}, labels: map[string]store.Tenant{},
		tenants: map[string]store.Tenant{}, users: map[string]*dirUser{}, access: map[string]*appAccess{}, settings: map[string]store.TenantSettings{},
		admins: map[string][]string{}, descriptions: map[string]string{}, netApps: map[netAppKey]*netApp{}}
	for _, ten := range tenants {
		if err := s.loadDirectory(ctx, t, ten); err != nil {
			return nil, err
		}
	}
	groupNames := map[string]string{}
	for _, ten := range tenants {
		groups, err := s.store.ListGroups(ctx, ten.ID)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			groupNames[g.ID] = g.Name
			t.configs[g.ID] = &tunnel.Config{TenantID: ten.ID, Tenant: ten.Domain, Group: g.Name, Apps: []tunnel.AppConfig{}}
		}
	}
	domains := map[string]string{}
	for _, ten := range tenants {
		domains[ten.ID] = ten.Domain
		t.labels[ten.Label] = ten
	}
	for _, a := range apps {
		if a.IsNetwork() {
			t.addNetworkApp(a, domains[a.TenantID])
			continue
		}
		ea := &edge.App{
			ID: a.ID, TenantID: a.TenantID, Tenant: domains[a.TenantID], Name: a.Name,
			GroupID: a.GroupID, Group: groupNames[a.GroupID], ExternalHost: a.ExternalHost,
			InternalURL: a.InternalURL, Timeout: timeoutFor(a.Timeout), TimeoutName: a.Timeout, Affinity: a.Affinity,
			DetailedErrors: a.DetailedErrors, PreAuth: a.PreAuth == PreAuthSallyport, KeepAuthorization: a.KeepAuthorization,
		}
		t.byHost[a.ExternalHost] = ea
		if a.Description != "" {
			t.descriptions[a.ID] = a.Description
		}
		if len(a.CertPEM) > 0 {
			if c, err := tls.X509KeyPair(a.CertPEM, a.KeyPEM); err == nil {
				t.certs[a.ExternalHost] = &c
			}
		}
		if cfg := t.configs[a.GroupID]; cfg != nil {
			cfg.Apps = append(cfg.Apps, tunnel.AppConfig{
				ID: a.ID, Name: a.Name, ExternalHost: a.ExternalHost, InternalURL: a.InternalURL, Timeout: ea.Timeout, BackendProxy: a.BackendProxy,
			})
		}
	}
	for _, cfg := range t.configs {
		sort.Slice(cfg.Apps, func(i, j int) bool { return cfg.Apps[i].ID < cfg.Apps[j].ID })
		js, _ := json.Marshal(cfg)
		sum := sha256.Sum256(js)
		cfg.Version = hex.EncodeToString(sum[:8])
	}
	return t, nil
}

// refreshRoutes reloads the route table and pushes changed group
// configurations to live connectors.
func (s *Server) refreshRoutes(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	t, err := s.loadRoutes(ctx)
	if err != nil {
		return err
	}
	s.forgetACMEHosts(s.routes.Swap(t), t) // acmename.go
	s.registry.pushAll(ctx, t)
	return nil
}

// routesNow returns the current route table.
func (s *Server) routesNow() *routeTable { return s.routes.Load() }

// Lookup implements edge.Routes on the current table.
func (s *Server) Lookup(host string) (*edge.App, bool) { return s.routes.Load().Lookup(host) }

// tenantByLabel finds a tenant by its label (the issuer path /t/LABEL)
// in the current table: no store read for a public request.
func (s *Server) tenantByLabel(label string) (store.Tenant, bool) {
	t, ok := s.routes.Load().labels[label]
	return t, ok
}

// loadDirectory adds a tenant's users, user groups, assignments and
// settings to t.
func (s *Server) loadDirectory(ctx context.Context, t *routeTable, ten store.Tenant) error {
	t.tenants[ten.ID] = ten
	st, err := s.store.TenantSettings(ctx, ten.ID)
	if err != nil {
		return err
	}
	t.settings[ten.ID] = st
	users, err := s.store.ListUsers(ctx, ten.ID)
	if err != nil {
		return err
	}
	for _, u := range users {
		t.users[u.ID] = &dirUser{User: u, groupIDs: map[string]bool{}}
		if u.Role == store.RoleGlobalAdmin && !u.Disabled {
			t.admins[ten.ID] = append(t.admins[ten.ID], u.Name)
		}
	}
	groups, err := s.store.ListUserGroups(ctx, ten.ID)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, g := range groups {
		names[g.ID] = g.Name
	}
	ms, err := s.store.ListMemberships(ctx, ten.ID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if u := t.users[m.UserID]; u != nil {
			u.groupIDs[m.UserGroupID] = true
			u.Groups = append(u.Groups, names[m.UserGroupID])
		}
	}
	for _, u := range t.users {
		sort.Strings(u.Groups)
	}
	as, err := s.store.ListTenantAssignments(ctx, ten.ID)
	if err != nil {
		return err
	}
	for _, a := range as {
		acc := t.access[a.AppID]
		if acc == nil {
			acc = &appAccess{users: map[string]bool{}, groups: map[string]bool{}}
			t.access[a.AppID] = acc
		}
		if a.UserID != "" {
			acc.users[a.UserID] = true
		} else {
			acc.groups[a.UserGroupID] = true
		}
	}
	return nil
}
