package updater

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/service"
	"github.com/sallyport/sallyport/internal/statedir"
)

// Outcome says what Apply did.
type Outcome string

// Outcomes of Apply.
const (
	UpToDate   Outcome = "up-to-date"  // nothing newer (to install automatically)
	Updated    Outcome = "updated"     // the new version runs
	RolledBack Outcome = "rolled-back" // the new version failed; the old one runs again
	TurnBusy   Outcome = "turn-busy"   // another connector of the group is updating
	Halted     Outcome = "halted"      // the release was rolled back in the group: not installed automatically
	LockBusy   Outcome = "lock-busy"   // another updater on this machine is updating
)

// Result is what Apply did.
type Result struct {
	Outcome Outcome `json:"outcome"`
	From    string  `json:"from"`
	To      string  `json:"to,omitempty"`
	Message string  `json:"message"`
	// Pending is a newer release that is not installed automatically
	// (auto mode only).
	Pending string `json:"pending,omitempty"`
	// Refused says why releases offered by the cloud were refused.
	Refused []string `json:"refused,omitempty"`
}

// persisted is the updater's state.json.
type persisted struct {
	// Skip lists versions rolled back here: never installed automatically
	// again (an explicit 'update --apply' still installs them).
	Skip []string `json:"skip,omitempty"`
	// Announced lists releases already reported as waiting for --apply.
	Announced []string `json:"announced,omitempty"`
	// Journal is the update in progress, so that an updater stopped in the
	// middle finishes or undoes it when it starts again.
	Journal *journal `json:"journal,omitempty"`
}

type journal struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	Previous  string    `json:"previous"` // path of the saved previous binary
	OldPID    int       `json:"old_pid"`
	StartedAt time.Time `json:"started_at"`
}

func (u *Updater) statePath() string { return filepath.Join(u.cfg.UpdaterDir, StateFile) }

func (u *Updater) load() persisted {
	var p persisted
	if err := readJSON(u.statePath(), &p); err != nil {
		u.log.Warn("the updater's state file is damaged; starting afresh", "error", err.Error())
	}
	return p
}

func (u *Updater) save(p persisted) {
	if err := writeJSON(u.statePath(), p); err != nil {
		u.log.Error("writing the updater's state failed", "error", err.Error())
	}
}

