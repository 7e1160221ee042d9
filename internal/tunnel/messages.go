package tunnel

import "time"

// ALPN is the TLS application protocol a connector offers; the cloud tells
// connector connections apart from browsers by it.
const ALPN = "sallyport-connector/1"

// ControlALPN is the TLS application protocol of a connector's control
// connection: short-lived, authenticated by the same client certificate,
// with the usual roles (the connector is the HTTP/2 client). It carries
// what the connector asks of the cloud: certificate renewal and status.
const ControlALPN = "sallyport-control/1"

// Control API paths served by the cloud on a ControlALPN connection.
const (
	ControlRenew  = "/v1/renew"  // POST RenewRequest → RenewResponse
	ControlStatus = "/v1/status" // GET → Status
)

// RenewRequest asks for a new certificate for a new key.
type RenewRequest struct {
	CSR string `json:"csr"` // PEM
}

// RenewResponse carries the new certificate.
type RenewResponse struct {
	Certificate string    `json:"certificate"` // PEM
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
}

// Status is what the cloud knows of the calling connector.
type Status struct {
	ConnectorID string    `json:"connector_id"`
	TenantID    string    `json:"tenant_id"`
	Tenant      string    `json:"tenant"`
	Group       string    `json:"group"`
	CloudTime   time.Time `json:"cloud_time"`
	CertSerial  string    `json:"cert_serial"` // serial the cloud holds as current
	// Status is the connector's status at the cloud: "active" or "inactive".
	Status string `json:"status"`
	// Apps are the applications of its group, as its configuration has them.
	Apps []AppConfig `json:"apps"`
	// TimeoutNames maps application ids to "default" or "long".
	TimeoutNames map[string]string `json:"timeout_names,omitempty"`
}

// Control paths served by the connector to the cloud (no HeaderApp).
const (
	PathHello  = "/_sallyport/v1/hello"  // GET: Hello
	PathConfig = "/_sallyport/v1/config" // PUT: Config
	PathRefuse = "/_sallyport/v1/refuse" // POST: ErrorBody; the cloud refuses this connector and closes
	// PathInstances: PUT Instances (the cloud's live instances, pushed
	// when a tunnel comes up and whenever the list changes); GET
	// InstancesStatus (the instances the connector holds tunnels to).
	// A connector that predates it answers 404: the cloud then counts it
	// on its own instance only.
	PathInstances = "/_sallyport/v1/instances"
)

// Limits on control messages.
const (
	MaxControlBody = 4 << 20
	// MaxInstances bounds the instances list a connector accepts; each
	// costs it Connections tunnels.
	MaxInstances = 64
)

// Hello is the connector's answer on PathHello: who and what it is.
type Hello struct {
	ConnectorID string `json:"connector_id"`
	TenantID    string `json:"tenant_id"`
	Version     string `json:"version"`
	Hostname    string `json:"hostname"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	// ConfigVersion is the version of the configuration it holds ("" if none).
	ConfigVersion string `json:"config_version"`
	// RelayWindow: the connector honours the window of a relay stream's
	// open message (OpenMessage.Window, docs/protocol.md §15.2).
	RelayWindow bool `json:"relay_window,omitempty"`
	// NetworkApps: the connector keeps network applications (AppConfig
	// Type tcp or udp) in its configuration apart from its web
	// applications. The cloud sends them only to connectors that say so:
	// an older one refuses a configuration with an application that has
	// no internal URL.
	NetworkApps bool `json:"network_apps,omitempty"`
}

// WebOnly is c without its network applications (for a connector whose
// Hello lacks NetworkApps).
func (c Config) WebOnly() Config {
	apps := make([]AppConfig, 0, len(c.Apps))
	for _, a := range c.Apps {
		if !a.IsNetwork() {
			apps = append(apps, a)
		}
	}
	c.Apps = apps
	return c
}

// Config is what the cloud tells a connector on PathConfig: its group and
// the applications it may serve. The connector refuses any request for an
// application not listed here: it is never an open proxy into the site.
type Config struct {
	Version     string      `json:"version"` // opaque; changes whenever the content changes
	TenantID    string      `json:"tenant_id"`
	Tenant      string      `json:"tenant"` // primary domain
	ConnectorID string      `json:"connector_id"`
	Group       string      `json:"group"`
	Apps        []AppConfig `json:"apps"`
}

// Instances is the list of the cloud's live instances that connectors
// reach directly (cloud serve --advertise), sent by the cloud on
// PathInstances. The connector keeps its tunnels to every one of them, at
// its advertise address, verifying the cloud's name (the certificate is
// the cloud's, not the address's). An empty list means one instance, or
// instances without advertise addresses: the connector connects through
// the cloud's name only.
type Instances struct {
	Version string `json:"version"` // opaque; changes whenever the list changes ("" for an empty list)
	// Self is the id of the instance that sends it: the one at the other
	// end of this tunnel.
	Self      string     `json:"self,omitempty"`
	Instances []Instance `json:"instances"`
}

// Instance is one live cloud instance.
type Instance struct {
	ID        string `json:"id"`
	Advertise string `json:"advertise"` // HOST:PORT
}

// InstancesStatus is the connector's answer to GET PathInstances: the
// instances it holds tunnels to now.
type InstancesStatus struct {
	Instances []ConnectedInstance `json:"instances"`
}

// ConnectedInstance is one instance a connector holds tunnels to.
type ConnectedInstance struct {
	ID        string `json:"id"`
	Advertise string `json:"advertise,omitempty"` // "" for tunnels through the cloud's name
	Tunnels   int    `json:"tunnels"`
}

// AppConfig is one application a connector serves.
type AppConfig struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	ExternalHost string        `json:"external_host"`
	InternalURL  string        `json:"internal_url"`
	Timeout      time.Duration `json:"timeout_ns"`
	// BackendProxy, when set, is the forward proxy (http://HOST:PORT) the
	// connector sends this application's backend requests through.
	BackendProxy string `json:"backend_proxy,omitempty"`
	// Type is "" or "http" for a web application, "tcp" or "udp" for a
	// network application (private access), which has no external host
	// and no internal URL and is never served over HTTP.
	Type string `json:"type,omitempty"`
	// Segments are a network application's internal addresses as typed
	// (package segment parses them): the only destinations the connector
	// dials for it.
	Segments []string `json:"segments,omitempty"`
}

// IsNetwork reports whether the application is a network application
// (tcp or udp), which the connector never serves over HTTP.
func (a AppConfig) IsNetwork() bool { return a.Type == "tcp" || a.Type == "udp" }

// ErrorBody is the JSON body of a response the connector makes itself
// (marked with HeaderError).
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Step    string `json:"step,omitempty"`
	} `json:"error"`
}
