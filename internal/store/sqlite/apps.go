package sqlite

import (
	"context"

	"github.com/sallyport/sallyport/internal/store"
)

// appCols is the column list scanApp reads.
const appCols = `id, tenant_id, name, group_id, external_host, internal_url, timeout, pre_auth,
	cert_pem, key_pem, created_at, updated_at, affinity, backend_proxy, detailed_errors, keep_authorization, description,
	type, internal_addresses`

func scanApp(r scanner) (store.Application, error) {
	var a store.Application
	var addrs string
	err := r.Scan(&a.ID, &a.TenantID, &a.Name, &a.GroupID, &a.ExternalHost, &a.InternalURL, &a.Timeout, &a.PreAuth,
		blobCol{&a.CertPEM}, blobCol{&a.KeyPEM}, timeCol{&a.CreatedAt}, timeCol{&a.UpdatedAt}, &a.Affinity, &a.BackendProxy, &a.DetailedErrors, &a.KeepAuthorization, &a.Description,
		&a.Type, &addrs)
	if err != nil {
		return a, err
	}
	a.ExternalHost = store.HostFromColumn(a.ExternalHost)
	a.InternalAddresses, err = store.AddressesFromColumn(addrs)
	return a, err
}

// CreateApp inserts a. A name already used in its tenant or an external
// host used anywhere is store.ErrConflict; a group outside its tenant is
// store.ErrNotFound.
func (s *Store) CreateApp(ctx context.Context, a store.Application) error {
	return exec(ctx, s.db, "create application",
		`INSERT INTO applications (`+appCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.TenantID, a.Name, a.GroupID, store.HostColumn(a), a.InternalURL, a.Timeout, a.PreAuth,
		a.CertPEM, a.KeyPEM, nanos(a.CreatedAt), nanos(a.UpdatedAt), a.Affinity, a.BackendProxy, a.DetailedErrors, a.KeepAuthorization, a.Description,
		store.TypeColumn(a), store.AddressesColumn(a))
}

// AppByName returns the application of tenantID named name.
func (s *Store) AppByName(ctx context.Context, tenantID, name string) (store.Application, error) {
	return getOne(ctx, s.db, scanApp, "application by name",
		`SELECT `+appCols+` FROM applications WHERE tenant_id = ? AND name = ?`, tenantID, name)
}

// ListApps returns the applications of tenantID, ordered by name.
func (s *Store) ListApps(ctx context.Context, tenantID string) ([]store.Application, error) {
	return getAll(ctx, s.db, scanApp, "list applications",
		`SELECT `+appCols+` FROM applications WHERE tenant_id = ? ORDER BY name`, tenantID)
}

// ListAllApps returns the applications of every tenant, ordered by tenant
// then name: only for the edge's routing table.
func (s *Store) ListAllApps(ctx context.Context) ([]store.Application, error) {
	return getAll(ctx, s.db, scanApp, "list all applications",
		`SELECT `+appCols+` FROM applications ORDER BY tenant_id, name`)
}

// UpdateApp replaces the mutable fields of the application a.ID of
// a.TenantID (Name, ID, TenantID and CreatedAt are kept).
func (s *Store) UpdateApp(ctx context.Context, a store.Application) error {
	return execOne(ctx, s.db, "update application",
		`UPDATE applications SET group_id = ?, external_host = ?, internal_url = ?, timeout = ?, pre_auth = ?,
		 cert_pem = ?, key_pem = ?, updated_at = ?, affinity = ?, backend_proxy = ?, detailed_errors = ?, keep_authorization = ?, description = ?,
		 internal_addresses = ? WHERE tenant_id = ? AND id = ?`,
		a.GroupID, store.HostColumn(a), a.InternalURL, a.Timeout, a.PreAuth,
		a.CertPEM, a.KeyPEM, nanos(a.UpdatedAt), a.Affinity, a.BackendProxy, a.DetailedErrors, a.KeepAuthorization, a.Description,
		store.AddressesColumn(a), a.TenantID, a.ID)
}

// DeleteApp deletes the application of tenantID named name.
func (s *Store) DeleteApp(ctx context.Context, tenantID, name string) error {
	return execOne(ctx, s.db, "delete application",
		`DELETE FROM applications WHERE tenant_id = ? AND name = ?`, tenantID, name)
}
