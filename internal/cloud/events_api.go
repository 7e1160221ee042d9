package cloud

import (
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// GET /api/v1/events: the cloud's event log as a tenant's administrators
// see it. An event belongs to a tenant when its "tenant" field is the
// tenant's id or primary domain; an event without that field belongs to
// the tenant when it names connectors ("connector") and all of them are
// the tenant's (the update turns' events, for instance). Every other
// event is the cloud's own (its start, the sign-in back-off of an
// address, ...) and is shown to no tenant: the cloud's operator reads
// those with 'sallyport cloud events'.

// eventParams are the query parameters of GET /events.
var eventParams = []string{"level", "id", "since", "until", "connector", "app", "request_id", "limit"}

const (
	// maxEventWindow bounds a duration in since/until.
	maxEventWindow = 5 * 366 * 24 * time.Hour
	// maxEventFilter bounds connector, app and request_id.
	maxEventFilter = 100
	// maxEventTime bounds the text of since/until.
	maxEventTime = 64
)

// eventQuery is a parsed query of GET /events.
type eventQuery struct {
	level                     eventlog.Level
	ids                       []eventlog.ID
	since, until              time.Time
	connector, app, requestID string
	limit                     int
}

// badEventQuery is the 400 of a query parameter of GET /events.
func badEventQuery(code, format string, args ...any) error {
	return problem.Newf(http.StatusBadRequest, code, "see docs/api.md#get-events for the filters and their forms", format, args...)
}

// parseEventQuery reads and checks the filters of GET /events; now is
// what a duration in since/until counts back from.
func parseEventQuery(q url.Values, now time.Time) (eventQuery, error) {
	out := eventQuery{limit: api.DefaultEventLimit}
	for k, vs := range q {
		if !slices.Contains(eventParams, k) {
			return out, badEventQuery("bad_query", "The query parameter %q is not a filter of the event log (use %s)", tenancy.Truncate(k, 40), strings.Join(eventParams, ", "))
		}
		if len(vs) > 1 {
			return out, badEventQuery("bad_query", "The query parameter %s is given %d times, and each filter takes one value", k, len(vs))
		}
	}
	if v := q.Get("level"); v != "" {
		l, err := eventlog.ParseLevel(v)
		if err != nil {
			return out, badEventQuery("bad_level", "The level %q is not an event level (use error, warning or information)", tenancy.Truncate(v, 40))
		}
		out.level = l
	}
	if v := q.Get("id"); v != "" {
		parts := strings.Split(v, ",")
		if len(parts) > api.MaxEventIDs {
			return out, badEventQuery("bad_event_id", "The id filter names %d event ids, more than the %d one query takes", len(parts), api.MaxEventIDs)
		}
		for _, s := range parts {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 || n > 99999 {
				return out, badEventQuery("bad_event_id", "The event id %q is not a number from 1 to 99999 (give ids like 2700, or several as 2700,2108)", tenancy.Truncate(s, 40))
			}
			out.ids = append(out.ids, eventlog.ID(n))
		}
	}
	var err error
	if out.since, err = parseEventTime("since", q.Get("since"), now); err != nil {
		return out, err
	}
	if out.until, err = parseEventTime("until", q.Get("until"), now); err != nil {
		return out, err
	}
	if !out.since.IsZero() && !out.until.IsZero() && out.until.Before(out.since) {
		return out, badEventQuery("bad_range", "The time range ends (until %s) before it starts (since %s)", out.until.Format(time.RFC3339), out.since.Format(time.RFC3339))
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"connector", &out.connector}, {"app", &out.app}, {"request_id", &out.requestID}} {
		v := q.Get(f.name)
		if len(v) > maxEventFilter || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) || r == ',' }) >= 0 {
			return out, badEventQuery("bad_filter", "The %s filter is not a %s as Sallyport writes one (at most %d printable characters, no comma)", f.name, strings.ReplaceAll(f.name, "_", " "), maxEventFilter)
		}
		*f.to = v
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > api.MaxEventLimit {
			return out, badEventQuery("bad_limit", "The limit %q is not a number of events from 1 to %d", tenancy.Truncate(v, 40), api.MaxEventLimit)
		}
		out.limit = n
	}
	return out, nil
}

