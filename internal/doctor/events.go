package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/statedir"
)

// EventsWindow is how far back the events step looks, and EventsShown
// how many of the newest errors it names.
const (
	EventsWindow = time.Hour
	EventsShown  = 3
)

// clearedBy lists, for an error event, the later successes that replace
// it: a failed registration followed by a registration, an unreachable
// cloud followed by a tunnel that came up. An error so replaced no longer
// needs attention, and the events step does not warn about it (issue 20,
// defect 11: a failed registration warned for an hour after the next
// attempt succeeded).
var clearedBy = map[eventlog.ID][]eventlog.ID{
	eventlog.TrustExpired:       {eventlog.Registered, eventlog.CertRenewed},
	eventlog.RegistrationFailed: {eventlog.Registered},
	eventlog.CertRefused:        {eventlog.Registered, eventlog.CertRenewed, eventlog.TunnelUp}, // a tunnel up means the certificate is taken
	eventlog.CertNotYetValid:    {eventlog.Registered, eventlog.CertRenewed, eventlog.TunnelUp},
	eventlog.TLSInspected:       {eventlog.TunnelUp},
	eventlog.CloudUnreachable:   {eventlog.TunnelUp, eventlog.ConfigReceived},
	eventlog.ConfigRefused:      {eventlog.ConfigReceived},
}

// openErrors returns the error events of evs (oldest first) that no later
// event in clearedBy replaced.
func openErrors(evs []eventlog.Event) []eventlog.Event {
	var open []eventlog.Event
	for i, ev := range evs {
		if ev.Level != eventlog.LevelError {
			continue
		}
		cleared := slices.ContainsFunc(evs[i+1:], func(later eventlog.Event) bool {
			return slices.Contains(clearedBy[ev.ID], later.ID)
		})
		if !cleared {
			open = append(open, ev)
		}
	}
	return open
}

func (r *runner) checkEvents(_ context.Context, s *Step) {
	path := filepath.Join(r.o.Dir, statedir.EventsFile)
	s.Checked = fmt.Sprintf("error events of the last hour in the event log %s that no later success replaced (a registration, a renewal, a tunnel up, a configuration taken)", path)
	since := r.o.Now().Add(-EventsWindow)
	all, err := eventlog.Read(path, eventlog.Filter{Since: since})
	evs := openErrors(all)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.set(Pass, "there is no event log yet: the connector has not run or registered with this state directory", "")
		return
	case err != nil:
		s.set(Warn, fmt.Sprintf("The event log cannot be read (%v)", err),
			"run the doctor as the connector's user, or give the right --dir")
		return
	case len(evs) == 0:
		found := "no error event in the last hour"
		if n := countLevel(all, eventlog.LevelError); n > 0 {
			found = fmt.Sprintf("no error event in the last hour that a later success did not replace (%d replaced)", n)
		}
		s.set(Pass, found, "")
		return
	}
	newest := slices.Clone(evs)
	slices.Reverse(newest)
	if len(newest) > EventsShown {
		newest = newest[:EventsShown]
	}
	var lines []string
	ids := map[eventlog.ID]bool{}
	for _, ev := range evs {
		ids[ev.ID] = true
	}
	for _, ev := range newest {
		lines = append(lines, fmt.Sprintf("%d at %s: %s", ev.ID, ev.Time.UTC().Format(timeFormat), strings.TrimSuffix(ev.Message, ".")))
	}
	noun := "error events"
	if len(evs) == 1 {
		noun = "error event"
	}
	advice := fmt.Sprintf("read them with 'sallyport connector events --dir %s --level error --since 1h' (docs/events.md explains each id)", r.o.Dir)
	if ids[eventlog.TrustExpired] {
		advice = fmt.Sprintf("event 1000: the trust certificate expired; register the connector again with 'sallyport connector register --dir %s'; ", r.o.Dir) + advice
	}
	s.set(Warn, fmt.Sprintf("%d %s in the last hour; newest first: %s", len(evs), noun, strings.Join(lines, " | ")), advice)
}

func countLevel(evs []eventlog.Event, l eventlog.Level) int {
	n := 0
	for _, ev := range evs {
		if ev.Level == l {
			n++
		}
	}
	return n
}
