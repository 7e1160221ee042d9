// Package e2e drives the real sallyport binary end to end: a cloud
// service, connectors and the admin CLI run as separate processes on
// loopback, in front of backends served by the test process.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/pgtest"
	"github.com/sallyport/sallyport/internal/testnet"
)

// binary is the sallyport binary TestMain builds.
var binary string

const (
	cloudName    = "sallyport.localhost"
	contoso      = "contoso.com"
	contosoAdmin = "admin@contoso.com"
	contosoPW    = "contoso-admin-password-1"

	cmdTimeout   = 60 * time.Second // one short command
	readyTimeout = 30 * time.Second // a process coming up, a state being reached
	pollEvery    = 50 * time.Millisecond
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sallyport-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "sallyport")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go command, needed to build sallyport, is not in PATH")
		return 1
	}
	build := exec.Command(goTool, "build", "-o", binary, "github.com/sallyport/sallyport/cmd/sallyport")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building sallyport failed: %v\n%s", err, out)
		return 1
	}
	// pgtest.Run stops the PostgreSQL server the store tests start.
	return pgtest.Run(m)
}

// ---------------------------------------------------------------------------
// Running commands

// runner runs the binary with an isolated environment: its own HOME,
// TMPDIR and admin sign-in profile. One runner is one "person" at a shell.
type runner struct {
	dir     string // working directory
	home    string
	profile string   // SALLYPORT_ADMIN_PROFILE
	extra   []string // more environment variables, NAME=value
}

// newRunner makes a runner whose files live under t.TempDir().
func newRunner(t *testing.T, name string) *runner {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	r := &runner{dir: dir, home: filepath.Join(dir, "home"), profile: filepath.Join(dir, "admin-profile.json")}
	for _, d := range []string{r.home, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *runner) env() []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + r.home,
		"XDG_CONFIG_HOME=" + filepath.Join(r.home, ".config"),
		"TMPDIR=" + filepath.Join(r.dir, "tmp"),
		"SALLYPORT_ADMIN_PROFILE=" + r.profile,
	}, r.extra...)
}

// result is a finished command.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (res result) String() string {
	return fmt.Sprintf("sallyport %s\n  exit %d\n  stdout: %s\n  stderr: %s", strings.Join(res.args, " "), res.code,
		indent(res.stdout), indent(res.stderr))
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "(empty)"
	}
	return strings.ReplaceAll(s, "\n", "\n    ")
}

// run runs one command to completion (stdin may be ""), bounded by cmdTimeout.
func (r *runner) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = r.env()
	cmd.Dir = r.dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	res := result{args: args, stdout: out.String(), stderr: errb.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("command did not finish within %s:\n%s", cmdTimeout, res)
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running sallyport %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ok runs a command that must succeed.
func (r *runner) ok(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	res := r.run(t, stdin, args...)
	if res.code != 0 {
		t.Fatalf("command failed:\n%s", res)
	}
	return res
}

// okJSON runs a command that must succeed and decodes its standard output.
func (r *runner) okJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	res := r.ok(t, "", args...)
	if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
		t.Fatalf("output is not JSON (%v):\n%s", err, res)
	}
}

// refused runs a command that must fail with one clear sentence on
// standard error containing every one of want.
func (r *runner) refused(t *testing.T, stdin string, args []string, want ...string) result {
	t.Helper()
	res := r.run(t, stdin, args...)
	checkRefusal(t, res, want...)
	return res
}

func checkRefusal(t *testing.T, res result, want ...string) {
	t.Helper()
	if res.code == 0 {
		t.Fatalf("command succeeded, want a refusal:\n%s", res)
	}
	msg := strings.TrimSpace(res.stderr)
	if !strings.HasPrefix(msg, "sallyport: ") || strings.Contains(msg, "\n") {
		t.Errorf("refusal is not one line starting with 'sallyport: ':\n%s", res)
	}
	for _, bad := range []string{"panic", "goroutine ", "unexpected error"} {
		if strings.Contains(msg, bad) {
			t.Errorf("refusal contains %q:\n%s", bad, res)
		}
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("refusal does not contain %q:\n%s", w, res)
		}
	}
}