// parseEventTime reads since or until: a time in RFC 3339 or a duration
// back from now (1h, 30m).
func parseEventTime(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	bad := func() error {
		return badEventQuery("bad_"+name, "The %s filter %q is neither a time in RFC 3339 (2026-01-02T15:04:05Z) nor a duration back from now (1h, 30m) of at most 5 years", name, tenancy.Truncate(v, 40))
	}
	if len(v) > maxEventTime {
		return time.Time{}, bad()
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > maxEventWindow {
		return time.Time{}, bad()
	}
	return now.Add(-d).UTC(), nil
}

// match reports whether ev passes the filters that eventlog.Filter does
// not apply itself.
func (q eventQuery) match(ev *eventlog.Event) bool {
	if !q.until.IsZero() && ev.Time.After(q.until) {
		return false
	}
	if q.app != "" && ev.Fields["app"] != q.app {
		return false
	}
	if q.requestID != "" && ev.Fields["request_id"] != q.requestID {
		return false
	}
	if q.connector != "" && !slices.Contains(strings.Split(ev.Fields["connector"], ","), q.connector) {
		return false
	}
	return true
}

// eventOfTenant reports whether ev belongs to tenant t, whose connectors
// are conns (see the comment at the top).
func eventOfTenant(ev *eventlog.Event, t store.Tenant, conns map[string]bool) bool {
	if tn, ok := ev.Fields["tenant"]; ok {
		return tn != "" && (tn == t.ID || tn == t.Domain)
	}
	c := ev.Fields["connector"]
	if c == "" {
		return false
	}
	for _, id := range strings.Split(c, ",") {
		if !conns[id] {
			return false
		}
	}
	return true
}

// eventReads bounds the reads of the event log running at once: each
// may look at the newest 128 MiB.
var eventReads = make(chan struct{}, 2)

// handleListEvents is GET /events.
func (s *Server) handleListEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.User.Role.CanManage() {
		return problem.Newf(http.StatusForbidden, "forbidden",
			"ask an Application or Global Administrator of "+p.Tenant.Domain,
			"%s has the role %s, and the event log is read by Application and Global Administrators only", p.User.Name, roleTitle(p.User.Role))
	}
	q, err := parseEventQuery(r.URL.Query(), s.now())
	if err != nil {
		return err
	}
	ctx := r.Context()
	cs, err := s.store.ListConnectors(ctx, p.Tenant.ID)
	if err != nil {
		return err
	}
	conns := make(map[string]bool, len(cs))
	for _, c := range cs {
		conns[c.ID] = true
	}
	select {
	case eventReads <- struct{}{}:
		defer func() { <-eventReads }()
	case <-ctx.Done():
		return ctx.Err()
	}
	res, err := eventlog.Scan(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{
		Newest: q.limit + 1, MinLevel: q.level, Since: q.since, IDs: q.ids,
		Where: func(ev *eventlog.Event) bool { return eventOfTenant(ev, p.Tenant, conns) && q.match(ev) },
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return problem.Newf(http.StatusInternalServerError, "events_unreadable", "the cloud's operator finds the cause in its log",
			"The cloud's event log cannot be read (%v)", err)
	}
	out := api.EventList{Events: []api.Event{}, Capped: res.Capped}
	evs := res.Events
	if len(evs) > q.limit {
		evs, out.More = evs[len(evs)-q.limit:], true
	}
	for i := len(evs) - 1; i >= 0; i-- {
		out.Events = append(out.Events, apiEvent(evs[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func apiEvent(ev eventlog.Event) api.Event {
	out := api.Event{ID: int(ev.ID), Level: string(ev.Level), Source: ev.Source, Time: ev.Time, Message: ev.Message, Fields: ev.Fields}
	if d, ok := eventlog.Lookup(ev.ID); ok {
		out.Summary, out.Area = d.Summary, d.Area
	}
	return out
}
