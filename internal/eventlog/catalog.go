package eventlog

// Def documents one event id: the docs list Catalog, and code that writes
// an event uses an id from it.
type Def struct {
	ID      int
	Level   Level
	Area    string // what the event is about: "trust", "tunnel", ...
	Summary string // the message, without per-event detail
}

// Catalog lists every documented event id, in id order.
var Catalog = []Def{
	// Connector: trust (1000–1099 registration and trust)
	{1000, LevelError, "trust", "Connector re-registration failed: the connector trust certificate expired"},
	{1001, LevelInformation, "registration", "The connector was registered with the cloud"},
	{1002, LevelError, "registration", "Connector registration failed"},
	{1100, LevelInformation, "trust", "The connector's certificate was renewed"},
	{1101, LevelWarning, "trust", "Certificate renewal failed; the current certificate is kept and renewal is retried"},
	{1102, LevelError, "trust", "The cloud refused this connector's certificate"},
	{1103, LevelError, "trust", "The connector's certificate is not valid yet: the clock is behind"},
	{1104, LevelError, "trust", "TLS inspection detected between the connector and the cloud"},
	// Connector: connectivity
	{1200, LevelInformation, "connectivity", "The connector started"},
	{1201, LevelInformation, "connectivity", "A tunnel connection to the cloud is up"},
	{1202, LevelWarning, "connectivity", "A tunnel connection to the cloud closed; reconnecting"},
	{1203, LevelError, "connectivity", "The connector failed to download its configuration: the cloud cannot be reached"},
	{1204, LevelInformation, "connectivity", "The connector is draining: no new requests, requests in flight finish"},
	{1205, LevelInformation, "connectivity", "The connector stopped"},
	// Connector: configuration
	{1300, LevelInformation, "configuration", "The connector received its configuration"},
	{1301, LevelError, "configuration", "The connector refused a configuration from the cloud"},
	// Connector: backend
	{1400, LevelWarning, "backend", "A request to an internal application failed"},
	// Cloud (2000–2999)
	{2000, LevelInformation, "cloud", "The cloud service started"},
	{2001, LevelInformation, "cloud", "The cloud service stopped"},
	{2100, LevelInformation, "registration", "A connector was registered"},
	{2101, LevelWarning, "registration", "A connector registration was refused"},
	{2102, LevelWarning, "trust", "A connector's connection was refused: its certificate is expired, revoked, replaced or unknown"},
	{2103, LevelInformation, "trust", "A connector was deleted and its certificate revoked"},
	{2104, LevelInformation, "trust", "A connector inactive for too long was removed and its certificate revoked"},
	{2105, LevelInformation, "trust", "A connector's certificate was renewed"},
	{2106, LevelInformation, "configuration", "A connector was moved to another group"},
	{2107, LevelWarning, "trust", "A connector's tunnel was closed: its certificate expired, was revoked or replaced, or the connector no longer exists"},
	{2108, LevelWarning, "tunnel", "A connector's tunnel was refused: the connector already holds the most tunnels allowed"},
	{2200, LevelInformation, "configuration", "An application was published"},
	{2201, LevelInformation, "configuration", "An application was deleted"},
	{2300, LevelInformation, "update", "A connector release was published"},
	{2301, LevelInformation, "update", "A connector got its group's update turn"},
	{2302, LevelInformation, "update", "A connector ended its update turn"},
	{2303, LevelWarning, "update", "A release was rolled back on a connector: its automatic rollout in the group is halted"},
	{2304, LevelWarning, "update", "A connector's report of a rolled-back release was refused: it does not hold the turn, or the version is not published"},
	{2400, LevelInformation, "domains", "A tenant claimed a domain (pending its DNS proof)"},
	{2401, LevelInformation, "domains", "A tenant proved a domain by its DNS TXT record"},
	{2402, LevelInformation, "domains", "The operator vouched for a tenant's domain"},
	{2403, LevelInformation, "domains", "A tenant's domain was deleted"},
	{2404, LevelWarning, "domains", "A domain's proof failed"},
	{2405, LevelWarning, "domains", "A tenant's claim of a domain was refused"},
	{2406, LevelWarning, "domains", "Publishing an application was refused: its external host is not the tenant's"},
	{2410, LevelWarning, "domains", "An application is published at a host its tenant does not own (made by an older version)"},
	{2600, LevelWarning, "sign-in", "Sign-ins from one address failed too often: its attempts back off"},
	{2601, LevelWarning, "sign-in", "Sign-ins as one user name failed too often: attempts from failing addresses back off"},
	{2602, LevelWarning, "sign-in", "Sign-in attempts were refused because the password hashing queue was full"},
	{2700, LevelWarning, "edge", "A request to an application failed"},
	{2800, LevelInformation, "keys", "The store's private keys were wrapped with a new key-encryption key (a data directory older than it)"},
	// Updater (3000–3099)
	{3000, LevelInformation, "update", "The updater started"},
	{3001, LevelInformation, "update", "Update check: no newer release to install"},
	{3002, LevelInformation, "update", "A newer release is available but is installed only on request (not a major release)"},
	{3003, LevelInformation, "update", "An update started: the release is being downloaded"},
	{3004, LevelError, "update", "A release was refused: its manifest's signature does not verify with the pinned release key"},
	{3005, LevelError, "update", "A release was refused: the downloaded binary does not match its signed manifest, or does not run"},
	{3006, LevelInformation, "update", "Waiting for the group's update turn: another connector of the group is updating"},
	{3007, LevelInformation, "update", "The binary was replaced; the connector is restarting"},
	{3008, LevelInformation, "update", "The update completed: the connector is ready with the new version"},
	{3009, LevelError, "update", "The new version did not come up and was rolled back"},
	{3010, LevelError, "update", "Replacing or restoring the binary failed"},
	{3011, LevelWarning, "update", "The update check failed; it is retried at the next check"},
	{3012, LevelWarning, "update", "Another updater is running on this machine"},
	{3013, LevelInformation, "update", "The cloud's release key was pinned (earlier updaters; no longer logged)"},
	{3014, LevelInformation, "update", "The updater stopped"},
	{3015, LevelWarning, "update", "A release is halted in the group (rolled back on another connector): it is not installed automatically"},
	{3016, LevelInformation, "update", "The release key given with --release-key was pinned in the updater's directory"},
	{3017, LevelWarning, "update", "The updater has no pinned release key, so it installs nothing"},
	{3018, LevelWarning, "update", "The release key in trust.json is not the pinned one: the updater keeps the pinned key"},
}

// Lookup returns the documented event with this id.
func Lookup(id int) (Def, bool) {
	for _, d := range Catalog {
		if d.ID == id {
			return d, true
		}
	}
	return Def{}, false
}
