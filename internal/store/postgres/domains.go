package postgres

import (
	"context"
	"github.com/jackc/pgx/v5"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

const domainCols = `tenant_id, domain, token, created_at, verified_at, verified_by`

func scanDomain(r scanner) (store.Domain, error) {
	var d store.Domain
	err := r.Scan(&d.TenantID, &d.Domain, &d.Token, timeCol{&d.CreatedAt}, timeCol{&d.VerifiedAt}, &d.VerifiedBy)
	return d, err
}

// CreateDomain stores a tenant's claim of a domain.
func (s *Store) CreateDomain(ctx context.Context, d store.Domain) error {
	return exec(ctx, s.pool, "create domain",
		`INSERT INTO domains (`+domainCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		d.TenantID, d.Domain, d.Token, nanos(d.CreatedAt), nanos(d.VerifiedAt), d.VerifiedBy)
}

// DomainOf returns the tenant's claim of domain.
func (s *Store) DomainOf(ctx context.Context, tenantID, domain string) (store.Domain, error) {
	return getOne(ctx, s.pool, scanDomain, "domain",
		`SELECT `+domainCols+` FROM domains WHERE tenant_id = ? AND domain = ?`, tenantID, domain)
}

// ListDomains returns the tenant's claims, ordered by domain.
func (s *Store) ListDomains(ctx context.Context, tenantID string) ([]store.Domain, error) {
	return getAll(ctx, s.pool, scanDomain, "list domains",
		`SELECT `+domainCols+` FROM domains WHERE tenant_id = ? ORDER BY domain`, tenantID)
}

// VerifiedDomain returns the verified claim of domain, whatever its tenant.
func (s *Store) VerifiedDomain(ctx context.Context, domain string) (store.Domain, error) {
	return getOne(ctx, s.pool, scanDomain, "verified domain",
		`SELECT `+domainCols+` FROM domains WHERE domain = ? AND verified_at != 0`, domain)
}

// VerifyDomain marks the tenant's claim verified (once: the claim's row is
// locked while it is read and updated). Another tenant's verified claim is
// the unique index domains_verified's violation, store.ErrConflict.
func (s *Store) VerifyDomain(ctx context.Context, tenantID, domain, how string, at time.Time) (store.Domain, error) {
	var out store.Domain
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		d, err := getOne(ctx, tx, scanDomain, "domain",
			`SELECT `+domainCols+` FROM domains WHERE tenant_id = ? AND domain = ? FOR UPDATE`, tenantID, domain)
		if err != nil {
			return err
		}
		if !d.Verified() {
			if err := execOne(ctx, tx, "verify domain",
				`UPDATE domains SET verified_at = ?, verified_by = ? WHERE tenant_id = ? AND domain = ?`,
				nanos(at), how, tenantID, domain); err != nil {
				return err
			}
			d.VerifiedAt, d.VerifiedBy = at.UTC(), how
		}
		out = d
		return nil
	})
	return out, err
}

// DeleteDomain removes the tenant's claim.
func (s *Store) DeleteDomain(ctx context.Context, tenantID, domain string) error {
	return execOne(ctx, s.pool, "delete domain",
		`DELETE FROM domains WHERE tenant_id = ? AND domain = ?`, tenantID, domain)
}
