package postgres

import (
	"context"
	"github.com/jackc/pgx/v5"

	"github.com/sallyport/sallyport/internal/store"
)

// tenantCols is the column list scanTenant reads.
const tenantCols = `id, domain, label, created_at`

func scanTenant(r scanner) (store.Tenant, error) {
	var t store.Tenant
	err := r.Scan(&t.ID, &t.Domain, &t.Label, timeCol{&t.CreatedAt})
	return t, err
}

// CreateTenant inserts, in one transaction, the tenant, its CA, its Default
// group and its first administrator.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant, ca store.TenantCA, defaultGroup store.Group, admin store.User) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		err := exec(ctx, tx, "create tenant",
			`INSERT INTO tenants (id, domain, label, created_at) VALUES (?, ?, ?, ?)`,
			t.ID, t.Domain, t.Label, nanos(t.CreatedAt))
		if err != nil {
			return err
		}
		err = exec(ctx, tx, "create tenant CA",
			`INSERT INTO tenant_cas (tenant_id, cert_pem, key_pem) VALUES (?, ?, ?)`,
			ca.TenantID, ca.CertPEM, ca.KeyPEM)
		if err != nil {
			return err
		}
		if err := insertGroup(ctx, tx, defaultGroup); err != nil {
			return err
		}
		return insertUser(ctx, tx, admin)
	})
}

// TenantByID returns the tenant with id.
func (s *Store) TenantByID(ctx context.Context, id string) (store.Tenant, error) {
	return getOne(ctx, s.pool, scanTenant, "tenant by id",
		`SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id)
}

// TenantByDomain returns the tenant whose primary domain is domain.
func (s *Store) TenantByDomain(ctx context.Context, domain string) (store.Tenant, error) {
	return getOne(ctx, s.pool, scanTenant, "tenant by domain",
		`SELECT `+tenantCols+` FROM tenants WHERE domain = ?`, domain)
}

// ListTenants returns every tenant, ordered by domain.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	return getAll(ctx, s.pool, scanTenant, "list tenants",
		`SELECT `+tenantCols+` FROM tenants ORDER BY domain`)
}

// TenantCA returns the connector CA of tenantID.
func (s *Store) TenantCA(ctx context.Context, tenantID string) (store.TenantCA, error) {
	scan := func(r scanner) (store.TenantCA, error) {
		var ca store.TenantCA
		err := r.Scan(&ca.TenantID, blobCol{&ca.CertPEM}, blobCol{&ca.KeyPEM})
		return ca, err
	}
	return getOne(ctx, s.pool, scan, "tenant CA",
		`SELECT tenant_id, cert_pem, key_pem FROM tenant_cas WHERE tenant_id = ?`, tenantID)
}

// SetTenantCAKey replaces the stored key of tenantID's CA.
func (s *Store) SetTenantCAKey(ctx context.Context, tenantID string, keyPEM []byte) error {
	return execOne(ctx, s.pool, "update tenant CA key",
		`UPDATE tenant_cas SET key_pem = ? WHERE tenant_id = ?`, keyPEM, tenantID)
}
