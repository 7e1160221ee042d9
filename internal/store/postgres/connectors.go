package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// groupCols is the column list scanGroup reads.
const groupCols = `id, tenant_id, name, created_at`

func scanGroup(r scanner) (store.Group, error) {
	var g store.Group
	err := r.Scan(&g.ID, &g.TenantID, &g.Name, timeCol{&g.CreatedAt})
	return g, err
}

func insertGroup(ctx context.Context, q querier, g store.Group) error {
	return exec(ctx, q, "create group",
		`INSERT INTO connector_groups (`+groupCols+`, name_key) VALUES (?, ?, ?, ?, ?)`,
		g.ID, g.TenantID, g.Name, nanos(g.CreatedAt), store.GroupKey(g.Name))
}

// CreateGroup inserts g; a name already used in its tenant, in any case
// (store.GroupKey), is store.ErrConflict.
func (s *Store) CreateGroup(ctx context.Context, g store.Group) error {
	return insertGroup(ctx, s.pool, g)
}

// GroupByID returns the group id of tenantID.
func (s *Store) GroupByID(ctx context.Context, tenantID, id string) (store.Group, error) {
	return getOne(ctx, s.pool, scanGroup, "group by id",
		`SELECT `+groupCols+` FROM connector_groups WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

// GroupByName returns the group of tenantID named name in any case
// (store.GroupKey), the exact spelling first.
func (s *Store) GroupByName(ctx context.Context, tenantID, name string) (store.Group, error) {
	return getOne(ctx, s.pool, scanGroup, "group by name",
		`SELECT `+groupCols+` FROM connector_groups WHERE tenant_id = ? AND (name = ? OR name_key = ?)
		 ORDER BY name = ? DESC LIMIT 1`, tenantID, name, store.GroupKey(name), name)
}

// ListGroups returns the groups of tenantID, ordered by name.
func (s *Store) ListGroups(ctx context.Context, tenantID string) ([]store.Group, error) {
	return getAll(ctx, s.pool, scanGroup, "list groups",
		`SELECT `+groupCols+` FROM connector_groups WHERE tenant_id = ? ORDER BY name`, tenantID)
}

// RenameGroup renames the group id of tenantID; a name another group of
// the tenant has, in any case, is store.ErrConflict.
func (s *Store) RenameGroup(ctx context.Context, tenantID, id, name string) error {
	return execOne(ctx, s.pool, "rename group",
		`UPDATE connector_groups SET name = ?, name_key = ? WHERE tenant_id = ? AND id = ?`, name, store.GroupKey(name), tenantID, id)
}

// DeleteGroup deletes the group id of tenantID; a group still referenced
// by a connector or an application is store.ErrConflict.
func (s *Store) DeleteGroup(ctx context.Context, tenantID, id string) error {
	err := execOne(ctx, s.pool, "delete group",
		`DELETE FROM connector_groups WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		if _, gerr := s.GroupByID(ctx, tenantID, id); gerr == nil {
			return fmt.Errorf("delete group: in use: %w", store.ErrConflict)
		}
	}
	return err
}

// connectorCols is the column list scanConnector reads.
const connectorCols = `id, tenant_id, group_id, hostname, version, cert_serial, cert_thumbprint,
	cert_not_after, created_at, last_seen_at, last_address, previous_serial`

func scanConnector(r scanner) (store.Connector, error) {
	var c store.Connector
	err := r.Scan(&c.ID, &c.TenantID, &c.GroupID, &c.Hostname, &c.Version, &c.CertSerial, &c.CertThumbprint,
		timeCol{&c.CertNotAfter}, timeCol{&c.CreatedAt}, timeCol{&c.LastSeenAt}, &c.LastAddress, &c.PreviousSerial)
	return c, err
}

// CreateConnector inserts c. Its group must belong to its tenant, otherwise
// the result is store.ErrNotFound.
func (s *Store) CreateConnector(ctx context.Context, c store.Connector) error {
	return exec(ctx, s.pool, "create connector",
		`INSERT INTO connectors (`+connectorCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.TenantID, c.GroupID, c.Hostname, c.Version, c.CertSerial, c.CertThumbprint,
		nanos(c.CertNotAfter), nanos(c.CreatedAt), nanos(c.LastSeenAt), c.LastAddress, c.PreviousSerial)
}

