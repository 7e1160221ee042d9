// Package api holds the JSON shapes of the cloud's admin API and
// registration endpoint, shared by the cloud (server side) and by the CLI
// and connector (client side). It has no logic; docs/api.md documents it.
package api

import "time"

// Prefix is the path prefix of every admin API route.
const Prefix = "/api/v1"

// Limits on request bodies.
const (
	MaxBody = 1 << 20
)

// ErrorBody is every error answer: {"error":{"code":"...","message":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the content of an error answer. Message is one sentence
// with what failed, why and what to do; Step repeats the last part alone.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Step    string `json:"step,omitempty"`
}

// LoginRequest is POST /api/v1/login.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// LoginResponse carries a bearer token for later calls.
type LoginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      string    `json:"user"`
	Tenant    string    `json:"tenant"`
	Role      string    `json:"role"`
}

// Me is GET /api/v1/me.
type Me struct {
	User     string `json:"user"`
	Tenant   string `json:"tenant"`
	TenantID string `json:"tenant_id"`
	Role     string `json:"role"`
	// DefaultHostSuffix is how the tenant's default external host names
	// end: an application NAME is published at NAME + this suffix
	// ("-LABEL.CLOUDNAME") unless it is given another host.
	DefaultHostSuffix string `json:"default_host_suffix"`
}

// RegisterRequest is POST /api/v1/connectors/register: a connector asks
// for a certificate. Either User and Password, or Token, authenticate it.
// The credentials are checked and never stored.
type RegisterRequest struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
	Group    string `json:"group,omitempty"` // default "Default"
	// Tenant, when set, is the tenant (domain) the administrator means to
	// register into; it must be their home tenant.
	Tenant   string `json:"tenant,omitempty"`
	CSR      string `json:"csr"` // PEM
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	// PreviousConnectorID, when set and known in the same tenant, keeps the
	// connector's identity (id, group, history) on re-registration.
	PreviousConnectorID string `json:"previous_connector_id,omitempty"`
}

// RegisterResponse carries the signed certificate.
type RegisterResponse struct {
	ConnectorID string    `json:"connector_id"`
	TenantID    string    `json:"tenant_id"`
	Tenant      string    `json:"tenant"`
	Group       string    `json:"group"`
	Certificate string    `json:"certificate"` // PEM
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Reused      bool      `json:"reused"` // the previous identity was kept
	// ReleaseKey is the cloud's release public key ("ed25519:BASE64"),
	// which the connector pins to check updates.
	ReleaseKey string `json:"release_key"`
}

// User is a user as the API shows it.
type User struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Role        string    `json:"role"`
	Tenant      string    `json:"tenant"`
	Email       string    `json:"email"`        // "" when unknown
	DisplayName string    `json:"display_name"` // "" when unknown
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
	// MFAEnrolled: the user has a second factor (TOTP).
	MFAEnrolled bool `json:"mfa_enrolled"`
	// External is the user's identity at the tenant's OpenID provider
	// ("ISSUER#SUBJECT"); "" for a local account.
	External string `json:"external"`
}

// UserDetail is GET /api/v1/users/{name}, and the answer to the user
// actions (disable, enable, reset-mfa).
type UserDetail struct {
	User
	MFAEnrolledAt time.Time `json:"mfa_enrolled_at,omitzero"`
	UserGroups    []string  `json:"user_groups"` // names, sorted
	// SessionsEnded, in the answer to an action, is how many of the
	// user's sessions it ended.
	SessionsEnded int `json:"sessions_ended"`
	// Note, in the answer to an action, says what the user sees next.
	Note string `json:"note,omitempty"`
}

