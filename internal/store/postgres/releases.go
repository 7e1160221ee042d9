package postgres

import (
	"context"
	"errors"
	"github.com/jackc/pgx/v5"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

const releaseCols = `version, os, arch, major, sha256, size, manifest, signature, key_id, published_at`

func scanRelease(r scanner) (store.Release, error) {
	var x store.Release
	err := r.Scan(&x.Version, &x.OS, &x.Arch, &x.Major, &x.SHA256, &x.Size, &x.Manifest, &x.Signature, &x.KeyID, timeCol{&x.PublishedAt})
	return x, err
}

// CreateRelease stores r.
func (s *Store) CreateRelease(ctx context.Context, r store.Release) error {
	return exec(ctx, s.pool, "create release",
		`INSERT INTO releases (`+releaseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Version, r.OS, r.Arch, r.Major, r.SHA256, r.Size, r.Manifest, r.Signature, r.KeyID, nanos(r.PublishedAt))
}

// ListReleases returns the releases for goos/goarch ("" matches any),
// newest publication first.
func (s *Store) ListReleases(ctx context.Context, goos, goarch string) ([]store.Release, error) {
	return getAll(ctx, s.pool, scanRelease, "list releases",
		`SELECT `+releaseCols+` FROM releases WHERE (? = '' OR os = ?) AND (? = '' OR arch = ?)
		 ORDER BY published_at DESC, version DESC, os, arch`, goos, goos, goarch, goarch)
}

// ReleaseByDigest returns a release whose binary has this digest.
func (s *Store) ReleaseByDigest(ctx context.Context, sha256 string) (store.Release, error) {
	return getOne(ctx, s.pool, scanRelease, "release by digest",
		`SELECT `+releaseCols+` FROM releases WHERE sha256 = ? ORDER BY published_at DESC LIMIT 1`, sha256)
}

// DeleteRelease withdraws a release.
func (s *Store) DeleteRelease(ctx context.Context, version, goos, goarch string) error {
	return execOne(ctx, s.pool, "delete release",
		`DELETE FROM releases WHERE version = ? AND os = ? AND arch = ?`, version, goos, goarch)
}

const turnCols = `tenant_id, group_id, connector_id, version, taken_at, expires_at`

func scanTurn(r scanner) (store.UpdateTurn, error) {
	var t store.UpdateTurn
	err := r.Scan(&t.TenantID, &t.GroupID, &t.ConnectorID, &t.Version, timeCol{&t.TakenAt}, timeCol{&t.ExpiresAt})
	return t, err
}

// TakeUpdateTurn gives the group's turn to t.ConnectorID unless another
// connector holds it unexpired, in one transaction that first locks the
// group's row: racing callers decide one after the other.
func (s *Store) TakeUpdateTurn(ctx context.Context, t store.UpdateTurn, now time.Time) (store.UpdateTurn, error) {
	var out store.UpdateTurn
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := getOne(ctx, tx, func(r scanner) (string, error) {
			var id string
			return id, r.Scan(&id)
		}, "group of update turn", `SELECT id FROM connector_groups WHERE tenant_id = ? AND id = ? FOR NO KEY UPDATE`, t.TenantID, t.GroupID); err != nil {
			return err
		}
		cur, err := getOne(ctx, tx, scanTurn, "update turn",
			`SELECT `+turnCols+` FROM update_turns WHERE tenant_id = ? AND group_id = ?`, t.TenantID, t.GroupID)
		switch {
		case err == nil && cur.ConnectorID != t.ConnectorID && cur.ExpiresAt.After(now):
			out = cur
			return store.ErrConflict
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := exec(ctx, tx, "take update turn",
			`INSERT INTO update_turns (`+turnCols+`) VALUES (?, ?, ?, ?, ?, ?)
			 ON CONFLICT (tenant_id, group_id) DO UPDATE SET connector_id = excluded.connector_id,
			   version = excluded.version, taken_at = excluded.taken_at, expires_at = excluded.expires_at`,
			t.TenantID, t.GroupID, t.ConnectorID, t.Version, nanos(t.TakenAt), nanos(t.ExpiresAt)); err != nil {
			return err
		}
		out, err = getOne(ctx, tx, scanTurn, "update turn",
			`SELECT `+turnCols+` FROM update_turns WHERE tenant_id = ? AND group_id = ?`, t.TenantID, t.GroupID)
		return err
	})
	return out, err
}

// ReleaseUpdateTurn ends connectorID's turn in its group.
func (s *Store) ReleaseUpdateTurn(ctx context.Context, tenantID, groupID, connectorID string) error {
	return execOne(ctx, s.pool, "release update turn",
		`DELETE FROM update_turns WHERE tenant_id = ? AND group_id = ? AND connector_id = ?`, tenantID, groupID, connectorID)
}

// UpdateTurnOf returns the group's update turn.
func (s *Store) UpdateTurnOf(ctx context.Context, tenantID, groupID string) (store.UpdateTurn, error) {
	return getOne(ctx, s.pool, scanTurn, "update turn",
		`SELECT `+turnCols+` FROM update_turns WHERE tenant_id = ? AND group_id = ?`, tenantID, groupID)
}

// HaltUpdate records a release rolled back in a group (the first halt of
// a version is kept).
func (s *Store) HaltUpdate(ctx context.Context, h store.UpdateHalt) error {
	return exec(ctx, s.pool, "halt update",
		`INSERT INTO update_halts (tenant_id, group_id, version, connector_id, halted_at)
		 SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM connector_groups WHERE tenant_id = ? AND id = ?)
		 ON CONFLICT (tenant_id, group_id, version) DO NOTHING`,
		h.TenantID, h.GroupID, h.Version, h.ConnectorID, nanos(h.HaltedAt), h.TenantID, h.GroupID)
}

// ListUpdateHalts returns the tenant's halts, by group then version.
func (s *Store) ListUpdateHalts(ctx context.Context, tenantID string) ([]store.UpdateHalt, error) {
	return getAll(ctx, s.pool, func(r scanner) (store.UpdateHalt, error) {
		var h store.UpdateHalt
		err := r.Scan(&h.TenantID, &h.GroupID, &h.Version, &h.ConnectorID, timeCol{&h.HaltedAt})
		return h, err
	}, "list update halts", `SELECT tenant_id, group_id, version, connector_id, halted_at FROM update_halts
		WHERE tenant_id = ? ORDER BY group_id, version`, tenantID)
}

// UpdateHaltOf returns the halt of version in the group.
func (s *Store) UpdateHaltOf(ctx context.Context, tenantID, groupID, version string) (store.UpdateHalt, error) {
	return getOne(ctx, s.pool, func(r scanner) (store.UpdateHalt, error) {
		var h store.UpdateHalt
		err := r.Scan(&h.TenantID, &h.GroupID, &h.Version, &h.ConnectorID, timeCol{&h.HaltedAt})
		return h, err
	}, "update halt", `SELECT tenant_id, group_id, version, connector_id, halted_at FROM update_halts
		WHERE tenant_id = ? AND group_id = ? AND version = ?`, tenantID, groupID, version)
}
