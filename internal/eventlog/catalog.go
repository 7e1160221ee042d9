package eventlog

// ID is a documented event id. Each has a named constant below and an
// entry in Catalog that gives its level: Log.Event writes an id at that
// level, so a call site cannot write an event at another one. The ranges
// are documented in docs/events.md: 1000–1999 the connector, 2000–2999 the
// cloud, 3000–3099 the updater.
type ID int

// The event ids, by area. A constant's name says what happened; its
// number is the contract with users (docs/events.md) and never changes.
const (
	// Connector: registration and trust (1000–1199)
	TrustExpired       ID = 1000 // Connector re-registration failed: the connector trust certificate expired
	Registered         ID = 1001 // The connector was registered with the cloud
	RegistrationFailed ID = 1002 // Connector registration failed
	CertRenewed        ID = 1100 // The connector's certificate was renewed
	CertRenewalFailed  ID = 1101 // Certificate renewal failed; the current certificate is kept and renewal is retried
	CertRefused        ID = 1102 // The cloud refused this connector's certificate
	CertNotYetValid    ID = 1103 // The connector's certificate is not valid yet: the clock is behind
	TLSInspected       ID = 1104 // TLS inspection detected between the connector and the cloud

	// Connector: connectivity (1200–1299)
	ConnectorStarted  ID = 1200 // The connector started
	TunnelUp          ID = 1201 // A tunnel connection to the cloud is up
	TunnelClosed      ID = 1202 // A tunnel connection to the cloud closed; reconnecting
	CloudUnreachable  ID = 1203 // The connector failed to download its configuration: the cloud cannot be reached
	ConnectorDraining ID = 1204 // The connector is draining: no new requests, requests in flight finish
	ConnectorStopped  ID = 1205 // The connector stopped
	// Connector: the cloud's instances (1206–1209, docs/scale-out.md)
	InstanceListed      ID = 1206 // A cloud instance is live: the connector keeps tunnels to it
	InstanceUnlisted    ID = 1207 // A cloud instance is no longer live: its tunnels are closed
	InstanceUnreachable ID = 1208 // The connector cannot reach a live cloud instance at its advertise address
	InstancesFallback   ID = 1209 // No tunnel to any of the cloud's instances is up: the connector connects through the cloud's name too
	// Connector: backoff when the cloud is busy (1210–1214)
	CloudBusyBackoff ID = 1210 // The cloud closed or did not finish the TLS handshake: the connector waits longer between attempts

	// Connector: configuration (1300–1399)
	ConfigReceived ID = 1300 // The connector received its configuration
	ConfigRefused  ID = 1301 // The connector refused a configuration from the cloud

	// Connector: backend (1400–1499)
	BackendRequestFailed ID = 1400 // A request to an internal application failed

	// Connector: private access (1500–1509)
	RawRefused    ID = 1500 // A destination of a network application was refused: outside its internal addresses, or not a network application of the connector's
	RawDialFailed ID = 1501 // The connector could not connect to a network application's destination

	// Cloud: the service (2000–2099)
	CloudStarted ID = 2000 // The cloud service started
	CloudStopped ID = 2001 // The cloud service stopped

	// Cloud: connectors, their trust and tunnels (2100–2199)
	ConnectorRegistered      ID = 2100 // A connector was registered
	RegistrationRefused      ID = 2101 // A connector registration was refused
	ConnectorCertRefused     ID = 2102 // A connector's connection was refused: its certificate is expired, revoked, replaced or unknown
	ConnectorDeleted         ID = 2103 // A connector was deleted and its certificate revoked
	ConnectorRemovedInactive ID = 2104 // A connector inactive for too long was removed and its certificate revoked
	ConnectorCertRenewed     ID = 2105 // A connector's certificate was renewed
	ConnectorMoved           ID = 2106 // A connector was moved to another group
	TunnelClosedUntrusted    ID = 2107 // A connector's tunnel was closed: its certificate expired, was revoked or replaced, or the connector no longer exists
	TunnelRefusedLimit       ID = 2108 // A connector's tunnel was refused: the connector already holds the most tunnels allowed

	// Cloud: applications (2200–2299)
	AppPublished ID = 2200 // An application was published
	AppDeleted   ID = 2201 // An application was deleted

	// Cloud: releases and update turns (2300–2399)
	ReleasePublished      ID = 2300 // A connector release was published
	UpdateTurnGiven       ID = 2301 // A connector got its group's update turn
	UpdateTurnEnded       ID = 2302 // A connector ended its update turn
	ReleaseHalted         ID = 2303 // A release was rolled back on a connector: its automatic rollout in the group is halted
	RollbackReportRefused ID = 2304 // A connector's report of a rolled-back release was refused: it does not hold the turn, or the version is not published

	// Cloud: domains (2400–2499)
	DomainClaimed      ID = 2400 // A tenant claimed a domain (pending its DNS proof)
	DomainProven       ID = 2401 // A tenant proved a domain by its DNS TXT record
	DomainVouched      ID = 2402 // The operator vouched for a tenant's domain
	DomainDeleted      ID = 2403 // A tenant's domain was deleted
	DomainProofFailed  ID = 2404 // A domain's proof failed
	DomainClaimRefused ID = 2405 // A tenant's claim of a domain was refused
	AppHostRefused     ID = 2406 // Publishing an application was refused: its external host is not the tenant's
	AppHostNotOwned    ID = 2410 // An application is published at a host its tenant does not own (made by an older version)

	// Cloud: network applications of private access (2500–2509)
	NetworkAppCreated          ID = 2500 // A network application (tcp or udp) was created
	NetworkAppAddressesChanged ID = 2501 // A network application's internal addresses were changed
	// Cloud: private access, the client's streams (2515–2529)
	NetAccessRefused ID = 2515 // A private access stream was refused (not signed in, not assigned, outside the segments, no connector, refused at the connector, limits)
	NetAccessRetried ID = 2516 // A connector failed to open a private access stream: another connector of the group was tried

	// Cloud: sign-in (2600–2699)
	SignInSourceBackoff ID = 2600 // Sign-ins from one address failed too often: its attempts back off
	SignInUserBackoff   ID = 2601 // Sign-ins as one user name failed too often: attempts from failing addresses back off
	SignInQueueFull     ID = 2602 // Sign-in attempts were refused because the password hashing queue was full

	// Cloud: the edge (2700–2799)
	EdgeRequestFailed ID = 2700 // A request to an application failed

	// Cloud: admission of TLS handshakes (2981–2984, docs/scale-out.md)
	HandshakesRefused ID = 2981 // Connections were closed before their TLS handshake: the cloud ran as many handshakes as it allows

	// Cloud: ACME certificates (2985–2989)
	ACMECertObtained    ID = 2985 // An ACME certificate was obtained (or renewed) for a published host
	ACMECertFailed      ID = 2986 // No ACME certificate could be obtained for a published host
	ACMEStorageImported ID = 2987 // The previous version's ACME directory was moved into the store
	ACMELockLost        ID = 2988 // An ACME lock expired before its holder extended it and was taken over

	// Cloud: the ACME certificate of the cloud's own name (2990–2994)
	ACMENameCertObtained ID = 2990 // An ACME certificate was obtained (or renewed) for the cloud's own name: browsers get it
	ACMENameCertFailed   ID = 2991 // No ACME certificate could be obtained (or renewed) for the cloud's own name

	// Cloud: keys (2800–2899)
	StoreKeysWrapped ID = 2800 // The store's private keys were wrapped with a new key-encryption key (a data directory older than it)

	// Cloud: the directory — user groups and assignments (2900–2919)
	UserGroupCreated       ID = 2900 // A user group was created
	UserGroupDeleted       ID = 2901 // A user group was deleted, with its memberships and assignments
	UserGroupMemberAdded   ID = 2902 // A user was added to a user group
	UserGroupMemberRemoved ID = 2903 // A user was removed from a user group
	AppAssigned            ID = 2904 // A user or user group was assigned to an application
	AppUnassigned          ID = 2905 // A user or user group was unassigned from an application

	// Cloud: sign-in and sessions (2920–2939)
	SignedIn         ID = 2920 // A user signed in
	SignInFailed     ID = 2921 // A sign-in failed
	SignedOut        ID = 2922 // A user signed out: all the user's sessions ended
	MFAEnrolled      ID = 2923 // A user enrolled a second factor (TOTP)
	RecoveryCodeUsed ID = 2924 // A user signed in with a recovery code
	AccessRefused    ID = 2925 // A signed-in user was refused an application: not assigned, disabled or deleted
	SessionsEnded    ID = 2926 // Sessions ended because their user changed (deleted, disabled, second factor reset)

	// Cloud: federation at a tenant's OpenID provider (2927–2930)
	IdentityProviderSet     ID = 2927 // A tenant's OpenID provider was set: sign-in for its applications goes there
	IdentityProviderDeleted ID = 2928 // A tenant's OpenID provider was removed: sign-in for its applications is with local accounts again
	FederatedUserSynced     ID = 2929 // A user of the tenant's OpenID provider was created on first sign-in, or their user groups changed to follow the groups claim
	IdentityProviderFailed  ID = 2930 // A sign-in at a tenant's OpenID provider failed: the provider could not be reached, or its answer was refused

	// Cloud: clients that are not browsers — the device flow (2931–2933)
	DeviceDecided      ID = 2931 // A user approved or denied a device sign-in (sallyport access login)
	AccessTokenIssued  ID = 2932 // An access token was issued to a device: after an approval, or refreshed
	RefreshTokenReused ID = 2933 // A refresh token was used again after it was replaced: the sign-in it belongs to was ended

	// Cloud: administration of sign-in (2934–2937)
	UserDeleted           ID = 2934 // A user was deleted, with its sessions, memberships and assignments
	UserAccessChanged     ID = 2935 // A user was disabled or enabled, or their second factor was reset
	TenantSettingsChanged ID = 2936 // A tenant's sign-in settings changed (MFA required, session lifetime, idle timeout)
	AppPreAuthChanged     ID = 2937 // An application's pre-authentication changed (sallyport or passthrough)

	// Cloud: identity assertion keys (2940–2949)
	SigningKeyCreated        ID = 2940 // A tenant got its first key for signing identity assertions
	SigningKeyRotated        ID = 2941 // A tenant's next signing key was published; it signs after the publish-ahead period
	SigningKeyRetired        ID = 2942 // A tenant's retired signing key was removed from its JWKS
	SigningKeyRotationFailed ID = 2943 // Rotating a tenant's signing keys failed; retried at the next pass

	// Cloud: instances on a shared store, scale-out (2970–2979)
	InstanceJoined    ID = 2970 // Another cloud instance joined: its heartbeat appeared in the store
	InstanceStopped   ID = 2971 // Another cloud instance stopped cleanly: it removed its row from the store
	InstanceLost      ID = 2972 // Another cloud instance missed 3 heartbeats: it is counted gone
	InstanceAnnounced ID = 2973 // This cloud instance wrote its first heartbeat in the store
	StoreUnreachable  ID = 2974 // The store cannot be reached: the instance serves from its cached routing table
	StoreBack         ID = 2975 // The store is reachable again after an outage
	StoreWaiting      ID = 2976 // The store cannot be reached at start: the cloud retries until --store-wait ends
	// Cloud: connectors and instances (2980–2984, docs/scale-out.md)
	InstancesChanged ID = 2980 // The cloud's live instances changed: connectors are told on their tunnels

	// Updater (3000–3099)
	UpdaterStarted            ID = 3000 // The updater started
	UpdateNothingNewer        ID = 3001 // Update check: no newer release to install
	UpdateAvailable           ID = 3002 // A newer release is available but is installed only on request (not a major release)
	UpdateStarted             ID = 3003 // An update started: the release is being downloaded
	ReleaseSignatureRefused   ID = 3004 // A release was refused: its manifest's signature does not verify with the pinned release key
	ReleaseBinaryRefused      ID = 3005 // A release was refused: the downloaded binary does not match its signed manifest, or does not run
	UpdateTurnWaiting         ID = 3006 // Waiting for the group's update turn: another connector of the group is updating
	BinaryReplaced            ID = 3007 // The binary was replaced; the connector is restarting
	UpdateCompleted           ID = 3008 // The update completed: the connector is ready with the new version
	UpdateRolledBack          ID = 3009 // The new version did not come up and was rolled back
	BinarySwapFailed          ID = 3010 // Replacing or restoring the binary failed
	UpdateCheckFailed         ID = 3011 // The update check failed; it is retried at the next check
	UpdaterAlreadyRunning     ID = 3012 // Another updater is running on this machine
	ReleaseKeyPinnedFromTrust ID = 3013 // The cloud's release key was pinned (earlier updaters; no longer logged)
	UpdaterStopped            ID = 3014 // The updater stopped
	ReleaseHaltedInGroup      ID = 3015 // A release is halted in the group (rolled back on another connector): it is not installed automatically
	ReleaseKeyPinned          ID = 3016 // The release key given with --release-key was pinned in the updater's directory
	ReleaseKeyMissing         ID = 3017 // The updater has no pinned release key, so it installs nothing
	ReleaseKeyMismatch        ID = 3018 // The release key in trust.json is not the pinned one: the updater keeps the pinned key
	UpdateInstalledNotRunning ID = 3030 // The binary was replaced while the connector was not running: the new version starts with the connector and was not checked
)