// CreateUserRequest is POST /api/v1/users.
type CreateUserRequest struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	Password    string `json:"password"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

// Session settings of a tenant, shared by the cloud (which enforces them)
// and the CLI (which explains them).
const (
	// DefaultSessionLifetime is how long a sign-in lasts at most when the
	// tenant did not set it; MinSessionLifetime and MaxSessionLifetime
	// bound the setting.
	DefaultSessionLifetime = 12 * time.Hour
	MinSessionLifetime     = 5 * time.Minute
	MaxSessionLifetime     = 30 * 24 * time.Hour
	// DefaultSessionIdle ends a session unused for this long when the
	// tenant did not set it; MinSessionIdle bounds the setting, which is
	// at most the session lifetime.
	DefaultSessionIdle = time.Hour
	MinSessionIdle     = time.Minute
)

// TenantSettings is GET/PATCH /api/v1/tenant: the caller's tenant's
// sign-in settings, with the defaults filled in.
type TenantSettings struct {
	Tenant     string `json:"tenant"`
	RequireMFA bool   `json:"require_mfa"`
	// SessionLifetime and SessionIdle are Go durations ("12h0m0s");
	// SessionLifetimeDefault and SessionIdleDefault say they are the
	// defaults (the tenant did not set them).
	SessionLifetime        string    `json:"session_lifetime"`
	SessionLifetimeSeconds int64     `json:"session_lifetime_seconds"`
	SessionLifetimeDefault bool      `json:"session_lifetime_default"`
	SessionIdle            string    `json:"session_idle"`
	SessionIdleSeconds     int64     `json:"session_idle_seconds"`
	SessionIdleDefault     bool      `json:"session_idle_default"`
	UpdatedAt              time.Time `json:"updated_at,omitzero"`
}

// UpdateTenantSettingsRequest is PATCH /api/v1/tenant; absent fields
// stay. The durations are Go durations ("8h", "30m"); "default" goes back
// to the default.
type UpdateTenantSettingsRequest struct {
	RequireMFA      *bool   `json:"require_mfa,omitempty"`
	SessionLifetime *string `json:"session_lifetime,omitempty"`
	SessionIdle     *string `json:"session_idle,omitempty"`
}

// Group is a connector group as the API shows it.
type Group struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	Connectors       int       `json:"connectors"`
	ActiveConnectors int       `json:"active_connectors"`
	Apps             int       `json:"apps"`
	CreatedAt        time.Time `json:"created_at"`
}

// CreateGroupRequest is POST /api/v1/groups.
type CreateGroupRequest struct {
	Name string `json:"name"`
}

// UpdateGroupRequest is PATCH /api/v1/groups/{name}: a new name.
type UpdateGroupRequest struct {
	Name string `json:"name"`
}

// UserGroup is a user group as the API shows it: GET/POST
// /api/v1/user-groups. Members is set only by GET /user-groups/{name}.
type UserGroup struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	MemberCount int       `json:"member_count"`
	Members     []string  `json:"members,omitzero"` // user names, sorted; nil (absent) in lists, [] when none
	CreatedAt   time.Time `json:"created_at"`
}

// CreateUserGroupRequest is POST /api/v1/user-groups.
type CreateUserGroupRequest struct {
	Name string `json:"name"`
}

// AddMemberRequest is POST /api/v1/user-groups/{name}/members.
type AddMemberRequest struct {
	User string `json:"user"`
}

// Assignment is one user or user group assigned to an application.
type Assignment struct {
	Kind      string    `json:"kind"` // "user" or "user-group"
	Name      string    `json:"name"` // the user's or user group's name
	CreatedAt time.Time `json:"created_at"`
	// Note, in the answer to POST /apps/{name}/assignments, says whether
	// the assignment is enforced yet.
	Note string `json:"note,omitempty"`
}

// AssignRequest is POST /api/v1/apps/{name}/assignments: exactly one of
// User and UserGroup.
type AssignRequest struct {
	User      string `json:"user,omitempty"`
	UserGroup string `json:"user_group,omitempty"`
}

// AppDetail is GET /api/v1/apps/{name}: the application with its
// assignments, and AssignmentsNote saying whether they are enforced yet.
type AppDetail struct {
	App
	Assignments     []Assignment `json:"assignments"`
	AssignmentsNote string       `json:"assignments_note"`
	// Certificate is the certificate the edge presents for the
	// application's external host now (docs/certificates.md).
	Certificate AppCertificate `json:"certificate"`
}

// Where an application's certificate comes from (AppCertificate.Source),
// in the order the edge prefers them.
const (
	CertSourceApp     = "app"      // its own, given with --cert-file
	CertSourceACME    = "acme"     // obtained by ACME (cloud serve --acme-email)
	CertSourceEdge    = "edge"     // cloud serve --edge-cert, which covers the host
	CertSourceCloudCA = "cloud-ca" // the cloud's server certificate (NAME, *.NAME), issued by the cloud CA
)

// AppCertificate is the certificate an application's host gets.
type AppCertificate struct {
	Source   string    `json:"source"` // one of the CertSource values
	Names    []string  `json:"names"`  // the certificate's DNS names
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"` // whole days to NotAfter, negative once expired
	// ACME is the state of the host's ACME certificate when ACME applies
	// to it (--acme-email, no certificate of its own), whichever
	// certificate serves now.
	ACME *ACMEStatus `json:"acme,omitempty"`
}

