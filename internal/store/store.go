// Package store owns the cloud service's persistent state: tenants, users,
// API tokens, registration tokens, connector groups, connectors, revocations,
// applications, the domains tenants claim, and the tenant's directory for
// pre-authentication (user groups, their members, application assignments).
//
// The Store interface is the only way the cloud reaches its data, so that a
// PostgreSQL backend can be added beside the SQLite one without touching
// callers. Every lookup of a tenant's object takes the tenant id and matches
// it in the query: a caller can never read another tenant's rows by guessing
// an id. The store validates nothing about business rules (roles, names);
// it enforces uniqueness and reports it as ErrConflict.
//
// The store must not import any other package of this module.
package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Sentinel errors callers test with errors.Is.
var (
	// ErrNotFound means no row matched (including: it exists, but in another tenant).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique constraint would be violated (duplicate name, host, domain...).
	ErrConflict = errors.New("store: conflict")

	// ErrTokenRevoked, ErrTokenExpired and ErrTokenUsedUp are why
	// UseRegistrationToken refused a registration token it found.
	ErrTokenRevoked = errors.New("store: registration token revoked")
	ErrTokenExpired = errors.New("store: registration token expired")
	ErrTokenUsedUp  = errors.New("store: registration token used up")
)

// Role is a user's role in its home tenant.
type Role string

// Roles, from most to least privileged.
const (
	RoleGlobalAdmin Role = "global-admin"
	RoleAppAdmin    Role = "app-admin"
	RoleUser        Role = "user"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RoleGlobalAdmin || r == RoleAppAdmin || r == RoleUser
}

// CanManage reports whether r may manage groups, connectors and applications
// and register connectors (at least Application Administrator).
func (r Role) CanManage() bool { return r == RoleGlobalAdmin || r == RoleAppAdmin }

// Tenant is an organisation. Domain is its primary verified domain
// (e.g. "contoso.com"); Label is the first DNS label of it ("contoso"), used
// in default external host names.
type Tenant struct {
	ID        string
	Domain    string
	Label     string
	CreatedAt time.Time
}

// TenantCA is a tenant's connector CA: it signs the client certificates of
// the tenant's connectors. KeyPEM is secret.
type TenantCA struct {
	TenantID string
	CertPEM  []byte
	KeyPEM   []byte
}

// User is a person or service account; Name is "name@domain" and unique
// across the whole cloud; TenantID is its home tenant.
type User struct {
	ID           string
	TenantID     string
	Name         string
	Role         Role
	PasswordHash string // argon2id encoded hash ("" for a user of an OpenID provider)
	CreatedAt    time.Time
	// Email is where the user is reached, sent to backends
	// (X-Sallyport-Email); "" when unknown.
	Email string
	// DisplayName is the user's full name for pages and the assertion's
	// name claim; "" when unknown.
	DisplayName string
	// Disabled users cannot sign in, and their sessions end.
	Disabled bool
	// External is the user's identity at the tenant's OpenID provider,
	// "ISSUER#SUBJECT", for a user created on first sign-in there; "" for
	// a local account. Unique in a tenant when not "".
	External string
	// TOTPSecret is the raw secret of the user's TOTP second factor; nil:
	// not enrolled. Secret (the data directory's store wraps it).
	TOTPSecret []byte
	// MFAEnrolledAt is when the second factor was enrolled (zero: never).
	MFAEnrolledAt time.Time
	// RecoveryCodes are the SHA-256 hashes (hex) of the user's unused
	// recovery codes.
	RecoveryCodes []string
}

