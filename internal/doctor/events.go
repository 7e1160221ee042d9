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

	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/eventlog"
)

// EventsWindow is how far back the events step looks, and EventsShown
// how many of the newest errors it names.
const (
	EventsWindow = time.Hour
	EventsShown  = 3
)

func (r *runner) checkEvents(_ context.Context, s *Step) {
	path := filepath.Join(r.o.Dir, connector.EventsFile)
	s.Checked = fmt.Sprintf("error events of the last hour in the event log %s", path)
	since := r.o.Now().Add(-EventsWindow)
	evs, err := eventlog.Read(path, eventlog.Filter{MinLevel: eventlog.LevelError, Since: since})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.set(Pass, "there is no event log yet: the connector has not run or registered with this state directory", "")
		return
	case err != nil:
		s.set(Warn, fmt.Sprintf("The event log cannot be read (%v)", err),
			"run the doctor as the connector's user, or give the right --dir")
		return
	case len(evs) == 0:
		s.set(Pass, "no error event in the last hour", "")
		return
	}
	newest := slices.Clone(evs)
	slices.Reverse(newest)
	if len(newest) > EventsShown {
		newest = newest[:EventsShown]
	}
	var lines []string
	ids := map[int]bool{}
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
	if ids[1000] {
		advice = fmt.Sprintf("event 1000: the trust certificate expired; register the connector again with 'sallyport connector register --dir %s'; ", r.o.Dir) + advice
	}
	s.set(Warn, fmt.Sprintf("%d %s in the last hour; newest first: %s", len(evs), noun, strings.Join(lines, " | ")), advice)
}