// ACME states (ACMEStatus.State).
const (
	ACMEValid   = "valid"   // a certificate is held and serves
	ACMEPending = "pending" // none yet: ordered now or at the next handshake for the host
	ACMEFailed  = "failed"  // the last order failed: see Message
)

// ACMEStatus is what the cloud instance answering knows of a host's ACME
// certificate. A failure of a renewal keeps State "valid" and sets the
// failure's fields.
type ACMEStatus struct {
	State    string    `json:"state"`
	Cause    string    `json:"cause,omitempty"`   // dns, unreachable, rate_limit, caa, account, rejected, ca, other
	Error    string    `json:"error,omitempty"`   // the CA's message
	Message  string    `json:"message,omitempty"` // one sentence: what failed, why, what to do
	Step     string    `json:"step,omitempty"`    // the recommended step alone
	FailedAt time.Time `json:"failed_at,omitzero"`
}

// MoveConnectorRequest is POST /api/v1/connectors/{id}/move.
type MoveConnectorRequest struct {
	Group string `json:"group"`
}

// App is an application as the API shows it (never with its key).
type App struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Group string `json:"group"`
	// Type is "http" (a web application) or "tcp"/"udp" (a network
	// application of private access, reached through its internal
	// addresses, with no external host and no internal URL).
	Type         string `json:"type"`
	ExternalHost string `json:"external_host"`
	ExternalURL  string `json:"external_url"`
	InternalURL  string `json:"internal_url"`
	// InternalAddresses are a network application's segments, as typed
	// (db.corp:5432, 10.1.0.0/24:22, *.corp.contoso.com:443).
	InternalAddresses []string `json:"internal_addresses,omitempty"`
	Timeout           string   `json:"timeout"`
	PreAuth           string   `json:"preauth"`
	Affinity          bool     `json:"session_affinity"`
	BackendProxy      string   `json:"backend_proxy,omitempty"`
	// Description is the short text shown under the app's tile in My Apps.
	Description string `json:"description,omitempty"`
	// DetailedErrors: the app's error pages show the internal detail
	// (internal URL, connector) to anyone, for its developers.
	DetailedErrors bool `json:"detailed_errors"`
	// KeepAuthorization: the backend gets the client's access token.
	KeepAuthorization bool      `json:"keep_authorization"`
	CustomCert        bool      `json:"custom_certificate"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	// Note, in answers to create and update, says what the administrator
	// still has to do (e.g. give a certificate for a custom domain).
	Note string `json:"note,omitempty"`
	// PublicNote, in the answer to a create, or to an update that made
	// the application passthrough, says that anyone reaches it.
	PublicNote string `json:"public_note,omitempty"`
}

// Domain is a domain the tenant claims for publishing applications under
// it: GET/POST /api/v1/domains.
type Domain struct {
	Domain     string    `json:"domain"`
	Status     string    `json:"status"`                // "pending" or "verified"
	VerifiedBy string    `json:"verified_by,omitempty"` // "dns" or "operator"
	TXTName    string    `json:"txt_name"`              // _sallyport.DOMAIN
	TXTValue   string    `json:"txt_value"`             // sallyport-verify=TOKEN
	CreatedAt  time.Time `json:"created_at"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
}

// CreateDomainRequest is POST /api/v1/domains.
type CreateDomainRequest struct {
	Domain string `json:"domain"`
}

// CreateAppRequest is POST /api/v1/apps.
type CreateAppRequest struct {
	Name        string `json:"name"`
	Type        string `json:"type,omitempty"` // "http" (the default), "tcp" or "udp"
	InternalURL string `json:"internal_url"`
	// InternalAddresses: a tcp or udp application's segments (at least
	// one, at most 64); none for an http application.
	InternalAddresses []string `json:"internal_addresses,omitempty"`
	Group             string   `json:"group,omitempty"`         // default "Default"
	ExternalHost      string   `json:"external_host,omitempty"` // default APP-TENANTLABEL.CLOUDNAME
	Timeout           string   `json:"timeout,omitempty"`       // "default" (85 s) or "long" (180 s)
	PreAuth           string   `json:"preauth,omitempty"`       // "sallyport" (the default) or "passthrough"
	Affinity          bool     `json:"session_affinity,omitempty"`
	BackendProxy      string   `json:"backend_proxy,omitempty"`      // forward proxy between connector and backend, http://HOST:PORT
	DetailedErrors    bool     `json:"detailed_errors,omitempty"`    // error pages show the internal detail to anyone
	KeepAuthorization bool     `json:"keep_authorization,omitempty"` // the backend gets the client's access token
	Description       string   `json:"description,omitempty"`        // shown under the app's tile in My Apps (≤ 200 printable characters)
	CertPEM           string   `json:"cert_pem,omitempty"`           // optional edge certificate chain
	KeyPEM            string   `json:"key_pem,omitempty"`            // and its key
}

