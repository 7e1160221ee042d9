package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/updater"
)

// UpdaterWindow is how far back the updater step looks for problems.
const UpdaterWindow = 24 * time.Hour

// updaterProblems are the updater events that explain a connector left on
// an old version.
var updaterProblems = map[eventlog.ID]bool{
	eventlog.ReleaseSignatureRefused: true, eventlog.ReleaseBinaryRefused: true, eventlog.UpdateRolledBack: true,
	eventlog.BinarySwapFailed: true, eventlog.UpdateCheckFailed: true, eventlog.UpdaterAlreadyRunning: true,
	eventlog.ReleaseHaltedInGroup: true, eventlog.ReleaseKeyMissing: true, eventlog.ReleaseKeyMismatch: true,
}

// checkUpdater answers "why is my connector still using an
// older version": is an updater service running for this connector, and
// did it record problems?
func (r *runner) checkUpdater(_ context.Context, s *Step) {
	dir := updater.DefaultDir(r.o.Dir)
	s.Checked = fmt.Sprintf("the updater of this connector (its directory %s): whether its service runs and the problems it recorded in the last 24 hours", dir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		s.Status, s.Found = Skip, fmt.Sprintf("Not checked: no updater was set up for this connector (%s does not exist), so it is updated by hand; 'sallyport connector install' sets one up (docs/install.md#updates)", dir)
		return
	}
	evs, err := eventlog.Read(filepath.Join(dir, updater.EventsFile), eventlog.Filter{Since: r.o.Now().Add(-UpdaterWindow)})
	if errors.Is(err, fs.ErrPermission) {
		s.Status, s.Found = Skip, fmt.Sprintf("Not checked: the updater's directory %s is readable by root only; run the doctor as root to check it", dir)
		return
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.set(Warn, fmt.Sprintf("The updater's event log cannot be read (%v)", err), "run the doctor as root")
		return
	}
	running, pid := serviceRunning(dir)
	var problems []eventlog.Event
	var last *eventlog.Event
	for i := range evs {
		ev := evs[i]
		if updaterProblems[ev.ID] {
			problems = append(problems, ev)
		}
		if ev.ID == eventlog.UpdateNothingNewer || ev.ID == eventlog.UpdateAvailable || ev.ID == eventlog.UpdateCompleted || ev.ID == eventlog.UpdateInstalledNotRunning {
			last = &evs[i]
		}
	}
	state := "The updater service runs"
	if pid != "" {
		state += " (process " + pid + ")"
	}
	if !running {
		state = "The updater service is not running"
	}
	if last != nil {
		state += fmt.Sprintf("; its last check, at %s: %s", last.Time.UTC().Format(timeFormat), strings.TrimSuffix(last.Message, "."))
	}
	if len(problems) > 0 {
		slices.Reverse(problems)
		var lines []string
		for _, ev := range problems[:min(len(problems), EventsShown)] {
			lines = append(lines, fmt.Sprintf("%d at %s: %s", ev.ID, ev.Time.UTC().Format(timeFormat), strings.TrimSuffix(ev.Message, ".")))
		}
		advice := fmt.Sprintf("read them with 'sallyport connector update events --dir %s --since 24h' (docs/events.md explains each id)", r.o.Dir)
		if !running {
			advice = "start the updater service (systemctl start sallyport-updater, or the SallyportUpdater service on Windows), then " + advice
		}
		s.set(Warn, fmt.Sprintf("%s; %d problem(s) in the last 24 hours, newest first: %s", state, len(problems), strings.Join(lines, " | ")), advice)
		return
	}
	if !running {
		s.set(Warn, state+": major releases are not installed automatically",
			"start it: systemctl start sallyport-updater (the SallyportUpdater service on Windows), or update by hand with 'sallyport connector update --apply'")
		return
	}
	s.set(Pass, state, "")
}

// serviceRunning reports whether an updater service holds its lock in dir,
// and the pid it wrote.
func serviceRunning(dir string) (bool, string) {
	path := filepath.Join(dir, updater.ServiceLock)
	if _, err := os.Stat(path); err != nil {
		return false, ""
	}
	l := flock.New(path)
	ok, err := l.TryRLock()
	if err != nil {
		return false, ""
	}
	if ok {
		l.Unlock()
		return false, ""
	}
	raw, _ := os.ReadFile(path + ".pid")
	return true, strings.TrimSpace(string(raw))
}
