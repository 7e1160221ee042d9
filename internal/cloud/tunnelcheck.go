package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// checkTunnels closes every live tunnel whose certificate is no longer
// good: expired, revoked, or no longer the connector's current (or, during
// a renewal, previous) certificate, or whose connector is gone. Revocations
// made by another cloud instance or an operator command on the same store
// take effect here within one TunnelCheckInterval; a tunnel is never kept
// past its certificate's NotAfter by more than that.
//
// It only closes: the connector reconnects at once and its next handshake
// is checked by identify, which tells it why it is refused (or lets it in
// with its renewed certificate). A store failure keeps the tunnels: a
// passing outage must not cut a fleet off.
func (s *Server) checkTunnels(ctx context.Context) {
	now := s.now()
	revoked := map[string]string{} // serial → reason ("" not revoked), once per pass
	for _, cand := range s.registry.liveTunnels() {
		lc := cand.lc
		rec, err := s.store.ConnectorByID(ctx, lc.TenantID, lc.ID)
		gone := errors.Is(err, store.ErrNotFound)
		if err != nil && !gone {
			if ctx.Err() == nil {
				s.log.Warn("checking a connector's tunnels failed", "connector", lc.ID, "error", err.Error())
			}
			continue
		}
		for _, lt := range cand.tunnels {
			reason := ""
			switch {
			case gone:
				reason = "the connector no longer exists"
			case !now.Before(lt.notAfter):
				reason = fmt.Sprintf("its certificate expired on %s", lt.notAfter.UTC().Format(time.RFC3339))
			default:
				r, seen := revoked[lt.serial]
				if !seen {
					rev, err := s.store.Revocation(ctx, lt.serial)
					switch {
					case err == nil:
						r = fmt.Sprintf("its certificate was revoked on %s (%s)", rev.RevokedAt.UTC().Format(time.RFC3339), rev.Reason)
					case !errors.Is(err, store.ErrNotFound):
						if ctx.Err() == nil {
							s.log.Warn("checking a connector's certificate failed", "connector", lc.ID, "error", err.Error())
						}
						continue
					}
					revoked[lt.serial] = r
				}
				reason = r
				if reason == "" && lt.serial != rec.CertSerial && (rec.PreviousSerial == "" || lt.serial != rec.PreviousSerial) {
					reason = "its certificate was replaced by a newer one"
				}
			}
			if reason == "" {
				continue
			}
			s.events.Warning(2107, fmt.Sprintf("A tunnel of connector %s was closed: %s", lc.ID, reason),
				"connector", lc.ID, "tenant", lc.TenantID, "serial", lt.serial)
			lt.c.Close()
		}
	}
}
