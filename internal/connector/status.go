package connector

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
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
}

// statusEvery is how often status.json is rewritten while running; a file
// older than three times this means the connector is not running.
const statusEvery = 5 * time.Second

// ReadRunStatus reads status.json and says whether it is fresh.
func ReadRunStatus(dir string, now time.Time) (RunStatus, bool) {
	var rs RunStatus
	raw, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil || json.Unmarshal(raw, &rs) != nil {
		return rs, false
	}
	return rs, now.Sub(rs.UpdatedAt) < 3*statusEvery
}

// noteError records the last connection error for status.json.
func (c *Connector) noteError(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// statusLoop rewrites status.json until ctx is done, then marks it stopped.
func (c *Connector) statusLoop(ctx context.Context) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		c.writeStatus(false)
		select {
		case <-ctx.Done():
			c.writeStatus(true)
			return
		case <-t.C:
		case <-c.statusKick:
		}
	}
}

func (c *Connector) writeStatus(stopped bool) {
	tbl := c.handler.apps.Load()
	c.mu.Lock()
	rs := RunStatus{PID: os.Getpid(), Version: c.cfg.Version, UpdatedAt: time.Now().UTC(), TunnelsUp: c.up, TunnelProtocol: c.protocol, Connections: c.cfg.Connections,
		Serial: c.State().Trust.Serial, LastConnectedAt: c.lastUp, LastError: c.lastErr, ConfigVersion: tbl.cfg.Version, Apps: []string{}}
	c.mu.Unlock()
	for _, a := range tbl.cfg.Apps {
		rs.Apps = append(rs.Apps, a.Name)
	}
	if stopped {
		rs.UpdatedAt, rs.TunnelsUp = time.Time{}, 0
		c.mu.Lock()
		if c.refusal != nil {
			p := problem.Public(c.refusal)
			rs.Refusal, rs.RefusalCode = p.Message, p.Code
		}
		c.mu.Unlock()
	}
	js, _ := json.MarshalIndent(rs, "", "  ")
	if err := pki.WriteFileAtomic(filepath.Join(c.cfg.Dir, StatusFile), append(js, '\n'), 0o644); err != nil {
		c.log.Debug("writing status.json failed", "error", err.Error())
	}
}