// ---------------------------------------------------------------------------
// Long-running processes

// proc is a long-running sallyport process (cloud serve, connector run,
// demo), stopped (SIGTERM, then SIGKILL) and waited for at cleanup.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *testnet.Buffer // standard output and standard error
	done chan struct{}
}

// start starts a long-running command.
func (r *runner) start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, out: &testnet.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = r.env()
	p.cmd.Dir = r.dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("output of %s (sallyport %s):\n%s", name, strings.Join(args, " "), tail(p.out.String(), 60))
		}
	})
	return p
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = append([]string{fmt.Sprintf("[… %d lines]", len(ls)-lines)}, ls[len(ls)-lines:]...)
	}
	return "    " + strings.Join(ls, "\n    ")
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig unless the process has ended.
func (p *proc) signal(sig os.Signal) {
	if !p.exited() {
		p.cmd.Process.Signal(sig)
	}
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Logf("%s did not stop within 10 s of SIGTERM; killing it", p.name)
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitExit waits up to d for the process to end and returns its exit code.
func (p *proc) waitExit(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// waitOutput waits up to d until the output matches re; it gives up early
// when the process ends without it.
func (p *proc) waitOutput(re *regexp.Regexp, d time.Duration) ([]string, bool) {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.After(d)
	for {
		ended := p.exited()
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m, true
		}
		if ended {
			return nil, false
		}
		select {
		case <-tick.C:
		case <-deadline:
			return nil, false
		}
	}
}

// eventually polls cond every pollEvery until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.After(d)
	for {
		if cond() {
			return true
		}
		select {
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
}

// ---------------------------------------------------------------------------
// The cloud

// cloud is a cloud service made by 'cloud init' and run by 'cloud serve'.
type cloud struct {
	admin       *runner // Global Administrator of contoso.com, signed in
	dataDir     string
	port        string
	url         string // https://sallyport.localhost:PORT
	caFile      string
	pool        *x509.CertPool
	fingerprint string
	initOut     string
	serve       *proc

	mu      sync.Mutex
	clients map[string]*http.Client
}

var fingerprintRe = regexp.MustCompile(`Cloud CA fingerprint: (sha256:[0-9a-f]{64})\n`)

// initCloud runs 'cloud init' for contoso.com (with its administrator's
// password from a file) and returns the cloud, not yet serving.
func initCloud(t *testing.T) *cloud {
	t.Helper()
	return initCloudArgs(t)
}

// initCloudArgs is initCloud with more flags for 'cloud init' (--store).
func initCloudArgs(t *testing.T, extra ...string) *cloud {
	t.Helper()
	admin := newRunner(t, "contoso-admin")
	c := &cloud{admin: admin, dataDir: filepath.Join(admin.dir, "cloud-data"), clients: map[string]*http.Client{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, hc := range c.clients {
			hc.CloseIdleConnections()
		}
	})
	pwFile := filepath.Join(admin.dir, "admin-password")
	writeFile(t, pwFile, contosoPW+"\n", 0o600)
	res := admin.ok(t, "", append([]string{"cloud", "init", "--data-dir", c.dataDir, "--name", cloudName,
		"--tenant", contoso, "--admin", contosoAdmin, "--admin-password-file", pwFile}, extra...)...)
	c.initOut = res.stdout
	m := fingerprintRe.FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("cloud init printed no CA fingerprint:\n%s", res)
	}
	c.fingerprint = m[1]
	c.caFile = filepath.Join(c.dataDir, "cloud-ca.pem")
	if !strings.Contains(res.stdout, "Cloud CA certificate: "+c.caFile) {
		t.Errorf("cloud init does not name the CA file %s:\n%s", c.caFile, res)
	}
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	c.pool = x509.NewCertPool()
	if !c.pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", c.caFile)
	}
	return c
}

// startCloud inits a cloud, serves it on a free loopback port and signs
// its administrator in (with --ca-file).
func startCloud(t *testing.T, serveArgs ...string) *cloud {
	t.Helper()
	c := initCloud(t)
	c.startServe(t, serveArgs...)
	c.login(t, c.admin, contosoAdmin, contosoPW)
	return c
}

