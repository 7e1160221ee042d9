package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Applications for the limit tests: two of tenant t_1 (testApp and
// otherApp), one of tenant t_2.
var (
	otherApp = &App{ID: "a_2", TenantID: "t_1", Tenant: "contoso.com", Name: "wiki", GroupID: "g_1", Group: "Default",
		ExternalHost: "wiki-contoso.sallyport.test", InternalURL: "http://wiki:8080/", Timeout: time.Minute, TimeoutName: "default"}
	foreignApp = &App{ID: "a_3", TenantID: "t_2", Tenant: "fabrikam.com", Name: "web", GroupID: "g_2", Group: "Default",
		ExternalHost: "web-fabrikam.sallyport.test", InternalURL: "http://intranet:8080/", Timeout: time.Minute, TimeoutName: "default"}
)

var answerOK = dispatchFunc(func(*App, *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok"))}, nil
})

// stoppedClock is the rate limiters' clock in these tests: it moves only
// when a test moves it, so buckets refill only then.
type stoppedClock struct{ t time.Time }

func (c *stoppedClock) now() time.Time { return c.t }

// limitedEdge returns a Handler serving the three test applications with
// limits l, on a stopped clock, logging to logs (when not nil).
func limitedEdge(l Limits, logs io.Writer) (*Handler, *stoppedClock) {
	cfg := Config{
		// Detailed pages: these tests check the refusals' own sentences
		// (public pages: TestPublicPages).
		Routes:     routes{testApp.ExternalHost: detailed(testApp), otherApp.ExternalHost: detailed(otherApp), foreignApp.ExternalHost: detailed(foreignApp)},
		Dispatcher: answerOK,
		Limits:     l,
	}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	h := New(cfg)
	c := &stoppedClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.now = c.now
	return h, c
}

// detailed returns a copy of app with detailed error pages.
func detailed(app *App) *App {
	c := *app
	c.DetailedErrors = true
	return &c
}

func get(h *Handler, host string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://"+host+"/", nil))
	return rec
}

// checkAnswer fails t unless rec has status and error code, and its text
// contains every string of contains.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, status int, code string, contains ...string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %q", rec.Code, status, rec.Body)
	}
	if got := rec.Header().Get(tunnel.HeaderError); got != code {
		t.Errorf("error code = %q, want %q", got, code)
	}
	body := html.UnescapeString(rec.Body.String())
	for _, s := range contains {
		if !strings.Contains(body, s) {
			t.Errorf("body %q lacks %q", body, s)
		}
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	if got := (Limits{}).withDefaults(); got != DefaultLimits {
		t.Errorf("zero Limits with defaults = %+v, want DefaultLimits %+v", got, DefaultLimits)
	}
	if DefaultLimits.AppBurst != burstFor(DefaultLimits.AppRate) || DefaultLimits.TenantBurst != burstFor(DefaultLimits.TenantRate) {
		t.Error("a default burst is not twice its default rate")
	}
	got := Limits{AppRate: 100, TenantRate: 0.2, TenantBurst: 7, MaxURLLength: 300}.withDefaults()
	want := DefaultLimits
	want.AppRate, want.AppBurst, want.TenantRate, want.TenantBurst, want.MaxURLLength = 100, 200, 0.2, 7, 300
	if got != want {
		t.Errorf("withDefaults = %+v, want %+v (given fields kept, a missing burst twice its rate, at least 1)", got, want)
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name     string
		l        Limits
		contains string // in the message; "" when valid
	}{
		{"zero means defaults", Limits{}, ""},
		{"all given", Limits{MaxHeaderCount: 1, MaxHeaderBytes: MaxHeaderBytesCeiling, MaxURLLength: 1, AppRate: 0.5, AppBurst: 1, TenantRate: 1, TenantBurst: 1, RetryAfter: time.Second}, ""},
		{"header count", Limits{MaxHeaderCount: -1}, "--max-header-count is -1"},
		{"header bytes", Limits{MaxHeaderBytes: -1}, "--max-header-bytes is -1"},
		{"header bytes over the server's", Limits{MaxHeaderBytes: MaxHeaderBytesCeiling + 1}, "--max-header-bytes is 1048577, more than the 1048576"},
		{"url length", Limits{MaxURLLength: -8}, "--max-url-length is -8"},
		{"app rate", Limits{AppRate: -0.5}, "--app-rate is -0.5"},
		{"app rate NaN", Limits{AppRate: math.NaN()}, "--app-rate is NaN, which is not a finite number"},
		{"app burst", Limits{AppBurst: -1}, "--app-burst is -1"},
		{"tenant rate", Limits{TenantRate: math.Inf(1)}, "--tenant-rate is +Inf"},
		{"tenant burst", Limits{TenantBurst: -2}, "--tenant-burst is -2"},
		{"retry after", Limits{RetryAfter: -time.Second}, "Retry-After is -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Validate()
			if tt.contains == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			p, ok := problem.As(err)
			if !ok {
				t.Fatalf("Validate() = %v, want a *problem.Problem", err)
			}
			if p.Code != "bad_edge_limit" || p.Status != http.StatusBadRequest || !strings.Contains(p.Message, tt.contains) || p.Step == "" {
				t.Errorf("Validate() = %+v, want code bad_edge_limit, status 400, a step, and a message containing %q", p, tt.contains)
			}
		})
	}
}