// Def documents one event id: the docs list Catalog, and Log.Event takes
// the level from it.
type Def struct {
	ID      ID
	Level   Level
	Area    string // what the event is about: "trust", "tunnel", ...
	Summary string // the message, without per-event detail
}

// Catalog lists every documented event id, in id order.
var Catalog = []Def{
	// Connector: registration and trust (1000–1199)
	{TrustExpired, LevelError, "trust", "Connector re-registration failed: the connector trust certificate expired"},
	{Registered, LevelInformation, "registration", "The connector was registered with the cloud"},
	{RegistrationFailed, LevelError, "registration", "Connector registration failed"},
	{CertRenewed, LevelInformation, "trust", "The connector's certificate was renewed"},
	{CertRenewalFailed, LevelWarning, "trust", "Certificate renewal failed; the current certificate is kept and renewal is retried"},
	{CertRefused, LevelError, "trust", "The cloud refused this connector's certificate"},
	{CertNotYetValid, LevelError, "trust", "The connector's certificate is not valid yet: the clock is behind"},
	{TLSInspected, LevelError, "trust", "TLS inspection detected between the connector and the cloud"},
	// Connector: connectivity (1200–1299)
	{ConnectorStarted, LevelInformation, "connectivity", "The connector started"},
	{TunnelUp, LevelInformation, "connectivity", "A tunnel connection to the cloud is up"},
	{TunnelClosed, LevelWarning, "connectivity", "A tunnel connection to the cloud closed; reconnecting"},
	{CloudUnreachable, LevelError, "connectivity", "The connector failed to download its configuration: the cloud cannot be reached"},
	{ConnectorDraining, LevelInformation, "connectivity", "The connector is draining: no new requests, requests in flight finish"},
	{ConnectorStopped, LevelInformation, "connectivity", "The connector stopped"},
	{InstanceListed, LevelInformation, "connectivity", "A cloud instance is live: the connector keeps tunnels to it"},
	{InstanceUnlisted, LevelInformation, "connectivity", "A cloud instance is no longer live: its tunnels are closed"},
	{InstanceUnreachable, LevelWarning, "connectivity", "The connector cannot reach a live cloud instance at its advertise address"},
	{InstancesFallback, LevelWarning, "connectivity", "No tunnel to any of the cloud's instances is up: the connector connects through the cloud's name too"},
	{CloudBusyBackoff, LevelWarning, "connectivity", "The cloud closed or did not finish the TLS handshake: the connector waits longer between attempts"},
	// Connector: configuration (1300–1399)
	{ConfigReceived, LevelInformation, "configuration", "The connector received its configuration"},
	{ConfigRefused, LevelError, "configuration", "The connector refused a configuration from the cloud"},
	// Connector: backend (1400–1499)
	{BackendRequestFailed, LevelWarning, "backend", "A request to an internal application failed"},
	// Connector: private access (1500–1509)
	{RawRefused, LevelWarning, "private access", "A destination of a network application was refused: outside its internal addresses, or not a network application of the connector's"},
	{RawDialFailed, LevelWarning, "private access", "The connector could not connect to a network application's destination"},
	// Cloud: the service (2000–2099)
	{CloudStarted, LevelInformation, "cloud", "The cloud service started"},
	{CloudStopped, LevelInformation, "cloud", "The cloud service stopped"},
	// Cloud: connectors, their trust and tunnels (2100–2199)
	{ConnectorRegistered, LevelInformation, "registration", "A connector was registered"},
	{RegistrationRefused, LevelWarning, "registration", "A connector registration was refused"},
	{ConnectorCertRefused, LevelWarning, "trust", "A connector's connection was refused: its certificate is expired, revoked, replaced or unknown"},
	{ConnectorDeleted, LevelInformation, "trust", "A connector was deleted and its certificate revoked"},
	{ConnectorRemovedInactive, LevelInformation, "trust", "A connector inactive for too long was removed and its certificate revoked"},
	{ConnectorCertRenewed, LevelInformation, "trust", "A connector's certificate was renewed"},
	{ConnectorMoved, LevelInformation, "configuration", "A connector was moved to another group"},
	{TunnelClosedUntrusted, LevelWarning, "trust", "A connector's tunnel was closed: its certificate expired, was revoked or replaced, or the connector no longer exists"},
	{TunnelRefusedLimit, LevelWarning, "tunnel", "A connector's tunnel was refused: the connector already holds the most tunnels allowed"},
	// Cloud: applications (2200–2299)
	{AppPublished, LevelInformation, "configuration", "An application was published"},
	{AppDeleted, LevelInformation, "configuration", "An application was deleted"},
	// Cloud: releases and update turns (2300–2399)
	{ReleasePublished, LevelInformation, "update", "A connector release was published"},
	{UpdateTurnGiven, LevelInformation, "update", "A connector got its group's update turn"},
	{UpdateTurnEnded, LevelInformation, "update", "A connector ended its update turn"},
	{ReleaseHalted, LevelWarning, "update", "A release was rolled back on a connector: its automatic rollout in the group is halted"},
	{RollbackReportRefused, LevelWarning, "update", "A connector's report of a rolled-back release was refused: it does not hold the turn, or the version is not published"},
	// Cloud: domains (2400–2499)
	{DomainClaimed, LevelInformation, "domains", "A tenant claimed a domain (pending its DNS proof)"},
	{DomainProven, LevelInformation, "domains", "A tenant proved a domain by its DNS TXT record"},
	{DomainVouched, LevelInformation, "domains", "The operator vouched for a tenant's domain"},
	{DomainDeleted, LevelInformation, "domains", "A tenant's domain was deleted"},
	{DomainProofFailed, LevelWarning, "domains", "A domain's proof failed"},
	{DomainClaimRefused, LevelWarning, "domains", "A tenant's claim of a domain was refused"},
	{AppHostRefused, LevelWarning, "domains", "Publishing an application was refused: its external host is not the tenant's"},
	{AppHostNotOwned, LevelWarning, "domains", "An application is published at a host its tenant does not own (made by an older version)"},
	// Cloud: network applications of private access (2500–2509)
	{NetworkAppCreated, LevelInformation, "configuration", "A network application (tcp or udp) was created"},
	{NetworkAppAddressesChanged, LevelInformation, "configuration", "A network application's internal addresses were changed"},
	// Cloud: private access, the client's streams (2515–2529)
	{NetAccessRefused, LevelWarning, "access", "A private access stream was refused (not signed in, not assigned, outside the segments, no connector, refused at the connector, limits)"},
	{NetAccessRetried, LevelWarning, "access", "A connector failed to open a private access stream: another connector of the group was tried"},
	// Cloud: sign-in (2600–2699)
	{SignInSourceBackoff, LevelWarning, "sign-in", "Sign-ins from one address failed too often: its attempts back off"},
	{SignInUserBackoff, LevelWarning, "sign-in", "Sign-ins as one user name failed too often: attempts from failing addresses back off"},
	{SignInQueueFull, LevelWarning, "sign-in", "Sign-in attempts were refused because the password hashing queue was full"},
	// Cloud: the edge (2700–2799)
	{EdgeRequestFailed, LevelWarning, "edge", "A request to an application failed"},
	// Cloud: keys (2800–2899)
	{StoreKeysWrapped, LevelInformation, "keys", "The store's private keys were wrapped with a new key-encryption key (a data directory older than it)"},
	// Cloud: the directory — user groups and assignments (2900–2919)
	{UserGroupCreated, LevelInformation, "directory", "A user group was created"},
	{UserGroupDeleted, LevelInformation, "directory", "A user group was deleted, with its memberships and assignments"},
	{UserGroupMemberAdded, LevelInformation, "directory", "A user was added to a user group"},
	{UserGroupMemberRemoved, LevelInformation, "directory", "A user was removed from a user group"},
	{AppAssigned, LevelInformation, "directory", "A user or user group was assigned to an application"},
	{AppUnassigned, LevelInformation, "directory", "A user or user group was unassigned from an application"},
	{SignedIn, LevelInformation, "signin", "A user signed in"},
	{SignInFailed, LevelWarning, "signin", "A sign-in failed"},
	{SignedOut, LevelInformation, "signin", "A user signed out: all the user's sessions ended"},
	{MFAEnrolled, LevelInformation, "signin", "A user enrolled a second factor (TOTP)"},
	{RecoveryCodeUsed, LevelWarning, "signin", "A user signed in with a recovery code"},
	{AccessRefused, LevelWarning, "signin", "A signed-in user was refused an application: not assigned, disabled or deleted"},
	{SessionsEnded, LevelInformation, "signin", "Sessions ended because their user changed (deleted, disabled, second factor reset)"},
	// Cloud: federation at a tenant's OpenID provider (2927–2930)
	{IdentityProviderSet, LevelInformation, "federation", "A tenant's OpenID provider was set: sign-in for its applications goes there"},
	{IdentityProviderDeleted, LevelInformation, "federation", "A tenant's OpenID provider was removed: sign-in for its applications is with local accounts again"},
	{FederatedUserSynced, LevelInformation, "federation", "A user of the tenant's OpenID provider was created on first sign-in, or their user groups changed to follow the groups claim"},
	{IdentityProviderFailed, LevelWarning, "federation", "A sign-in at a tenant's OpenID provider failed: the provider could not be reached, or its answer was refused"},
	{DeviceDecided, LevelInformation, "signin", "A user approved or denied a device sign-in (sallyport access login)"},
	{AccessTokenIssued, LevelInformation, "signin", "An access token was issued to a device: after an approval, or refreshed"},
	{RefreshTokenReused, LevelWarning, "signin", "A refresh token was used again after it was replaced: the sign-in it belongs to was ended"},
	{UserDeleted, LevelInformation, "directory", "A user was deleted, with its sessions, memberships and assignments"},
	{UserAccessChanged, LevelInformation, "directory", "A user was disabled or enabled, or their second factor was reset"},
	{TenantSettingsChanged, LevelInformation, "directory", "A tenant's sign-in settings changed (MFA required, session lifetime, idle timeout)"},
	{AppPreAuthChanged, LevelInformation, "directory", "An application's pre-authentication changed (sallyport or passthrough)"},
	// Cloud: identity assertion keys (2940–2949)
	{SigningKeyCreated, LevelInformation, "identity", "A tenant got its first key for signing identity assertions"},
	{SigningKeyRotated, LevelInformation, "identity", "A tenant's next signing key was published; it signs after the publish-ahead period"},
	{SigningKeyRetired, LevelInformation, "identity", "A tenant's retired signing key was removed from its JWKS"},
	{SigningKeyRotationFailed, LevelWarning, "identity", "Rotating a tenant's signing keys failed; retried at the next pass"},
	// Cloud: instances on a shared store, scale-out (2970–2979)
	{InstanceJoined, LevelInformation, "instances", "Another cloud instance joined: its heartbeat appeared in the store"},
	{InstanceStopped, LevelInformation, "instances", "Another cloud instance stopped cleanly: it removed its row from the store"},
	{InstanceLost, LevelWarning, "instances", "Another cloud instance missed 3 heartbeats: it is counted gone"},
	{InstanceAnnounced, LevelInformation, "instances", "This cloud instance wrote its first heartbeat in the store"},
	{StoreUnreachable, LevelError, "store", "The store cannot be reached: the instance serves from its cached routing table"},
	{StoreBack, LevelInformation, "store", "The store is reachable again after an outage"},
	{StoreWaiting, LevelWarning, "store", "The store cannot be reached at start: the cloud retries until --store-wait ends"},
	{InstancesChanged, LevelInformation, "cloud", "The cloud's live instances changed: connectors are told on their tunnels"},
	// Cloud: admission of TLS handshakes (2981–2984)
	{HandshakesRefused, LevelWarning, "cloud", "Connections were closed before their TLS handshake: the cloud ran as many handshakes as it allows"},
	// Cloud: ACME certificates (2985–2989)
	{ACMECertObtained, LevelInformation, "certificates", "An ACME certificate was obtained (or renewed) for a published host"},
	{ACMECertFailed, LevelWarning, "certificates", "No ACME certificate could be obtained for a published host"},
	{ACMEStorageImported, LevelInformation, "certificates", "The previous version's ACME directory was moved into the store"},
	{ACMELockLost, LevelWarning, "certificates", "An ACME lock expired before its holder extended it and was taken over"},
	// Cloud: the ACME certificate of the cloud's own name (2990–2994)
	{ACMENameCertObtained, LevelInformation, "certificates", "An ACME certificate was obtained (or renewed) for the cloud's own name: browsers get it"},
	{ACMENameCertFailed, LevelWarning, "certificates", "No ACME certificate could be obtained (or renewed) for the cloud's own name"},
	// Updater (3000–3099)
	{UpdaterStarted, LevelInformation, "update", "The updater started"},
	{UpdateNothingNewer, LevelInformation, "update", "Update check: no newer release to install"},
	{UpdateAvailable, LevelInformation, "update", "A newer release is available but is installed only on request (not a major release)"},
	{UpdateStarted, LevelInformation, "update", "An update started: the release is being downloaded"},
	{ReleaseSignatureRefused, LevelError, "update", "A release was refused: its manifest's signature does not verify with the pinned release key"},
	{ReleaseBinaryRefused, LevelError, "update", "A release was refused: the downloaded binary does not match its signed manifest, or does not run"},
	{UpdateTurnWaiting, LevelInformation, "update", "Waiting for the group's update turn: another connector of the group is updating"},
	{BinaryReplaced, LevelInformation, "update", "The binary was replaced; the connector is restarting"},
	{UpdateCompleted, LevelInformation, "update", "The update completed: the connector is ready with the new version"},
	{UpdateRolledBack, LevelError, "update", "The new version did not come up and was rolled back"},
	{BinarySwapFailed, LevelError, "update", "Replacing or restoring the binary failed"},
	{UpdateCheckFailed, LevelWarning, "update", "The update check failed; it is retried at the next check"},
	{UpdaterAlreadyRunning, LevelWarning, "update", "Another updater is running on this machine"},
	{ReleaseKeyPinnedFromTrust, LevelInformation, "update", "The cloud's release key was pinned (earlier updaters; no longer logged)"},
	{UpdaterStopped, LevelInformation, "update", "The updater stopped"},
	{ReleaseHaltedInGroup, LevelWarning, "update", "A release is halted in the group (rolled back on another connector): it is not installed automatically"},
	{ReleaseKeyPinned, LevelInformation, "update", "The release key given with --release-key was pinned in the updater's directory"},
	{ReleaseKeyMissing, LevelWarning, "update", "The updater has no pinned release key, so it installs nothing"},
	{ReleaseKeyMismatch, LevelWarning, "update", "The release key in trust.json is not the pinned one: the updater keeps the pinned key"},
	{UpdateInstalledNotRunning, LevelWarning, "update", "The binary was replaced while the connector was not running: the new version starts with the connector and was not checked"},
}

// byID indexes Catalog for Lookup, which every write calls.
var byID = func() map[ID]Def {
	m := make(map[ID]Def, len(Catalog))
	for _, d := range Catalog {
		m[d.ID] = d
	}
	return m
}()

// Lookup returns the documented event with this id.
func Lookup(id ID) (Def, bool) {
	d, ok := byID[id]
	return d, ok
}
