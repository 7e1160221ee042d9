package datadir

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// NotCopied names the kinds of rows CopyStore leaves behind: the Store
// interface has no way to list them, and each is short-lived or
// recreated. Sign-in and device-code grants: a sign-in under way starts over.
// Update turns: a rollout in progress takes its turn again (a turn lasts
// minutes). ACME locks: an order in progress is made again. Revocations: a deleted or
// replaced connector's certificate is refused all the same (the connector
// or its current serial is gone), only the refusal's wording changes.
var NotCopied = []string{"sign-in grants", "update turns", "revocations", "ACME locks"}

// CopyCount is how many rows of one kind CopyStore copied.
type CopyCount struct {
	Kind string
	N    int
}

// CopyOptions are the inputs of CopyStore.
type CopyOptions struct {
	// DataDir is the cloud's data directory; its settings name the source
	// store (From, "sqlite:DIR", must name this directory).
	DataDir string
	// To is the target, a postgres:// URL without a password; the
	// database must hold no tenant.
	To string
	// ToPasswordFile is the target's password file (mode 0600); "" for
	// PGPASSWORD.
	ToPasswordFile string
	// Switch writes the target into the data directory's settings once
	// the copy is done; otherwise the settings are left as they were.
	Switch bool
}

// ParseSQLiteSource returns the data directory of a copy's source,
// "sqlite:DIR".
func ParseSQLiteSource(from string) (string, error) {
	dir, ok := strings.CutPrefix(from, "sqlite:")
	if !ok || dir == "" {
		return "", problem.Newf(400, "store_dsn", "give the source as sqlite:DIR, DIR the cloud's data directory",
			"The source %q is not sqlite:DIR", from)
	}
	return dir, nil
}

// CopyStore copies every row of the data directory's SQLite store that the
// Store interface can list (all but NotCopied) into an empty PostgreSQL
// database. It copies the raw stores: wrapped keys stay wrapped by the
// data directory's key-encryption key, which the target needs as the
// source did. The source is only read; stop 'cloud serve' first, so
// nothing changes during the copy.
func CopyStore(ctx context.Context, o CopyOptions) ([]CopyCount, error) {
	settings, err := LoadSettings(o.DataDir)
	if err != nil {
		return nil, err
	}
	if IsPostgres(settings.Store) {
		return nil, problem.Newf(400, "store_dsn", "copy from a data directory whose store is SQLite",
			"The data directory %s already uses a PostgreSQL store", o.DataDir)
	}
	if !IsPostgres(o.To) {
		return nil, problem.Newf(400, "store_dsn", "give the target as postgres://USER@HOST:PORT/DATABASE", "The target %q is not a postgres:// URL", o.To)
	}
	if err := CheckStoreURL(o.To); err != nil {
		return nil, err
	}
	target := Settings{Store: o.To}
	if o.ToPasswordFile != "" {
		if target.StorePasswordFile, err = filepath.Abs(o.ToPasswordFile); err != nil {
			return nil, err
		}
	}
	src, err := openRawStore(o.DataDir, settings)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := openRawStore(o.DataDir, target)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	if err := checkStoreEmpty(ctx, dst, o.To); err != nil {
		return nil, err
	}
	c := copier{src: src, dst: dst, n: map[string]int{}}
	if err := c.copyAll(ctx); err != nil {
		return nil, problem.Newf(500, "store_copy", "empty the target database (DROP and CREATE it) and run the copy again",
			"The copy stopped part-way (%v)", err)
	}
	if o.Switch {
		settings.Store, settings.StorePasswordFile = target.Store, target.StorePasswordFile
		if err := WriteSettings(o.DataDir, settings); err != nil {
			return nil, err
		}
	}
	return c.counts(), nil
}

// WriteSettings replaces the data directory's settings file.
func WriteSettings(dataDir string, s Settings) error {
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(filepath.Join(dataDir, SettingsFile), append(js, '\n'), 0o600); err != nil {
		return problem.Newf(500, "data_dir", "check the directory's permissions and free space", "Writing %s failed (%v)", SettingsFile, err)
	}
	return nil
}

