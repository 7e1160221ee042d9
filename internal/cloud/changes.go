package cloud

import (
	"context"
	"time"
)

// changed asks the refresher to reload the routing table soon (after
// ChangeDebounce): a change made by another instance, or the store back
// after an outage.
func (s *Server) changed() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// followChanges reloads the routing table after changes made elsewhere,
// at most once per ChangeDebounce, until ctx is done.
func (s *Server) followChanges(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changes:
		}
		t := time.NewTimer(s.cfg.ChangeDebounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := s.refreshRoutes(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("reloading the routing table after a change elsewhere failed; the periodic reload retries", "error", err.Error())
		}
		s.dropRevoked(ctx)
	}
}
