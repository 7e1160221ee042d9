package console

import (
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
)

func TestOverviewFigures(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{perSecond(0), "0"}, {perSecond(-1), "0"}, {perSecond(0.001), "<0.01"}, {perSecond(0.5), "0.50"},
		{perSecond(9.999), "10.00"}, {perSecond(12.4), "12"},
		{percent(0), "0 %"}, {percent(0.001), "<1 %"}, {percent(0.25), "25 %"}, {percent(1), "100 %"},
		{millis(5), "5 ms"}, {millis(2500), "2.5 s"}, {millis(90000), "90 s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestOverviewAppHealth(t *testing.T) {
	for _, tc := range []struct {
		app         api.OverviewApp
		text, class string
		p95, rate   string
	}{
		{api.OverviewApp{Health: api.HealthOK, Requests: 10, P95Millis: 25}, "OK", "ok", "≤ 25 ms", "0 %"},
		{api.OverviewApp{Health: api.HealthIdle}, "Idle: no request in the last hour", "ok", "-", "-"},
		{api.OverviewApp{Health: api.HealthErrors, Requests: 4, Errors: 1, ErrorRate: 0.25, P95Millis: 90000, P95Over: true},
			"Failing: 1 of 4 requests failed", "bad", "over 90 s", "25 %"},
		{api.OverviewApp{Health: api.HealthNoConnector, Group: "Branch"}, "Unreachable: group 'Branch' has no active connector", "bad", "-", "-"},
		{api.OverviewApp{Health: "new-kind"}, "new-kind", "warn", "-", "-"},
	} {
		v := newAppView(tc.app)
		if v.HealthText != tc.text || v.HealthClass != tc.class || v.P95 != tc.p95 || v.ErrorRate != tc.rate {
			t.Errorf("%+v: %q %q %q %q, want %q %q %q %q", tc.app, v.HealthText, v.HealthClass, v.P95, v.ErrorRate, tc.text, tc.class, tc.p95, tc.rate)
		}
	}
}

// TestOverviewConnectorChart: the charts and figures use the full
// minutes only (the current one, still counting, would change the live
// section at every refresh).
func TestOverviewConnectorChart(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	oc := api.OverviewConnector{Connector: api.Connector{ID: "c_1", Hostname: "vm", Tunnels: 2}}
	for i := range 60 {
		m := api.Minute{Start: t0.Add(time.Duration(i) * time.Minute)}
		switch i {
		case 58: // the last full minute
			m.Requests, m.Errors, m.PerSecond, m.ErrorRate = 120, 30, 2, 0.25
		case 59: // the current minute
			m.Requests, m.Errors, m.PerSecond, m.ErrorRate = 600, 600, 50, 1
		}
		oc.Minutes = append(oc.Minutes, m)
	}
	v := newOverviewConnector(oc)
	if !v.Connected || v.Rate != "2.00 req/s" || v.Errors != "25 % errors" {
		t.Errorf("connected %v, %q, %q; want true, 2.00 req/s, 25 %% errors", v.Connected, v.Rate, v.Errors)
	}
	_, pts := svgOf(t, string(v.RateChart))
	if len(pts) != 59 || pts[58][1] != sparkPad || pts[57][1] != sparkHeight-sparkPad {
		t.Errorf("the rate chart has %d points, the last at y %v; want 59, the last at the top", len(pts), pts[len(pts)-1][1])
	}
	for _, want := range []string{"Requests per second to vm", "2.00 in the last minute, at most 2.00"} {
		if !strings.Contains(string(v.RateChart), want) {
			t.Errorf("the rate chart's label lacks %q:\n%s", want, v.RateChart)
		}
	}
	if !strings.Contains(string(v.ErrorChart), "Error rate of vm over the last hour, a point a minute: 25 % in the last minute, at most 25 %") {
		t.Errorf("the error chart's label:\n%s", v.ErrorChart)
	}
}
