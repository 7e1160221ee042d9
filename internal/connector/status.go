package connector

import (
	"context"
	"os"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// noteError records the last connection error for status.json.
func (c *Connector) noteError(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// statusLoop rewrites status.json until ctx is done, then marks it stopped.
func (c *Connector) statusLoop(ctx context.Context) {
	t := time.NewTicker(statedir.StatusEvery)
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
	rs := statedir.RunStatus{PID: os.Getpid(), Version: c.cfg.Version, UpdatedAt: time.Now().UTC(), TunnelsUp: c.up, TunnelProtocol: c.protocol, Connections: c.cfg.Connections,
		Serial: c.State().Trust.Serial, LastConnectedAt: c.lastUp, LastError: c.lastErr, ConfigVersion: tbl.cfg.Version, Apps: []string{}}
	listed := c.instancesLocked()
	c.mu.Unlock()
	rs.Listed = len(listed)
	if rs.Listed > 0 {
		// Every listed instance, with the tunnels up to it (0 for one it
		// cannot reach), then tunnels to unlisted ones (bootstrap).
		up := map[string]tunnel.ConnectedInstance{}
		for _, ci := range c.Instances() {
			up[ci.ID] = ci
		}
		for _, in := range listed {
			rs.Instances = append(rs.Instances, statedir.RunInstance{ID: in.ID, Advertise: in.Advertise, TunnelsUp: up[in.ID].Tunnels})
			delete(up, in.ID)
		}
		for _, ci := range up {
			rs.Instances = append(rs.Instances, statedir.RunInstance{ID: ci.ID, Advertise: ci.Advertise, TunnelsUp: ci.Tunnels})
		}
	}
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
	if err := statedir.WriteRunStatus(c.cfg.Dir, rs); err != nil {
		c.log.Debug("writing status.json failed", "error", err.Error())
	}
}