// UpdateAppRequest is PATCH /api/v1/apps/{name}; absent fields stay.
type UpdateAppRequest struct {
	InternalURL *string `json:"internal_url,omitempty"`
	// InternalAddresses replaces a tcp or udp application's segments.
	InternalAddresses *[]string `json:"internal_addresses,omitempty"`
	Group             *string   `json:"group,omitempty"`
	Timeout           *string   `json:"timeout,omitempty"`
	Affinity          *bool     `json:"session_affinity,omitempty"`
	BackendProxy      *string   `json:"backend_proxy,omitempty"` // "" removes it
	DetailedErrors    *bool     `json:"detailed_errors,omitempty"`
	KeepAuthorization *bool     `json:"keep_authorization,omitempty"`
	PreAuth           *string   `json:"preauth,omitempty"`     // "sallyport" or "passthrough"
	Description       *string   `json:"description,omitempty"` // "" removes it
}

// AppDiagnosis is GET /api/v1/apps/{name}/diagnose: what the cloud knows
// about why an application works or not.
type AppDiagnosis struct {
	App          App         `json:"app"`
	Connectors   []Connector `json:"connectors"` // of the application's group
	RecentErrors []EdgeError `json:"recent_errors"`
	// Probes are the test requests the cloud sent to the backend through
	// each connected connector of the group (at most 4): GET of the
	// internal URL's root, marked "User-Agent: Sallyport-Test".
	Probes []BackendProbe `json:"probes"`
	// NetworkProbes are, for a tcp or udp application, the probes of each
	// internal address that names one host or one address (at most 16)
	// through each connected connector of the group (at most 4): a raw
	// stream the connector opens (tcp: a TCP connect, then close; udp: the
	// name resolved and a socket opened, and for port 53 a DNS query
	// answered).
	NetworkProbes []NetworkProbe `json:"network_probes,omitempty"`
	// NotProbed are the internal addresses not probed, each with why
	// ("10.1.0.0/24:22: a range").
	NotProbed []string `json:"not_probed,omitempty"`
	// Findings are sentences: what looks wrong and what to do, most
	// important first; empty when all looks well.
	Findings []string `json:"findings"`
}

// BackendProbe is one test request of a diagnosis: the backend answered
// (OK, with its Status) or the connector could not reach it (Code and
// Message, the connector's own sentence).
type BackendProbe struct {
	Connector string `json:"connector"`
	OK        bool   `json:"ok"`
	Status    int    `json:"status,omitempty"`
	Code      string `json:"code,omitempty"`
	Message   string `json:"message,omitempty"`
	Millis    int64  `json:"ms"`
	RequestID string `json:"request_id"`
}

// NetworkProbe is one probe of a network application's internal address
// through one connector: OK, or the Code (not_covered, refused,
// unreachable, unsupported, busy, connector_busy, tunnel_failed, timeout,
// no_dns_answer) and the sentence of what failed.
type NetworkProbe struct {
	Connector   string `json:"connector"`
	Network     string `json:"network"`     // tcp or udp
	Destination string `json:"destination"` // HOST:PORT, the first port of a range
	OK          bool   `json:"ok"`
	Code        string `json:"code,omitempty"`
	Message     string `json:"message"`
	Millis      int64  `json:"ms"`
}

// EdgeError is one failed request, with the detailed sentence (what the
// public error page showed is in its request's RequestStory).
type EdgeError struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	Status    int       `json:"status"`
	Code      string    `json:"code"`
	Message   string    `json:"message"`
	Connector string    `json:"connector,omitempty"` // the connector that answered, if one did
}

// RequestStory is GET /api/v1/requests/{id}: the whole story of one
// request the edge answered with an error page, from both ends. Only the
// request's own tenant sees it.
type RequestStory struct {
	RequestID    string    `json:"request_id"`
	Time         time.Time `json:"time"`
	App          string    `json:"app"`
	Group        string    `json:"group"`
	ExternalHost string    `json:"external_host"`
	InternalURL  string    `json:"internal_url"`
	Method       string    `json:"method"`
	Host         string    `json:"host"` // as the client sent it
	Path         string    `json:"path"`
	Client       string    `json:"client"` // the client's IP address
	// Edge says in a sentence what the edge did with the request.
	Edge string `json:"edge"`
	// Connectors are those the request was offered to, in order.
	Connectors []RequestConnector `json:"connectors"`
	Status     int                `json:"status"`
	Code       string             `json:"code"`
	// Source is who described the failure: "connector" (its own account,
	// from the connector's machine) or "edge".
	Source  string `json:"source"`
	Message string `json:"message"` // the detailed sentence
	Step    string `json:"step,omitempty"`
	// PublicMessage is what the error page told the client.
	PublicMessage string `json:"public_message"`
	DetailedPage  bool   `json:"detailed_page"` // the page showed Message (--detailed-errors)
}