// copyKinds is the order of CopyStore's counts.
var copyKinds = []string{"tenants", "tenant CAs", "groups", "users", "users with MFA", "user groups", "memberships", "connectors",
	"applications", "assignments", "registration tokens", "domains", "signing keys", "tenant settings", "API tokens", "sessions", "update halts", "identity providers", "releases", "ACME objects"}

type copier struct {
	src, dst store.Store
	n        map[string]int
}

func (c *copier) counts() []CopyCount {
	out := make([]CopyCount, 0, len(copyKinds))
	for _, k := range copyKinds {
		out = append(out, CopyCount{Kind: k, N: c.n[k]})
	}
	return out
}

func (c *copier) copyAll(ctx context.Context) error {
	tenants, err := c.src.ListTenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if err := c.copyTenant(ctx, t); err != nil {
			return fmt.Errorf("tenant %s: %w", t.Domain, err)
		}
	}
	idps, err := c.src.ListIdentityProviders(ctx)
	if err != nil {
		return err
	}
	for _, p := range idps {
		if err := c.dst.SetIdentityProvider(ctx, p); err != nil {
			return fmt.Errorf("identity provider of %s: %w", p.TenantID, err)
		}
		c.n["identity providers"]++
	}
	releases, err := c.src.ListReleases(ctx, "", "")
	if err != nil {
		return err
	}
	for i := len(releases) - 1; i >= 0; i-- { // oldest first
		if err := c.dst.CreateRelease(ctx, releases[i]); err != nil {
			return fmt.Errorf("release %s %s/%s: %w", releases[i].Version, releases[i].OS, releases[i].Arch, err)
		}
		c.n["releases"]++
	}
	return c.copyACME(ctx)
}

// copyACME copies the ACME client's storage: certificates, their keys
// (wrapped as they are) and the accounts.
func (c *copier) copyACME(ctx context.Context) error {
	objs, err := c.src.ListACMEObjects(ctx, "")
	if err != nil {
		return err
	}
	for _, l := range objs {
		o, err := c.src.ACMEObject(ctx, l.Key)
		if err == nil {
			err = c.dst.PutACMEObject(ctx, o)
		}
		if err != nil {
			return fmt.Errorf("ACME object %s: %w", l.Key, err)
		}
		c.n["ACME objects"]++
	}
	return nil
}

// copyTenant copies one tenant: CreateTenant takes its CA, one group and
// one user at once (the Default group and a Global Administrator).
func (c *copier) copyTenant(ctx context.Context, t store.Tenant) error {
	ca, err := c.src.TenantCA(ctx, t.ID)
	if err != nil {
		return err
	}
	groups, err := c.src.ListGroups(ctx, t.ID)
	if err != nil {
		return err
	}
	users, err := c.src.ListUsers(ctx, t.ID)
	if err != nil {
		return err
	}
	if len(groups) == 0 || len(users) == 0 {
		return fmt.Errorf("it has no connector group or no user")
	}
	first, admin := 0, 0
	for i, g := range groups {
		if g.Name == tenancy.DefaultGroup {
			first = i
		}
	}
	for i := len(users) - 1; i >= 0; i-- {
		if users[i].Role == store.RoleGlobalAdmin {
			admin = i
		}
	}
	if err := c.dst.CreateTenant(ctx, t, ca, groups[first], users[admin]); err != nil {
		return err
	}
	c.n["tenants"]++
	c.n["tenant CAs"]++
	for i, g := range groups {
		if i != first {
			if err := c.dst.CreateGroup(ctx, g); err != nil {
				return fmt.Errorf("group %s: %w", g.Name, err)
			}
		}
		c.n["groups"]++
	}
	for i, u := range users {
		if i != admin {
			if err := c.dst.CreateUser(ctx, u); err != nil {
				return fmt.Errorf("user %s: %w", u.Name, err)
			}
		}
		c.n["users"]++
		if len(u.TOTPSecret) > 0 {
			c.n["users with MFA"]++
		}
	}
	return c.copyTenantRows(ctx, t.ID)
}