// lockUpdate takes the machine's update lock, or says who holds it.
func (u *Updater) lockUpdate() (*flock.Flock, error) {
	path := filepath.Join(u.cfg.UpdaterDir, UpdateLock)
	l := flock.New(path)
	ok, err := l.TryLock()
	if err != nil {
		return nil, problem.Newf(500, "update_lock", "run the updater as root (or SYSTEM)", "The update lock %s cannot be taken (%v)", path, err)
	}
	if !ok {
		holder := "another process"
		if raw, err := os.ReadFile(path + ".pid"); err == nil {
			holder = "process " + strings.TrimSpace(string(raw))
		}
		return nil, errLockBusy{fmt.Sprintf("Another updater (%s) is updating this connector", holder)}
	}
	os.WriteFile(path+".pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return l, nil
}

type errLockBusy struct{ msg string }

func (e errLockBusy) Error() string { return e.msg }

// Apply installs the newest release (auto: the newest major release not
// rolled back here before), taking the group's turn, and rolls back when
// the new version does not come up.
func (u *Updater) Apply(ctx context.Context, auto bool) (*Result, error) {
	lock, err := u.lockUpdate()
	var busy errLockBusy
	if errors.As(err, &busy) {
		return &Result{Outcome: LockBusy, Message: busy.msg + "; only one update runs at a time on a machine"}, nil
	}
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	s, err := u.open(ctx)
	if err != nil {
		return nil, err
	}
	p := u.load()
	if p.Journal != nil {
		u.recover(ctx, &p)
	}
	skip := map[string]bool{}
	for _, v := range p.Skip {
		skip[v] = true
	}
	chk, err := u.check(ctx, s, skip)
	if err != nil {
		return nil, err
	}
	for _, why := range chk.Refused {
		u.events.Event(eventlog.ReleaseSignatureRefused, why)
	}
	target := chk.Newest
	if auto {
		target = chk.NewestMajor
	}
	res := &Result{From: chk.Installed, Refused: chk.Refused}
	if auto && chk.Newest != nil && (target == nil || chk.Newest.Version != target.Version) {
		res.Pending = chk.Newest.Version
		if !slices.Contains(p.Announced, chk.Newest.Version) {
			u.events.Event(eventlog.UpdateAvailable, fmt.Sprintf("Release %s is available but is not a major release: it is installed only with 'sallyport connector update --apply'", chk.Newest.Version),
				"version", chk.Newest.Version, "installed", chk.Installed)
			p.Announced = append(p.Announced, chk.Newest.Version)
			u.save(p)
		}
	}
	if target == nil {
		res.Outcome = UpToDate
		res.Message = fmt.Sprintf("Version %s is installed and no newer release is available for this connector", chk.Installed)
		if auto {
			res.Message = fmt.Sprintf("Version %s is installed and no newer major release is available", chk.Installed)
		}
		if len(chk.Refused) > 0 {
			res.Message += fmt.Sprintf(" (%d release(s) refused: see the updater's event log)", len(chk.Refused))
		}
		u.events.Event(eventlog.UpdateNothingNewer, res.Message, "installed", chk.Installed)
		return res, nil
	}
	return u.install(ctx, s, &p, chk.Installed, *target, !auto)
}

// install takes the turn, downloads, swaps, restarts and verifies.
func (u *Updater) install(ctx context.Context, s *session, p *persisted, from string, m release.Manifest, manual bool) (out *Result, _ error) {
	res := &Result{From: from, To: m.Version}
	var turn release.Turn
	err := cloudlink.ControlCall(ctx, s.st, s.dial, http.MethodPost, release.PathUpdateTurn, release.TurnRequest{Version: m.Version, Manual: manual}, &turn)
	var pr *problem.Problem
	if errors.As(err, &pr) && pr.Code == "update_turn_busy" {
		res.Outcome, res.Message = TurnBusy, pr.Message
		u.events.Event(eventlog.UpdateTurnWaiting, "Waiting for the group's update turn: "+pr.Message, "version", m.Version)
		return res, nil
	}
	if errors.As(err, &pr) && pr.Code == "release_halted" {
		res.Outcome, res.Message = Halted, pr.Message
		if !slices.Contains(p.Skip, m.Version) {
			p.Skip = append(p.Skip, m.Version)
			u.save(*p)
		}
		u.events.Event(eventlog.ReleaseHaltedInGroup, pr.Message+"; it is not installed automatically here either", "version", m.Version)
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		rolledBack := ""
		if out != nil && out.Outcome == RolledBack {
			rolledBack = m.Version
		}
		u.endTurn(s, rolledBack)
	}()
	u.events.Event(eventlog.UpdateStarted, fmt.Sprintf("Updating the connector from %s to %s (group '%s'): downloading %d bytes", from, m.Version, turn.Group, m.Size),
		"from", from, "to", m.Version, "sha256", m.SHA256)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	tmp, err := u.download(dctx, s, m)
	cancel()
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	info, err := BinaryVersion(ctx, tmp)
	if err != nil || info.Version != m.Version {
		why := fmt.Sprintf("the downloaded build reports version %q", info.Version)
		if err != nil {
			why = "the downloaded build does not run here: " + err.Error()
		}
		return nil, u.refuse(m, why)
	}
	old, oldRunning := statedir.ReadRunStatus(u.cfg.Dir, time.Now())
	j := &journal{From: from, To: m.Version, Previous: u.cfg.Binary + ".previous", StartedAt: time.Now().UTC()}
	if oldRunning {
		j.OldPID = old.PID
	}
	p.Journal = j
	u.save(*p)
	if err := swap(tmp, u.cfg.Binary, j.Previous); err != nil {
		p.Journal = nil
		u.save(*p)
		u.events.Event(eventlog.BinarySwapFailed, fmt.Sprintf("Replacing %s failed; version %s stays installed: %v", u.cfg.Binary, from, err))
		return nil, problem.Newf(500, "swap_failed", "check the permissions of the binary's directory", "Replacing %s failed (%v)", u.cfg.Binary, err)
	}
	u.events.Event(eventlog.BinaryReplaced, fmt.Sprintf("The binary %s now holds version %s (the previous one is kept as %s); restarting the connector (%s)", u.cfg.Binary, m.Version, j.Previous, u.restart),
		"from", from, "to", m.Version)
	if !oldRunning && u.restart.Method == service.MethodSignal {
		p.Journal = nil
		u.save(*p)
		res.Outcome = Updated
		res.Message = fmt.Sprintf("Version %s is installed; the connector was not running, so it starts with it next time", m.Version)
		u.events.Event(eventlog.UpdateInstalledNotRunning, res.Message, "from", from, "to", m.Version)
		return res, nil
	}
	if err := u.restartConnector(ctx, j.OldPID); err == nil {
		err = u.waitReady(ctx, m.Version, j.OldPID)
		if err == nil {
			p.Journal = nil
			u.save(*p)
			res.Outcome = Updated
			res.Message = fmt.Sprintf("The connector was updated from %s to %s and is ready", from, m.Version)
			u.events.Event(eventlog.UpdateCompleted, res.Message, "from", from, "to", m.Version)
			return res, nil
		}
		return u.rollback(ctx, p, err)
	} else {
		return u.rollback(ctx, p, fmt.Errorf("restarting it failed: %w", err))
	}
}

// rollback puts the previous binary back after a failed update.
func (u *Updater) rollback(ctx context.Context, p *persisted, cause error) (*Result, error) {
	j := p.Journal
	res := &Result{From: j.From, To: j.To}
	if err := restorePrevious(j.Previous, u.cfg.Binary); err != nil {
		msg := fmt.Sprintf("Version %s failed (%v) and rolling back to %s failed too: %v; reinstall sallyport %s by hand", j.To, cause, j.From, err, j.From)
		u.events.Event(eventlog.BinarySwapFailed, msg, "from", j.From, "to", j.To)
		return nil, problem.New(500, "rollback_failed", "reinstall the previous version by hand", msg)
	}
	if !slices.Contains(p.Skip, j.To) {
		p.Skip = append(p.Skip, j.To)
	}
	p.Journal = nil
	u.save(*p)
	pid := 0
	if st, ok := statedir.ReadRunStatus(u.cfg.Dir, time.Now()); ok {
		pid = st.PID
	}
	restartErr := u.restartConnector(ctx, pid)
	if restartErr == nil {
		restartErr = u.waitReady(ctx, j.From, -1)
	}
	res.Outcome = RolledBack
	res.Message = fmt.Sprintf("Version %s did not come up (%v), so the connector was rolled back to %s; %s is not installed automatically again", j.To, cause, j.From, j.To)
	if restartErr != nil {
		res.Message += fmt.Sprintf(", but version %s is not ready either (%v): look at 'sallyport connector doctor'", j.From, restartErr)
	}
	u.events.Event(eventlog.UpdateRolledBack, res.Message, "from", j.From, "to", j.To)
	return res, nil
}

// recover finishes or undoes an update an earlier updater left half done.
func (u *Updater) recover(ctx context.Context, p *persisted) {
	j := p.Journal
	if info, err := BinaryVersion(ctx, u.cfg.Binary); err == nil && info.Version == j.From {
		p.Journal = nil // the swap never happened
		u.save(*p)
		return
	}
	if err := u.waitReady(ctx, j.To, j.OldPID); err == nil {
		p.Journal = nil
		u.save(*p)
		u.events.Event(eventlog.UpdateCompleted, fmt.Sprintf("An interrupted update to %s was found complete: the connector is ready with it", j.To), "to", j.To)
		return
	}
	u.rollback(ctx, p, errors.New("the update was interrupted and the new version is not ready"))
}

// endTurn ends the group's update turn; rolledBack names a version that
// was rolled back here, which halts its rollout in the group.
func (u *Updater) endTurn(s *session, rolledBack string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	path := release.PathUpdateTurn
	if rolledBack != "" {
		path += "?rolled_back=" + url.QueryEscape(rolledBack)
	}
	if err := cloudlink.ControlCall(ctx, s.st, s.dial, http.MethodDelete, path, nil, nil); err != nil {
		u.log.Warn("ending the update turn failed; it expires on its own", "error", err.Error())
	}
}

// restartConnector restarts the connector the configured way; pid is the
// running connector's (0 when none runs).
func (u *Updater) restartConnector(ctx context.Context, pid int) error {
	if u.restart.Method == service.MethodSignal {
		if pid <= 0 {
			return nil // not running: its supervisor starts it with the new binary
		}
		return terminate(pid, u.cfg.Binary)
	}
	return service.Restart(ctx, u.restart.String())
}

// waitReady waits until status.json shows a connector other than oldPID
// (-1: any) with version v and a tunnel up.
func (u *Updater) waitReady(ctx context.Context, v string, oldPID int) error {
	deadline := time.Now().Add(u.cfg.ReadyTimeout)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var last statedir.RunStatus
	var fresh bool
	for {
		last, fresh = statedir.ReadRunStatus(u.cfg.Dir, time.Now())
		if fresh && last.PID != oldPID && last.Version == v && last.TunnelsUp > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	switch {
	case !fresh:
		return fmt.Errorf("no connector process reported ready with version %s within %s", v, u.cfg.ReadyTimeout)
	case last.Version != v:
		return fmt.Errorf("the running connector reports version %s, not %s, after %s", last.Version, v, u.cfg.ReadyTimeout)
	default:
		why := "no tunnel to the cloud came up"
		if last.LastError != "" {
			why += ": " + last.LastError
		}
		return fmt.Errorf("version %s runs but %s within %s", v, why, u.cfg.ReadyTimeout)
	}
}
