package cloud

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/sallyport/sallyport/internal/api"
)

func TestCloudMetrics(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/teapot" {
			w.WriteHeader(http.StatusTeapot)
		}
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	env := startInProcess(t, backend.URL)
	for _, path := range []string{"", "", "teapot"} {
		resp, err := env.client.Get(env.appURL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	m := env.srv.metrics
	// The edge records a request once its handler returns, just after the
	// client has the whole answer: wait for the last one.
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.requests.WithLabelValues("contoso.com", "web", "418")) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("contoso.com", "web", "200")); got != 2 {
		t.Errorf("requests{200} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("contoso.com", "web", "418")); got != 1 {
		t.Errorf("requests{418} = %v, want 1", got)
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "sallyport_cloud_connectors" {
			for _, mm := range mf.GetMetric() {
				if mm.GetLabel()[0].GetValue() == "active" && mm.GetGauge().GetValue() == 1 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Error("sallyport_cloud_connectors{status=active} is not 1")
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "sallyport_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestDiagnoseApp: the diagnosis names the group's connectors, the last
// errors with their request ids, and what to do.
func TestDiagnoseApp(t *testing.T) {
	env := startInProcess(t, "http://127.0.0.1:1/") // nothing listens on port 1: refused
	resp, err := env.client.Get(env.appURL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rid := resp.Header.Get("Sallyport-Request-Id")
	if resp.StatusCode != 502 || rid == "" {
		t.Fatalf("status %d, request id %q", resp.StatusCode, rid)
	}
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	rec, eb := call(t, env.srv, "GET", "/apps/web/diagnose", tok, nil)
	if rec.Code != 200 {
		t.Fatalf("diagnose: %d %s", rec.Code, eb.Error.Message)
	}
	var d api.AppDiagnosis
	json.Unmarshal(rec.Body.Bytes(), &d)
	if len(d.Connectors) != 1 || d.Connectors[0].Tunnels == 0 {
		t.Errorf("connectors = %+v", d.Connectors)
	}
	if len(d.RecentErrors) != 1 || d.RecentErrors[0].RequestID != rid || d.RecentErrors[0].Code != "backend_refused" {
		t.Errorf("recent errors = %+v, want the refused request %s", d.RecentErrors, rid)
	}
	joined := strings.Join(d.Findings, "\n")
	if !strings.Contains(joined, "Only one connector") || !strings.Contains(joined, rid) {
		t.Errorf("findings = %q", joined)
	}
}

// TestCloudMetricsClientGone: a request whose client leaves before any
// answer is counted under 499, never under a code nobody sent.
func TestCloudMetricsClientGone(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer backend.Close()
	defer close(release)
	env := startInProcess(t, backend.URL)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", env.appURL+"slow", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := env.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the request succeeded after its client cancelled it")
	}
	m := env.srv.metrics
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.requests.WithLabelValues("contoso.com", "web", "499")) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("contoso.com", "web", "499")); got != 1 {
		t.Errorf("requests{499} = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.requests); n != 1 {
		t.Errorf("%d series of requests, want 1 (499 only)", n)
	}
}
