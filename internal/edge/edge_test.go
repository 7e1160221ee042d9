package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"Web-Contoso.Sallyport.Test", "web-contoso.sallyport.test", true},
		{"web.example.com:8443", "web.example.com", true},
		{"web.example.com.", "web.example.com", true},
		{"127.0.0.1:443", "127.0.0.1", true},
		{"[::1]:443", "::1", true},
		{"[::1]", "::1", true},
		{"", "", false},
		{"bad_host.example", "", false},
		{"-lead.example", "", false},
		{"trail-.example", "", false},
		{"a..b", "", false},
		{"ünïcode.example", "", false},
		{strings.Repeat("a", 64) + ".example", "", false},
		{strings.Repeat("a.", 130) + "com", "", false},
		{"host/path", "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizeHost(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"web-contoso.sallyport.test", "a.b:443", "[::1]:8443", "", "..", "x_y.z", "A.B."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := NormalizeHost(in)
		if !ok {
			return
		}
		if len(got) > MaxHostLength || got != strings.ToLower(got) {
			t.Fatalf("NormalizeHost(%q) = %q: too long or not lower case", in, got)
		}
		again, ok2 := NormalizeHost(got)
		if !ok2 || (again != got && !strings.Contains(got, ":")) {
			t.Fatalf("NormalizeHost not idempotent: %q → %q → %q, %v", in, got, again, ok2)
		}
	})
}

// fakes written by hand: a fixed route table and a dispatcher that calls a func.
type routes map[string]*App

func (r routes) Lookup(h string) (*App, bool) { a, ok := r[h]; return a, ok }

type dispatchFunc func(*App, *http.Request) (*http.Response, error)

func (f dispatchFunc) RoundTrip(a *App, r *http.Request) (*http.Response, error) { return f(a, r) }

var testApp = &App{ID: "a_1", TenantID: "t_1", Tenant: "contoso.com", Name: "web", GroupID: "g_1", Group: "Default",
	ExternalHost: "web-contoso.sallyport.test", InternalURL: "http://intranet:8080/", Timeout: time.Minute, TimeoutName: "default"}