// RequestConnector is a connector a request was offered to.
type RequestConnector struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname,omitempty"` // "" when the connector no longer exists
	Answered bool   `json:"answered"`
}

// Connector is a connector as the API shows it.
type Connector struct {
	ID       string `json:"id"`
	Group    string `json:"group"`
	Status   string `json:"status"` // "active" or "inactive"
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	Address  string `json:"address"`
	// Instances is the number of cloud instances it holds tunnels to, as
	// the connector says (1 for a single instance, or a connector too old
	// to say); 0 when not connected to the instance that answers.
	Instances int `json:"instances"`
	// ConnectedInstances are those instances, when the cloud runs several
	// (docs/scale-out.md); absent when the connector does not say.
	ConnectedInstances []ConnectorInstance `json:"connected_instances,omitempty"`
	Tunnels            int                 `json:"tunnels"` // to the instance that answers
	// TunnelProtocol is the tunnel protocol version its connections use
	// (the lowest, if they differ); 0 when not connected.
	TunnelProtocol int       `json:"tunnel_protocol,omitempty"`
	InFlight       int64     `json:"in_flight"`
	CertExpiresAt  time.Time `json:"cert_expires_at"`
	LastSeenAt     time.Time `json:"last_seen_at"`
	CreatedAt      time.Time `json:"created_at"`
}

// ConnectorInstance is a cloud instance a connector holds tunnels to.
type ConnectorInstance struct {
	ID        string `json:"id"`                  // "" for a single instance that has no id to give
	Advertise string `json:"advertise,omitempty"` // where the connector reaches it
	Tunnels   int    `json:"tunnels"`
}

// Registration token limits, shared by the cloud (which enforces them) and
// the CLI (which explains them).
const (
	// RegistrationTokenPrefix starts every registration token ("spr_" and
	// 43 base64url characters); admin API tokens start with "spt_".
	RegistrationTokenPrefix = "spr_"
	// DefaultTokenLifetimeSeconds is a registration token's lifetime when
	// the request gives none: 24 hours.
	DefaultTokenLifetimeSeconds = 24 * 60 * 60
	// MinTokenLifetimeSeconds and MaxTokenLifetimeSeconds bound it: 1
	// minute to 30 days.
	MinTokenLifetimeSeconds = 60
	MaxTokenLifetimeSeconds = 30 * 24 * 60 * 60
	// DefaultTokenMaxUses is how many registrations a token allows when
	// the request does not say: one (a one-time token).
	DefaultTokenMaxUses = 1
	// MaxTokenMaxUses bounds max_uses; 0 means unlimited until expiry.
	MaxTokenMaxUses = 10000
)

// Registration token states, as RegistrationToken.State gives them.
const (
	TokenActive  = "active"
	TokenExpired = "expired"
	TokenUsedUp  = "used_up"
	TokenRevoked = "revoked"
)

// CreateRegistrationTokenRequest is POST /api/v1/tokens. Absent fields take
// their defaults: group "Default", 24 hours, one use.
type CreateRegistrationTokenRequest struct {
	Group            string `json:"group,omitempty"`
	ExpiresInSeconds *int64 `json:"expires_in_seconds,omitempty"` // 60 to 2592000 (30 days)
	MaxUses          *int   `json:"max_uses,omitempty"`           // 1 to 10000, or 0 for unlimited
}

// RegistrationToken is a registration token as the API shows it: never
// with the token itself, which only CreateRegistrationTokenResponse carries.
type RegistrationToken struct {
	ID        string    `json:"id"`
	Group     string    `json:"group"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	MaxUses   int       `json:"max_uses"` // 0: unlimited until expires_at
	Uses      int       `json:"uses"`
	State     string    `json:"state"` // active, expired, used_up or revoked
	RevokedAt time.Time `json:"revoked_at"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// CreateRegistrationTokenResponse is the answer to POST /api/v1/tokens: the
// only time the token is ever shown.
type CreateRegistrationTokenResponse struct {
	RegistrationToken
	Token string `json:"token"`
}
