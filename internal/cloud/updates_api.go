package cloud

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/store"
)

// maxUpdatesReleases bounds the releases GET /updates lists (the newest):
// as many as a connector's updater is offered.
const maxUpdatesReleases = release.MaxListed

// Connector update states of GET /updates.
const (
	updateUpToDate  = "up to date"
	updateAvailable = "update available"
	updateHalted    = "update halted"
	updateRunning   = "updating"
	updateUnknown   = "unknown version"
)

// handleUpdates is GET /updates: the releases the cloud publishes (they
// are the same for every tenant), and for the caller's tenant only: which
// connector runs what, its groups' update turns and halted rollouts.
// Nothing here changes anything: releases are the cloud operator's
// ('sallyport cloud release'), updates the connectors' own.
func (s *Server) handleUpdates(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	tid := p.Tenant.ID
	rs, err := s.store.ListReleases(ctx, "", "")
	if err != nil {
		return err
	}
	gs, err := s.store.ListGroups(ctx, tid)
	if err != nil {
		return err
	}
	groups := make(map[string]string, len(gs))
	for _, g := range gs {
		groups[g.ID] = g.Name
	}
	halts, err := s.store.ListUpdateHalts(ctx, tid)
	if err != nil {
		return err
	}
	cs, err := s.store.ListConnectors(ctx, tid)
	if err != nil {
		return err
	}
	hostnames := make(map[string]string, len(cs))
	for _, c := range cs {
		hostnames[c.ID] = c.Hostname
	}
	out := api.Updates{Releases: []api.Release{}, Connectors: []api.ConnectorUpdate{}, Turns: []api.UpdateTurn{}, Halts: []api.UpdateHalt{}}

	// halted: version → group id → halted.
	halted := map[string]map[string]bool{}
	for _, h := range halts {
		if halted[h.Version] == nil {
			halted[h.Version] = map[string]bool{}
		}
		halted[h.Version][h.GroupID] = true
		out.Halts = append(out.Halts, api.UpdateHalt{Group: groupName(groups, h.GroupID), Version: h.Version, ConnectorID: h.ConnectorID, HaltedAt: h.HaltedAt})
	}
	var latest release.Version
	var latestText string
	for _, x := range rs {
		if v, err := release.ParseVersion(x.Version); err == nil && (latestText == "" || v.Compare(latest) > 0) {
			latest, latestText = v, v.String()
		}
		if len(out.Releases) == maxUpdatesReleases {
			continue
		}
		ar := api.Release{Version: x.Version, OS: x.OS, Arch: x.Arch, Major: x.Major, Size: x.Size, SHA256: x.SHA256, PublishedAt: x.PublishedAt, HaltedIn: []string{}}
		var m release.Manifest
		if json.Unmarshal(x.Manifest, &m) == nil {
			ar.Notes = m.Notes
		}
		for gid := range halted[x.Version] {
			ar.HaltedIn = append(ar.HaltedIn, groupName(groups, gid))
		}
		sort.Strings(ar.HaltedIn)
		out.Releases = append(out.Releases, ar)
	}

	now := s.now()
	turnOf := map[string]string{} // connector id → version it is updating to
	for _, g := range gs {
		t, err := s.store.UpdateTurnOf(ctx, tid, g.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		expired := !now.Before(t.ExpiresAt)
		out.Turns = append(out.Turns, api.UpdateTurn{Group: g.Name, ConnectorID: t.ConnectorID, Hostname: hostnames[t.ConnectorID],
			Version: t.Version, TakenAt: t.TakenAt, ExpiresAt: t.ExpiresAt, Expired: expired})
		if !expired {
			turnOf[t.ConnectorID] = t.Version
		}
	}
	for _, c := range cs {
		cu := api.ConnectorUpdate{ID: c.ID, Hostname: c.Hostname, Group: groupName(groups, c.GroupID), Status: s.connectorStatus(c), Version: c.Version, Latest: latestText}
		v, verr := release.ParseVersion(c.Version)
		switch {
		case turnOf[c.ID] != "":
			cu.State = updateRunning
		case verr != nil:
			cu.State = updateUnknown
		case latestText == "" || v.Compare(latest) >= 0:
			cu.State = updateUpToDate
		case halted[latestText][c.GroupID]:
			cu.State = updateHalted
		default:
			cu.State = updateAvailable
		}
		out.Connectors = append(out.Connectors, cu)
	}
	sort.SliceStable(out.Connectors, func(i, j int) bool {
		a, b := out.Connectors[i], out.Connectors[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Hostname < b.Hostname
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}

// groupName names a group by id, the id itself when it is gone.
func groupName(groups map[string]string, id string) string {
	if n, ok := groups[id]; ok {
		return n
	}
	return id
}
