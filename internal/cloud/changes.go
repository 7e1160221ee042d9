package cloud

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// Changes made by other instances (scale-out on PostgreSQL,
// docs/scale-out.md): the store's change feed reports every change to
// what this instance caches; sessions ended are dropped from the cache at
// once, anything else reloads the routing table after ChangeDebounce (one
// reload for a burst of changes). The periodic reload (RefreshInterval)
// stays the backstop for a notification lost. SQLite has no feed: one
// instance, whose own changes apply at once.

// changed asks the refresher to reload the routing table soon (after
// ChangeDebounce): a change made by another instance, or the store back
// after an outage.
func (s *Server) changed() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// followChanges follows the store's change feed, if it has one, and
// reloads the routing table after changes, at most once per
// ChangeDebounce, until ctx is done.
func (s *Server) followChanges(ctx context.Context) {
	if feed := store.FeedOf(s.store); feed != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			feed.FollowChanges(ctx, store.ChangeHandler{Change: s.onChange, Connected: func() { s.onFeedConnected(ctx) }, Lost: s.onFeedLost})
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changes:
		}
		t := time.NewTimer(s.cfg.ChangeDebounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.feed.reloads.Add(1)
		if err := s.refreshRoutes(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("reloading the routing table after a change elsewhere failed; the periodic reload retries", "error", err.Error())
		}
		if s.feed.providers.Swap(false) {
			if err := s.reloadProviders(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reloading the identity providers after a change elsewhere failed; they are read again within the refresh interval", "error", err.Error())
			}
		}
		if s.feed.connectors.Swap(false) {
			s.followConnectors(ctx)
		}
		if s.feed.revocations.Swap(false) {
			s.checkTunnels(ctx)
		}
	}
}

// feedState is what the change feed's handlers share with the refresher.
type feedState struct {
	providers   atomic.Bool  // an identity provider changed: reload them
	connectors  atomic.Bool  // a connector was deleted or moved: close the tunnels of those gone
	revocations atomic.Bool  // a certificate was revoked: check the live tunnels' certificates
	reloads     atomic.Int64 // routing table reloads after changes, for tests
	connects    atomic.Int64 // times the feed (re)connected, for tests
	checking    atomic.Bool  // a check of the cached sessions runs
	lost        atomic.Bool  // the feed is not following (logged once)
}

// onChange handles one change notified by the store.
func (s *Server) onChange(c store.Change) {
	switch c.Table {
	case "sessions":
		switch {
		case c.AllSessions:
			s.sessions.clear()
		case len(c.SessionIDs) > 0:
			s.sessions.drop(c.SessionIDs, "")
		}
		return
	case "identity_providers":
		s.feed.providers.Store(true)
	case "connectors":
		s.feed.connectors.Store(true)
	case "revocations":
		s.feed.connectors.Store(true)
		s.feed.revocations.Store(true)
	}
	s.changed()
}

// onFeedConnected runs each time the feed follows (again): changes may
// have been missed meanwhile, so the routing table is reloaded and the
// cached sessions are checked against the store.
func (s *Server) onFeedConnected(ctx context.Context) {
	s.feed.connects.Add(1)
	if s.feed.lost.Swap(false) {
		s.log.Info("following other instances' changes again")
	}
	s.feed.providers.Store(true)
	s.feed.connectors.Store(true)
	s.changed()
	if s.feed.checking.Swap(true) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.feed.checking.Store(false)
		s.recheckSessions(ctx)
	}()
}

// onFeedLost notes that the feed's connection failed (the store's
// unreachability itself is the heartbeat's to report, events 2974/2975).
func (s *Server) onFeedLost(err error) {
	if !s.feed.lost.Swap(true) {
		s.log.Warn("following other instances' changes stopped; reconnecting (the routing table is still reloaded periodically)", "error", err.Error())
	}
}

// recheckSessions drops the cached sessions the store no longer has
// (ended while the feed was not following). It stops at the first store
// failure: the next reconnection checks again.
func (s *Server) recheckSessions(ctx context.Context) {
	for _, cs := range s.sessions.all() {
		if ctx.Err() != nil {
			return
		}
		_, err := s.store.SessionByHash(ctx, cs.Hash)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.sessions.drop([]string{cs.ID}, "")
		case err != nil:
			return
		}
	}
}

// followConnectors applies to this instance's live connectors what
// another instance or an operator command changed: one deleted has its
// tunnels closed, one moved to another group serves that group's
// applications from now on (as MoveConnector does on the instance that
// moved it). It runs after such a change is notified, and at every
// periodic reload (the backstop). A store failure changes nothing.
func (s *Server) followConnectors(ctx context.Context) {
	for _, c := range s.registry.liveTunnels() {
		lc := c.lc
		rec, err := s.store.ConnectorByID(ctx, lc.TenantID, lc.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.log.Info("closing the tunnels of a connector that no longer exists", "connector", lc.ID, "tenant", lc.TenantID)
			s.registry.disconnect(lc.ID)
		case err != nil:
			return
		case rec.GroupID != *lc.groupID.Load():
			s.log.Info("a connector was moved to another group on another instance", "connector", lc.ID, "group", rec.GroupID)
			s.registry.setGroup(lc.ID, rec.GroupID, s.routesNow())
		}
	}
}