// startServe runs 'cloud serve' on a free port of 127.0.0.1 and waits
// until /healthz answers over TLS verified with the cloud CA (so another
// program that grabbed the port is never mistaken for it).
func (c *cloud) startServe(t *testing.T, extra ...string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		c.port, c.url = port, "https://"+cloudName+":"+port
		args := append([]string{"cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:" + port}, extra...)
		p := c.admin.start(t, "cloud serve", args...)
		if up := c.waitServing(p); up && !p.exited() {
			c.serve = p
			return
		}
		p.stop()
		if attempt < 5 && strings.Contains(p.out.String(), "cannot listen") {
			t.Logf("port %s was taken; trying another", port)
			continue
		}
		t.Fatalf("cloud serve did not come up on port %s:\n%s", port, tail(p.out.String(), 40))
	}
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// login signs r in as user with the pinned CA file.
func (c *cloud) login(t *testing.T, r *runner, user, password string) result {
	t.Helper()
	return r.ok(t, password+"\n", "admin", "login", "--cloud", c.url, "--user", user, "--password-stdin", "--ca-file", c.caFile)
}

// addFabrikam adds the tenant fabrikam.com (offline, as the cloud's
// operator) with its Global Administrator admin@fabrikam.com, and returns
// a runner signed in as that administrator.
func (c *cloud) addFabrikam(t *testing.T) *runner {
	t.Helper()
	const fabAdmin, fabPW = "admin@fabrikam.com", "fabrikam-admin-password"
	pwFile := filepath.Join(t.TempDir(), "fabrikam-password")
	writeFile(t, pwFile, fabPW+"\n", 0o600)
	c.admin.ok(t, "", "cloud", "tenant", "add", "--data-dir", c.dataDir, "--tenant", "fabrikam.com", "--admin", fabAdmin, "--admin-password-file", pwFile)
	fab := newRunner(t, "fabrikam-admin")
	c.login(t, fab, fabAdmin, fabPW)
	return fab
}

// client is an HTTPS client to the edge (or the admin API) for host: it
// dials the cloud's port whatever the URL's host, trusts only the cloud
// CA, sends host as the TLS server name, and speaks only proto ("h1" or
// "h2"). Clients are cached per host and protocol.
func (c *cloud) client(host, proto string) *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := host + " " + proto + " " + c.port
	if hc := c.clients[key]; hc != nil {
		return hc
	}
	addr := "127.0.0.1:" + c.port
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:    &tls.Config{RootCAs: c.pool, ServerName: host, MinVersion: tls.VersionTLS12},
		DisableCompression: true,
		ForceAttemptHTTP2:  proto == "h2",
	}
	var protos http.Protocols
	if proto == "h2" {
		protos.SetHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	tr.Protocols = &protos
	hc := &http.Client{Transport: tr}
	c.clients[key] = hc
	return hc
}

// appURL is the external URL of path on host through the edge.
func (c *cloud) appURL(host, path string) string {
	return "https://" + host + ":" + c.port + path
}

// get fetches path on host through the edge over HTTP/2 and returns the
// response (body closed) and its body; hdr are header name, value pairs.
func (c *cloud) get(t *testing.T, host, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.appURL(host, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.client(host, "h2").Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", req.URL, err)
	}
	return resp, string(body)
}

// apiApp is an application in 'admin app ... --json' output.
type apiApp struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Group        string `json:"group"`
	ExternalHost string `json:"external_host"`
	ExternalURL  string `json:"external_url"`
	InternalURL  string `json:"internal_url"`
	Timeout      string `json:"timeout"`
	PreAuth      string `json:"preauth"`
}

// apiConnector is a connector in 'admin connector list --json' output.
type apiConnector struct {
	ID       string `json:"id"`
	Group    string `json:"group"`
	Status   string `json:"status"`
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	Address  string `json:"address"`
	Tunnels  int    `json:"tunnels"`
	Protocol int    `json:"tunnel_protocol"`
}

// publish creates an application as r and returns it: a passthrough one
// (the tests of the tunnel reach it without signing in) unless extra
// gives --pre-auth.
func (c *cloud) publish(t *testing.T, r *runner, name, internalURL string, extra ...string) apiApp {
	t.Helper()
	if !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "--pre-auth") }) {
		extra = append([]string{"--pre-auth", "passthrough"}, extra...)
	}
	var a apiApp
	r.okJSON(t, &a, append([]string{"admin", "app", "create", name, "--internal-url", internalURL, "--json"}, extra...)...)
	return a
}

