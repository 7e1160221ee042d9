package cloud

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// requestsKept is how many failed requests the request index keeps per
// tenant, for each of: requests that failed on their way to the
// application, and requests the edge's limits refused (so a flood of
// refusals cannot push the failures out).
const requestsKept = 1000

// failedRequest is one failed request as the index keeps it.
type failedRequest struct {
	time time.Time
	f    edge.Failure
	app  edge.App // a copy: the route table moves on
}

// maxKeptPath and maxKeptHost bound what the index keeps of a request's
// path and Host header.
const maxKeptPath, maxKeptHost = 512, 260

// clip shortens s to at most n bytes (on a rune boundary), marked with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strings.Clone(s[:i]) + "…"
}

// requestIndex keeps the last failed requests of each tenant by request
// id, in memory, for 'sallyport admin request show'. It is per instance:
// with several cloud instances a request is known only to the one that
// served it (docs/ha.md); a shared index comes with scale-out.
type requestIndex struct {
	mu       sync.Mutex
	byTenant map[string]*tenantRequests
}

type tenantRequests struct {
	byID  map[string]*failedRequest
	rings [2]requestRing // 0: failures, 1: refusals
}

// requestRing holds the ids of the last requestsKept requests, oldest
// first from next.
type requestRing struct {
	ids  []string
	next int
}

func (x *requestIndex) record(f *edge.Failure, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byTenant == nil {
		x.byTenant = map[string]*tenantRequests{}
	}
	t := x.byTenant[f.App.TenantID]
	if t == nil {
		t = &tenantRequests{byID: map[string]*failedRequest{}}
		x.byTenant[f.App.TenantID] = t
	}
	ring := &t.rings[0]
	if f.Refused {
		ring = &t.rings[1]
	}
	if len(ring.ids) < requestsKept {
		ring.ids = append(ring.ids, f.RequestID)
	} else {
		delete(t.byID, ring.ids[ring.next])
		ring.ids[ring.next] = f.RequestID
		ring.next = (ring.next + 1) % requestsKept
	}
	fr := &failedRequest{time: now, f: *f, app: *f.App}
	fr.f.App = &fr.app
	// What the client sent is bounded: a flood of refusals with 8 KiB
	// URLs must not make the index large.
	fr.f.Path, fr.f.Host, fr.f.Method = clip(f.Path, maxKeptPath), clip(f.Host, maxKeptHost), clip(f.Method, 32)
	t.byID[f.RequestID] = fr
}

// lookup returns the failed request id of tenantID, if the index still
// holds it.
func (x *requestIndex) lookup(tenantID, id string) (*failedRequest, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.byTenant[tenantID]
	if t == nil {
		return nil, false
	}
	fr, ok := t.byID[id]
	return fr, ok
}

// onEdgeError is the edge's OnError: the failure goes to the
// application's recent errors, the request index and (failures on the way
// to the application, at most one per application and code per second)
// the event log as event 2700.
func (s *Server) onEdgeError(f *edge.Failure) {
	now := s.now().UTC()
	s.appErrors.record(f, now)
	s.requests.record(f, now)
	s.recordFailedAttempts(f, now)
	if f.Refused {
		return // logged by the edge (edge request refused), at most once per second
	}
	if n, ok := s.failureLogs.Allow(f.App.ID + " " + f.Problem.Code); ok {
		s.events.Event(eventlog.EdgeRequestFailed, fmt.Sprintf("A request to application '%s' failed: %s", f.App.Name, f.Problem.Error()),
			"request_id", f.RequestID, "app", f.App.Name, "tenant", f.App.Tenant, "group", f.App.Group,
			"connector", strings.Join(f.Connectors, ","), "internal_url", f.App.InternalURL,
			"client", f.Client, "code", f.Problem.Code, "status", fmt.Sprint(f.Problem.Status), "suppressed", fmt.Sprint(n))
	}
}

// handleShowRequest is GET /requests/{id}: the story of one failed
// request of the caller's tenant. A request of another tenant is not
// found, like one never seen.
func (s *Server) handleShowRequest(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	fr, ok := s.requests.lookup(p.Tenant.ID, id)
	if !ok {
		return problem.Newf(http.StatusNotFound, "no_request",
			"check the request id on the error page; only failed requests are kept (the last 1000 of the tenant), and only by the cloud instance that served them",
			"This cloud instance knows no failed request %s of %s", tenancy.Truncate(id, 40), p.Tenant.Domain)
	}
	cs, err := s.store.ListConnectors(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	hostnames := map[string]string{}
	for _, c := range cs {
		hostnames[c.ID] = c.Hostname
	}
	f := &fr.f
	st := api.RequestStory{RequestID: f.RequestID, Time: fr.time, App: f.App.Name, Group: f.App.Group,
		ExternalHost: f.App.ExternalHost, InternalURL: f.App.InternalURL, Method: f.Method, Host: f.Host, Path: f.Path,
		Client: f.Client, Connectors: []api.RequestConnector{}, Status: f.Problem.Status, Code: f.Problem.Code, Source: "edge",
		Message: f.Problem.Error(), Step: f.Problem.Step, PublicMessage: f.Public.Error(), DetailedPage: f.App.DetailedErrors}
	for _, id := range f.Connectors {
		st.Connectors = append(st.Connectors, api.RequestConnector{ID: id, Hostname: hostnames[id], Answered: id == f.Connector})
	}
	if f.FromConnector {
		st.Source = "connector"
	}
	st.Edge = storyOfEdge(f, hostnames)
	writeJSON(w, http.StatusOK, st)
	return nil
}

// storyOfEdge says in a sentence what the edge did with a failed request.
func storyOfEdge(f *edge.Failure, hostnames map[string]string) string {
	name := func(id string) string {
		if h := hostnames[id]; h != "" {
			return fmt.Sprintf("%s (%s)", id, h)
		}
		return id
	}
	switch {
	case f.Refused:
		return fmt.Sprintf("The edge refused the request before sending it anywhere (%s)", f.Problem.Code)
	case len(f.Connectors) == 0:
		return fmt.Sprintf("The edge found no connector of group '%s' to send the request to", f.App.Group)
	case f.FromConnector:
		return fmt.Sprintf("The edge sent the request to connector %s, which answered with this error", name(f.Connector))
	case f.Connector != "":
		return fmt.Sprintf("The edge sent the request to connector %s, and failed on its answer", name(f.Connector))
	}
	var names []string
	for _, id := range f.Connectors {
		names = append(names, name(id))
	}
	return fmt.Sprintf("The edge sent the request to connector %s; no answer came", strings.Join(names, ", then "))
}
