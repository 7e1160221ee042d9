package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
)

// checkTunnels closes every live tunnel whose certificate is no longer
// good: expired or revoked, or whose connector is gone; and retires, before
// their certificate expires, those on a certificate a renewal replaced. Revocations
// made by another cloud instance or an operator command on the same store
// take effect here within one TunnelCheckInterval; a tunnel is never kept
// past its certificate's NotAfter by more than that.
//
// A revoked or expired certificate's tunnel is closed at once; one whose
// certificate was replaced by a renewal is retired shortly before that
// certificate expires: no new request, closed when those in flight have
// ended. The connector reconnects and its next handshake
// is checked by identify, which tells it why it is refused (or lets it in
// with its renewed certificate). A store failure keeps the tunnels: a
// passing outage must not cut a fleet off.
func (s *Server) checkTunnels(ctx context.Context) {
	defer s.tunnelChecks.Add(1)
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
			reason, gently := "", false
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
				if reason == "" && lt.serial != rec.CertSerial && (rec.PreviousSerial == "" || lt.serial != rec.PreviousSerial) &&
					!now.Add(3*s.cfg.TunnelCheckInterval).Before(lt.notAfter) {
					// Replaced without a revocation: the connector's own
					// renewal (re-registration and deletion revoke). Its
					// older tunnels keep serving, and are retired shortly
					// before the old certificate expires, so that expiry
					// does not cut their requests: no new request, closed
					// once those in flight end (the connector reconnects
					// with its new certificate). Retiring them right after
					// the renewal would race with the connector's switch to
					// the new certificate.
					reason, gently = fmt.Sprintf("its certificate, replaced by a newer one, expires on %s", lt.notAfter.UTC().Format(time.RFC3339)), true
				}
			}
			if reason == "" || (gently && !lt.c.Available()) { // nothing to do, or retiring already
				continue
			}
			s.events.Event(eventlog.TunnelClosedUntrusted, fmt.Sprintf("A tunnel of connector %s was closed: %s", lc.ID, reason),
				"connector", lc.ID, "tenant", lc.TenantID, "serial", lt.serial)
			if gently {
				lt.c.Retire()
			} else {
				lt.c.Close()
			}
		}
	}
}
