package api

import "time"

// Overview is GET /api/v1/overview: the admin center's first page, for
// the caller's tenant — what needs attention, the connectors by group
// and the applications' health, with the last hour's figures of the
// cloud instance that answers (docs/admin-center.md#overview).
type Overview struct {
	Time time.Time `json:"time"` // when the cloud made it
	// Attention lists what an administrator should look at, most urgent
	// first.
	Attention []Attention     `json:"attention"`
	Groups    []OverviewGroup `json:"groups"` // by name
	Apps      []OverviewApp   `json:"apps"`   // by name
}

// Attention kinds.
const (
	AttentionCertExpiring = "cert_expiring"  // a connector's or an application's certificate expires within 14 days
	AttentionInactive     = "inactive"       // a connector is not connected
	AttentionNoConnector  = "no_connector"   // an application's group has no active connector
	AttentionHalted       = "release_halted" // a release was rolled back in a group
)

// Attention is one thing that needs an administrator.
type Attention struct {
	Kind string `json:"kind"`
	// Message says in a sentence what is wrong and what to do.
	Message string `json:"message"`
	// Link is the admin center's page about it (a path on the cloud's
	// name, e.g. /admin/connectors/c_…).
	Link string `json:"link"`
}

// OverviewGroup is a connector group with its connectors.
type OverviewGroup struct {
	Name       string              `json:"name"`
	Active     int                 `json:"active"` // connectors active
	Apps       int                 `json:"apps"`   // applications it serves
	Connectors []OverviewConnector `json:"connectors"`
}

// OverviewConnector is a connector with its last hour.
type OverviewConnector struct {
	Connector
	// Minutes is the last hour, one entry a minute, oldest first, the
	// current minute last.
	Minutes []Minute `json:"minutes"`
}

// Minute is one minute of a connector's or an application's last hour,
// as this cloud instance saw it: requests relayed (for a connector, also
// attempts whose tunnel failed) and those that failed (a 5xx answer or
// a failed tunnel).
type Minute struct {
	Start    time.Time `json:"start"`
	Requests int       `json:"requests"`
	Errors   int       `json:"errors"`
	// PerSecond is Requests over the minute (over the seconds gone, for
	// the current minute).
	PerSecond float64 `json:"per_second"`
	// ErrorRate is Errors/Requests, 0 without requests.
	ErrorRate float64 `json:"error_rate"`
}

// App health values.
const (
	HealthOK          = "ok"           // requests, few errors
	HealthIdle        = "idle"         // no request in the hour
	HealthErrors      = "errors"       // 5 % or more of the hour's requests failed
	HealthNoConnector = "no_connector" // its group has no active connector
)

// OverviewApp is an application's health over the last hour.
type OverviewApp struct {
	Name        string  `json:"name"`
	Group       string  `json:"group"`
	ExternalURL string  `json:"external_url"`
	Health      string  `json:"health"`
	Requests    int     `json:"requests"` // in the hour
	Errors      int     `json:"errors"`
	ErrorRate   float64 `json:"error_rate"`
	// P95Millis is an upper bound of the 95th percentile time to the
	// response headers in the hour (a bucket's bound), 0 without
	// requests; P95Over says it lies past that bound.
	P95Millis int64 `json:"p95_ms"`
	P95Over   bool  `json:"p95_over,omitempty"`
	// LastError is the last failed request this instance saw, if any.
	LastError *EdgeError `json:"last_error,omitempty"`
	Minutes   []Minute   `json:"minutes"`
}
