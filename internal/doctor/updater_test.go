package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gofrs/flock"

	"github.com/sallyport/sallyport/internal/doctor"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/updater"
)

// TestUpdater: "why is my connector still on an older version":
// no updater set up is not checked; a stopped service warns; a running one
// passes with its last check; problems of the last day warn, newest first.
func TestUpdater(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		running bool
		events  func(l *eventlog.Log)
		want    expect
	}{
		{"stopped, nothing recorded", false, nil,
			expect{"updater", doctor.Warn, []string{"The updater service is not running", "major releases are not installed automatically"}, []string{"systemctl start sallyport-updater", "update --apply"}}},
		{"running, up to date", true, func(l *eventlog.Log) {
			l.Event(eventlog.UpdateNothingNewer, "Version 2.0.0 is installed and no newer major release is available")
		}, expect{"updater", doctor.Pass, []string{"The updater service runs (process " + strconv.Itoa(os.Getpid()) + ")", "its last check, at ", "no newer major release"}, nil}},
		{"running, a rollback", true, func(l *eventlog.Log) {
			l.Event(eventlog.UpdateStarted, "Updating the connector from 2.0.0 to 3.0.0")
			l.Event(eventlog.UpdateRolledBack, "Version 3.0.0 did not come up (no tunnel), so the connector was rolled back to 2.0.0")
			l.Event(eventlog.UpdateCheckFailed, "The update check failed and is retried at the next check: the cloud is down")
		}, expect{"updater", doctor.Warn, []string{"2 problem(s) in the last 24 hours, newest first: 3011 at ", "the cloud is down | 3009 at "}, []string{"sallyport connector update events --dir"}}},
		{"stopped, a refused release", false, func(l *eventlog.Log) {
			l.Event(eventlog.ReleaseSignatureRefused, "A release offered by the cloud was refused: bad signature")
		}, expect{"updater", doctor.Warn, []string{"The updater service is not running", "1 problem(s)", "3004 at "}, []string{"start the updater service", "update events"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "connector")
			upd := updater.DefaultDir(dir)
			if err := os.MkdirAll(upd, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.events != nil {
				l, err := eventlog.Open(eventlog.Config{Path: filepath.Join(upd, updater.EventsFile), Source: "updater"})
				if err != nil {
					t.Fatal(err)
				}
				tt.events(l)
				l.Close()
			}
			if tt.running {
				l := flock.New(filepath.Join(upd, updater.ServiceLock))
				if ok, err := l.TryLock(); !ok || err != nil {
					t.Fatalf("lock: %v %v", ok, err)
				}
				defer l.Unlock()
				os.WriteFile(filepath.Join(upd, updater.ServiceLock+".pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
			}
			rep := doctor.Run(context.Background(), doctor.Options{Dir: dir})
			checkSteps(t, rep, []expect{tt.want}, nil)
		})
	}
}