// copyTenantRows copies what hangs off a tenant's groups and users.
func (c *copier) copyTenantRows(ctx context.Context, tenantID string) error {
	ugs, err := c.src.ListUserGroups(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, g := range ugs {
		if err := c.dst.CreateUserGroup(ctx, g); err != nil {
			return fmt.Errorf("user group %s: %w", g.Name, err)
		}
		c.n["user groups"]++
	}
	members, err := c.src.ListMemberships(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, m := range members {
		if err := c.dst.AddUserGroupMember(ctx, tenantID, m.UserGroupID, m.UserID, m.AddedAt); err != nil {
			return fmt.Errorf("membership: %w", err)
		}
		c.n["memberships"]++
	}
	conns, err := c.src.ListConnectors(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, x := range conns {
		if err := c.dst.CreateConnector(ctx, x); err != nil {
			return fmt.Errorf("connector %s: %w", x.ID, err)
		}
		c.n["connectors"]++
	}
	apps, err := c.src.ListApps(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if err := c.dst.CreateApp(ctx, a); err != nil {
			return fmt.Errorf("application %s: %w", a.Name, err)
		}
		c.n["applications"]++
	}
	as, err := c.src.ListTenantAssignments(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, a := range as {
		if err := c.dst.Assign(ctx, a); err != nil {
			return fmt.Errorf("assignment: %w", err)
		}
		c.n["assignments"]++
	}
	return c.copyTenantRest(ctx, tenantID)
}

// copyTenantRest copies a tenant's tokens, domains, keys and settings.
func (c *copier) copyTenantRest(ctx context.Context, tenantID string) error {
	toks, err := c.src.ListRegistrationTokens(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, x := range toks {
		if err := c.dst.CreateRegistrationToken(ctx, x); err != nil {
			return fmt.Errorf("registration token %s: %w", x.ID, err)
		}
		c.n["registration tokens"]++
	}
	domains, err := c.src.ListDomains(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, d := range domains {
		if err := c.dst.CreateDomain(ctx, d); err != nil {
			return fmt.Errorf("domain %s: %w", d.Domain, err)
		}
		c.n["domains"]++
	}
	keys, err := c.src.TenantSigningKeys(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := c.dst.AddTenantSigningKey(ctx, k, ""); err != nil {
			return fmt.Errorf("signing key %s: %w", k.KID, err)
		}
		c.n["signing keys"]++
	}
	apiToks, err := c.src.ListAPITokens(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, x := range apiToks {
		if err := c.dst.CreateAPIToken(ctx, x); err != nil {
			return fmt.Errorf("API token %s: %w", x.ID, err)
		}
		c.n["API tokens"]++
	}
	sessions, err := c.src.ListSessions(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, x := range sessions {
		if err := c.dst.CreateSession(ctx, x); err != nil {
			return fmt.Errorf("session %s: %w", x.ID, err)
		}
		c.n["sessions"]++
	}
	halts, err := c.src.ListUpdateHalts(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, h := range halts {
		if err := c.dst.HaltUpdate(ctx, h); err != nil {
			return fmt.Errorf("update halt of %s: %w", h.Version, err)
		}
		c.n["update halts"]++
	}
	ts, err := c.src.TenantSettings(ctx, tenantID)
	if err != nil {
		return err
	}
	if ts.RequireMFA || ts.SessionLifetime != 0 || ts.SessionIdle != 0 || ts.UpdatedAt.Unix() > 0 {
		if err := c.dst.SetTenantSettings(ctx, ts); err != nil {
			return fmt.Errorf("tenant settings: %w", err)
		}
		c.n["tenant settings"]++
	}
	return nil
}