// APIToken is an admin API bearer token. Only the SHA-256 hash of the token
// (hex) is stored.
type APIToken struct {
	ID        string
	UserID    string
	TenantID  string
	Hash      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// RegistrationToken lets a connector register without an administrator's
// password (unattended installs): it names the tenant and group the
// connector joins. Only the SHA-256 hash of the token (hex) is stored.
type RegistrationToken struct {
	ID        string
	TenantID  string
	GroupID   string
	Hash      string
	CreatedBy string // name of the user who created it
	CreatedAt time.Time
	ExpiresAt time.Time // unusable from this instant on
	MaxUses   int       // registrations it allows; 0 is unlimited (until it expires)
	Uses      int       // registrations made with it
	RevokedAt time.Time // zero: not revoked
	RevokedBy string    // name of the user who revoked it
}

// Check reports whether t may register one more connector at now: nil, or
// ErrTokenRevoked, ErrTokenUsedUp or ErrTokenExpired (checked in this
// order). Implementations of UseRegistrationToken apply exactly this rule.
func (t RegistrationToken) Check(now time.Time) error {
	switch {
	case !t.RevokedAt.IsZero():
		return ErrTokenRevoked
	case t.MaxUses > 0 && t.Uses >= t.MaxUses:
		return ErrTokenUsedUp
	case !now.Before(t.ExpiresAt):
		return ErrTokenExpired
	}
	return nil
}

// Group is a connector group. Every tenant has one named "Default".
type Group struct {
	ID        string
	TenantID  string
	Name      string
	CreatedAt time.Time
}

// GroupKey is what makes two group names the same: equal after Unicode
// NFC normalisation and lower-casing ('Zürich', 'ZÜRICH' and 'zu\u0308rich'
// name one group). A tenant's group names are unique by their keys.
func GroupKey(name string) string {
	return strings.ToLower(norm.NFC.String(name))
}

// Connector is a registered connector.
type Connector struct {
	ID             string
	TenantID       string
	GroupID        string
	Hostname       string
	Version        string
	CertSerial     string // hex serial of the current certificate
	CertThumbprint string // upper-case hex SHA-256 of the current certificate
	CertNotAfter   time.Time
	// PreviousSerial is the serial the current certificate was renewed
	// from; it stays accepted until the connector connects with the new
	// one ("" when none).
	PreviousSerial string
	CreatedAt      time.Time
	LastSeenAt     time.Time // zero: never connected
	LastAddress    string    // remote address of its last tunnel connection
}

// Revocation records a revoked connector certificate.
type Revocation struct {
	Serial      string
	TenantID    string
	ConnectorID string
	Reason      string
	RevokedAt   time.Time
}

// Application maps an external host at the edge to an internal URL reached
// by the connectors of one group.
type Application struct {
	ID       string
	TenantID string
	Name     string
	GroupID  string
	// Type is AppHTTP (also written for ""), AppTCP or AppUDP.
	Type         string
	ExternalHost string // lower-case, unique across the cloud; "" for a network application
	InternalURL  string // "" for a network application
	// InternalAddresses are a network application's segments as typed
	// (package segment), nil for a web application.
	InternalAddresses []string
	Timeout           string // "default" or "long"
	PreAuth           string // "passthrough" (later also "sallyport")
	CertPEM           []byte // optional edge certificate for ExternalHost
	KeyPEM            []byte // its key; secret
	Affinity          bool   // session affinity: keep a browser on one connector
	BackendProxy      string // forward proxy URL the connector uses for this backend ("" for none)
	// DetailedErrors shows the detailed error pages (internal URL, the
	// connector's account of a failure) to anyone, for the app's developers.
	DetailedErrors bool
	// KeepAuthorization sends the access token a client of a
	// pre-authenticated application signed in with (Authorization:
	// Bearer) on to the backend; by default the edge removes it.
	KeepAuthorization bool
	// Description is a short text for users (My Apps): up to 200
	// printable characters, "" for none.
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// UserGroup is a group of a tenant's users, named apart from connector
// groups (its own namespace, the same name rules: unique in the tenant by
// GroupKey). Members is how many users it holds when it was read; stores
// ignore it on CreateUserGroup.
type UserGroup struct {
	ID        string
	TenantID  string
	Name      string
	Members   int
	CreatedAt time.Time
}

// Membership is a user's membership of a user group.
type Membership struct {
	TenantID    string
	UserGroupID string
	UserID      string
	AddedAt     time.Time
}

// Assignment lets a user, or the members of a user group, reach an
// application once the application uses pre-authentication. Exactly one of
// UserID and UserGroupID is set.
type Assignment struct {
	TenantID    string
	AppID       string
	UserID      string
	UserGroupID string
	CreatedAt   time.Time
}

// Domain is a DNS domain a tenant claims for publishing applications
// under it. It is pending until verified (VerifiedAt non-zero); a domain is
// verified by at most one tenant across the cloud, while several tenants
// may hold pending claims of it.
type Domain struct {
	TenantID   string
	Domain     string // lower-case, no trailing dot
	Token      string // the random value of the TXT record that proves it
	CreatedAt  time.Time
	VerifiedAt time.Time // zero: pending
	VerifiedBy string    // "dns" or "operator"; "" while pending
}

// Verified reports whether the claim is proven.
func (d Domain) Verified() bool { return !d.VerifiedAt.IsZero() }

// Release is a connector build published at the cloud: the signed
// manifest (its exact bytes and signature) with the fields callers filter
// on. Releases are global: the cloud's operator publishes them for every
// tenant.
type Release struct {
	Version     string
	OS          string
	Arch        string
	Major       bool
	SHA256      string
	Size        int64
	Manifest    []byte
	Signature   []byte
	KeyID       string
	PublishedAt time.Time
}

// UpdateTurn is a connector group's update turn: the one connector of the
// group allowed to update now, until ExpiresAt.
type UpdateTurn struct {
	TenantID    string
	GroupID     string
	ConnectorID string
	Version     string
	TakenAt     time.Time
	ExpiresAt   time.Time
}

// UpdateHalt records that a connector of a group rolled a release back:
// the group's other updaters do not install it automatically.
type UpdateHalt struct {
	TenantID    string
	GroupID     string
	Version     string
	ConnectorID string
	HaltedAt    time.Time
}

// TenantSettings are a tenant's sign-in settings. A tenant that never set
// them has the zero value (the defaults: MFA not required, the cloud's
// default session lifetime and idle timeout).
type TenantSettings struct {
	TenantID   string
	RequireMFA bool
	// SessionLifetime is how long a session lasts from sign-in at most;
	// 0: the default.
	SessionLifetime time.Duration
	// SessionIdle ends a session unused for this long; 0: the default.
	SessionIdle time.Duration
	UpdatedAt   time.Time
}

// IdentityProvider is a tenant's OpenID provider: sign-in for its
// applications goes there. A tenant has at most one.
type IdentityProvider struct {
	TenantID     string
	Issuer       string
	ClientID     string
	ClientSecret []byte // secret (the data directory's store wraps it)
	CAPEM        []byte // extra roots to trust for the provider's TLS; nil: the system's
	GroupsClaim  string // "" : no group mapping
	EmailClaim   string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Session kinds.
const (
	// SessionCloud is a browser's sign-in at the cloud's own name: it lets
	// the user reach further applications of the tenant without signing
	// in again.
	SessionCloud = "cloud"
	// SessionApp is a browser's session on one application host (its
	// cookie there).
	SessionApp = "app"
	// SessionAccess is a bearer token for one application (device flow).
	SessionAccess = "access"
	// SessionRefresh gets new access tokens for one application.
	SessionRefresh = "refresh"
)

// Session is a signed-in user's server-side session. Only the SHA-256
// hash (hex) of its secret (cookie value or token) is stored.
type Session struct {
	ID       string
	Hash     string
	TenantID string
	UserID   string
	Kind     string // SessionCloud, SessionApp, SessionAccess, SessionRefresh
	AppID    string // the application of an app, access or refresh session
	// ParentID is the session this one was made from ("" for none): app
	// sessions come from a cloud session, access tokens from a refresh
	// token.
	ParentID  string
	Method    string // how the user signed in: "password", "password+totp", "recovery-code", "oidc", "device"
	CreatedAt time.Time
	ExpiresAt time.Time
	SeenAt    time.Time // last use recorded (callers record it at most once a minute)
}

// Grant kinds.
const (
	// GrantCode is a one-time code that takes a signed-in browser from the
	// cloud's name to an application host.
	GrantCode = "code"
	// GrantFlow is a sign-in at an OpenID provider in progress (its state).
	GrantFlow = "flow"
	// GrantDevice is a device authorization (RFC 8628).
	GrantDevice = "device"
	// GrantTOTP records a TOTP code's time step used by a user, so that
	// the code is refused on every instance sharing the store (its Hash
	// names the user and the step; it expires with the code's window).
	GrantTOTP = "totp"
)

// Grant is a short-lived, single-use secret of a sign-in in progress:
// a one-time code, an OpenID state, a device code. Only the SHA-256 hash
// (hex) of the secret is stored; Data is the caller's (JSON).
type Grant struct {
	Hash      string
	Kind      string // GrantCode, GrantFlow, GrantDevice
	TenantID  string
	AppID     string
	UserID    string // "" until known
	UserCode  string // a device authorization's code the user types; "" otherwise
	Status    string // device: "pending", "approved", "denied"; "" otherwise
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	PolledAt  time.Time // device: the client's last poll
}

// SigningKey is a tenant's key for the identity assertions the cloud signs
// to backends (ES256, P-256). It is published in the tenant's JWKS from
// CreatedAt, signs from SignFrom until SignUntil (zero: until a successor
// is scheduled), and stays published for a while after (the identity
// package decides how long, and deletes it then).
type SigningKey struct {
	TenantID  string
	KID       string // RFC 7638 JWK thumbprint of the public key
	KeyPEM    []byte // PKCS#8 private key; secret
	CreatedAt time.Time
	SignFrom  time.Time
	SignUntil time.Time // zero: no successor yet
}

// Instance is a running cloud instance as the others see it: a row each
// instance writes every few seconds (Heartbeat). Advertise is the
// HOST:PORT at which connectors reach it directly ("" for an instance that
// advertises none: a single cloud).
type Instance struct {
	ID          string
	Advertise   string
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// ACMEObject is one item of the ACME client's storage (certmagic's
// key/value space: certificates, their private keys and metadata, ACME
// accounts and their keys), kept in the store so that every instance
// sharing it shares them. Key is a slash-separated path
// ("certificates/CA/HOST/HOST.crt"). The value of a key ending in ".key"
// is a private key: secret (the data directory's store wraps it).
type ACMEObject struct {
	Key   string
	Value []byte // nil in ListACMEObjects
	// Size is len(Value) as stored (ListACMEObjects fills it in too).
	Size     int64
	Modified time.Time
}

// ACMELock is a named lock of the ACME client: one instance at a time
// orders a certificate, or creates an account. Owner holds it until
// ExpiresAt; the holder extends it while it works, and once it has
// expired another owner may take it over, so an instance that crashed
// holding it blocks the others no longer than that.
type ACMELock struct {
	Name      string
	Owner     string
	ExpiresAt time.Time
}

// Change is one change committed to a store several instances share,
// as ChangeFeed reports it: the table written, and for the sessions
// ended, their ids.
type Change struct {
	Table string
	// SessionIDs are the ids of the sessions deleted (Table "sessions");
	// nil with AllSessions, when they were too many to list.
	SessionIDs  []string
	AllSessions bool
}

// ChangeHandler receives what a ChangeFeed follows. Its functions are
// called from one goroutine, in order, and must not block for long.
type ChangeHandler struct {
	// Change is called for every change committed by any process on the
	// store (this one included).
	Change func(Change)
	// Connected is called each time the feed is (again) following: changes
	// may have been missed before, so the caller reloads what it caches.
	Connected func()
	// Lost is called when the feed's connection failed; the feed
	// reconnects by itself, backing off.
	Lost func(error)
}

// ChangeFeed is implemented by a store several cloud instances share
// (PostgreSQL): FollowChanges reports changes to the tables whose rows
// the cloud caches, until ctx is done. A store only one process uses
// (SQLite) does not implement it.
type ChangeFeed interface {
	FollowChanges(ctx context.Context, h ChangeHandler)
}

// Unwrapper is implemented by a store that wraps another (the data
// directory's key-wrapping store), for callers looking for an optional
// interface such as ChangeFeed.
type Unwrapper interface {
	Unwrap() Store
}

// FeedOf returns st's ChangeFeed, looking through wrappers, or nil.
func FeedOf(st Store) ChangeFeed {
	for st != nil {
		if f, ok := st.(ChangeFeed); ok {
			return f
		}
		u, ok := st.(Unwrapper)
		if !ok {
			return nil
		}
		st = u.Unwrap()
	}
	return nil
}

// Store is the cloud's persistent state. Implementations are safe for
// concurrent use. Methods taking a tenantID only ever see that tenant's rows.
type Store interface {
	// Close releases the store.
	Close() error

	// CreateTenant creates, in one transaction, a tenant, its connector CA,
	// its Default group and its first administrator.
	CreateTenant(ctx context.Context, t Tenant, ca TenantCA, defaultGroup Group, admin User) error
	TenantByID(ctx context.Context, id string) (Tenant, error)
	TenantByDomain(ctx context.Context, domain string) (Tenant, error)
	ListTenants(ctx context.Context) ([]Tenant, error)
	TenantCA(ctx context.Context, tenantID string) (TenantCA, error)
	// SetTenantCAKey replaces the stored key of a tenant's CA (the same key,
	// wrapped or unwrapped by the caller), or returns ErrNotFound.
	SetTenantCAKey(ctx context.Context, tenantID string, keyPEM []byte) error

	CreateUser(ctx context.Context, u User) error
	// UserByName finds a user by its full name across all tenants (sign-in).
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, tenantID, id string) (User, error)
	ListUsers(ctx context.Context, tenantID string) ([]User, error)
	// DeleteUser deletes the user, and with it its API tokens, its
	// sessions, its memberships of user groups and its assignments to
	// applications.
	DeleteUser(ctx context.Context, tenantID, id string) error
	// UpdateUser replaces the Role, Email, DisplayName, Disabled and
	// PasswordHash of the user with u.TenantID and u.ID (ErrNotFound when
	// none).
	UpdateUser(ctx context.Context, u User) error
	// SetUserMFA enrols (secret not nil) or removes (nil: enrolledAt and
	// recovery are ignored and cleared) the user's TOTP second factor.
	SetUserMFA(ctx context.Context, tenantID, userID string, secret []byte, enrolledAt time.Time, recovery []string) error
	// UseRecoveryCode removes one recovery code hash of the user, in one
	// transaction: a hash the user does not have is ErrNotFound (so a code
	// works once however many callers race).
	UseRecoveryCode(ctx context.Context, tenantID, userID, hash string) error
	// UserByExternal finds the tenant's user with this External identity.
	UserByExternal(ctx context.Context, tenantID, external string) (User, error)

	// TenantSettings returns the tenant's settings (the zero settings with
	// TenantID when never set; ErrNotFound for an unknown tenant).
	TenantSettings(ctx context.Context, tenantID string) (TenantSettings, error)
	// SetTenantSettings stores the tenant's settings.
	SetTenantSettings(ctx context.Context, s TenantSettings) error

	// SetIdentityProvider creates or replaces the tenant's provider.
	SetIdentityProvider(ctx context.Context, p IdentityProvider) error
	// IdentityProviderOf returns the tenant's provider, or ErrNotFound.
	IdentityProviderOf(ctx context.Context, tenantID string) (IdentityProvider, error)
	// ListIdentityProviders returns every tenant's provider (for the
	// routing snapshot), by tenant id.
	ListIdentityProviders(ctx context.Context) ([]IdentityProvider, error)
	// DeleteIdentityProvider removes the tenant's provider, or returns
	// ErrNotFound.
	DeleteIdentityProvider(ctx context.Context, tenantID string) error

	// CreateSession stores a session; its user must be of its tenant
	// (else ErrNotFound); a hash already stored is ErrConflict.
	CreateSession(ctx context.Context, s Session) error
	// SessionByHash finds a session by its hash, expired or not.
	SessionByHash(ctx context.Context, hash string) (Session, error)
	// ListSessions returns the tenant's sessions, expired or not, each
	// parent before its children (by CreatedAt then ID; for 'cloud store
	// copy').
	ListSessions(ctx context.Context, tenantID string) ([]Session, error)
	// TouchSession records the session's last use (only ever later).
	TouchSession(ctx context.Context, tenantID, id string, seen time.Time) error
	// DeleteSession ends one session and those made from it (ParentID),
	// returning the ids ended; none is ErrNotFound.
	DeleteSession(ctx context.Context, tenantID, id string) ([]string, error)
	// DeleteUserSessions ends all the user's sessions and returns their
	// ids (none is not an error).
	DeleteUserSessions(ctx context.Context, tenantID, userID string) ([]string, error)
	// DeleteExpiredSessions removes the sessions expired before now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	// CreateGrant stores a grant; a hash, or an unexpired UserCode, already
	// stored is ErrConflict.
	CreateGrant(ctx context.Context, g Grant) error
	// TakeGrant deletes and returns the grant of kind with hash if it has
	// not expired at now, in one transaction: a grant is taken once however
	// many callers race. None (or expired) is ErrNotFound.
	TakeGrant(ctx context.Context, kind, hash string, now time.Time) (Grant, error)
	// GrantByHash returns the grant of kind with hash, expired or not.
	GrantByHash(ctx context.Context, kind, hash string) (Grant, error)
	// GrantByUserCode returns the unexpired device grant with this user
	// code at now, or ErrNotFound.
	GrantByUserCode(ctx context.Context, userCode string, now time.Time) (Grant, error)
	// UpdateGrant replaces UserID, Status, Data and PolledAt of the grant
	// of g.Kind with g.Hash, or returns ErrNotFound.
	UpdateGrant(ctx context.Context, g Grant) error
	// DeleteExpiredGrants removes the grants expired before now.
	DeleteExpiredGrants(ctx context.Context, now time.Time) (int, error)

	// CreateUserGroup inserts a user group; a name another user group of
	// the tenant has, by GroupKey, is ErrConflict.
	CreateUserGroup(ctx context.Context, g UserGroup) error
	// UserGroupByName finds a user group of the tenant by GroupKey, the
	// exact spelling first; Members is filled in.
	UserGroupByName(ctx context.Context, tenantID, name string) (UserGroup, error)
	// ListUserGroups returns the tenant's user groups by name, with Members.
	ListUserGroups(ctx context.Context, tenantID string) ([]UserGroup, error)
	// DeleteUserGroup deletes a user group, its memberships and its
	// assignments.
	DeleteUserGroup(ctx context.Context, tenantID, id string) error
	// AddUserGroupMember makes the user a member of the group: a group or
	// user not of the tenant is ErrNotFound, a member already is ErrConflict.
	AddUserGroupMember(ctx context.Context, tenantID, groupID, userID string, at time.Time) error
	// RemoveUserGroupMember ends a membership; none is ErrNotFound.
	RemoveUserGroupMember(ctx context.Context, tenantID, groupID, userID string) error
	// ListUserGroupMembers returns the group's members by name.
	ListUserGroupMembers(ctx context.Context, tenantID, groupID string) ([]User, error)
	// ListMemberships returns every membership of the tenant's user
	// groups (for the edge's directory snapshot), by group then user id.
	ListMemberships(ctx context.Context, tenantID string) ([]Membership, error)
	// UserGroupsOf returns the user groups the user is a member of, by name.
	UserGroupsOf(ctx context.Context, tenantID, userID string) ([]UserGroup, error)

	// Assign records an assignment: an application, user or user group
	// not of a.TenantID is ErrNotFound, the same assignment again is
	// ErrConflict.
	Assign(ctx context.Context, a Assignment) error
	// Unassign deletes the assignment of the application to exactly the
	// user or user group a names (a user's membership of an assigned group
	// is untouched); none is ErrNotFound.
	Unassign(ctx context.Context, a Assignment) error
	// ListAssignments returns the application's assignments, oldest first.
	ListAssignments(ctx context.Context, tenantID, appID string) ([]Assignment, error)
	// ListTenantAssignments returns all the tenant's assignments (for the
	// edge's directory snapshot), by application then creation.
	ListTenantAssignments(ctx context.Context, tenantID string) ([]Assignment, error)
	// IsAssigned reports whether the user may reach the application:
	// assigned directly, or a member of an assigned user group.
	IsAssigned(ctx context.Context, tenantID, appID, userID string) (bool, error)

	CreateAPIToken(ctx context.Context, t APIToken) error
	APITokenByHash(ctx context.Context, hash string) (APIToken, error)
	// ListAPITokens returns the tenant's API tokens, expired or not, by
	// CreatedAt then ID (for 'cloud store copy').
	ListAPITokens(ctx context.Context, tenantID string) ([]APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error
	// DeleteExpiredAPITokens removes tokens that expired before now.
	DeleteExpiredAPITokens(ctx context.Context, now time.Time) error

	// CreateRegistrationToken inserts a token; its group must be one of its
	// tenant (else ErrNotFound); a hash already stored is ErrConflict.
	CreateRegistrationToken(ctx context.Context, t RegistrationToken) error
	// ListRegistrationTokens returns the tenant's tokens, newest first.
	ListRegistrationTokens(ctx context.Context, tenantID string) ([]RegistrationToken, error)
	// RegistrationTokenByHash finds a token by its hash, whatever its tenant
	// and state (it changes nothing: UseRegistrationToken does).
	RegistrationTokenByHash(ctx context.Context, hash string) (RegistrationToken, error)
	// RevokeRegistrationToken marks the token revoked and returns it; a
	// token already revoked keeps its first revocation.
	RevokeRegistrationToken(ctx context.Context, tenantID, id, by string, at time.Time) (RegistrationToken, error)
	// UseRegistrationToken checks the token with hash at now (see
	// RegistrationToken.Check) and counts one use, in one transaction, so a
	// token is never used more than MaxUses times however many callers race.
	// It returns the token after the use; when the check fails it returns
	// the token as found with ErrTokenRevoked, ErrTokenUsedUp or
	// ErrTokenExpired, and an unknown hash is ErrNotFound. Deleting a group
	// deletes its tokens.
	UseRegistrationToken(ctx context.Context, hash string, now time.Time) (RegistrationToken, error)

	CreateGroup(ctx context.Context, g Group) error
	GroupByID(ctx context.Context, tenantID, id string) (Group, error)
	GroupByName(ctx context.Context, tenantID, name string) (Group, error)
	ListGroups(ctx context.Context, tenantID string) ([]Group, error)
	// RenameGroup renames a group; a name already used in the tenant (by
	// GroupKey) is ErrConflict. CreateGroup and GroupByName also compare by GroupKey.
	RenameGroup(ctx context.Context, tenantID, id, name string) error
	// DeleteGroup deletes a group, and its registration tokens; one still
	// used by a connector or an application is ErrConflict (callers check
	// first to name them).
	DeleteGroup(ctx context.Context, tenantID, id string) error

	CreateConnector(ctx context.Context, c Connector) error
	ConnectorByID(ctx context.Context, tenantID, id string) (Connector, error)
	ListConnectors(ctx context.Context, tenantID string) ([]Connector, error)
	// UpdateConnectorSeen records a heartbeat or a new tunnel connection.
	UpdateConnectorSeen(ctx context.Context, tenantID, id string, seen time.Time, address, hostname, version string) error
	// UpdateConnectorCert records a connector's new certificate (serial,
	// thumbprint, expiry) and the serial still accepted meanwhile ("" for none).
	UpdateConnectorCert(ctx context.Context, tenantID, id, serial, thumbprint string, notAfter time.Time, previousSerial string) error
	// MoveConnector assigns the connector to another group of its tenant.
	MoveConnector(ctx context.Context, tenantID, id, groupID string) error
	// ListInactiveConnectors returns, across tenants, the connectors last
	// seen (or, never seen, registered) before the given time.
	ListInactiveConnectors(ctx context.Context, before time.Time) ([]Connector, error)
	// DeleteConnector removes the connector and, in the same transaction,
	// records its current certificate serial as revoked with the reason.
	DeleteConnector(ctx context.Context, tenantID, id, reason string, at time.Time) error
	// Revocation returns the revocation of a certificate serial, or ErrNotFound.
	Revocation(ctx context.Context, serial string) (Revocation, error)

	CreateApp(ctx context.Context, a Application) error
	AppByName(ctx context.Context, tenantID, name string) (Application, error)
	ListApps(ctx context.Context, tenantID string) ([]Application, error)
	// ListAllApps returns every tenant's applications: only for the edge's
	// routing table, never for an API answer.
	ListAllApps(ctx context.Context) ([]Application, error)
	// UpdateApp replaces the mutable fields (GroupID, ExternalHost,
	// InternalURL, InternalAddresses, Timeout, PreAuth, CertPEM, KeyPEM, Affinity, BackendProxy,
	// DetailedErrors, KeepAuthorization, UpdatedAt) of the
	// application with a.TenantID and a.ID.
	UpdateApp(ctx context.Context, a Application) error
	// DeleteApp deletes the application and its assignments.
	DeleteApp(ctx context.Context, tenantID, name string) error

	// CreateRelease stores a release; one with the same version, OS and
	// architecture is ErrConflict.
	CreateRelease(ctx context.Context, r Release) error
	// ListReleases returns the releases for an OS and architecture ("" for
	// all), newest publication first.
	ListReleases(ctx context.Context, os, arch string) ([]Release, error)
	// ReleaseByDigest returns a release whose binary has this SHA-256 (hex).
	ReleaseByDigest(ctx context.Context, sha256 string) (Release, error)
	// DeleteRelease withdraws a release.
	DeleteRelease(ctx context.Context, version, os, arch string) error

	// TakeUpdateTurn gives the group's update turn to t.ConnectorID unless
	// another connector of the group holds it unexpired at now: then it
	// returns that holder's turn and ErrConflict. A connector taking a turn
	// it already holds extends it.
	TakeUpdateTurn(ctx context.Context, t UpdateTurn, now time.Time) (UpdateTurn, error)
	// ReleaseUpdateTurn ends the connector's turn in its group; a turn it
	// does not hold is ErrNotFound.
	ReleaseUpdateTurn(ctx context.Context, tenantID, groupID, connectorID string) error
	// UpdateTurnOf returns the group's update turn (expired or not), or
	// ErrNotFound when none was taken or it was ended.
	UpdateTurnOf(ctx context.Context, tenantID, groupID string) (UpdateTurn, error)
	// HaltUpdate records a release rolled back in a group; the first halt
	// of a version is kept.
	HaltUpdate(ctx context.Context, h UpdateHalt) error
	// UpdateHaltOf returns the halt of version in the group, or ErrNotFound.
	UpdateHaltOf(ctx context.Context, tenantID, groupID, version string) (UpdateHalt, error)
	// ListUpdateHalts returns the tenant's halts, by group then version
	// (for 'cloud store copy').
	ListUpdateHalts(ctx context.Context, tenantID string) ([]UpdateHalt, error)

	// CreateDomain stores a tenant's claim of a domain (pending, or already
	// verified when d.VerifiedAt is set). The tenant's claim of the same
	// domain, or a verified claim of it by another tenant when d is
	// verified, is ErrConflict.
	CreateDomain(ctx context.Context, d Domain) error
	// DomainOf returns the tenant's claim of domain, or ErrNotFound.
	DomainOf(ctx context.Context, tenantID, domain string) (Domain, error)
	// ListDomains returns the tenant's claims, ordered by domain.
	ListDomains(ctx context.Context, tenantID string) ([]Domain, error)
	// VerifiedDomain returns the verified claim of exactly domain, whatever
	// its tenant, or ErrNotFound.
	VerifiedDomain(ctx context.Context, domain string) (Domain, error)
	// VerifyDomain marks the tenant's claim verified at at by how ("dns" or
	// "operator"); a claim already verified keeps its first verification.
	// No claim is ErrNotFound; another tenant's verified claim of the same
	// domain is ErrConflict.
	VerifyDomain(ctx context.Context, tenantID, domain, how string, at time.Time) (Domain, error)
	// DeleteDomain removes the tenant's claim, or returns ErrNotFound.
	DeleteDomain(ctx context.Context, tenantID, domain string) error

	// TenantSigningKeys returns the tenant's assertion signing keys, by
	// SignFrom (then KID); none is an empty list.
	TenantSigningKeys(ctx context.Context, tenantID string) ([]SigningKey, error)
	// AddTenantSigningKey stores k, in one transaction with what it
	// replaces. With replaces "" it is the tenant's first key: a tenant that
	// has one already is ErrConflict. Otherwise the tenant's key replaces
	// (ErrNotFound when there is none) must have no SignUntil yet
	// (ErrConflict: another caller rotated first) and gets k.SignFrom as
	// its SignUntil. An unknown tenant is ErrNotFound, a KID the tenant
	// already has ErrConflict.
	AddTenantSigningKey(ctx context.Context, k SigningKey, replaces string) error
	// DeleteTenantSigningKey removes the tenant's key, or returns ErrNotFound.
	DeleteTenantSigningKey(ctx context.Context, tenantID, kid string) error

	// PutACMEObject creates or replaces the object at o.Key (its Value
	// and Modified; Size is len(Value)).
	PutACMEObject(ctx context.Context, o ACMEObject) error
	// ACMEObject returns the object at key with its value, or ErrNotFound.
	ACMEObject(ctx context.Context, key string) (ACMEObject, error)
	// ListACMEObjects returns, by key and without their values, the
	// objects at prefix and under it (keys equal to prefix or starting
	// with prefix + "/"; "" : all of them).
	ListACMEObjects(ctx context.Context, prefix string) ([]ACMEObject, error)
	// DeleteACMEObjects deletes the objects ListACMEObjects(prefix) would
	// return and says how many; none is not an error.
	DeleteACMEObjects(ctx context.Context, prefix string) (int, error)
	// TakeACMELock gives the lock l.Name to l.Owner until l.ExpiresAt,
	// unless another owner holds it unexpired at now: then it returns that
	// holder's lock and ErrConflict. An owner taking a lock it holds
	// extends it; an expired lock is taken over. One transaction: racing
	// callers (on any instance) get it one at a time.
	TakeACMELock(ctx context.Context, l ACMELock, now time.Time) (ACMELock, error)
	// ReleaseACMELock ends owner's hold of the lock; a lock owner does not
	// hold (released, never taken, or taken over) is ErrNotFound.
	ReleaseACMELock(ctx context.Context, name, owner string) error

	// Heartbeat creates or replaces the row of instance i.ID (its
	// Advertise, StartedAt and HeartbeatAt).
	Heartbeat(ctx context.Context, i Instance) error
	// ListInstances returns the instances whose last heartbeat is at or
	// after aliveSince (the zero time: all), by ID.
	ListInstances(ctx context.Context, aliveSince time.Time) ([]Instance, error)
	// DeleteInstance removes an instance's row (a clean shutdown), or
	// returns ErrNotFound.
	DeleteInstance(ctx context.Context, id string) error
}
