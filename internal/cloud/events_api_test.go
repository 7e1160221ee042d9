package cloud

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// appendEvents writes evs to the cloud's event log as its own lines.
func appendEvents(t testing.TB, s *Server, evs ...eventlog.Event) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.cfg.DataDir, datadir.EventsFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, ev := range evs {
		if ev.Source == "" {
			ev.Source = "cloud"
		}
		b, _ := json.Marshal(ev)
		if _, err := f.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

// eventFixture writes events of contoso.com and fabrikam.com (and of the
// cloud itself) ten to two minutes ago, and returns the first's time.
// Each event's message is its name in the tests.
func eventFixture(t testing.TB, s *Server) time.Time {
	t.Helper()
	ctx := t.Context()
	contoso, err := s.store.TenantByDomain(ctx, "contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	fabrikam, err := s.store.TenantByDomain(ctx, "fabrikam.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, tenant string }{{"c_con1", contoso.ID}, {"c_fab1", fabrikam.ID}} {
		g, err := s.store.GroupByName(ctx, c.tenant, "Default")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.store.CreateConnector(ctx, store.Connector{ID: c.id, TenantID: c.tenant, GroupID: g.ID, Hostname: "host-" + c.id, Version: "1.0.0", CertSerial: c.id, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	f := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	appendEvents(t, s,
		eventlog.Event{ID: eventlog.EdgeRequestFailed, Level: eventlog.LevelError, Time: at(0), Message: "c-web-fail",
			Fields: f("tenant", "contoso.com", "app", "web", "request_id", "r1", "connector", "c_con1")},
		eventlog.Event{ID: eventlog.ConnectorMoved, Level: eventlog.LevelInformation, Time: at(1), Message: "c-moved",
			Fields: f("tenant", contoso.ID, "connector", "c_con1")},
		eventlog.Event{ID: eventlog.UpdateTurnGiven, Level: eventlog.LevelInformation, Time: at(2), Message: "c-turn",
			Fields: f("connector", "c_con1", "version", "1.1.0")},
		eventlog.Event{ID: eventlog.CloudStarted, Level: eventlog.LevelInformation, Time: at(3), Message: "cloud-start"},
		eventlog.Event{ID: eventlog.EdgeRequestFailed, Level: eventlog.LevelError, Time: at(4), Message: "f-web-fail",
			Fields: f("tenant", "fabrikam.com", "app", "web", "request_id", "r2", "connector", "c_fab1")},
		eventlog.Event{ID: eventlog.UpdateTurnGiven, Level: eventlog.LevelInformation, Time: at(5), Message: "f-turn",
			Fields: f("connector", "c_fab1")},
		eventlog.Event{ID: eventlog.TunnelRefusedLimit, Level: eventlog.LevelWarning, Time: at(6), Message: "c-limit",
			Fields: f("tenant", "contoso.com", "connector", "c_gone,c_con1")},
		eventlog.Event{ID: eventlog.ReleaseHalted, Level: eventlog.LevelWarning, Time: at(7), Message: "mixed",
			Fields: f("connector", "c_con1,c_fab1")},
		eventlog.Event{ID: eventlog.AppPublished, Level: eventlog.LevelInformation, Time: at(8), Message: "c-hr-published",
			Fields: f("tenant", "contoso.com", "app", "hr")},
		eventlog.Event{ID: eventlog.AppPublished, Level: eventlog.LevelInformation, Time: at(8), Message: "empty-tenant",
			Fields: f("tenant", "", "connector", "c_con1")},
	)
	return t0
}

func eventNames(evs []api.Event) string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Message)
	}
	return strings.Join(out, " ")
}

// TestEventsAPI: each tenant's administrators read their own tenant's
// events only (never another tenant's, never the cloud's own), newest
// first, with every filter.
func TestEventsAPI(t *testing.T) {
	s := newTestServer(t)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := login(t, s, "admin@fabrikam.com", testPassword)
	ops, bob := addOpsAndBob(t, s, contoso)
	t0 := eventFixture(t, s)
	rfc := func(m int) string {
		return url.QueryEscape(t0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339))
	}

	tests := []struct {
		name, token, query, want string
		more                     bool
	}{
		{"all of contoso", contoso, "", "c-hr-published c-limit c-turn c-moved c-web-fail", false},
		{"an application administrator reads them too", ops, "", "c-hr-published c-limit c-turn c-moved c-web-fail", false},
		{"all of fabrikam", fabrikam, "", "f-turn f-web-fail", false},
		{"warnings and errors", contoso, "level=warning", "c-limit c-web-fail", false},
		{"errors", contoso, "level=ERROR", "c-web-fail", false},
		{"one id", contoso, "id=2700", "c-web-fail", false},
		{"two ids", contoso, "id=2106,%202301", "c-turn c-moved", false},
		{"since a time", contoso, "since=" + rfc(2), "c-hr-published c-limit c-turn", false},
		{"until a time", contoso, "until=" + rfc(1), "c-moved c-web-fail", false},
		{"between", contoso, "since=" + rfc(1) + "&until=" + rfc(6), "c-limit c-turn c-moved", false},
		{"since a duration", contoso, "since=5m", "c-hr-published c-limit", false},
		{"until a duration", contoso, "until=9m", "c-moved c-web-fail", false},
		{"connector", contoso, "connector=c_con1", "c-limit c-turn c-moved c-web-fail", false},
		{"another tenant's connector", contoso, "connector=c_fab1", "", false},
		{"fabrikam asks for contoso's connector", fabrikam, "connector=c_con1", "", false},
		{"app", contoso, "app=web", "c-web-fail", false},
		{"fabrikam's app of the same name", fabrikam, "app=web", "f-web-fail", false},
		{"request id", contoso, "request_id=r1", "c-web-fail", false},
		{"another tenant's request id", contoso, "request_id=r2", "", false},
		{"limit", contoso, "limit=2", "c-hr-published c-limit", true},
		{"limit exactly", contoso, "limit=5", "c-hr-published c-limit c-turn c-moved c-web-fail", false},
		{"all combined", contoso, "level=error&id=2700&since=1h&connector=c_con1&app=web&request_id=r1&limit=1", "c-web-fail", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := getJSON[api.EventList](t, s, tt.token, "/events?"+tt.query)
			if n := eventNames(got.Events); n != tt.want || got.More != tt.more {
				t.Errorf("GET /events?%s = %q more=%v, want %q more=%v", tt.query, n, got.More, tt.want, tt.more)
			}
			if got.Events == nil {
				t.Error("events is null, want a list")
			}
		})
	}
	ev := getJSON[api.EventList](t, s, contoso, "/events?id=2700").Events[0]
	if ev.Summary != "A request to an application failed" || ev.Level != "error" || ev.Fields["request_id"] != "r1" || ev.Source != "cloud" {
		t.Errorf("event 2700 = %+v", ev)
	}

	bad := []struct{ name, token, query, code string }{
		{"a user", bob, "", "forbidden"},
		{"unknown parameter", contoso, "tenant=fabrikam.com", "bad_query"},
		{"a parameter twice", contoso, "level=error&level=warning", "bad_query"},
		{"level", contoso, "level=loud", "bad_level"},
		{"id not a number", contoso, "id=abc", "bad_event_id"},
		{"id zero", contoso, "id=0", "bad_event_id"},
		{"id empty in a list", contoso, "id=2700,", "bad_event_id"},
		{"too many ids", contoso, "id=" + strings.Repeat("2700,", 20) + "2700", "bad_event_id"},
		{"since a word", contoso, "since=yesterday", "bad_since"},
		{"since negative", contoso, "since=-1h", "bad_since"},
		{"since too far", contoso, "since=50000h", "bad_since"},
		{"until a date without time", contoso, "until=2026-01-02", "bad_until"},
		{"until before since", contoso, "since=" + rfc(5) + "&until=" + rfc(1), "bad_range"},
		{"limit zero", contoso, "limit=0", "bad_limit"},
		{"limit too high", contoso, "limit=1001", "bad_limit"},
		{"limit a word", contoso, "limit=all", "bad_limit"},
		{"app too long", contoso, "app=" + strings.Repeat("a", 101), "bad_filter"},
		{"connector list", contoso, "connector=c_con1,c_fab1", "bad_filter"},
		{"request id with a control character", contoso, "request_id=r%0A1", "bad_filter"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			rec, eb := call(t, s, "GET", "/events?"+tt.query, tt.token, nil)
			want := http.StatusBadRequest
			if tt.code == "forbidden" {
				want = http.StatusForbidden
			}
			if rec.Code != want || eb.Error.Code != tt.code {
				t.Fatalf("GET /events?%s = %d %q (%s), want %d %q", tt.query, rec.Code, eb.Error.Code, eb.Error.Message, want, tt.code)
			}
			if !strings.Contains(eb.Error.Message, eb.Error.Step) || strings.Count(eb.Error.Message, ". ") > 0 {
				t.Errorf("message %q: not one sentence carrying its step %q", eb.Error.Message, eb.Error.Step)
			}
		})
	}
}

