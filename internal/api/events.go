package api

import "time"

// Event is one entry of the cloud's event log as GET /api/v1/events
// shows it (docs/events.md lists the ids).
type Event struct {
	ID      int               `json:"id"`
	Level   string            `json:"level"` // "information", "warning" or "error"
	Source  string            `json:"source"`
	Time    time.Time         `json:"time"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"` // request_id, app, connector, ...
	// Summary is the catalogue's one line for the id (docs/events.md),
	// "" for an id the catalogue does not know.
	Summary string `json:"summary,omitempty"`
	Area    string `json:"area,omitempty"`
}

// EventList is GET /api/v1/events: the caller's tenant's events that
// pass the filters, newest first.
type EventList struct {
	Events []Event `json:"events"`
	// More is true when more events matched than the limit returned.
	More bool `json:"more"`
	// Capped is true when the log held more than the cloud reads (its
	// newest 128 MiB): the oldest events were not looked at.
	Capped bool `json:"capped"`
}

// Limits of GET /api/v1/events.
const (
	DefaultEventLimit = 200
	MaxEventLimit     = 1000
	// MaxEventIDs bounds the ids of one query (id=2700,2108).
	MaxEventIDs = 20
)
