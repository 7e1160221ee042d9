package main

import (
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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The harness builds the sallyport binary, runs its commands, and owns
// every process the bench starts: all of them are stopped (SIGTERM, then
// SIGKILL) when the bench ends, also on Ctrl-C. Everything listens on and
// dials 127.0.0.1 only.

const (
	cloudName    = "sallyport.localhost" // resolves to 127.0.0.1 inside sallyport
	tenantDomain = "contoso.com"
	adminUser    = "admin@contoso.com"
	adminPW      = "bench-admin-password-1"
	appName      = "bench"

	cmdTimeout   = 60 * time.Second // one short sallyport command
	readyTimeout = 30 * time.Second // a process coming up
)

type harness struct {
	dir     string // temporary directory for everything
	started time.Time
	source  string // what the binary was built from
	bin     string // the sallyport binary
	verbose bool
	keep    bool // keep dir at the end
	// profileDir: long-running sallyport commands write CPU profiles
	// there (-tcp -profile)
	profileDir string

	mu       sync.Mutex
	children []*child
}

func newHarness(verbose, keep bool) (*harness, error) {
	dir, err := os.MkdirTemp("", "sallyport-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{dir: dir, verbose: verbose, keep: keep, started: time.Now()}
	for _, d := range []string{"home", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// logf logs progress to standard error, with the time since the start.
func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %5.1fs: "+format+"\n", append([]any{time.Since(h.started).Seconds()}, args...)...)
}

func (h *harness) debugf(format string, args ...any) {
	if h.verbose {
		h.logf(format, args...)
	}
}

// close stops every child (all at once, each SIGTERM then SIGKILL after
// 5 s) and removes the temporary directory unless asked to keep it.
func (h *harness) close() {
	h.mu.Lock()
	kids := h.children
	h.children = nil
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(5 * time.Second)
		}()
	}
	wg.Wait()
	if h.keep {
		h.logf("kept %s", h.dir)
		return
	}
	os.RemoveAll(h.dir)
}

// build compiles the sallyport binary into the temporary directory.
func (h *harness) build(ctx context.Context) error {
	h.bin = filepath.Join(h.dir, "sallyport")
	if runtime.GOOS == "windows" {
		h.bin += ".exe"
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return errors.New("the go command, needed to build sallyport, is not in PATH (or give a binary with -bin)")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", h.bin, "github.com/sallyport/sallyport/cmd/sallyport")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = moduleDir()
	h.source = describeSource(cmd.Dir) // before building: the tree may change meanwhile
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building sallyport failed: %v\n%s", err, out)
	}
	return nil
}

// useBinary takes a prebuilt sallyport binary (-bin).
func (h *harness) useBinary(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	h.bin = abs
	out, err := h.run(ctx, "", "version")
	if err != nil {
		return fmt.Errorf("-bin %s: %w", path, err)
	}
	h.source = fmt.Sprintf("binary %s (%s)", path, strings.TrimSpace(out))
	return nil
}

// describeSource names the commit of the tree in dir, and whether it has
// uncommitted changes.
func describeSource(dir string) string {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	rev, err := git("rev-parse", "--short", "HEAD")
	if err != nil {
		return "commit unknown"
	}
	s := "commit " + rev
	if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
		n := len(strings.Split(st, "\n"))
		s += fmt.Sprintf(" + uncommitted changes to %d tracked file(s)", n)
	}
	return s
}

// moduleDir is the repository the bench was built from (so that a bench
// binary run from elsewhere still builds the right sallyport), or "" for
// the current directory.
func moduleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	dir := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return ""
	}
	return dir
}

// env is the isolated environment of sallyport commands: their own HOME,
// TMPDIR and admin profile under the temporary directory.
func (h *harness) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(h.dir, "home"),
		"XDG_CONFIG_HOME=" + filepath.Join(h.dir, "home", ".config"),
		"TMPDIR=" + filepath.Join(h.dir, "tmp"),
		"SALLYPORT_ADMIN_PROFILE=" + filepath.Join(h.dir, "admin-profile.json"),
	}
}

