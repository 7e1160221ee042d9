package doctor_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/cloud"
	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/doctor"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/tunnel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	cloudName = "sallyport.localhost"
	admin     = "admin@contoso.com"
	password  = "correct horse battery"
)

// env is a real cloud service in this process, on 127.0.0.1, with one
// registered connector (not running unless runConnector is called) and
// an administrator signed in to its admin API.
type env struct {
	t       *testing.T
	dataDir string
	dir     string // the connector's state directory
	port    string
	target  cloudlink.Target
	stop    func() // stops the cloud; idempotent
	client  *http.Client
	token   string
	connID  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dataDir: filepath.Join(t.TempDir(), "cloud"), dir: filepath.Join(t.TempDir(), "connector")}
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: e.dataDir, Name: cloudName, Tenant: "contoso.com", Admin: admin, AdminPassword: password}); err != nil {
		t.Fatal(err)
	}
	s, err := cloud.New(cloud.Config{DataDir: e.dataDir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(sctx, ln) }()
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); <-done; s.Close() }) }
	t.Cleanup(e.stop)
	e.port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	e.target, err = cloudlink.ParseURL("https://" + cloudName + ":" + e.port)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := connector.Register(ctx, connector.RegisterOptions{CloudURL: e.target.URL, Dir: e.dir, User: admin, Password: password,
		CAFile: filepath.Join(e.dataDir, datadir.CACertFile), Hostname: "h", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.connID = tr.ConnectorID
	e.client = cloudlink.HTTPClient(e.target, e.cloudCA().Cert)
	t.Cleanup(e.client.CloseIdleConnections)
	var lr api.LoginResponse
	if err := cloudlink.PostJSON(ctx, e.client, e.target, api.Prefix+"/login", api.LoginRequest{User: admin, Password: password}, &lr); err != nil {
		t.Fatal(err)
	}
	e.token = lr.Token
	return e
}

// cloudCA loads the cloud's CA with its key (to issue test certificates).
func (e *env) cloudCA() *pki.CA {
	e.t.Helper()
	certPEM, err1 := os.ReadFile(filepath.Join(e.dataDir, datadir.CACertFile))
	keyPEM, err2 := os.ReadFile(filepath.Join(e.dataDir, datadir.CAKeyFile))
	if err1 != nil || err2 != nil {
		e.t.Fatal(err1, err2)
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		e.t.Fatal(err)
	}
	return ca
}

// call makes one admin API call as the administrator.
func (e *env) call(method, path string, in, out any) {
	e.t.Helper()
	if err := cloudlink.DoJSON(context.Background(), e.client, e.target, method, api.Prefix+path, e.token, in, out); err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// publish creates a passthrough application in the Default group (the
// doctor's checks reach it without signing in).
func (e *env) publish(name, internalURL, timeout string) api.App {
	e.t.Helper()
	return e.publishReq(api.CreateAppRequest{Name: name, InternalURL: internalURL, Timeout: timeout})
}

// publishReq creates an application from a full request, passthrough
// unless it says otherwise.
func (e *env) publishReq(in api.CreateAppRequest) api.App {
	e.t.Helper()
	if in.PreAuth == "" {
		in.PreAuth = "passthrough"
	}
	var a api.App
	e.call(http.MethodPost, "/apps", in, &a)
	return a
}

// runConnector runs the connector in this process until the test ends
// and waits until the cloud holds it active.
func (e *env) runConnector() {
	e.t.Helper()
	c, err := connector.New(connector.Config{Dir: e.dir, Connections: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done; c.Close() })
	st, err := statedir.Load(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		s, err := cloudlink.FetchStatus(ctx, st, cloudlink.DialContext)
		if err == nil && s.Status == "active" && c.TunnelsUp() > 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the connector is not active at the cloud: %+v, %v", s, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setCloudURL points trust.json at another cloud URL (its thumbprint
// still matches: the URL is not part of the certificate).
func (e *env) setCloudURL(u string) {
	e.t.Helper()
	path := filepath.Join(e.dir, statedir.TrustFile)
	var tr statedir.Trust
	raw, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(raw, &tr)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	tr.CloudURL = u
	js, _ := json.MarshalIndent(tr, "", "  ")
	if err := os.WriteFile(path, js, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) state() *statedir.State {
	e.t.Helper()
	st, err := statedir.Load(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// doctor runs the doctor on the connector's state directory.
func (e *env) doctor(mods ...func(*doctor.Options)) doctor.Report {
	o := doctor.Options{Dir: e.dir, StepTimeout: 3 * time.Second}
	for _, m := range mods {
		if m != nil {
			m(&o)
		}
	}
	return doctor.Run(context.Background(), o)
}

// serveTLS serves TLS handshakes on addr (the stopped cloud's) until the
// test ends: what a TLS-inspecting middlebox or another server shows.
func serveTLS(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the stopped cloud's port may take a moment to be free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					tc.Read(make([]byte, 1)) // until the client closes
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// expect is what one step must show.
type expect struct {
	id, status    string
	found, advice []string // substrings
}

func table(rep doctor.Report) string {
	var b bytes.Buffer
	doctor.WriteTable(&b, rep)
	return b.String()
}

func findStep(rep doctor.Report, id string) (doctor.Step, bool) {
	i := slices.IndexFunc(rep.Steps, func(s doctor.Step) bool { return s.ID == id })
	if i < 0 {
		return doctor.Step{}, false
	}
	return rep.Steps[i], true
}

// checkSteps checks the steps of rep; with DOCTOR_SHOW=1 in the
// environment it also logs the report and the steps' durations.
func checkSteps(t *testing.T, rep doctor.Report, want []expect, skipped []string) {
	t.Helper()
	bad := false
	for _, w := range want {
		s, ok := findStep(rep, w.id)
		if !ok {
			t.Errorf("no step %q", w.id)
			bad = true
			continue
		}
		if s.Status != w.status {
			t.Errorf("step %s is %s, want %s", w.id, s.Status, w.status)
			bad = true
		}
		for _, f := range w.found {
			if !strings.Contains(s.Found, f) {
				t.Errorf("step %s: found %q lacks %q", w.id, s.Found, f)
				bad = true
			}
		}
		for _, a := range w.advice {
			if !strings.Contains(s.Advice, a) {
				t.Errorf("step %s: advice %q lacks %q", w.id, s.Advice, a)
				bad = true
			}
		}
		if (s.Status == doctor.Fail || s.Status == doctor.Warn) && s.Advice == "" {
			t.Errorf("step %s is %s without advice", w.id, s.Status)
			bad = true
		}
	}
	for _, id := range skipped {
		if s, ok := findStep(rep, id); !ok || s.Status != doctor.Skip || !strings.HasPrefix(s.Found, "Not checked") {
			t.Errorf("step %s = %+v, want skipped with the reason", id, s)
			bad = true
		}
	}
	if bad || os.Getenv("DOCTOR_SHOW") != "" {
		t.Logf("report:\n%s", table(rep))
		for _, s := range rep.Steps {
			t.Logf("%s: %d ms", s.ID, s.DurationMS)
		}
	}
}

func ids(rep doctor.Report) []string {
	var out []string
	for _, s := range rep.Steps {
		out = append(out, s.ID)
	}
	return out
}

// backend is an internal application on 127.0.0.1.
//
//	/ok     200
//	/slow   answers after 1.2s
//	/hang   answers when the client gives up
//	/error  503
//	/edge   200 with the edge's request id header (a URL leading to the cloud)
func backend(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(1200 * time.Millisecond):
			w.Write([]byte("slow"))
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	mux.HandleFunc("/edge", func(w http.ResponseWriter, r *http.Request) { w.Header().Set(tunnel.HeaderRequestID, "r_1") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// ---------------------------------------------------------------------------

// TestHealthy: a registered, running connector whose group publishes an
// application that loads passes every step.
func TestHealthy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	be := backend(t)
	e.publish("web", be+"/ok", "")
	e.runConnector()
	rep := e.doctor()
	wantIDs := []string{"state", "dns", "tcp", "tls", "registration", "clock", "group", "app web", "events", "updater"}
	if got := ids(rep); !slices.Equal(got, wantIDs) {
		t.Errorf("steps %v, want %v", got, wantIDs)
	}
	for _, s := range rep.Steps {
		if s.ID == "updater" {
			continue // no updater set up here: checked in TestUpdater
		}
		if s.Status != doctor.Pass || s.Checked == "" || s.Found == "" || s.Advice != "" {
			t.Errorf("step %s: %+v, want a pass with what was checked and found, and no advice", s.ID, s)
		}
	}
	checkSteps(t, rep, []expect{
		{"state", doctor.Pass, []string{e.connID, "matches trust.json", "days left"}, nil},
		{"dns", doctor.Pass, []string{cloudName, "127.0.0.1"}, nil},
		{"tcp", doctor.Pass, []string{"connected to " + cloudName + ":" + e.port}, nil},
		{"tls", doctor.Pass, []string{"TLS 1.3", "the pinned cloud CA", "nothing inspects TLS", tunnel.ControlALPN}, nil},
		{"registration", doctor.Pass, []string{e.connID, "active", "'Default'"}, nil},
		{"clock", doctor.Pass, []string{"when the cloud's said", "for the round trip"}, nil},
		{"group", doctor.Pass, []string{"'Default'", "1 application: web"}, nil},
		{"app web", doctor.Pass, []string{"127.0.0.1 is an IP address", "not a loop", "200 OK", "within its backend timeout of 1m25s ('default')"}, nil},
		{"events", doctor.Pass, []string{"no error event"}, nil},
		{"updater", doctor.Skip, []string{"no updater was set up for this connector", "connector-updater does not exist"}, nil},
	}, nil)
	if rep.Verdict != doctor.Healthy || rep.Err("x") != nil || rep.Connector != e.connID || rep.Cloud != e.target.URL {
		t.Errorf("verdict %s, err %v, connector %q, cloud %q", rep.Verdict, rep.Err("x"), rep.Connector, rep.Cloud)
	}
	if !strings.Contains(table(rep), "Verdict: healthy: 9 steps passed, 1 not checked (updater).") {
		t.Errorf("table:\n%s", table(rep))
	}
}

var clockRe = regexp.MustCompile(`this machine's clock said \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ when the cloud's said \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: this machine is (9m59s|10m0s|10m1s) ahead of the cloud`)

// TestCloudSide provokes each failure between this machine and the
// cloud, and at the cloud, and checks the step that fails, its advice,
// and that the steps depending on it are skipped.
func TestCloudSide(t *testing.T) {
	t.Parallel()
	afterNetwork := []string{"registration", "clock", "group", "apps"}
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *env) func(*doctor.Options)
		want    []expect
		skipped []string
	}{
		{"wrong port", func(t *testing.T, e *env) func(*doctor.Options) {
			e.setCloudURL("https://" + cloudName + ":" + freePort(t))
			return nil
		}, []expect{
			{"dns", doctor.Pass, nil, nil},
			{"tcp", doctor.Fail, []string{"refused"}, []string{"allow outbound TCP", "firewall"}},
		}, append([]string{"tls"}, afterNetwork...)},

		{"cloud down", func(t *testing.T, e *env) func(*doctor.Options) {
			e.stop()
			return nil
		}, []expect{
			{"state", doctor.Pass, nil, nil},
			{"tcp", doctor.Fail, []string{"the connection to " + cloudName, "was refused"}, []string{"check that the cloud service is running"}},
			{"events", doctor.Pass, nil, nil},
		}, append([]string{"tls"}, afterNetwork...)},

		{"name does not resolve", func(t *testing.T, e *env) func(*doctor.Options) {
			e.setCloudURL("https://sallyport.invalid:" + e.port)
			return nil
		}, []expect{
			{"dns", doctor.Fail, []string{"sallyport.invalid does not resolve"}, []string{"DNS servers or hosts file", "cloud_url"}},
		}, append([]string{"tcp", "tls"}, afterNetwork...)},

		{"TLS inspection", func(t *testing.T, e *env) func(*doctor.Options) {
			e.stop()
			mitm, _ := pki.NewCA("Corp Inspection CA", time.Hour)
			cert, _ := mitm.IssueServer([]string{cloudName}, time.Hour)
			serveTLS(t, "127.0.0.1:"+e.port, &tls.Config{Certificates: []tls.Certificate{*cert}})
			return nil
		}, []expect{
			{"tcp", doctor.Pass, nil, nil},
			{"tls", doctor.Fail, []string{"TLS inspection detected", "issued by 'Corp Inspection CA'"}, []string{"exclude " + cloudName + ":" + portPlaceholder}},
		}, afterNetwork},

		{"TLS older than 1.2", func(t *testing.T, e *env) func(*doctor.Options) {
			e.stop()
			cert, _ := e.cloudCA().IssueServer([]string{cloudName}, time.Hour)
			serveTLS(t, "127.0.0.1:"+e.port, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			return nil
		}, []expect{
			{"tls", doctor.Fail, []string{"offers only TLS 1.1", "older than the TLS 1.2"}, []string{"accept TLS 1.2 or 1.3"}},
		}, afterNetwork},

		{"certificate for another name", func(t *testing.T, e *env) func(*doctor.Options) {
			e.stop()
			cert, _ := e.cloudCA().IssueServer([]string{"elsewhere.localhost"}, time.Hour)
			serveTLS(t, "127.0.0.1:"+e.port, &tls.Config{Certificates: []tls.Certificate{*cert}})
			return nil
		}, []expect{
			{"tls", doctor.Fail, []string{"issued by the pinned cloud CA, is for elsewhere.localhost, not for " + cloudName}, []string{"sallyport connector register --cloud"}},
		}, afterNetwork},

		{"not the Sallyport protocol", func(t *testing.T, e *env) func(*doctor.Options) {
			e.stop()
			cert, _ := e.cloudCA().IssueServer([]string{cloudName}, time.Hour)
			serveTLS(t, "127.0.0.1:"+e.port, &tls.Config{Certificates: []tls.Certificate{*cert}})
			return nil
		}, []expect{
			{"tls", doctor.Fail, []string{"does not speak the Sallyport connector protocol"}, []string{"strips TLS ALPN"}},
		}, afterNetwork},

		{"expired certificate", func(t *testing.T, e *env) func(*doctor.Options) {
			at := e.state().Leaf.NotAfter.Add(24 * time.Hour)
			return func(o *doctor.Options) { o.Now = func() time.Time { return at } }
		}, []expect{
			{"state", doctor.Fail, []string{"expired on", "24 hours ago", "event 1000", "Connector re-registration failed"},
				[]string{"sallyport connector register --dir", "clock"}},
			// The cloud, whose clock is right, still accepts it: the
			// doctor says this machine's clock is the culprit.
			{"registration", doctor.Warn, nil, nil},
			{"clock", doctor.Fail, []string{"ahead of the cloud"}, []string{"NTP"}},
		}, nil},

		{"certificate not valid yet", func(t *testing.T, e *env) func(*doctor.Options) {
			at := e.state().Leaf.NotBefore.Add(-time.Hour)
			return func(o *doctor.Options) { o.Now = func() time.Time { return at } }
		}, []expect{
			{"state", doctor.Fail, []string{"not valid yet"}, []string{"clock"}},
			{"clock", doctor.Fail, []string{"behind the cloud"}, nil},
		}, nil},

		{"certificate about to expire", func(t *testing.T, e *env) func(*doctor.Options) {
			at := e.state().Leaf.NotAfter.Add(-7 * 24 * time.Hour)
			return func(o *doctor.Options) { o.Now = func() time.Time { return at } }
		}, []expect{
			{"state", doctor.Warn, []string{"7 days left", "renewals have been failing"}, []string{"sallyport connector renew --dir", "1101"}},
		}, nil},

		{"skewed clock", func(t *testing.T, e *env) func(*doctor.Options) {
			return func(o *doctor.Options) { o.Now = func() time.Time { return time.Now().Add(10 * time.Minute) } }
		}, []expect{
			{"state", doctor.Pass, nil, nil},
			{"clock", doctor.Fail, nil, []string{"set this machine's clock right", "NTP"}},
		}, nil},

		{"clock a little off", func(t *testing.T, e *env) func(*doctor.Options) {
			return func(o *doctor.Options) { o.Now = func() time.Time { return time.Now().Add(-time.Minute) } }
		}, []expect{
			{"clock", doctor.Warn, []string{"behind the cloud"}, []string{"NTP"}},
		}, nil},

		{"private key readable by others", func(t *testing.T, e *env) func(*doctor.Options) {
			keys, _ := filepath.Glob(filepath.Join(e.dir, "connector-*.key"))
			if len(keys) != 1 {
				t.Fatalf("keys %v", keys)
			}
			os.Chmod(keys[0], 0o644)
			return nil
		}, []expect{
			{"state", doctor.Fail, []string{"readable by other users"}, []string{"chmod 600"}},
			// The network steps still run from what can be read.
			{"dns", doctor.Pass, nil, nil},
			{"tcp", doctor.Pass, nil, nil},
			{"tls", doctor.Pass, nil, nil},
		}, []string{"registration", "clock", "group", "apps"}},

		{"deleted at the cloud", func(t *testing.T, e *env) func(*doctor.Options) {
			e.call(http.MethodDelete, "/connectors/"+e.connID, nil, nil)
			return nil
		}, []expect{
			{"tls", doctor.Pass, nil, nil},
			{"registration", doctor.Fail, []string{"The cloud refuses this connector"}, []string{"sallyport connector register"}},
		}, []string{"clock", "group", "apps"}},

		{"moved to another group", func(t *testing.T, e *env) func(*doctor.Options) {
			e.call(http.MethodPost, "/groups", api.CreateGroupRequest{Name: "Branch"}, nil)
			e.call(http.MethodPost, "/connectors/"+e.connID+"/move", api.MoveConnectorRequest{Group: "Branch"}, nil)
			return nil
		}, []expect{
			{"registration", doctor.Warn, []string{"in group 'Branch' at the cloud but trust.json says 'Default'", "inactive", "does not run on this machine"},
				[]string{"sallyport admin connector move", "--group Default", "sallyport connector run --dir"}},
		}, nil},

		{"group without applications", func(t *testing.T, e *env) func(*doctor.Options) { return nil }, []expect{
			{"group", doctor.Warn, []string{"'Default'", "has no application"}, []string{"sallyport admin app create NAME --internal-url URL --group Default"}},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			mod := tt.setup(t, e)
			rep := e.doctor(mod)
			want := slices.Clone(tt.want)
			for i := range want {
				for j, a := range want[i].advice {
					want[i].advice[j] = strings.ReplaceAll(a, portPlaceholder, e.port)
				}
			}
			checkSteps(t, rep, want, tt.skipped)
			failed := rep.IDs(doctor.Fail)
			if len(failed) > 0 {
				if rep.Verdict != doctor.Failed || rep.Err("see the advice above") == nil {
					t.Errorf("verdict %s with failed steps %v", rep.Verdict, failed)
				}
			}
			if s, _ := findStep(rep, "clock"); tt.name == "clock a little off" && !regexp.MustCompile(`this machine is (59s|1m0s|1m1s) behind the cloud`).MatchString(s.Found) {
				t.Errorf("clock step: %q, want about 1m0s behind", s.Found)
			}
			if tt.name == "skewed clock" {
				s, _ := findStep(rep, "clock")
				if !clockRe.MatchString(s.Found) {
					t.Errorf("clock step does not give both times and the difference: %q", s.Found)
				}
			}
		})
	}
}

// portPlaceholder in an expectation stands for the cloud's port.
const portPlaceholder = "{port}"

type fakeResolver map[string][]string

func (f fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return net.DefaultResolver.LookupHost(ctx, host)
}

// TestApps checks each application failure on one cloud, one
// application at a time (--app).
func TestApps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	be := backend(t)
	tlsBackend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsBackend.Config.ErrorLog = log.New(io.Discard, "", 0) // the doctor's refused handshake
	tlsBackend.StartTLS()
	t.Cleanup(tlsBackend.Close)
	refusedURL := "http://127.0.0.1:" + freePort(t) + "/"
	e.publish("web", be+"/ok", "")
	e.publish("refused", refusedURL, "")
	e.publish("slow", be+"/slow", "")
	e.publish("slow-long", be+"/slow", "long")
	e.publish("hang", be+"/hang", "")
	e.publish("broken", be+"/error", "")
	e.publish("edge", be+"/edge", "")
	e.publish("loop", "https://127.0.0.1:"+e.port+"/", "")
	e.publish("intranet", "http://intranet.corp:"+e.port+"/", "")
	e.publish("nowhere", "http://nowhere.invalid/", "")
	e.publish("selfsigned", tlsBackend.URL+"/", "")
	fwd := newConnectProxy(t, "")
	e.publishReq(api.CreateAppRequest{Name: "viaproxy", InternalURL: be + "/ok", BackendProxy: fwd.url})
	e.publishReq(api.CreateAppRequest{Name: "viaproxy-nowhere", InternalURL: "http://nowhere.invalid/", BackendProxy: fwd.url})
	deadProxy := "http://127.0.0.1:" + freePort(t)
	e.publishReq(api.CreateAppRequest{Name: "deadproxy", InternalURL: be + "/ok", BackendProxy: deadProxy})

	appTimeout := func(d time.Duration) func(*tunnel.Status) {
		return func(s *tunnel.Status) {
			for i := range s.Apps {
				s.Apps[i].Timeout = d
			}
		}
	}
	tests := []struct {
		app    string
		mod    func(*doctor.Options)
		status string
		found  []string
		advice []string
	}{
		{"web", nil, doctor.Pass, []string{"200 OK"}, nil},
		{"refused", nil, doctor.Fail, []string{"The internal application 'refused' at " + refusedURL + " refused the connection from this machine"},
			[]string{"check that the application is running and listening on 127.0.0.1:"}},
		{"slow", func(o *doctor.Options) { o.AdjustStatus = appTimeout(2 * time.Second) }, doctor.Warn,
			[]string{"200 OK", "more than half of its backend timeout of 2s ('default')"}, []string{"sallyport admin app update slow --timeout long"}},
		{"slow-long", func(o *doctor.Options) { o.AdjustStatus = appTimeout(2 * time.Second) }, doctor.Warn,
			[]string{"more than half of its backend timeout of 2s ('long')"}, []string{"already 'long'", "make the application answer faster"}},
		{"hang", func(o *doctor.Options) { o.AdjustStatus = appTimeout(200 * time.Millisecond) }, doctor.Fail,
			[]string{"did not answer within its backend timeout of 200ms ('default')", "gateway timeout"}, []string{"sallyport admin app update hang --timeout long"}},
		{"hang", func(o *doctor.Options) { o.StepTimeout = time.Second }, doctor.Warn,
			[]string{"did not answer within the doctor's step timeout of 1s", "its backend timeout is 1m25s ('default')"}, []string{"longer --timeout"}},
		{"broken", nil, doctor.Warn, []string{"503 Service Unavailable", "reports a server error"}, []string{"the application's own log"}},
		{"edge", nil, doctor.Fail, []string{"Sallyport-Request-Id", "loop"}, []string{"sallyport admin app update edge --internal-url"}},
		{"loop", nil, doctor.Fail, []string{"is the cloud's address 127.0.0.1 on the cloud's port " + e.port, "loop"}, []string{"sallyport admin app update loop --internal-url"}},
		{"intranet", func(o *doctor.Options) { o.Resolver = fakeResolver{"intranet.corp": {"127.0.0.1"}} }, doctor.Fail,
			[]string{"intranet.corp resolves to 127.0.0.1", "The internal host 'intranet.corp' of application 'intranet' is the cloud's address 127.0.0.1 on the cloud's port", "loop"}, nil},
		{"nowhere", nil, doctor.Fail, []string{"The internal host 'nowhere.invalid' of application 'nowhere' does not resolve on this machine"}, []string{"DNS server or hosts file"}},
		{"selfsigned", nil, doctor.Fail, []string{"The TLS handshake with the internal application 'selfsigned'"}, []string{"publish the application with an http:// internal URL"}},
		{"viaproxy", nil, doctor.Pass, []string{"GET " + be + "/ok through the backend proxy " + fwd.url + " answered 200 OK"}, nil},
		{"viaproxy-nowhere", nil, doctor.Warn, []string{"this machine does not resolve nowhere.invalid, which is fine", "answered 502 Bad Gateway", "the backend proxy may be saying that it cannot reach the application"},
			[]string{"check that the backend proxy " + fwd.url + " reaches nowhere.invalid:80"}},
		{"deadproxy", nil, doctor.Fail, []string{"The backend proxy " + deadProxy + " of application 'deadproxy' cannot be reached from this machine", "connection refused"},
			[]string{"sallyport admin app update deadproxy --backend-proxy URL"}},
		{"nope", nil, doctor.Fail, []string{"has no application 'nope'", "its applications are: broken, deadproxy, edge, hang, intranet, loop, nowhere, refused, selfsigned, slow, slow-long, viaproxy, viaproxy-nowhere, web"}, []string{"--app"}},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			t.Parallel()
			rep := e.doctor(func(o *doctor.Options) { o.App = tt.app }, tt.mod)
			var appSteps []string
			for _, id := range ids(rep) {
				if strings.HasPrefix(id, "app ") {
					appSteps = append(appSteps, id)
				}
			}
			if !slices.Equal(appSteps, []string{"app " + tt.app}) {
				t.Errorf("application steps %v, want only app %s", appSteps, tt.app)
			}
			checkSteps(t, rep, []expect{{"app " + tt.app, tt.status, tt.found, tt.advice}}, nil)
			s, _ := findStep(rep, "app "+tt.app)
			if s.DurationMS < 0 {
				t.Errorf("step %+v", s)
			}
		})
	}

	t.Run("no address listed for a host not resolved here", func(t *testing.T) {
		t.Parallel()
		rep := e.doctor(func(o *doctor.Options) { o.App = "viaproxy-nowhere" })
		if s, _ := findStep(rep, "app viaproxy-nowhere"); strings.Contains(s.Found, "resolves to") {
			t.Errorf("found %q", s.Found)
		}
	})

	t.Run("the backend proxy carried its applications' requests", func(t *testing.T) {
		t.Parallel()
		before := fwd.forwards.Load()
		e.doctor(func(o *doctor.Options) { o.App = "viaproxy" })
		if fwd.forwards.Load() == before {
			t.Error("the backend proxy saw no request")
		}
	})

	// Without --app, every application gets a step, in name order.
	t.Run("all", func(t *testing.T) {
		t.Parallel()
		rep := e.doctor(func(o *doctor.Options) { o.StepTimeout = 2 * time.Second })
		var appSteps []string
		for _, id := range ids(rep) {
			if strings.HasPrefix(id, "app ") {
				appSteps = append(appSteps, strings.TrimPrefix(id, "app "))
			}
		}
		if want := []string{"broken", "deadproxy", "edge", "hang", "intranet", "loop", "nowhere", "refused", "selfsigned", "slow", "slow-long", "viaproxy", "viaproxy-nowhere", "web"}; !slices.Equal(appSteps, want) {
			t.Errorf("application steps %v, want %v", appSteps, want)
		}
		err := rep.Err("see the advice above")
		if err == nil || !strings.HasPrefix(err.Error(), "The doctor found ") || !strings.Contains(err.Error(), "app refused") {
			t.Errorf("Err = %v", err)
		}
	})
}

// TestEvents: errors of the last hour warn, newest first; older ones and
// other levels do not count.
func TestEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, statedir.EventsFile)
	now := time.Now()
	old, err := eventlog.Open(eventlog.Config{Path: path, Source: "connector", Now: func() time.Time { return now.Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	old.Event(eventlog.CloudUnreachable, "An old failure")
	old.Close()
	l, err := eventlog.Open(eventlog.Config{Path: path, Source: "connector"})
	if err != nil {
		t.Fatal(err)
	}
	l.Event(eventlog.TrustExpired, statedir.ExpiredMessage)
	l.Event(eventlog.TunnelClosed, "A tunnel connection to the cloud closed; reconnecting")
	l.Event(eventlog.CloudUnreachable, "The connector failed to download its configuration: the cloud is down")
	l.Close()
	rep := doctor.Run(context.Background(), doctor.Options{Dir: dir})
	checkSteps(t, rep, []expect{
		{"state", doctor.Fail, nil, []string{"sallyport connector register"}},
		{"events", doctor.Warn, []string{"2 error events in the last hour", "newest first: 1203 at ", "the cloud is down | 1000 at "},
			[]string{"sallyport connector events --dir " + dir + " --level error --since 1h", "event 1000", "sallyport connector register --dir"}},
	}, []string{"dns", "tcp", "tls", "registration", "clock", "group", "apps"})
	if s, _ := findStep(rep, "events"); strings.Contains(s.Found, "old failure") || strings.Contains(s.Found, "1202") {
		t.Errorf("events step shows an old error or a warning: %q", s.Found)
	}
}

// TestInterrupted: a cancelled run skips what is left and says why.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := doctor.Run(ctx, doctor.Options{Dir: t.TempDir()})
	for _, s := range rep.Steps {
		if s.Status != doctor.Skip || !strings.Contains(s.Found, "interrupted") {
			t.Errorf("step %+v, want skipped: interrupted", s)
		}
	}
}

// sample is a report with every status.
var sample = doctor.Report{
	Connector: "c_1", Cloud: "https://sallyport.example.com", Verdict: doctor.Failed,
	Started: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
	Steps: []doctor.Step{
		{ID: "tcp", Title: "TCP connection to the cloud port", Status: doctor.Pass, Checked: "a TCP connection", Found: "connected", DurationMS: 1},
		{ID: "tls", Title: "TLS handshake with the cloud", Status: doctor.Fail, Checked: "a handshake", Found: "TLS inspection detected", Advice: "exclude it", DurationMS: 2},
		{ID: "clock", Title: "This machine's clock against the cloud's", Status: doctor.Warn, Checked: "the clock", Found: "40s ahead", Advice: "NTP"},
		{ID: "app web", Title: "Application 'web' from this machine", Status: doctor.Fail, Checked: "GET", Found: "refused", Advice: "start it"},
		{ID: "group", Title: "Connector group and its applications", Status: doctor.Skip, Found: "Not checked because the tls step failed"},
	},
}

// TestJSON: the report's JSON has the documented, stable field names and
// decodes back to the same report.
func TestJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := doctor.WriteJSON(&b, sample); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"connector", "cloud", "steps", "verdict", "started"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no %q in %s", k, b.String())
		}
	}
	if len(raw) != 5 {
		t.Errorf("report fields %v", raw)
	}
	step := raw["steps"].([]any)[1].(map[string]any)
	want := map[string]any{"id": "tls", "title": "TLS handshake with the cloud", "status": "fail", "checked": "a handshake",
		"found": "TLS inspection detected", "advice": "exclude it", "duration_ms": float64(2)}
	if len(step) != len(want) {
		t.Errorf("step fields %v, want %v", step, want)
	}
	for k, v := range want {
		if step[k] != v {
			t.Errorf("step[%q] = %v, want %v", k, step[k], v)
		}
	}
	if raw["started"] != "2026-05-01T12:00:00Z" || raw["verdict"] != "failed" {
		t.Errorf("started %v, verdict %v", raw["started"], raw["verdict"])
	}
	var back doctor.Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !back.Started.Equal(sample.Started) || !slices.Equal(back.Steps, sample.Steps) || back.Verdict != sample.Verdict || back.Connector != sample.Connector {
		t.Errorf("round trip: %+v", back)
	}
}

// TestTable: one block per step, then the verdict; and the command's
// one-sentence summary.
func TestTable(t *testing.T) {
	t.Parallel()
	got := table(sample)
	for _, want := range []string{
		"Sallyport connector doctor: connector c_1, cloud https://sallyport.example.com, 2026-05-01T12:00:00Z\n\n",
		"PASS  tcp  TCP connection to the cloud port\n      checked: a TCP connection\n      found:   connected\nFAIL  tls  TLS handshake with the cloud\n",
		"FAIL  tls  TLS handshake with the cloud\n      checked: a handshake\n      found:   TLS inspection detected\n      advice:  exclude it\n",
		"WARN  clock  This machine's clock against the cloud's\n",
		"SKIP  group  Connector group and its applications\n      found:   Not checked because the tls step failed\n",
		"\nVerdict: failed: 2 fail (tls, app web), 1 warn (clock), 1 skipped.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if err := sample.Err("see the advice above"); err == nil || err.Error() != "The doctor found 2 failing steps: tls, app web; see the advice above." {
		t.Errorf("Err = %v", err)
	}
	one := sample
	one.Steps = sample.Steps[:2]
	if err := one.Err("see the advice above"); err == nil || err.Error() != "The doctor found 1 failing step: tls; see the advice above." {
		t.Errorf("Err = %v", err)
	}
	warn := doctor.Report{Verdict: doctor.Warnings, Steps: sample.Steps[2:3]}
	if warn.Err("x") != nil || doctor.VerdictLine(warn) != "Verdict: warnings: 1 warn (clock), nothing failed." {
		t.Errorf("warnings: %v, %q", warn.Err("x"), doctor.VerdictLine(warn))
	}
}

// connectProxy is an HTTP proxy on 127.0.0.1: CONNECT tunnels, and
// forwarding of absolute-form requests. mode "" serves, "forbid" answers
// 403, "auth" answers 407 without credentials.
type connectProxy struct {
	url      string
	tunnels  atomic.Int32
	forwards atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
	shutdown bool
}

func newConnectProxy(t *testing.T, mode string) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	fwd := &http.Transport{}
	t.Cleanup(fwd.CloseIdleConnections)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			if !r.URL.IsAbs() {
				http.Error(w, "a proxy", http.StatusBadRequest)
				return
			}
			p.forwards.Add(1)
			out := r.Clone(r.Context())
			out.RequestURI = ""
			resp, err := fwd.RoundTrip(out)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			return
		}
		switch {
		case mode == "forbid":
			http.Error(w, "not allowed", http.StatusForbidden)
			return
		case mode == "auth" && r.Header.Get("Proxy-Authorization") == "":
			w.Header().Set("Proxy-Authenticate", `Basic realm="corp"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		up, err := cloudlink.DialContext(r.Context(), "tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		p.mu.Lock()
		if p.shutdown {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns = append(p.conns, c, up)
		p.wg.Add(2)
		p.mu.Unlock()
		p.tunnels.Add(1)
		c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		p.mu.Lock()
		p.shutdown = true
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func setProxy(t *testing.T, dir, url string) {
	t.Helper()
	if err := statedir.SaveSettings(dir, statedir.Settings{Proxy: &statedir.ProxySettings{URL: url}}); err != nil {
		t.Fatal(err)
	}
}

// refusingDial fails every direct dial as a firewall that rejects would.
func refusingDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// TestProxy: with an outbound proxy configured, the TCP test is made
// directly and through the proxy, and the TLS and registration steps go
// the connector's way, through the proxy.
func TestProxy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    string
		setup   func(t *testing.T, e *env, p *connectProxy) func(*doctor.Options)
		want    []expect
		skipped []string
		tunnels bool // the proxy must have carried the TLS and registration steps
	}{
		{"through the proxy", "", func(t *testing.T, e *env, p *connectProxy) func(*doctor.Options) {
			setProxy(t, e.dir, p.url)
			return nil
		}, []expect{
			{"tcp", doctor.Pass, []string{"connected to " + cloudName, "the connector itself goes through the proxy " + "http://127.0.0.1:", "(from connector.json)"}, nil},
			{"tcp-proxy", doctor.Pass, []string{"the proxy opened a tunnel to " + cloudName}, nil},
			{"tls", doctor.Pass, []string{"TLS 1.3"}, nil},
			{"registration", doctor.Warn, []string{"the cloud knows connector"}, nil},
			{"clock", doctor.Pass, nil, nil},
		}, nil, true},

		{"direct blocked, proxy works", "", func(t *testing.T, e *env, p *connectProxy) func(*doctor.Options) {
			setProxy(t, e.dir, p.url)
			return func(o *doctor.Options) { o.Dial = refusingDial }
		}, []expect{
			{"tcp", doctor.Pass, []string{"no direct connection", "was refused", "which is fine: the connector reaches the cloud through the proxy"}, nil},
			{"tcp-proxy", doctor.Pass, nil, nil},
			{"registration", doctor.Warn, []string{"the cloud knows connector"}, nil},
		}, nil, true},

		{"proxy down", "", func(t *testing.T, e *env, p *connectProxy) func(*doctor.Options) {
			setProxy(t, e.dir, "http://127.0.0.1:"+freePort(t))
			return nil
		}, []expect{
			{"tcp", doctor.Pass, nil, nil},
			{"tcp-proxy", doctor.Fail, []string{"The outbound proxy http://127.0.0.1:", "cannot be reached"}, []string{"sallyport connector proxy show", "sallyport connector proxy clear --dir"}},
		}, []string{"tls", "registration", "clock", "group", "apps"}, false},

		{"proxy refuses CONNECT", "forbid", func(t *testing.T, e *env, p *connectProxy) func(*doctor.Options) {
			setProxy(t, e.dir, p.url)
			return nil
		}, []expect{
			{"tcp-proxy", doctor.Fail, []string{"refused to open a tunnel to " + cloudName, "403 Forbidden"}, []string{"allow CONNECT"}},
		}, []string{"tls", "registration"}, false},

		{"proxy wants a password", "auth", func(t *testing.T, e *env, p *connectProxy) func(*doctor.Options) {
			setProxy(t, e.dir, p.url)
			return nil
		}, []expect{
			{"tcp-proxy", doctor.Fail, []string{"requires authentication"}, []string{"sallyport connector proxy set URL --user USER --password-stdin"}},
		}, []string{"tls", "registration"}, false},

		{"no proxy, direct blocked", "", func(t *testing.T, e *env, p *connectProxy) func(*doctor.Options) {
			return func(o *doctor.Options) { o.Dial = refusingDial }
		}, []expect{
			{"tcp", doctor.Fail, []string{"was refused"}, []string{"firewall", "sallyport connector proxy set URL"}},
		}, []string{"tls", "registration"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			p := newConnectProxy(t, tt.mode)
			rep := e.doctor(tt.setup(t, e, p))
			checkSteps(t, rep, tt.want, tt.skipped)
			if tt.tunnels && p.tunnels.Load() < 2 {
				t.Errorf("the proxy carried %d tunnels, want the TLS and registration steps through it", p.tunnels.Load())
			}
			if !tt.tunnels && tt.mode == "" && p.tunnels.Load() != 0 {
				t.Errorf("the unused proxy carried %d tunnels", p.tunnels.Load())
			}
		})
	}
}

// TestEventsReplaced: an error that a later success replaced (a failed
// registration, then a registration) no longer warns; one that nothing
// replaced, or that came after the success, still does (issue 20, defect
// 11).
func TestEventsReplaced(t *testing.T) {
	t.Parallel()
	// Each event is written at its catalog level: errEv and info only say
	// which the test expects.
	type ev = eventlog.ID
	level := func(want eventlog.Level) func(ev) ev {
		return func(id ev) ev {
			if d, _ := eventlog.Lookup(id); d.Level != want {
				t.Fatalf("event %d is %q in the catalog, not %q: pick another for this case", id, d.Level, want)
			}
			return id
		}
	}
	errEv, info := level(eventlog.LevelError), level(eventlog.LevelInformation)
	tests := []struct {
		name     string
		events   []ev
		status   string
		found    []string
		notFound []string
	}{
		{"failed registration, then registered", []ev{errEv(1002), info(1001)}, doctor.Pass,
			[]string{"no error event in the last hour that a later success did not replace (1 replaced)"}, nil},
		{"registered, then a failed registration", []ev{info(1001), errEv(1002)}, doctor.Warn,
			[]string{"1 error event in the last hour", "1002 at "}, nil},
		{"failed registration twice, then registered", []ev{errEv(1002), errEv(1002), info(1001)}, doctor.Pass,
			[]string{"(2 replaced)"}, nil},
		{"cloud unreachable, then a tunnel up", []ev{errEv(1203), info(1201)}, doctor.Pass, []string{"(1 replaced)"}, nil},
		{"cloud unreachable, then only a registration", []ev{errEv(1203), info(1001)}, doctor.Warn,
			[]string{"1 error event in the last hour", "1203 at "}, nil},
		{"expired, then renewed; refused configuration stays", []ev{errEv(1000), info(1100), errEv(1301)}, doctor.Warn,
			[]string{"1 error event in the last hour", "1301 at "}, []string{"1000 at "}},
		{"refused configuration, then one taken", []ev{errEv(1301), info(1300)}, doctor.Pass, []string{"(1 replaced)"}, nil},
		{"no errors", []ev{info(1200), info(1201)}, doctor.Pass, []string{"no error event in the last hour"}, []string{"replaced"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l, err := eventlog.Open(eventlog.Config{Path: filepath.Join(dir, statedir.EventsFile), Source: "connector"})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tt.events {
				l.Event(e, "event "+strconv.Itoa(int(e)))
			}
			l.Close()
			rep := doctor.Run(context.Background(), doctor.Options{Dir: dir})
			s, ok := findStep(rep, "events")
			if !ok {
				t.Fatal("no events step")
			}
			if s.Status != tt.status {
				t.Errorf("status %s, want %s: %+v", s.Status, tt.status, s)
			}
			for _, w := range tt.found {
				if !strings.Contains(s.Found, w) {
					t.Errorf("found %q, want it to say %q", s.Found, w)
				}
			}
			for _, w := range tt.notFound {
				if strings.Contains(s.Found, w) {
					t.Errorf("found %q, want it not to say %q", s.Found, w)
				}
			}
		})
	}
}
