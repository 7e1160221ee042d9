package api

import "time"

// Updates is GET /api/v1/updates: the connector releases the cloud
// publishes and where the caller's tenant's connectors stand.
type Updates struct {
	Releases   []Release         `json:"releases"`   // newest first
	Connectors []ConnectorUpdate `json:"connectors"` // by group, then hostname
	Turns      []UpdateTurn      `json:"turns"`      // one per group that has one
	Halts      []UpdateHalt      `json:"halts"`      // by group, then version
}

// Release is a published connector release.
type Release struct {
	Version string `json:"version"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	// Major: updaters install it automatically; otherwise only on
	// request ('connector update --apply').
	Major       bool      `json:"major"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	PublishedAt time.Time `json:"published_at"`
	Notes       string    `json:"notes,omitempty"`
	// HaltedIn names the caller's groups where its automatic rollout is
	// halted (a connector rolled it back); empty when none.
	HaltedIn []string `json:"halted_in"`
}

// ConnectorUpdate is where one connector stands.
type ConnectorUpdate struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Group    string `json:"group"`
	Status   string `json:"status"` // "active" or "inactive"
	Version  string `json:"version"`
	// Latest is the newest published version, "" when none is.
	Latest string `json:"latest,omitempty"`
	// State: "up to date", "update available" (a newer release is
	// published), "updating" (it holds its group's update turn), or
	// "unknown version" (its version cannot be compared).
	State string `json:"state"`
}

// UpdateTurn is a group's update turn: the one connector of the group
// that may update now.
type UpdateTurn struct {
	Group       string    `json:"group"`
	ConnectorID string    `json:"connector_id"`
	Hostname    string    `json:"hostname,omitempty"`
	Version     string    `json:"version"`
	TakenAt     time.Time `json:"taken_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	Expired     bool      `json:"expired"` // the lease ran out: the next updater may take it
}

// UpdateHalt is a release whose automatic rollout is halted in a group:
// one of its connectors rolled it back.
type UpdateHalt struct {
	Group       string    `json:"group"`
	Version     string    `json:"version"`
	ConnectorID string    `json:"connector_id"`
	HaltedAt    time.Time `json:"halted_at"`
}
