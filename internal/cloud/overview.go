package cloud

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// certExpiringWithin is how early the overview warns of a connector's or
// an application's certificate expiry (connectors and ACME renew theirs
// well before: a certificate this close to its end means renewal is
// failing).
const certExpiringWithin = 14 * 24 * time.Hour

// errorRateUnhealthy is the share of failed requests in the hour from
// which an application's health is "errors".
const errorRateUnhealthy = 0.05

// handleOverview is GET /overview: what needs attention, the connectors
// by group and the applications' health over the last hour, all of the
// caller's tenant. The figures are this instance's (history.go).
func (s *Server) handleOverview(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	tid := p.Tenant.ID
	groups, err := s.store.ListGroups(ctx, tid)
	if err != nil {
		return err
	}
	cs, err := s.store.ListConnectors(ctx, tid)
	if err != nil {
		return err
	}
	apps, err := s.store.ListApps(ctx, tid)
	if err != nil {
		return err
	}
	halts, err := s.store.ListUpdateHalts(ctx, tid)
	if err != nil {
		return err
	}
	releases, err := s.store.ListReleases(ctx, "", "")
	if err != nil {
		return err
	}
	now := s.now()
	names := make(map[string]string, len(groups))
	for _, g := range groups {
		names[g.ID] = g.Name
	}
	keep := map[historyKey]bool{}
	out := api.Overview{Time: now.UTC(), Attention: []api.Attention{}, Groups: []api.OverviewGroup{}, Apps: []api.OverviewApp{}}
	byGroup := map[string]*api.OverviewGroup{}
	group := func(name string) *api.OverviewGroup {
		g := byGroup[name]
		if g == nil {
			g = &api.OverviewGroup{Name: name, Connectors: []api.OverviewConnector{}}
			byGroup[name] = g
		}
		return g
	}
	for _, g := range groups {
		group(g.Name)
	}
	var inactive, expiring []api.Attention
	for _, c := range cs {
		k := historyKey{connectorSeries, tid, c.ID}
		keep[k] = true
		st := s.history.snapshot(k, now)
		oc := api.OverviewConnector{Connector: s.apiConnector(c, names), Minutes: apiMinutes(&st, now)}
		g := group(oc.Group)
		g.Connectors = append(g.Connectors, oc)
		link := "/admin/connectors/" + url.PathEscape(c.ID)
		who := fmt.Sprintf("Connector %s (%s) of group '%s'", c.ID, tenancy.DashIfEmpty(c.Hostname), oc.Group)
		if oc.Status == "active" {
			g.Active++
		} else {
			seen := "it never connected"
			if !c.LastSeenAt.IsZero() {
				seen = "it was last seen " + c.LastSeenAt.UTC().Format("2006-01-02 15:04 UTC")
			}
			inactive = append(inactive, api.Attention{Kind: api.AttentionInactive, Link: link,
				Message: fmt.Sprintf("%s is inactive (%s): start it on its machine ('sallyport connector run'), and run 'sallyport connector doctor' there if it does not connect", who, seen)})
		}
		if left := c.CertNotAfter.Sub(now); !c.CertNotAfter.IsZero() && left < certExpiringWithin {
			msg := fmt.Sprintf("%s has a certificate that expires on %s, and connectors renew theirs long before: check its event log for failed renewals, or register it again", who, c.CertNotAfter.UTC().Format("2006-01-02"))
			if left <= 0 {
				msg = fmt.Sprintf("%s has a certificate that expired on %s, so it cannot connect: register it again with a new registration token", who, c.CertNotAfter.UTC().Format("2006-01-02"))
			}
			expiring = append(expiring, api.Attention{Kind: api.AttentionCertExpiring, Link: link, Message: msg})
		}
	}
	var noConnector []api.Attention
	for _, a := range apps {
		k := historyKey{appSeries, tid, a.ID}
		keep[k] = true
		st := s.history.snapshot(k, now)
		gname := names[a.GroupID]
		oa := api.OverviewApp{Name: a.Name, Group: gname, ExternalURL: s.apiApp(a, gname).ExternalURL,
			Requests: st.requests, Errors: st.errors, Minutes: apiMinutes(&st, now)}
		if st.requests > 0 {
			oa.ErrorRate = float64(st.errors) / float64(st.requests)
		}
		if d, over, ok := st.p95(); ok {
			oa.P95Millis, oa.P95Over = d.Milliseconds(), over
		}
		if es := s.appErrors.recent(a.ID); len(es) > 0 {
			last := es[len(es)-1]
			oa.LastError = &last
		}
		g := group(gname)
		g.Apps++
		switch {
		case g.Active == 0:
			oa.Health = api.HealthNoConnector
			noConnector = append(noConnector, api.Attention{Kind: api.AttentionNoConnector, Link: "/admin/apps/" + url.PathEscape(a.Name),
				Message: fmt.Sprintf("Application '%s' cannot be reached: group '%s' has no active connector, so every request gets 502; register a connector in that group or start one of its connectors", a.Name, gname)})
		case st.requests == 0:
			oa.Health = api.HealthIdle
		case oa.ErrorRate >= errorRateUnhealthy:
			oa.Health = api.HealthErrors
		default:
			oa.Health = api.HealthOK
		}
		out.Apps = append(out.Apps, oa)
		if at := certExpiryAttention(a, s.appCertificate(ctx, a), now); at != nil {
			expiring = append(expiring, *at)
		}
	}
	out.Attention = append(out.Attention, noConnector...)
	out.Attention = append(out.Attention, inactive...)
	out.Attention = append(out.Attention, haltAttention(halts, releases, names)...)
	out.Attention = append(out.Attention, expiring...)
	for _, g := range byGroup {
		out.Groups = append(out.Groups, *g)
	}
	sort.Slice(out.Groups, func(i, j int) bool { return out.Groups[i].Name < out.Groups[j].Name })
	for _, g := range out.Groups {
		sort.Slice(g.Connectors, func(i, j int) bool {
			a, b := g.Connectors[i], g.Connectors[j]
			if a.Hostname != b.Hostname {
				return a.Hostname < b.Hostname
			}
			return a.ID < b.ID
		})
	}
	sort.Slice(out.Apps, func(i, j int) bool { return out.Apps[i].Name < out.Apps[j].Name })
	// The series of applications and connectors deleted since (here or
	// by another instance) go.
	s.history.keepOnly(tid, keep)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// haltAttention lists the halted releases that still matter: a halt of
// the newest published version (a newer release, or the version's
// withdrawal, ends it), in a group that still exists.
func haltAttention(halts []store.UpdateHalt, releases []store.Release, groups map[string]string) []api.Attention {
	if len(releases) == 0 {
		return nil
	}
	newest := releases[0].Version // newest publication first
	var out []api.Attention
	for _, h := range halts {
		group, ok := groups[h.GroupID]
		if !ok || h.Version != newest {
			continue
		}
		out = append(out, api.Attention{Kind: api.AttentionHalted, Link: "/admin/updates",
			Message: fmt.Sprintf("Release %s was rolled back on connector %s of group '%s' at %s, so the group's other connectors do not install it automatically: publish a fixed release under a new version, or withdraw it with 'sallyport cloud release delete'",
				h.Version, h.ConnectorID, group, h.HaltedAt.UTC().Format("2006-01-02 15:04 UTC"))})
	}
	return out
}

// apiMinutes turns a series' hour into the API's minutes.
func apiMinutes(st *seriesStats, now time.Time) []api.Minute {
	out := make([]api.Minute, len(st.minutes))
	for i, m := range st.minutes {
		secs := 60.0
		if i == len(st.minutes)-1 {
			secs = max(1, now.Sub(m.start).Seconds())
		}
		out[i] = api.Minute{Start: m.start, Requests: m.requests, Errors: m.errors, PerSecond: float64(m.requests) / secs}
		if m.requests > 0 {
			out[i].ErrorRate = float64(m.errors) / float64(m.requests)
		}
	}
	return out
}