func TestSizeLimits(t *testing.T) {
	limits := Limits{MaxHeaderCount: 4, MaxHeaderBytes: 40, MaxURLLength: 16}
	name27 := "X-B" + strings.Repeat("b", 24) // 3 × len("X-A1") + 27 + len("1") = 40 bytes
	tests := []struct {
		name     string
		host     string
		target   string
		header   http.Header
		clearURI bool // a request made by hand, without RequestURI
		status   int
		code     string
		contains []string
	}{
		{"headers at the limits", testApp.ExternalHost, "/", http.Header{"X-A": {"1", "2", "3"}, name27: {"1"}}, false, 200, "", nil},
		{"one value too many", testApp.ExternalHost, "/", http.Header{"X-A": {"1", "2", "3"}, "X-B": {"1", "2"}}, false,
			431, "headers_too_large", []string{"The request has 5 header fields, more than the 4 this edge accepts", "--max-header-count"}},
		{"one byte too many", testApp.ExternalHost, "/", http.Header{"X-A": {"1", "2", "3"}, name27 + "b": {"1"}}, false,
			431, "headers_too_large", []string{"The request headers take 41 bytes, more than the 40 this edge accepts", "--max-header-bytes"}},
		{"url at the limit", testApp.ExternalHost, "/path?q=12345678", nil, false, 200, "", nil},
		{"url one too long", testApp.ExternalHost, "/path?q=123456789", nil, false,
			414, "url_too_long", []string{"The request URL (path and query) is 17 characters long, more than the 16 this edge accepts", "--max-url-length"}},
		{"url one too long, no RequestURI", testApp.ExternalHost, "/path?q=123456789", nil, true,
			414, "url_too_long", []string{"is 17 characters long"}},
		{"unknown host first", "nope.sallyport.test", "/path?q=12345678", http.Header{"X-A": {"1", "2", "3", "4", "5"}}, false,
			404, "no_application", []string{"No application is published at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := limitedEdge(limits, nil)
			req := httptest.NewRequest("GET", "https://"+tt.host+tt.target, nil)
			req.Header = tt.header
			if req.Header == nil {
				req.Header = http.Header{}
			}
			if tt.clearURI {
				req.RequestURI = ""
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			checkAnswer(t, rec, tt.status, tt.code, tt.contains...)
		})
	}
}

// TestAppRateLimit: the 4th request within a burst of 3 is refused, and
// one application's flood limits neither its tenant's other applications
// nor another tenant's.
func TestAppRateLimit(t *testing.T) {
	h, _ := limitedEdge(Limits{AppRate: 1, AppBurst: 3}, nil)
	for i := range 3 {
		if rec := get(h, testApp.ExternalHost); rec.Code != 200 {
			t.Fatalf("request %d: status %d, want 200 within the burst", i+1, rec.Code)
		}
	}
	for range 2 {
		rec := get(h, testApp.ExternalHost)
		checkAnswer(t, rec, 429, "app_rate_limited",
			"Application 'web' of contoso.com gets requests faster than the 1 per second (burst 3) this edge accepts per application",
			"slow down and retry after 1 s", "'sallyport cloud serve --app-rate'")
		if got := rec.Header().Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
	}
	for _, app := range []*App{otherApp, foreignApp} {
		if rec := get(h, app.ExternalHost); rec.Code != 200 {
			t.Errorf("%s of %s: status %d, want 200 (another application's flood must not limit it)", app.Name, app.Tenant, rec.Code)
		}
	}
}

// TestTenantRateLimit: the tenant's bucket is shared by all its
// applications, and by no other tenant's.
func TestTenantRateLimit(t *testing.T) {
	h, _ := limitedEdge(Limits{TenantRate: 1, TenantBurst: 3}, nil)
	for _, app := range []*App{testApp, testApp, otherApp} {
		if rec := get(h, app.ExternalHost); rec.Code != 200 {
			t.Fatalf("%s: status %d, want 200 within the tenant's burst", app.Name, rec.Code)
		}
	}
	rec := get(h, otherApp.ExternalHost)
	checkAnswer(t, rec, 429, "tenant_rate_limited",
		"The applications of contoso.com together get requests faster than the 1 per second (burst 3) this edge accepts per tenant",
		"retry after 1 s", "'sallyport cloud serve --tenant-rate'")
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if rec := get(h, foreignApp.ExternalHost); rec.Code != 200 {
		t.Errorf("another tenant's application: status %d, want 200", rec.Code)
	}
}

// TestRefusalTakesNoToken: a request one bucket refuses takes nothing from
// the other.
func TestRefusalTakesNoToken(t *testing.T) {
	t.Run("app refusal keeps the tenant's tokens", func(t *testing.T) {
		h, _ := limitedEdge(Limits{AppRate: 1, AppBurst: 1, TenantRate: 1, TenantBurst: 2}, nil)
		for _, step := range []struct {
			app  *App
			code string
		}{{testApp, ""}, {testApp, "app_rate_limited"}, {testApp, "app_rate_limited"}, {otherApp, ""}} {
			rec := get(h, step.app.ExternalHost)
			if got := rec.Header().Get(tunnel.HeaderError); got != step.code {
				t.Fatalf("%s: error code %q (status %d), want %q", step.app.Name, got, rec.Code, step.code)
			}
		}
	})
	t.Run("tenant refusal keeps the app's tokens", func(t *testing.T) {
		h, clock := limitedEdge(Limits{AppRate: 0.001, AppBurst: 2, TenantRate: 1, TenantBurst: 1}, nil)
		checkAnswer(t, get(h, testApp.ExternalHost), 200, "")
		checkAnswer(t, get(h, testApp.ExternalHost), 429, "tenant_rate_limited")
		clock.t = clock.t.Add(time.Second) // the tenant's bucket gets a token, the app's almost nothing
		checkAnswer(t, get(h, testApp.ExternalHost), 200, "")
	})
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name  string
		l     Limits
		want  string
		inMsg string
	}{
		{"a token within the default", Limits{AppRate: 3, AppBurst: 1}, "1", "retry after 1 s"},
		{"rounded up", Limits{AppRate: 0.4, AppBurst: 1}, "3", "retry after 3 s"},
		{"slow refill", Limits{AppRate: 0.25, AppBurst: 1}, "4", "retry after 4 s"},
		{"configured longer", Limits{AppRate: 1, AppBurst: 1, RetryAfter: 1500 * time.Millisecond}, "2", "retry after 2 s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := limitedEdge(tt.l, nil)
			checkAnswer(t, get(h, testApp.ExternalHost), 200, "")
			rec := get(h, testApp.ExternalHost)
			checkAnswer(t, rec, 429, "app_rate_limited", tt.inMsg)
			if got := rec.Header().Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUnknownHostMakesNoLimiter: limiter state is made only for published
// applications, so random hosts cannot grow it.
func TestUnknownHostMakesNoLimiter(t *testing.T) {
	h, _ := limitedEdge(Limits{AppRate: 1, AppBurst: 1}, nil)
	for _, host := range []string{"nope.sallyport.test", "bad_host", "", strings.Repeat("x", 300)} {
		req := httptest.NewRequest("GET", "https://web-contoso.sallyport.test/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, 404, "no_application")
	}
	if n := len(h.rates.tenants); n != 0 {
		t.Fatalf("%d tenant limiters after requests for unknown hosts, want 0", n)
	}
	get(h, testApp.ExternalHost)
	if n, apps := len(h.rates.tenants), len(h.rates.tenants[testApp.TenantID].apps); n != 1 || apps != 1 {
		t.Errorf("%d tenant limiters with %d app limiters after one request, want 1 and 1", n, apps)
	}
}

// TestRefusalLogging: each refusal is logged with app, tenant and request
// id, but at most once per second per application and code.
func TestRefusalLogging(t *testing.T) {
	var logs bytes.Buffer
	h, clock := limitedEdge(Limits{AppRate: 0.001, AppBurst: 1, MaxHeaderCount: 1}, &logs)
	checkAnswer(t, get(h, testApp.ExternalHost), 200, "")
	first := get(h, testApp.ExternalHost)
	for range 9 {
		get(h, testApp.ExternalHost)
	}
	req := httptest.NewRequest("GET", "https://"+testApp.ExternalHost+"/", nil)
	req.Header = http.Header{"X-A": {"1", "2"}}
	big := httptest.NewRecorder()
	h.ServeHTTP(big, req)
	clock.t = clock.t.Add(time.Second)
	later := get(h, testApp.ExternalHost)

	type line struct {
		Level, Msg, App, Tenant, Code string
		RequestID                     string `json:"request_id"`
		Status, Suppressed            int
	}
	var lines []line
	dec := json.NewDecoder(&logs)
	for {
		var l line
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if l.Msg == "edge request refused" {
			lines = append(lines, l)
		}
	}
	want := []line{
		{"INFO", "edge request refused", "web", "contoso.com", "app_rate_limited", first.Header().Get(tunnel.HeaderRequestID), 429, 0},
		{"INFO", "edge request refused", "web", "contoso.com", "headers_too_large", big.Header().Get(tunnel.HeaderRequestID), 431, 0},
		{"INFO", "edge request refused", "web", "contoso.com", "app_rate_limited", later.Header().Get(tunnel.HeaderRequestID), 429, 9},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d refusal log lines, want %d: %+v", len(lines), len(want), lines)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("log line %d = %+v, want %+v", i, lines[i], want[i])
		}
	}
}

// TestLimitsOverLoopback: through a real HTTP server, a client meets the
// edge's own answer, not the server's bare one.
func TestLimitsOverLoopback(t *testing.T) {
	h, _ := limitedEdge(Limits{}, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	tests := []struct {
		name     string
		target   string
		headers  int
		status   int
		code     string
		contains string
	}{
		{"many headers", "/", 300, 431, "headers_too_large", "more than the 256 this edge accepts"},
		{"long url", "/" + strings.Repeat("a", 9000), 0, 414, "url_too_long", "is 9001 characters long, more than the 8192 this edge accepts"},
		{"fine", "/" + strings.Repeat("a", 8000), 200, 200, "", "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = testApp.ExternalHost
			for i := range tt.headers {
				req.Header.Add("X-Many", strings.Repeat("v", i%50))
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get(tunnel.HeaderError) != tt.code || !strings.Contains(string(body), tt.contains) {
				t.Errorf("got %d %q %q, want %d %q and a body containing %q", resp.StatusCode, resp.Header.Get(tunnel.HeaderError), body, tt.status, tt.code, tt.contains)
			}
		})
	}
}
