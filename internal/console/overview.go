package console

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"

	"github.com/sallyport/sallyport/internal/api"
)

// overviewView is the data of the overview.
type overviewView struct {
	Attention []api.Attention
	Groups    []overviewGroup
	Apps      []appView
}

type overviewGroup struct {
	Name       string
	Active     int
	Apps       int
	Connectors []overviewConnector
}

type overviewConnector struct {
	api.Connector
	Connected    bool          // has tunnels to this instance now
	Rate, Errors string        // the last full minute, in words
	RateChart    template.HTML // requests per second, the last hour
	ErrorChart   template.HTML // error rate, the last hour
}

type appView struct {
	api.OverviewApp
	HealthText  string
	HealthClass string // ok, warn or bad: the colour; the text says it too
	P95         string
	ErrorRate   string
}

// overviewPage is the admin center's first page (GET /admin/): what needs
// attention, the connectors by group with their last hour, and the
// applications' health. Its attention and connectors sections are live
// regions: console.js refreshes them every few seconds.
func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request, u User) error {
	var ov api.Overview
	if err := c.Call(r, u, http.MethodGet, "/overview", nil, &ov); err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "overview", "overview", newOverviewView(&ov))
	return nil
}

func newOverviewView(ov *api.Overview) overviewView {
	v := overviewView{Attention: ov.Attention}
	for _, g := range ov.Groups {
		gv := overviewGroup{Name: g.Name, Active: g.Active, Apps: g.Apps}
		for _, oc := range g.Connectors {
			gv.Connectors = append(gv.Connectors, newOverviewConnector(oc))
		}
		v.Groups = append(v.Groups, gv)
	}
	for _, a := range ov.Apps {
		v.Apps = append(v.Apps, newAppView(a))
	}
	return v
}

// newOverviewConnector charts a connector's full minutes: the current minute
// is left out, so that a live refresh changes the section at most once a
// minute (and a screen reader is not told of every request).
func newOverviewConnector(oc api.OverviewConnector) overviewConnector {
	cv := overviewConnector{Connector: oc.Connector, Connected: oc.Tunnels > 0}
	full := oc.Minutes
	if len(full) > 0 {
		full = full[:len(full)-1]
	}
	rates, errs := make([]float64, len(full)), make([]float64, len(full))
	var topRate, topErr float64
	for i, m := range full {
		rates[i], errs[i] = m.PerSecond, m.ErrorRate
		topRate, topErr = max(topRate, m.PerSecond), max(topErr, m.ErrorRate)
	}
	var last api.Minute
	if len(full) > 0 {
		last = full[len(full)-1]
	}
	cv.Rate = perSecond(last.PerSecond) + " req/s"
	cv.Errors = percent(last.ErrorRate) + " errors"
	name := oc.Hostname
	if name == "" {
		name = oc.ID
	}
	cv.RateChart = sparkline(rates, 0, fmt.Sprintf("Requests per second to %s over the last hour, a point a minute: %s in the last minute, at most %s", name, perSecond(last.PerSecond), perSecond(topRate)))
	cv.ErrorChart = sparkline(errs, 1, fmt.Sprintf("Error rate of %s over the last hour, a point a minute: %s in the last minute, at most %s", name, percent(last.ErrorRate), percent(topErr)))
	return cv
}

func newAppView(a api.OverviewApp) appView {
	av := appView{OverviewApp: a, P95: "-", ErrorRate: "-"}
	if a.Requests > 0 {
		av.ErrorRate = percent(a.ErrorRate)
	}
	switch {
	case a.P95Over:
		av.P95 = "over " + millis(a.P95Millis)
	case a.Requests > 0 && a.P95Millis > 0:
		av.P95 = "≤ " + millis(a.P95Millis)
	}
	switch a.Health {
	case api.HealthOK:
		av.HealthText, av.HealthClass = "OK", "ok"
	case api.HealthIdle:
		av.HealthText, av.HealthClass = "Idle: no request in the last hour", "ok"
	case api.HealthErrors:
		av.HealthText, av.HealthClass = fmt.Sprintf("Failing: %d of %d requests failed", a.Errors, a.Requests), "bad"
	case api.HealthNoConnector:
		av.HealthText, av.HealthClass = fmt.Sprintf("Unreachable: group '%s' has no active connector", a.Group), "bad"
	default:
		av.HealthText, av.HealthClass = a.Health, "warn"
	}
	return av
}

// perSecond formats a rate: two significant decimals below 10.
func perSecond(v float64) string {
	switch {
	case v <= 0:
		return "0"
	case v < 0.01:
		return "<0.01"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// percent formats a share (0 to 1).
func percent(v float64) string {
	switch {
	case v <= 0:
		return "0 %"
	case v < 0.01:
		return "<1 %"
	}
	return strconv.FormatFloat(v*100, 'f', 0, 64) + " %"
}

func millis(ms int64) string {
	if ms >= 1000 {
		return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) + " s"
	}
	return strconv.FormatInt(ms, 10) + " ms"
}
