package cloud

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// UpdateTurnLease is how long a connector keeps its group's update turn
// unless it ends it first: longer than an update takes (download, restart,
// readiness wait), short enough that a crashed updater does not hold its
// group for long.
const UpdateTurnLease = 15 * time.Minute

// serveReleaseControl answers the update calls of a control connection;
// it reports whether the path was one of them.
func (s *Server) serveReleaseControl(w http.ResponseWriter, r *http.Request, rec store.Connector) bool {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == release.PathKey:
		writeJSON(w, http.StatusOK, release.KeyMessage{Key: release.EncodePublicKey(s.releasePub), KeyID: release.KeyID(s.releasePub)})
	case r.Method == http.MethodGet && r.URL.Path == release.PathList:
		s.handleReleases(w, r)
	case r.Method == http.MethodGet && r.URL.Path == release.PathBinary:
		s.handleReleaseBinary(w, r, rec)
	case r.Method == http.MethodPost && r.URL.Path == release.PathUpdateTurn:
		s.handleTakeTurn(w, r, rec)
	case r.Method == http.MethodDelete && r.URL.Path == release.PathUpdateTurn:
		s.handleEndTurn(w, r, rec)
	default:
		return false
	}
	return true
}

func (s *Server) handleReleases(w http.ResponseWriter, r *http.Request) {
	goos, goarch := r.URL.Query().Get("os"), r.URL.Query().Get("arch")
	if len(goos) > 16 || len(goarch) > 16 || goos == "" || goarch == "" {
		writeProblem(w, problem.New(http.StatusBadRequest, "bad_request", "update the connector by hand", "The releases query needs os and arch"))
		return
	}
	rs, err := s.store.ListReleases(r.Context(), goos, goarch)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := release.List{Releases: []release.Signed{}}
	for i, x := range rs {
		if i == release.MaxListed {
			break
		}
		out.Releases = append(out.Releases, release.Signed{Manifest: x.Manifest, Signature: x.Signature, KeyID: x.KeyID})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleReleaseBinary(w http.ResponseWriter, r *http.Request, rec store.Connector) {
	digest := r.URL.Query().Get("sha256")
	if b, err := hex.DecodeString(digest); err != nil || len(b) != 32 {
		writeProblem(w, problem.New(http.StatusBadRequest, "bad_request", "update the connector by hand", "The release digest is not 64 hex digits"))
		return
	}
	x, err := s.store.ReleaseByDigest(r.Context(), digest)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, problem.New(http.StatusNotFound, "release_not_found", "check again for updates", "The release was withdrawn from the cloud"))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := os.Open(filepath.Join(s.cfg.DataDir, datadir.ReleasesDir, "sha256-"+x.SHA256))
	if err != nil {
		s.log.Error("release binary missing", "version", x.Version, "error", err.Error())
		writeProblem(w, problem.Newf(http.StatusInternalServerError, "release_missing", "ask the cloud's operator to publish the release again",
			"The cloud's copy of release %s is missing", x.Version))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(x.Size, 10))
	n, err := io.Copy(w, io.LimitReader(f, x.Size))
	if err == nil && n == x.Size {
		s.log.Info("release downloaded", "connector", rec.ID, "version", x.Version)
	}
}

func (s *Server) handleTakeTurn(w http.ResponseWriter, r *http.Request, rec store.Connector) {
	var in release.TurnRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&in); err != nil {
		writeProblem(w, problem.New(http.StatusBadRequest, "bad_request", "update the connector by hand", "The update turn request is not valid JSON"))
		return
	}
	if _, err := release.ParseVersion(in.Version); err != nil {
		writeProblem(w, problem.Newf(http.StatusBadRequest, "bad_version", "update the connector by hand", "The update turn request names no valid version: %v", err))
		return
	}
	ctx := r.Context()
	groupName := s.groupNameOf(ctx, rec)
	now := s.now().UTC()
	if !in.Manual {
		if err := s.notHalted(ctx, rec, in.Version, groupName); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	t, err := s.store.TakeUpdateTurn(ctx, store.UpdateTurn{TenantID: rec.TenantID, GroupID: rec.GroupID, ConnectorID: rec.ID,
		Version: in.Version, TakenAt: now, ExpiresAt: now.Add(UpdateTurnLease)}, now)
	if errors.Is(err, store.ErrConflict) {
		holder := t.ConnectorID
		if c, err := s.store.ConnectorByID(ctx, rec.TenantID, t.ConnectorID); err == nil && c.Hostname != "" {
			holder += " (" + c.Hostname + ")"
		}
		wait := t.ExpiresAt.Sub(now).Round(time.Second)
		writeProblem(w, problem.Newf(http.StatusConflict, "update_turn_busy",
			fmt.Sprintf("wait for it to finish (at most %s) and try again", wait),
			"Connector %s of group '%s' is updating to %s, and only one connector of a group updates at a time", holder, groupName, t.Version))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !in.Manual {
		// The turn's last holder halts the release and then ends its turn;
		// a halt written between the check above and this take is seen
		// now (the turn it freed came after it), so a release rolled back
		// on one connector is never handed to the next.
		if err := s.notHalted(ctx, rec, in.Version, groupName); err != nil {
			if rerr := s.store.ReleaseUpdateTurn(ctx, rec.TenantID, rec.GroupID, rec.ID); rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
				s.log.Warn("giving back an update turn for a halted release failed", "connector", rec.ID, "error", rerr.Error())
			}
			s.writeError(w, r, err)
			return
		}
	}
	s.events.Event(eventlog.UpdateTurnGiven, fmt.Sprintf("Connector %s (%s) of group '%s' got the update turn to install %s", rec.ID, tenancy.DashIfEmpty(rec.Hostname), groupName, in.Version),
		"connector", rec.ID, "group", groupName, "version", in.Version)
	writeJSON(w, http.StatusOK, release.Turn{Group: groupName, ExpiresAt: t.ExpiresAt})
}

func (s *Server) handleEndTurn(w http.ResponseWriter, r *http.Request, rec store.Connector) {
	ctx := r.Context()
	if v := r.URL.Query().Get("rolled_back"); v != "" {
		pv, err := release.ParseVersion(v)
		if err != nil {
			writeProblem(w, problem.Newf(http.StatusBadRequest, "bad_version", "update the connector by hand", "The rolled-back version is not valid: %v", err))
			return
		}
		groupName := s.groupNameOf(ctx, rec)
		if err := s.mayHalt(ctx, rec, pv.String(), groupName); err != nil {
			if p, ok := problem.As(err); ok && p.Status < 500 {
				s.events.Event(eventlog.RollbackReportRefused, fmt.Sprintf("Connector %s (%s) of group '%s' reported release %s rolled back, and the report was refused: %s",
					rec.ID, tenancy.DashIfEmpty(rec.Hostname), groupName, pv, p.Error()), "connector", rec.ID, "group", groupName, "version", pv.String(), "code", p.Code)
			}
			s.writeError(w, r, err)
			return
		}
		if err := s.store.HaltUpdate(ctx, store.UpdateHalt{TenantID: rec.TenantID, GroupID: rec.GroupID, Version: pv.String(), ConnectorID: rec.ID, HaltedAt: s.now().UTC()}); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.events.Event(eventlog.ReleaseHalted, fmt.Sprintf("Release %s was rolled back on connector %s (%s): its automatic rollout in group '%s' is halted", pv, rec.ID, tenancy.DashIfEmpty(rec.Hostname), groupName),
			"connector", rec.ID, "group", groupName, "version", pv.String())
	}
	err := s.store.ReleaseUpdateTurn(ctx, rec.TenantID, rec.GroupID, rec.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, err)
		return
	}
	if err == nil {
		s.events.Event(eventlog.UpdateTurnEnded, fmt.Sprintf("Connector %s (%s) ended its update turn", rec.ID, tenancy.DashIfEmpty(rec.Hostname)), "connector", rec.ID)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// notHalted answers release_halted when version was rolled back in the
// connector's group, so its updaters do not install it automatically.
func (s *Server) notHalted(ctx context.Context, rec store.Connector, version, groupName string) error {
	h, err := s.store.UpdateHaltOf(ctx, rec.TenantID, rec.GroupID, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return problem.Newf(http.StatusConflict, "release_halted",
		"publish a fixed release under a new version, or install this one on a connector by hand with 'sallyport connector update --apply'",
		"Release %s was rolled back on connector %s of group '%s' at %s, so the group's updaters do not install it automatically",
		version, h.ConnectorID, groupName, h.HaltedAt.Format(time.RFC3339))
}

// mayHalt reports whether connector rec may halt the rollout of version
// in its group: only the holder of the group's update turn for that very
// version (a turn past its lease that nobody took since still counts: the
// rollback's readiness wait may outlast it), and only for a release the
// cloud publishes. Otherwise any connector of a group could stop a
// release for all the others, or halt versions not yet published.
func (s *Server) mayHalt(ctx context.Context, rec store.Connector, version, groupName string) error {
	t, err := s.store.UpdateTurnOf(ctx, rec.TenantID, rec.GroupID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil || t.ConnectorID != rec.ID || t.Version != version {
		return problem.Newf(http.StatusForbidden, "not_turn_holder",
			"only the connector that took the group's update turn for a release and rolled it back halts it; to stop a rollout, withdraw the release with 'sallyport cloud release delete'",
			"Connector %s does not hold the update turn of group '%s' for version %s, so it cannot halt that release", rec.ID, groupName, version)
	}
	rs, err := s.store.ListReleases(ctx, "", "")
	if err != nil {
		return err
	}
	for _, x := range rs {
		if x.Version == version {
			return nil
		}
	}
	return problem.Newf(http.StatusNotFound, "release_unknown",
		"check the versions with 'sallyport cloud release list'",
		"Version %s is not a release this cloud publishes, so its rollout cannot be halted", version)
}

// groupNameOf names the connector's group for messages (its id when the
// store cannot say).
func (s *Server) groupNameOf(ctx context.Context, rec store.Connector) string {
	if g, err := s.store.GroupByID(ctx, rec.TenantID, rec.GroupID); err == nil {
		return g.Name
	}
	return rec.GroupID
}
