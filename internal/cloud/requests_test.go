package cloud

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/problem"
)

func failure(app *edge.App, id string, refused bool) *edge.Failure {
	p := problem.Newf(502, "backend_refused", "check it", "The internal application '%s' at %s refused the connection", app.Name, app.InternalURL)
	return &edge.Failure{App: app, RequestID: id, Method: "GET", Host: app.ExternalHost, Path: "/", Client: "203.0.113.9",
		Refused: refused, Problem: p, Public: edge.PublicProblem(p)}
}

// TestRequestIndex: a failed request is found by its own tenant only; each
// tenant keeps its last requestsKept failures and, apart, as many
// refusals, so a flood of refusals cannot push a failure out.
func TestRequestIndex(t *testing.T) {
	contoso := &edge.App{ID: "a_1", TenantID: "t_1", Name: "web", InternalURL: "http://intranet:8080/", ExternalHost: "web-contoso.example"}
	fabrikam := &edge.App{ID: "a_2", TenantID: "t_2", Name: "hr", InternalURL: "http://hr-db:8080/", ExternalHost: "hr-fabrikam.example"}
	var x requestIndex
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	x.record(failure(contoso, "r_contoso", false), now)
	x.record(failure(fabrikam, "r_fabrikam", false), now)
	tests := []struct {
		tenant, id string
		found      bool
	}{
		{"t_1", "r_contoso", true},
		{"t_2", "r_fabrikam", true},
		{"t_1", "r_fabrikam", false}, // another tenant's request
		{"t_2", "r_contoso", false},
		{"t_3", "r_contoso", false},
		{"t_1", "r_never", false},
	}
	for _, tt := range tests {
		fr, ok := x.lookup(tt.tenant, tt.id)
		if ok != tt.found || (ok && (fr.f.RequestID != tt.id || fr.app.TenantID != tt.tenant)) {
			t.Errorf("lookup(%s, %s) = %v, %v; want found %v", tt.tenant, tt.id, fr, ok, tt.found)
		}
	}

	// A flood of refusals keeps the failure; the oldest refusals go.
	for i := range requestsKept + 10 {
		x.record(failure(contoso, fmt.Sprintf("r_refused_%d", i), true), now)
	}
	if _, ok := x.lookup("t_1", "r_contoso"); !ok {
		t.Errorf("a flood of refusals pushed the failure out")
	}
	for i, want := range map[int]bool{0: false, 9: false, 10: true, requestsKept + 9: true} {
		if _, ok := x.lookup("t_1", fmt.Sprintf("r_refused_%d", i)); ok != want {
			t.Errorf("refusal %d kept = %v, want %v", i, ok, want)
		}
	}
	for i := range requestsKept {
		x.record(failure(contoso, fmt.Sprintf("r_failed_%d", i), false), now)
	}
	if _, ok := x.lookup("t_1", "r_contoso"); ok {
		t.Errorf("the oldest failure is still kept after %d newer ones", requestsKept)
	}
	if n := len(x.byTenant["t_1"].byID); n != 2*requestsKept {
		t.Errorf("tenant t_1 holds %d requests, want %d", n, 2*requestsKept)
	}
	if _, ok := x.lookup("t_2", "r_fabrikam"); !ok {
		t.Errorf("one tenant's requests pushed out another's")
	}
}

// TestRequestIndexMemory: a tenant's full index, filled with the longest
// paths and hosts a client can send, stays within a few MB.
func TestRequestIndexMemory(t *testing.T) {
	app := &edge.App{ID: "a_1", TenantID: "t_1", Name: "web", InternalURL: "http://intranet:8080/", ExternalHost: "web-contoso.example"}
	var x requestIndex
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	now := time.Now()
	for i := range 2 * requestsKept {
		f := failure(app, fmt.Sprintf("%024x", i), i%2 == 0)
		f.Path = "/" + strings.Repeat("p", 8192)
		f.Host = strings.Repeat("h", 1000)
		x.record(f, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("a tenant's full request index (%d requests, 8 KiB paths): %.1f MB", 2*requestsKept, float64(used)/(1<<20))
	if used > 8<<20 {
		t.Errorf("a tenant's full request index takes %d bytes, want at most 8 MB", used)
	}
	fr, _ := x.lookup("t_1", fmt.Sprintf("%024x", 1))
	if len(fr.f.Path) > maxKeptPath+len("…") || !strings.HasSuffix(fr.f.Path, "…") {
		t.Errorf("the kept path is %d bytes", len(fr.f.Path))
	}
	runtime.KeepAlive(&x)
}