// connectorState is a registered connector's state directory.
type connectorState struct {
	dir, id, tenant, group string
}

var registeredRe = regexp.MustCompile(`Registered connector (c_[0-9a-f]+) in tenant (\S+), group '([^']*)'\.`)

// register registers a connector in dir as user (password on stdin, the
// CA pinned with --ca-file unless pin gives other flags).
func (c *cloud) register(t *testing.T, r *runner, dir, user, password string, pin ...string) (connectorState, result) {
	t.Helper()
	if pin == nil {
		pin = []string{"--ca-file", c.caFile}
	}
	args := append([]string{"connector", "register", "--cloud", c.url, "--dir", dir, "--user", user, "--password-stdin"}, pin...)
	res := r.run(t, password+"\n", args...)
	st := connectorState{dir: dir}
	if m := registeredRe.FindStringSubmatch(res.stdout); m != nil {
		st.id, st.tenant, st.group = m[1], m[2], m[3]
	}
	return st, res
}

// mustRegister registers a connector; it must succeed.
func (c *cloud) mustRegister(t *testing.T, r *runner, dir, user, password string) connectorState {
	t.Helper()
	st, res := c.register(t, r, dir, user, password)
	if res.code != 0 || st.id == "" {
		t.Fatalf("registration failed:\n%s", res)
	}
	return st
}

// runConnector starts 'connector run' on a state directory and waits
// until admin (a signed-in administrator of its tenant) sees it active
// with both its tunnels.
func (c *cloud) runConnector(t *testing.T, admin *runner, st connectorState, extra ...string) *proc {
	t.Helper()
	p := admin.start(t, "connector "+st.id, append([]string{"connector", "run", "--dir", st.dir}, extra...)...)
	c.waitConnector(t, admin, st.id, p, func(x *apiConnector) bool { return x != nil && x.Status == "active" && x.Tunnels == 2 })
	return p
}

// connectors lists the connectors admin sees.
func (c *cloud) connectors(t *testing.T, admin *runner) []apiConnector {
	t.Helper()
	var cs []apiConnector
	admin.okJSON(t, &cs, "admin", "connector", "list", "--json")
	return cs
}

// waitConnector waits until cond holds for connector id as admin sees it
// (nil when not listed); p, if set, must keep running meanwhile.
func (c *cloud) waitConnector(t *testing.T, admin *runner, id string, p *proc, cond func(*apiConnector) bool) {
	t.Helper()
	var last []apiConnector
	ok := eventually(readyTimeout, func() bool {
		if p != nil && p.exited() {
			return true
		}
		last = c.connectors(t, admin)
		for i := range last {
			if last[i].ID == id {
				return cond(&last[i])
			}
		}
		return cond(nil)
	})
	if p != nil && p.exited() {
		t.Fatalf("%s exited:\n%s", p.name, tail(p.out.String(), 40))
	}
	if !ok {
		t.Fatalf("connector %s did not reach the expected state; last list: %+v", id, last)
	}
}

// ---------------------------------------------------------------------------
// Small things

func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// resetHWM resets the peak resident set size of a process (Linux only),
// so that a later vmHWM measures only what happens in between. It
// reports whether the kernel allowed it.
func resetHWM(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// procStatus returns a size field of /proc/PID/status ("VmHWM", the peak
// resident set size, or "VmRSS") in bytes (Linux only).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", field, v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func mustContain(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}

// waitServing waits until the cloud answers /healthz over TLS verified
// with its CA, or p exits; it reports whether it answered.
func (c *cloud) waitServing(p *proc) bool {
	hc := c.client(cloudName, "h1")
	return eventually(readyTimeout, func() bool {
		if p.exited() {
			return true
		}
		resp, err := hc.Get(c.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// noSecretIn fails the test if a file under dir contains secret (what
// names it in the message).
func noSecretIn(t *testing.T, dir, secret, what string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%s contains %s", path, what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