// ConnectorByID returns the connector id of tenantID.
func (s *Store) ConnectorByID(ctx context.Context, tenantID, id string) (store.Connector, error) {
	return connectorByID(ctx, s.pool, tenantID, id)
}

func connectorByID(ctx context.Context, q querier, tenantID, id string) (store.Connector, error) {
	return getOne(ctx, q, scanConnector, "connector by id",
		`SELECT `+connectorCols+` FROM connectors WHERE tenant_id = ? AND id = ?`, tenantID, id)
}

// ListConnectors returns the connectors of tenantID, oldest first.
func (s *Store) ListConnectors(ctx context.Context, tenantID string) ([]store.Connector, error) {
	return getAll(ctx, s.pool, scanConnector, "list connectors",
		`SELECT `+connectorCols+` FROM connectors WHERE tenant_id = ? ORDER BY created_at, id`, tenantID)
}

// UpdateConnectorCert records the connector's new certificate and the
// serial still accepted until it is used.
func (s *Store) UpdateConnectorCert(ctx context.Context, tenantID, id, serial, thumbprint string, notAfter time.Time, previousSerial string) error {
	return execOne(ctx, s.pool, "update connector certificate",
		`UPDATE connectors SET cert_serial = ?, cert_thumbprint = ?, cert_not_after = ?, previous_serial = ?
		 WHERE tenant_id = ? AND id = ?`,
		serial, thumbprint, nanos(notAfter), previousSerial, tenantID, id)
}

// MoveConnector sets the group of the connector id of tenantID; a group of
// another tenant is store.ErrNotFound.
func (s *Store) MoveConnector(ctx context.Context, tenantID, id, groupID string) error {
	return execOne(ctx, s.pool, "move connector",
		`UPDATE connectors SET group_id = ? WHERE tenant_id = ? AND id = ?`, groupID, tenantID, id)
}

// ListInactiveConnectors returns the connectors of every tenant last seen
// before the given time (never seen: registered before it), oldest first.
func (s *Store) ListInactiveConnectors(ctx context.Context, before time.Time) ([]store.Connector, error) {
	return getAll(ctx, s.pool, scanConnector, "list inactive connectors",
		`SELECT `+connectorCols+` FROM connectors
		 WHERE (CASE WHEN last_seen_at = 0 THEN created_at ELSE last_seen_at END) < ?
		 ORDER BY created_at, id`, nanos(before))
}

// UpdateConnectorSeen sets LastSeenAt, LastAddress, Hostname and Version of
// the connector id of tenantID; all four are written as given.
func (s *Store) UpdateConnectorSeen(ctx context.Context, tenantID, id string, seen time.Time, address, hostname, version string) error {
	return execOne(ctx, s.pool, "update connector seen",
		`UPDATE connectors SET last_seen_at = ?, last_address = ?, hostname = ?, version = ?
		 WHERE tenant_id = ? AND id = ?`,
		nanos(seen), address, hostname, version, tenantID, id)
}

// DeleteConnector deletes the connector id of tenantID and, in the same
// transaction, records its certificate serial as revoked (a serial already
// revoked keeps its first revocation).
func (s *Store) DeleteConnector(ctx context.Context, tenantID, id, reason string, at time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := getOne(ctx, tx, scanConnector, "connector by id",
			`SELECT `+connectorCols+` FROM connectors WHERE tenant_id = ? AND id = ? FOR UPDATE`, tenantID, id)
		if err != nil {
			return err
		}
		err = exec(ctx, tx, "revoke connector certificate",
			`INSERT INTO revocations (serial, tenant_id, connector_id, reason, revoked_at)
			 VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`,
			c.CertSerial, c.TenantID, c.ID, reason, nanos(at))
		if err != nil {
			return err
		}
		return execOne(ctx, tx, "delete connector",
			`DELETE FROM connectors WHERE tenant_id = ? AND id = ?`, tenantID, id)
	})
}

// Revocation returns the revocation of the certificate serial.
func (s *Store) Revocation(ctx context.Context, serial string) (store.Revocation, error) {
	scan := func(r scanner) (store.Revocation, error) {
		var v store.Revocation
		err := r.Scan(&v.Serial, &v.TenantID, &v.ConnectorID, &v.Reason, timeCol{&v.RevokedAt})
		return v, err
	}
	return getOne(ctx, s.pool, scan, "revocation",
		`SELECT serial, tenant_id, connector_id, reason, revoked_at FROM revocations WHERE serial = ?`, serial)
}
