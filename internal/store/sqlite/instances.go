package sqlite

import (
	"context"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

const instanceCols = `id, advertise, started_at, heartbeat_at`

func scanInstance(r scanner) (store.Instance, error) {
	var i store.Instance
	err := r.Scan(&i.ID, &i.Advertise, timeCol{&i.StartedAt}, timeCol{&i.HeartbeatAt})
	return i, err
}

// Heartbeat creates or replaces the instance's row.
func (s *Store) Heartbeat(ctx context.Context, i store.Instance) error {
	return exec(ctx, s.db, "heartbeat",
		`INSERT INTO instances (`+instanceCols+`) VALUES (?, ?, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET advertise = excluded.advertise, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
		i.ID, i.Advertise, nanos(i.StartedAt), nanos(i.HeartbeatAt))
}

// ListInstances returns the instances seen at or after aliveSince, by id.
func (s *Store) ListInstances(ctx context.Context, aliveSince time.Time) ([]store.Instance, error) {
	return getAll(ctx, s.db, scanInstance, "list instances",
		`SELECT `+instanceCols+` FROM instances WHERE heartbeat_at >= ? ORDER BY id`, nanos(aliveSince))
}

// DeleteInstance removes the instance's row.
func (s *Store) DeleteInstance(ctx context.Context, id string) error {
	return execOne(ctx, s.db, "delete instance", `DELETE FROM instances WHERE id = ?`, id)
}