func serve(t *testing.T, d dispatchFunc, override time.Duration, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	h := New(Config{Routes: routes{testApp.ExternalHost: testApp}, Dispatcher: d, TimeoutOverride: override})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestForwardedHeadersAndStripping(t *testing.T) {
	var seen http.Header
	d := dispatchFunc(func(a *App, r *http.Request) (*http.Response, error) {
		seen = r.Header.Clone()
		return &http.Response{StatusCode: 200, Header: http.Header{tunnel.HeaderPrefix + "Internal": {"x"}}, Body: io.NopCloser(strings.NewReader("ok"))}, nil
	})
	req := httptest.NewRequest("GET", "https://web-contoso.sallyport.test/x", nil)
	req.RemoteAddr = "203.0.113.9:5555"
	req.Header.Set(tunnel.HeaderApp, "a_forged")
	req.Header.Set("Sallyport-Upgrade", "forged")
	req.Header.Set("X-Forwarded-For", "10.9.9.9")
	rec := serve(t, d, 0, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := seen.Get(tunnel.HeaderApp); got != "a_1" {
		t.Errorf("Sallyport-App = %q, want the edge's own a_1 (a client must not forge it)", got)
	}
	if got := seen.Get(tunnel.HeaderUpgrade); got != "" {
		t.Errorf("client's Sallyport-Upgrade reached the tunnel: %q", got)
	}
	if got := seen.Get("X-Forwarded-For"); got != "203.0.113.9" {
		t.Errorf("X-Forwarded-For = %q, want only the client address", got)
	}
	if got := seen.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
	if got := seen.Get("X-Forwarded-Host"); got != "web-contoso.sallyport.test" {
		t.Errorf("X-Forwarded-Host = %q", got)
	}
	if rec.Header().Get(tunnel.HeaderPrefix+"Internal") != "" {
		t.Error("protocol header leaked to the client")
	}
	if rec.Header().Get(tunnel.HeaderRequestID) == "" {
		t.Error("no request id on the response")
	}
}

// internalWords are the internal names of testApp that no public page may
// carry: the internal host and port, the group, the tenant, the connector.
var internalWords = []string{"intranet", "8080", "Default", "contoso", "c_7", "vm-01"}

// TestErrorPages: each failure gets its status and code; the public page
// (HTML, JSON or text) says the code's fixed sentence and the request id
// and nothing internal, while OnError — and a page of an application with
// detailed errors — gets the detailed problem.
func TestErrorPages(t *testing.T) {
	noConn := problem.New(502, "no_connector", "install a connector", "No active connector in group 'Default' of contoso.com can serve application 'web'")
	tests := []struct {
		name     string
		host     string
		d        dispatchFunc
		override time.Duration
		status   int
		code     string
		contains []string // in the detailed problem
	}{
		{"unknown host", "nope.sallyport.test", nil, 0, 404, "no_application", nil},
		{"no connector", testApp.ExternalHost, func(*App, *http.Request) (*http.Response, error) { return nil, noConn }, 0,
			502, "no_connector", []string{"No active connector in group 'Default' of contoso.com"}},
		{"connector lost", testApp.ExternalHost, func(_ *App, r *http.Request) (*http.Response, error) {
			TriedConnector(r.Context(), "c_7")
			return nil, io.ErrUnexpectedEOF
		}, 0, 502, "connector_lost", []string{"broke before it answered", "group 'Default' of contoso.com", "admin connector list"}},
		{"backend slow", testApp.ExternalHost, func(_ *App, r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		}, 50 * time.Millisecond, 504, "backend_timeout", []string{"did not answer within 50ms", "http://intranet:8080/", "--timeout long"}},
		{"connector-made error", testApp.ExternalHost, func(_ *App, r *http.Request) (*http.Response, error) {
			TriedConnector(r.Context(), "c_7")
			var eb tunnel.ErrorBody
			eb.Error.Code, eb.Error.Message, eb.Error.Step = "backend_refused", "The internal application 'web' at http://intranet:8080/ refused the connection from connector vm-01", "check that it runs"
			js, _ := json.Marshal(eb)
			return &http.Response{StatusCode: 502, Header: http.Header{tunnel.HeaderError: {"backend_refused"}, tunnel.HeaderConnector: {"c_7"}},
				Body: io.NopCloser(strings.NewReader(string(js)))}, nil
		}, 0, 502, "backend_refused", []string{"refused the connection from connector vm-01", "check that it runs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, app := range []*App{testApp, detailed(testApp)} {
				for _, accept := range []string{"text/html", "application/json", "*/*"} {
					var f *Failure
					h := New(Config{Routes: routes{app.ExternalHost: app}, Dispatcher: tt.d, TimeoutOverride: tt.override,
						OnError: func(x *Failure) { f = x }})
					req := httptest.NewRequest("GET", "https://"+tt.host+"/", nil)
					req.RemoteAddr = "203.0.113.9:5555"
					req.Header.Set("Accept", accept)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					what := fmt.Sprintf("detailed %v, Accept %s", app.DetailedErrors, accept)
					if rec.Code != tt.status {
						t.Errorf("%s: status = %d, want %d", what, rec.Code, tt.status)
					}
					if got := rec.Header().Get(tunnel.HeaderError); got != tt.code {
						t.Errorf("%s: error code = %q, want %q", what, got, tt.code)
					}
					for k := range rec.Header() {
						if k != tunnel.HeaderError && k != tunnel.HeaderRequestID && tunnel.IsProtocolHeader(k) {
							t.Errorf("%s: the client got the protocol header %s", what, k)
						}
					}
					body := html.UnescapeString(rec.Body.String())
					rid := rec.Header().Get(tunnel.HeaderRequestID)
					pub := publicPages[tt.code]
					mustHave := []string{tt.code, rid}
					if app.DetailedErrors && tt.code != "no_application" {
						mustHave = append(mustHave, tt.contains...)
					} else {
						mustHave = append(mustHave, pub.Message, pub.Step)
						for _, w := range internalWords {
							if strings.Contains(body, w) {
								t.Errorf("%s: the public page names %q: %s", what, w, body)
							}
						}
					}
					for _, s := range mustHave {
						if !strings.Contains(body, s) {
							t.Errorf("%s: body %q lacks %q", what, body, s)
						}
					}
					switch accept {
					case "text/html":
						if !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
							t.Errorf("browser got %q", rec.Header().Get("Content-Type"))
						}
					case "application/json":
						var pb PageBody
						if err := json.Unmarshal(rec.Body.Bytes(), &pb); err != nil || pb.Error.Code != tt.code || pb.Error.RequestID != rid || pb.Error.Status != tt.status {
							t.Errorf("JSON page %s: %+v, %v", rec.Body, pb, err)
						}
					}
					if tt.code == "no_application" {
						if f != nil {
							t.Errorf("OnError told of a request for no application")
						}
						continue
					}
					if f == nil || f.RequestID != rid || f.App.ID != app.ID || f.Client != "203.0.113.9" || f.Problem.Code != tt.code {
						t.Fatalf("%s: OnError got %+v", what, f)
					}
					for _, s := range tt.contains {
						if !strings.Contains(f.Problem.Error(), s) {
							t.Errorf("%s: the detailed problem %q lacks %q", what, f.Problem.Error(), s)
						}
					}
				}
			}
		})
	}
}

