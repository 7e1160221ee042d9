package updater

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/version"
)

// Run is the updater service: it checks at start (after a short random
// delay) and then every Interval (±10 %), installing major releases on
// its own. Only one updater service runs per state directory.
func (u *Updater) Run(ctx context.Context) error {
	path := filepath.Join(u.cfg.UpdaterDir, ServiceLock)
	l := flock.New(path)
	ok, err := l.TryLock()
	if err != nil {
		return problem.Newf(500, "update_lock", "run the updater as root (or SYSTEM), which owns the state directory's updater/ files",
			"The updater service cannot take its lock %s (%v)", path, err)
	}
	if !ok {
		u.events.Event(eventlog.UpdaterAlreadyRunning, "Another updater service already runs for this connector; this one stops", "lock", path)
		return problem.Newf(409, "updater_running", "stop the other one first (systemctl stop sallyport-updater), or run a single update with 'sallyport connector update --apply'",
			"Another updater service already runs for the connector in %s (it holds %s)", u.cfg.Dir, path)
	}
	defer l.Unlock()
	os.WriteFile(path+".pid", []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600)
	u.events.Event(eventlog.UpdaterStarted, fmt.Sprintf("The updater %s started: checking every %s for the connector in %s (binary %s, restart by %s)",
		version.Version, u.cfg.Interval, u.cfg.Dir, u.cfg.Binary, u.restart), "interval", u.cfg.Interval.String())
	defer u.events.Event(eventlog.UpdaterStopped, "The updater stopped")
	wait := jitter(u.cfg.Interval/10, 1) // the first check comes soon
	if wait > time.Minute {
		wait = time.Minute
	}
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = jitter(u.cfg.Interval, 0.1)
		res, err := u.Apply(ctx, true)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			u.events.Event(eventlog.UpdateCheckFailed, "The update check failed and is retried at the next check: "+err.Error())
		case res.Outcome == TurnBusy || res.Outcome == LockBusy:
			// Try again soon: the other update takes minutes.
			if busy := jitter(min(u.cfg.Interval, 30*time.Second), 0.2); busy < wait {
				wait = busy
			}
			if res.Outcome == LockBusy {
				u.events.Event(eventlog.UpdaterAlreadyRunning, res.Message)
			}
		}
	}
}

// jitter returns d changed by a random fraction of at most f of it.
func jitter(d time.Duration, f float64) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}
