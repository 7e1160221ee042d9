package statedir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
)

// RunStatus is what a running connector writes to status.json in its
// state directory, for 'sallyport connector status' (another process).
type RunStatus struct {
	PID             int       `json:"pid"`
	Version         string    `json:"version"`
	UpdatedAt       time.Time `json:"updated_at"`
	TunnelsUp       int       `json:"tunnels_up"`
	TunnelProtocol  int       `json:"tunnel_protocol,omitempty"` // of the tunnel that came up last: 1 or 2
	Connections     int       `json:"connections"`
	LastConnectedAt time.Time `json:"last_connected_at,omitempty"`
	LastError       string    `json:"last_error,omitempty"`
	ConfigVersion   string    `json:"config_version,omitempty"`
	Apps            []string  `json:"apps"`
	// Refusal and RefusalCode are the cloud's refusal that stopped the
	// connector for good (revoked, deleted, unknown, expired), written
	// when it stops, so that 'connector status' says why it does not run.
	Refusal     string `json:"refusal,omitempty"`
	RefusalCode string `json:"refusal_code,omitempty"`
	// Serial is the serial of the certificate in use: a refusal concerns
	// that registration only, not one made after it.
	Serial string `json:"serial,omitempty"`
	// Listed is how many instances the cloud lists as live (0: a single
	// instance, reached through the cloud's name).
	Listed int `json:"listed_instances,omitempty"`
	// Instances, when Listed > 0 (docs/scale-out.md): first the listed
	// instances with the tunnels up to each (0 for one it cannot reach),
	// then any other it holds tunnels to through the cloud's name.
	Instances []RunInstance `json:"instances,omitempty"`
}

// InstancesLine describes the instances in one line for 'connector
// status' and the doctor: "2 of 3 instances connected: a (10.0.0.1:443, 2
// tunnels), …"; "" for a single instance.
func (rs RunStatus) InstancesLine() string {
	if rs.Listed == 0 {
		return ""
	}
	n := 0
	parts := make([]string, 0, len(rs.Instances))
	for i, in := range rs.Instances {
		if i < rs.Listed && in.TunnelsUp > 0 {
			n++
		}
		id := in.ID
		if id == "" {
			id = "through the cloud's name"
		}
		if in.Advertise != "" {
			id += " at " + in.Advertise
		}
		parts = append(parts, fmt.Sprintf("%s (%d tunnel(s))", id, in.TunnelsUp))
	}
	return fmt.Sprintf("%d of %d cloud instance(s) connected: %s", n, rs.Listed, strings.Join(parts, ", "))
}

// InstancesMissing lists the listed instances without a tunnel up.
func (rs RunStatus) InstancesMissing() []string {
	var out []string
	for i, in := range rs.Instances {
		if i < rs.Listed && in.TunnelsUp == 0 {
			out = append(out, in.ID+" at "+in.Advertise)
		}
	}
	return out
}

// RunInstance is one cloud instance a running connector holds tunnels to.
type RunInstance struct {
	ID        string `json:"id"`                  // "" when the instance did not say
	Advertise string `json:"advertise,omitempty"` // its address; "" through the cloud's name
	TunnelsUp int    `json:"tunnels_up"`
}

// StatusEvery is how often a running connector rewrites status.json; a
// file older than three times this means the connector is not running.
const StatusEvery = 5 * time.Second

// ReadRunStatus reads status.json and says whether it is fresh.
func ReadRunStatus(dir string, now time.Time) (RunStatus, bool) {
	var rs RunStatus
	raw, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil || json.Unmarshal(raw, &rs) != nil {
		return rs, false
	}
	return rs, now.Sub(rs.UpdatedAt) < 3*StatusEvery
}

// WriteRunStatus replaces status.json atomically.
func WriteRunStatus(dir string, rs RunStatus) error {
	js, _ := json.MarshalIndent(rs, "", "  ")
	return pki.WriteFileAtomic(filepath.Join(dir, StatusFile), append(js, '\n'), 0o644)
}
