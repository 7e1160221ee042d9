package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
)

// Rotate does what is due for the tenant's keys at the clock's now:
// removes from the JWKS the keys retired more than RetainAfter ago, and,
// once the current key has signed for RotateEvery less PublishAhead,
// publishes its successor, which signs PublishAhead later (never earlier
// than RotateEvery after the current key started). A tenant without keys
// gets none here: it gets its first at its first need (Mint, JWKS).
// Another instance rotating at the same time is harmless: the store lets
// one successor in.
func (s *Service) Rotate(ctx context.Context, tenant store.Tenant) error {
	now := s.cfg.Now()
	p := s.cfg.Policy
	keys, err := s.load(ctx, tenant.ID, now)
	if err != nil || len(keys) == 0 {
		return err
	}
	changed := false
	for _, k := range keys {
		if k.publishedAt(now, p.RetainAfter) {
			continue
		}
		if err := s.cfg.Store.DeleteTenantSigningKey(ctx, tenant.ID, k.kid); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("identity: removing the retired signing key %s of tenant %s: %w", k.kid, tenant.ID, err)
		}
		changed = true
		s.cfg.Events.Event(eventlog.SigningKeyRetired,
			fmt.Sprintf("Tenant %s's signing key %s, which last signed at %s, was removed from its JWKS", tenant.Domain, k.kid, k.signUntil.UTC().Format(time.RFC3339)),
			"tenant", tenant.ID, "kid", k.kid)
	}
	latest := keys[0]
	for _, k := range keys[1:] {
		if k.signFrom.After(latest.signFrom) {
			latest = k
		}
	}
	if latest.signUntil.IsZero() && !now.Before(latest.signFrom.Add(p.RotateEvery-p.PublishAhead)) {
		from := now.Add(p.PublishAhead)
		if due := latest.signFrom.Add(p.RotateEvery); due.After(from) {
			from = due
		}
		sk, err := newKey(tenant.ID, now, from)
		if err != nil {
			return err
		}
		switch err := s.cfg.Store.AddTenantSigningKey(ctx, sk, latest.kid); {
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
			// Another instance rotated (or retired) it first.
		case err != nil:
			return fmt.Errorf("identity: storing the next signing key of tenant %s: %w", tenant.ID, err)
		default:
			s.cfg.Events.Event(eventlog.SigningKeyRotated,
				fmt.Sprintf("Tenant %s's next signing key %s is published from now and signs from %s; the key %s signs until then and stays published %s longer",
					tenant.Domain, sk.KID, from.UTC().Format(time.RFC3339), latest.kid, p.RetainAfter),
				"tenant", tenant.ID, "kid", sk.KID, "previous_kid", latest.kid, "sign_from", from.UTC().Format(time.RFC3339))
		}
		changed = true
	}
	if changed {
		_, err = s.load(ctx, tenant.ID, now)
	}
	return err
}

// RotateAll rotates every tenant's keys (the cloud's maintain loop calls
// it). A tenant that fails is logged (event 2943) and the others go on.
func (s *Service) RotateAll(ctx context.Context) error {
	tenants, err := s.cfg.Store.ListTenants(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tenants {
		if err := s.Rotate(ctx, t); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.cfg.Events.Event(eventlog.SigningKeyRotationFailed,
				fmt.Sprintf("Rotating the signing keys of tenant %s failed (%v); it is retried at the next pass, and the current key keeps signing", t.Domain, err),
				"tenant", t.ID)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
