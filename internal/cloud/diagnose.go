package cloud

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/edge"
)

// recentErrorsKept is how many failed requests are kept per application.
const recentErrorsKept = 20

// errorLog keeps the last failed requests of each application, in memory,
// for 'admin app diagnose'.
type errorLog struct {
	mu    sync.Mutex
	byApp map[string][]api.EdgeError // newest last
}

func (l *errorLog) record(f *edge.Failure, now time.Time) {
	app, p := f.App, f.Problem
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byApp == nil {
		l.byApp = map[string][]api.EdgeError{}
	}
	es := append(l.byApp[app.ID], api.EdgeError{Time: now, RequestID: f.RequestID, Status: p.Status, Code: p.Code, Message: p.Error(), Connector: f.Connector})
	if len(es) > recentErrorsKept {
		es = es[len(es)-recentErrorsKept:]
	}
	l.byApp[app.ID] = es
}

func (l *errorLog) recent(appID string) []api.EdgeError {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]api.EdgeError, len(l.byApp[appID]))
	copy(out, l.byApp[appID])
	return out
}

// handleDiagnoseApp shows, for an application, its group's connectors and
// their health, the last errors seen for it, and what to do.
func (s *Server) handleDiagnoseApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	a, err := s.appByName(ctx, p.Tenant, r.PathValue("name"))
	if err != nil {
		return err
	}
	names, err := s.groupNames(ctx, p.Tenant.ID)
	if err != nil {
		return err
	}
	cs, err := s.store.ListConnectors(ctx, p.Tenant.ID)
	if err != nil {
		return err
	}
	d := api.AppDiagnosis{App: s.apiApp(a, names[a.GroupID]), Connectors: []api.Connector{}, RecentErrors: s.appErrors.recent(a.ID), Findings: []string{}}
	active := 0
	for _, c := range cs {
		if c.GroupID != a.GroupID {
			continue
		}
		ac := s.apiConnector(c, names)
		d.Connectors = append(d.Connectors, ac)
		if ac.Tunnels > 0 {
			active++
		}
	}
	group := names[a.GroupID]
	gets := "every request gets 502"
	if a.Type == "tcp" || a.Type == "udp" {
		gets = "every stream is refused"
	}
	switch {
	case len(d.Connectors) == 0:
		d.Findings = append(d.Findings, fmt.Sprintf("Group '%s' has no connector, so %s: register one with 'sallyport connector register --group %s' on a machine inside the network, or move one with 'sallyport admin connector move ID --group %s'", group, gets, group, group))
	case active == 0:
		d.Findings = append(d.Findings, fmt.Sprintf("No connector of group '%s' is connected, so %s: start them ('sallyport connector run'), and run 'sallyport connector doctor' on their machines", group, gets))
	case active == 1:
		d.Findings = append(d.Findings, fmt.Sprintf("Only one connector of group '%s' is connected: add a second one so that losing a machine does not stop '%s'", group, a.Name))
	}
	d.Probes = []api.BackendProbe{}
	if ea := s.appByID(a.ID); ea != nil && active > 0 {
		d.Probes = s.probeBackend(ctx, ea)
	}
	if na, ok := s.routesNow().networkApp(a.TenantID, a.Name); ok {
		d.NetworkProbes, d.NotProbed = s.probeNetwork(ctx, na, p.User.Name)
		var failed, found []string
		for _, pr := range d.NetworkProbes {
			if !pr.OK && !slices.Contains(failed, pr.Destination) {
				failed = append(failed, pr.Destination) // one finding per destination
				found = append(found, netFinding(a.Name, pr))
			}
		}
		d.Findings = append(found, d.Findings...)
	}
	for _, pr := range d.Probes {
		if !pr.OK {
			d.Findings = append([]string{fmt.Sprintf("A test request to %s through connector %s failed (%s): %s; check that the application runs and that the connector's machine reaches it (run 'sallyport connector doctor' there)",
				a.InternalURL, pr.Connector, pr.Code, strings.TrimSuffix(pr.Message, "."))}, d.Findings...)
			break
		}
	}
	if n := len(d.RecentErrors); n > 0 {
		last := d.RecentErrors[n-1]
		d.Findings = append(d.Findings, fmt.Sprintf("The last failed request (%s, request id %s) said: %s (its whole story: 'sallyport admin request show %s')",
			last.Time.Format(time.RFC3339), last.RequestID, strings.TrimSuffix(last.Message, "."), last.RequestID))
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