// TestEventsAPIWithoutLog: a cloud whose log file is gone answers an
// empty list, not an error.
func TestEventsAPIWithoutLog(t *testing.T) {
	s := newTestServer(t)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	if err := os.Remove(filepath.Join(s.cfg.DataDir, datadir.EventsFile)); err != nil {
		t.Fatal(err)
	}
	got := getJSON[api.EventList](t, s, contoso, "/events")
	if got.Events == nil || len(got.Events) != 0 || got.More {
		t.Errorf("GET /events without a log = %+v, want an empty list", got)
	}
}

// FuzzEventQuery: any query either parses into bounded filters or is
// refused with a 400 sentence; it never panics.
func FuzzEventQuery(f *testing.F) {
	for _, s := range []string{"", "level=error", "id=2700,2108", "since=1h&until=2026-01-02T15:04:05Z", "limit=1000",
		"connector=c_1&app=web&request_id=r", "since=9223372036854775807ns", "id=99999", "until=-5m", "x=1", "limit=1&limit=2"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseEventQuery(vals, now)
		if err != nil {
			p, ok := problem.As(err)
			if !ok || p.Status != http.StatusBadRequest || !strings.Contains(p.Error(), p.Step) {
				t.Fatalf("%q: error %v is not a 400 problem with its step", raw, err)
			}
			return
		}
		if q.limit < 1 || q.limit > api.MaxEventLimit || len(q.ids) > api.MaxEventIDs {
			t.Fatalf("%q: limit %d, %d ids", raw, q.limit, len(q.ids))
		}
		if !q.since.IsZero() && !q.until.IsZero() && q.until.Before(q.since) {
			t.Fatalf("%q: until %v before since %v", raw, q.until, q.since)
		}
		for _, s := range []string{q.app, q.connector, q.requestID} {
			if len(s) > maxEventFilter || strings.Contains(s, ",") {
				t.Fatalf("%q: filter %q", raw, s)
			}
		}
	})
}