// TestPublicPages: every code the edge can answer with has a public
// sentence and step naming nothing internal — every code of the edge's
// tables in docs/errors.md, so a new code cannot go out without one.
func TestPublicPages(t *testing.T) {
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(doc)
	sec = sec[strings.Index(sec, "## Edge and serving"):]
	sec = sec[:strings.Index(sec, "\n## Admin API")]
	codes := map[string]bool{"internal": true}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(sec, -1) {
		codes[m[1]] = true
	}
	if len(codes) < 15 {
		t.Fatalf("found only %d codes in the edge section of docs/errors.md: %v", len(codes), codes)
	}
	for code := range codes {
		pg, ok := publicPages[code]
		if !ok || pg.Message == "" || pg.Step == "" {
			t.Errorf("the edge code %s has no public sentence and step", code)
			continue
		}
		for _, s := range []string{pg.Message, pg.Step} {
			if strings.Contains(s, " '") || strings.ContainsAny(s, "\"%") || strings.Contains(s, "://") || strings.HasSuffix(s, ".") {
				t.Errorf("%s: public text %q: quotes a name, is a format, or ends with a period", code, s)
			}
		}
		p := PublicProblem(problem.Newf(502, code, "step", "at %s", "http://intranet:8080/"))
		if p.Code != code || strings.Contains(p.Error(), "intranet") {
			t.Errorf("PublicProblem(%s) = %+v", code, p)
		}
	}
	// The Public pages table of errors.md is publicPages, row for row.
	table := sec[strings.Index(sec, "### Public pages"):]
	rows := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (\\d+) \\| ([^|]+) \\| ([^|]+) \\|$").FindAllStringSubmatch(table, -1)
	documented := map[string]bool{}
	for _, m := range rows {
		documented[m[1]] = true
		if pg := publicPages[m[1]]; pg.Message != m[3] || pg.Step != m[4] {
			t.Errorf("errors.md's public page of %s is %q; %q, the edge's %q; %q", m[1], m[3], m[4], pg.Message, pg.Step)
		}
	}
	for code := range publicPages {
		if !documented[code] {
			t.Errorf("the public page of %s is not in errors.md's Public pages table", code)
		}
	}
	if p := PublicProblem(problem.New(418, "a_new_code", "", "The internal application 'web' at http://intranet:8080/ failed")); p.Status != 418 || strings.Contains(p.Error(), "intranet") || p.Message == "" {
		t.Errorf("PublicProblem of an unknown code = %+v", p)
	}
}

// TestTimeoutOnlyUntilHeaders: the backend timeout bounds the wait for
// the response headers, not a long download.
func TestTimeoutOnlyUntilHeaders(t *testing.T) {
	pr, pw := io.Pipe()
	d := dispatchFunc(func(_ *App, r *http.Request) (*http.Response, error) {
		go func() {
			defer pw.Close()
			select {
			case <-time.After(200 * time.Millisecond):
				io.WriteString(pw, "late but fine")
			case <-r.Context().Done():
				pw.CloseWithError(context.Cause(r.Context()))
			}
		}()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: pr, ContentLength: -1}, nil
	})
	rec := serve(t, d, 50*time.Millisecond, httptest.NewRequest("GET", "https://"+testApp.ExternalHost+"/", nil))
	if rec.Code != 200 || rec.Body.String() != "late but fine" {
		t.Errorf("got %d %q, want 200 with the whole body", rec.Code, rec.Body.String())
	}
}