// run runs one sallyport command to completion and returns its standard
// output; a non-zero exit is an error carrying its standard error.
func (h *harness) run(ctx context.Context, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env()
	cmd.Dir = h.dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	setChildAttrs(cmd)
	h.debugf("sallyport %s", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("sallyport %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// start starts a long-running sallyport command.
func (h *harness) start(name string, args ...string) (*child, error) {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env()
	if h.profileDir != "" {
		cmd.Env = append(cmd.Env, "SALLYPORT_CPU_PROFILE="+h.profileDir)
	}
	cmd.Dir = h.dir
	h.debugf("start %s: sallyport %s", name, strings.Join(args, " "))
	return h.startCmd(name, cmd)
}

// startCmd starts cmd as a child the harness stops at the end. Its
// standard error (and standard output unless already taken) is kept: the
// last 64 KiB, for error messages.
func (h *harness) startCmd(name string, cmd *exec.Cmd) (*child, error) {
	c := &child{name: name, cmd: cmd, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = c.out
	}
	cmd.Stderr = c.out
	cmd.WaitDelay = 5 * time.Second
	setChildAttrs(cmd)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	h.children = append(h.children, c)
	return c, nil
}

// exitedChildren describes the children that exited on their own, with
// the end of their output ("" if none did): why a path stopped answering.
func (h *harness) exitedChildren() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, c := range h.children {
		if c.exited() {
			fmt.Fprintf(&b, "\n%s exited; the end of its output:\n%s", c.name, c.tail(40))
		}
	}
	return b.String()
}

// forget removes a stopped child from the harness's list.
func (h *harness) forget(c *child) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, k := range h.children {
		if k == c {
			h.children = append(h.children[:i], h.children[i+1:]...)
			return
		}
	}
}

// child is a long-running process the harness started.
type child struct {
	name  string
	cmd   *exec.Cmd
	out   *tailBuffer
	done  chan struct{}
	stdin io.Closer // closed first when stopping (the backend stops on EOF)
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop ends the process: its standard input is closed and it gets
// SIGTERM; after grace, SIGKILL.
func (c *child) stop(grace time.Duration) {
	if c.stdin != nil {
		c.stdin.Close()
	}
	if c.exited() {
		return
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.cmd.Process.Kill()
	}
	select {
	case <-c.done:
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) tail(lines int) string {
	ls := strings.Split(strings.TrimRight(c.out.String(), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// poll calls cond every 50 ms until it returns true, an error, or d passes.
func poll(ctx context.Context, d time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ---------------------------------------------------------------------------
// Sallyport: a cloud, the app, one connector

// sallyportOpts choose how the cloud and the connector run.
type sallyportOpts struct {
	connections   int      // tunnels of the connector
	tunnelVersion int      // 'connector run --tunnel-version' (0: the default)
	cloudArgs     []string // more flags of 'cloud serve' (-cloud-args)
	noWebApp      bool     // no web application to wait for (-tcp)
	// inProcess runs 'cloud serve' and 'connector run' inside the bench
	// (for -profile); the setup commands still run the binary.
	inProcess *inProcess
}

// sallyport is a running cloud with the bench app published and one
// connector serving it.
type sallyport struct {
	h        *harness
	opts     sallyportOpts
	cloudDir string
	connDir  string
	port     int
	url      string // https://sallyport.localhost:PORT
	caFile   string
	pool     *x509.CertPool
	appHost  string // external host of the app

	cloud, connector *child // nil when in process
	tunnels          int    // tunnels of the running connector
}

func (s *sallyport) cloudPID() int {
	if s.cloud != nil {
		return s.cloud.pid()
	}
	return os.Getpid()
}

func (s *sallyport) connectorPID() int {
	if s.connector != nil {
		return s.connector.pid()
	}
	return os.Getpid()
}

// startSallyport sets up and starts everything behind the edge.
func startSallyport(ctx context.Context, h *harness, backendAddr string, o sallyportOpts) (*sallyport, error) {
	s, err := startCloudSignedIn(ctx, h, o)
	if err != nil {
		return nil, err
	}
	out, err := h.run(ctx, "", "admin", "app", "create", appName, "--internal-url", "http://"+backendAddr+"/", "--pre-auth", "passthrough", "--json")
	if err != nil {
		return nil, err
	}
	var app struct {
		ExternalHost string `json:"external_host"`
	}
	if err := json.Unmarshal([]byte(out), &app); err != nil || app.ExternalHost == "" {
		return nil, fmt.Errorf("'admin app create --json' printed no external host: %q", out)
	}
	s.appHost = app.ExternalHost
	if _, err := h.run(ctx, adminPW+"\n", "connector", "register", "--cloud", s.url, "--dir", s.connDir,
		"--user", adminUser, "--password-stdin", "--ca-file", s.caFile); err != nil {
		return nil, err
	}
	if err := s.startConnector(ctx, o.connections); err != nil {
		return nil, err
	}
	return s, nil
}

// startCloudSignedIn runs 'cloud init' and 'cloud serve', and signs the
// harness's admin profile in ('admin login'): no application, no
// connector yet.
func startCloudSignedIn(ctx context.Context, h *harness, o sallyportOpts) (*sallyport, error) {
	s := &sallyport{h: h, opts: o, cloudDir: filepath.Join(h.dir, "cloud"), connDir: filepath.Join(h.dir, "connector")}
	pwFile := filepath.Join(h.dir, "admin-password")
	if err := os.WriteFile(pwFile, []byte(adminPW+"\n"), 0o600); err != nil {
		return nil, err
	}
	if _, err := h.run(ctx, "", "cloud", "init", "--data-dir", s.cloudDir, "--name", cloudName,
		"--tenant", tenantDomain, "--admin", adminUser, "--admin-password-file", pwFile); err != nil {
		return nil, err
	}
	s.caFile = filepath.Join(s.cloudDir, "cloud-ca.pem")
	pem, err := os.ReadFile(s.caFile)
	if err != nil {
		return nil, err
	}
	s.pool = x509.NewCertPool()
	if !s.pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", s.caFile)
	}
	if err := s.startCloud(ctx); err != nil {
		return nil, err
	}
	if _, err := h.run(ctx, adminPW+"\n", "admin", "login", "--cloud", s.url, "--user", adminUser, "--password-stdin", "--ca-file", s.caFile); err != nil {
		return nil, err
	}
	return s, nil
}

// cloudServeArgs are the flags of 'cloud serve' besides the data
// directory and the address. The edge's rate limits (default 5000
// requests/s per application) and the per-connector concurrency limit
// (default 1000) are raised, and so is the cap of connections per client
// address (default 1024): the bench measures the proxy, not its limiters,
// and opens thousands of WebSockets from one address through one connector.
var cloudServeArgs = []string{
	"--app-rate", "10000000", "--tenant-rate", "10000000",
	"--connector-limit", "1000000",
	"--max-conns-per-source", "1000000",
	"--shutdown-grace", "1s",
}

// startCloud serves the cloud on a free port of 127.0.0.1.
func (s *sallyport) startCloud(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		err = s.serveOn(ctx, port)
		if err == nil || attempt == 5 || !errors.Is(err, errPortTaken) {
			return err
		}
	}
}

var errPortTaken = errors.New("the port is taken")

// serveOn serves the cloud on 127.0.0.1:port and waits until /healthz
// answers over TLS verified with the cloud CA.
func (s *sallyport) serveOn(ctx context.Context, port int) error {
	s.port, s.url = port, fmt.Sprintf("https://%s:%d", cloudName, port)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	exited, tail := func() bool { return false }, func() string { return "" }
	if s.opts.inProcess != nil {
		if err := s.opts.inProcess.startCloud(ctx, s.cloudDir, listen); err != nil {
			return err
		}
	} else {
		args := append([]string{"cloud", "serve", "--data-dir", s.cloudDir, "--listen", listen}, cloudServeArgs...)
		args = append(args, s.opts.cloudArgs...)
		var err error
		if s.cloud, err = s.h.start("cloud", args...); err != nil {
			return err
		}
		exited, tail = s.cloud.exited, func() string { return s.cloud.tail(20) }
	}
	hc := s.client(cloudName)
	defer hc.CloseIdleConnections()
	err := poll(ctx, readyTimeout, func() (bool, error) {
		if exited() {
			return false, errors.New("cloud serve exited")
		}
		resp, err := hc.Get(s.url + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err == nil {
		return nil
	}
	out := tail()
	s.stopCloud()
	if strings.Contains(out, "cannot listen") {
		return fmt.Errorf("%w: %s", errPortTaken, out)
	}
	return fmt.Errorf("cloud serve did not come up on port %d (%v):\n%s", port, err, out)
}

func (s *sallyport) stopCloud() {
	if s.cloud != nil {
		s.cloud.stop(10 * time.Second)
		s.h.forget(s.cloud)
		s.cloud = nil
	}
}

func (s *sallyport) stopConnector() {
	if s.opts.inProcess != nil {
		s.opts.inProcess.stopConnector()
	} else if s.connector != nil {
		s.connector.stop(10 * time.Second)
		s.h.forget(s.connector)
		s.connector = nil
	}
}

// restart stops the connector and the cloud and starts them again (the
// cloud on the same port, which the connector's registration names), the
// connector with n tunnels: fresh processes, whose memory holds nothing
// from earlier measurements. Not in process.
func (s *sallyport) restart(ctx context.Context, n int) error {
	if s.opts.inProcess != nil {
		return errors.New("cannot restart the cloud in process")
	}
	s.stopConnector()
	s.stopCloud()
	var err error
	for range 20 {
		if err = s.serveOn(ctx, s.port); !errors.Is(err, errPortTaken) {
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}
	if err != nil {
		return err
	}
	return s.startConnector(ctx, n)
}

// startConnector runs 'connector run' with n tunnels and waits until the
// cloud lists it active with all n, and the app answers through the edge.
func (s *sallyport) startConnector(ctx context.Context, n int) error {
	if s.opts.inProcess != nil {
		if err := s.opts.inProcess.startConnector(ctx, s.connDir, n); err != nil {
			return err
		}
	} else {
		var err error
		args := []string{"connector", "run", "--dir", s.connDir, "--connections", strconv.Itoa(n),
			"--metrics-listen", "", "--drain-timeout", "1s"}
		if v := s.opts.tunnelVersion; v != 0 {
			args = append(args, "--tunnel-version", strconv.Itoa(v))
		}
		s.connector, err = s.h.start("connector", args...)
		if err != nil {
			return err
		}
	}
	s.tunnels = n
	err := poll(ctx, readyTimeout, func() (bool, error) {
		if s.connector != nil && s.connector.exited() {
			return false, fmt.Errorf("connector run exited:\n%s", s.connector.tail(20))
		}
		out, err := s.h.run(ctx, "", "admin", "connector", "list", "--json")
		if err != nil {
			return false, err
		}
		var cs []struct {
			Status  string `json:"status"`
			Tunnels int    `json:"tunnels"`
		}
		if err := json.Unmarshal([]byte(out), &cs); err != nil {
			return false, fmt.Errorf("'admin connector list --json': %v", err)
		}
		return len(cs) == 1 && cs[0].Status == "active" && cs[0].Tunnels == n, nil
	})
	if err != nil {
		return fmt.Errorf("the connector did not come up with %d tunnels: %w", n, err)
	}
	if s.opts.noWebApp {
		return nil
	}
	hc := s.client(s.appHost)
	defer hc.CloseIdleConnections()
	return poll(ctx, readyTimeout, func() (bool, error) {
		resp, err := hc.Get(fmt.Sprintf("https://%s:%d/small", s.appHost, s.port))
		if err != nil {
			return false, nil
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && string(body) == smallBody, nil
	})
}

// restartConnector stops the connector and starts it again with n tunnels.
func (s *sallyport) restartConnector(ctx context.Context, n int) error {
	s.stopConnector()
	// Wait until the cloud no longer counts the old tunnels.
	if err := poll(ctx, readyTimeout, func() (bool, error) {
		out, err := s.h.run(ctx, "", "admin", "connector", "list", "--json")
		if err != nil {
			return false, err
		}
		var cs []struct {
			Tunnels int `json:"tunnels"`
		}
		json.Unmarshal([]byte(out), &cs)
		return len(cs) == 1 && cs[0].Tunnels == 0, nil
	}); err != nil {
		return fmt.Errorf("the cloud still lists the stopped connector's tunnels: %w", err)
	}
	return s.startConnector(ctx, n)
}

// client is an HTTPS client that dials the cloud's port whatever the
// URL's host, trusts only the cloud CA and sends host as server name.
func (s *sallyport) client(host string) *http.Client {
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig: s.tlsConfig(host),
	}}
}

func (s *sallyport) tlsConfig(host string) *tls.Config {
	return &tls.Config{RootCAs: s.pool, ServerName: host, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
}

// target is the edge as a load target.
func (s *sallyport) target() *target {
	return &target{
		name:   "sallyport",
		addr:   fmt.Sprintf("127.0.0.1:%d", s.port),
		host:   s.appHost,
		tls:    s.tlsConfig(s.appHost),
		scheme: "https",
	}
}
