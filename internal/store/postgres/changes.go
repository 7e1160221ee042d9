package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/sallyport/sallyport/internal/store"
)

// changeChannel is the channel the triggers of migration 0004 notify.
const changeChannel = "sallyport_changes"

// Timing of FollowChanges (variables for tests).
var (
	// followIdle is how long the listening connection may stay silent
	// before it is checked with a ping (a connection cut without a word,
	// such as a fail-over behind a virtual address, would wait forever).
	followIdle = 10 * time.Second
	// followPing bounds that ping.
	followPing = 3 * time.Second
	// followBackoff is the first and the longest wait before connecting
	// again.
	followBackoff, followBackoffMax = 100 * time.Millisecond, 5 * time.Second
)

var _ store.ChangeFeed = (*Store)(nil)

// FollowChanges LISTENs on a connection of its own (not the pool's) and
// calls h with every change notified, until ctx is done. A failed
// connection is reported (h.Lost), then made again after a backoff of
// 100 ms doubling to 5 s; each time it follows again h.Connected is called
// (notifications sent meanwhile are lost: the caller reloads).
func (s *Store) FollowChanges(ctx context.Context, h store.ChangeHandler) {
	delay := followBackoff
	for {
		err := s.follow(ctx, h, func() { delay = followBackoff })
		if ctx.Err() != nil {
			return
		}
		if h.Lost != nil {
			h.Lost(err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, followBackoffMax)
	}
}

// follow connects, LISTENs and reports notifications until the
// connection fails (its error) or ctx is done.
func (s *Store) follow(ctx context.Context, h store.ChangeHandler, connected func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	// A deadline, not a cancel request, ends a wait: the idle check's ping
	// must not be cancelled by a request that arrives late.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: connect to follow changes: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+changeChannel); err != nil {
		return fmt.Errorf("postgres: listen for changes: %w", err)
	}
	connected()
	if h.Connected != nil {
		h.Connected()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, followIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			pctx, cancel := context.WithTimeout(ctx, followPing)
			err = conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("postgres: the connection following changes does not answer: %w", err)
			}
			continue
		case err != nil:
			return fmt.Errorf("postgres: wait for changes: %w", err)
		}
		if h.Change != nil {
			h.Change(parseChange(n.Payload))
		}
	}
}

// parseChange reads a notification's payload: a table name, or
// "sessions:ID,ID,..." or "sessions:*".
func parseChange(payload string) store.Change {
	table, rest, ok := strings.Cut(payload, ":")
	c := store.Change{Table: table}
	if ok && table == "sessions" {
		if rest == "*" {
			c.AllSessions = true
		} else if rest != "" {
			c.SessionIDs = strings.Split(rest, ",")
		}
	}
	return c
}
