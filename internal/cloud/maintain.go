package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
)

// maintain refreshes the route table periodically, removes connectors
// inactive for too long, checks the live tunnels, re-issues the server
// certificate and re-signs the CRL when due (servercert.go), and rotates
// the tenants' signing keys when due (identity.Service.RotateAll).
func (s *Server) maintain(ctx context.Context) {
	t := time.NewTicker(s.cfg.RefreshInterval)
	defer t.Stop()
	check := time.NewTicker(s.cfg.TunnelCheckInterval)
	defer check.Stop()
	var lastSweep, lastKeys time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			s.checkTunnels(ctx)
			s.maintainServerCert()
		case <-t.C:
			if err := s.refreshRoutes(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reloading applications from the store failed", "error", err.Error())
			}
			s.followConnectors(ctx)
			if time.Since(lastSweep) >= time.Minute {
				lastSweep = time.Now()
				if _, err := s.SweepInactive(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("removing inactive connectors failed", "error", err.Error())
				}
				s.sweepSessions(ctx)
			}
			if time.Since(lastKeys) >= s.cfg.KeyCheckInterval {
				lastKeys = time.Now()
				// A tenant's failure is also an event (2943).
				if err := s.identity.RotateAll(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("rotating the tenants' signing keys failed", "error", err.Error())
				}
				s.keyPasses.Add(1)
			}
		}
	}
}

// SweepInactive removes the connectors not seen for RemoveInactiveAfter
// (never connected ones count from their registration) and revokes their
// certificates. It returns how many it removed.
func (s *Server) SweepInactive(ctx context.Context) (int, error) {
	now := s.now().UTC()
	cs, err := s.store.ListInactiveConnectors(ctx, now.Add(-s.cfg.RemoveInactiveAfter))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		if _, live := s.registry.info(c.ID); live {
			continue // connected right now: its last-seen time is about to move
		}
		reason := fmt.Sprintf("removed after %s of inactivity", humanDuration(s.cfg.RemoveInactiveAfter))
		if err := s.store.DeleteConnector(ctx, c.TenantID, c.ID, reason, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return n, err
		}
		n++
		s.events.Event(eventlog.ConnectorRemovedInactive, fmt.Sprintf("Connector %s (%s) was %s, and its certificate revoked", c.ID, c.Hostname, reason),
			"connector", c.ID, "tenant", c.TenantID, "last_seen", c.LastSeenAt.Format(time.RFC3339))
	}
	return n, nil
}

// sweepSessions removes expired sessions and grants from the store and
// the cache.
func (s *Server) sweepSessions(ctx context.Context) {
	now := s.now().UTC()
	s.sessions.expire(now)
	if _, err := s.store.DeleteExpiredSessions(ctx, now); err != nil && ctx.Err() == nil {
		s.log.Warn("removing expired sessions failed", "error", err.Error())
	}
	if _, err := s.store.DeleteExpiredGrants(ctx, now); err != nil && ctx.Err() == nil {
		s.log.Warn("removing expired sign-in grants failed", "error", err.Error())
	}
}
