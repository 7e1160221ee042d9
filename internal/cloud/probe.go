package cloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// A diagnosis (admin app diagnose, the admin center's Test button) does
// not only read what past requests said: it sends one test request to the
// backend through each connected connector of the application's group, so
// that a backend that is down shows as down before a user meets it.

// probeTimeout bounds each test request.
const probeTimeout = 10 * time.Second

// maxProbes bounds how many connectors one diagnosis tests.
const maxProbes = 4

// probeUserAgent marks the test requests in the backends' logs.
const probeUserAgent = "Sallyport-Test/1 (admin app diagnose)"

// probeBackend sends GET / of app's internal URL through each connected
// connector of its group (at most maxProbes, by id), at once, and says
// what each got.
func (s *Server) probeBackend(ctx context.Context, app *edge.App) []api.BackendProbe {
	cands := slices.Clone((*s.registry.groups.Load())[app.GroupID]) // the snapshot is shared
	sort.Slice(cands, func(i, j int) bool { return cands[i].lc.ID < cands[j].lc.ID })
	cands = cands[:min(len(cands), maxProbes)]
	out := make([]api.BackendProbe, len(cands))
	var wg sync.WaitGroup
	for i, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.registry.probe(ctx, app, c)
		}()
	}
	wg.Wait()
	return out
}

// probe sends one test request through connector c.
func (r *registry) probe(ctx context.Context, app *edge.App, c candidate) api.BackendProbe {
	var id [12]byte
	rand.Read(id[:])
	p := api.BackendProbe{Connector: c.lc.ID, RequestID: hex.EncodeToString(id[:])}
	lt := leastBusyTunnel(c.tunnels)
	if lt == nil || !c.lc.reserve(r.limit) {
		p.Code, p.Message = "connector_busy", "The connector had no tunnel free for a test request (closing, draining or at its limit of concurrent requests)"
		return p
	}
	defer c.lc.active.Add(-1)
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+app.ExternalHost+"/", nil)
	if err != nil {
		p.Code, p.Message = "probe_failed", err.Error()
		return p
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", app.ExternalHost)
	req.Header.Set(tunnel.HeaderApp, app.ID)
	req.Header.Set(tunnel.HeaderRequestID, p.RequestID)
	start := time.Now()
	resp, err := r.send(lt, req)
	p.Millis = time.Since(start).Milliseconds()
	if err != nil {
		p.Code, p.Message = "tunnel_failed", "The test request did not get an answer through the connector's tunnel ("+err.Error()+")"
		if ctx.Err() != nil {
			p.Code, p.Message = "backend_timeout", "The backend did not answer the test request within 10 s"
		}
		return p
	}
	defer resp.Body.Close()
	if code := resp.Header.Get(tunnel.HeaderError); code != "" {
		var eb tunnel.ErrorBody
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb)
		p.Code, p.Message, p.Status = code, eb.Error.Message, resp.StatusCode
		if p.Message == "" {
			p.Message = "The connector could not reach the backend"
		}
		return p
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	p.OK, p.Status = true, resp.StatusCode
	return p
}
