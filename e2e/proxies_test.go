package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
)

// Connectors behind a real proxy server (tinyproxy, installed by
// .ci/run): registration and tunnels through it with Basic
// authentication, the 407 and refused-CONNECT messages, reconnection after
// the proxy dies and comes back, and a backend reached through a forward
// proxy.

type tinyproxy struct {
	t       *testing.T
	dir     string
	port    string
	conf    string
	log     string
	proc    *proc
	runner  *runner
	options []string
}

// startTinyproxy runs tinyproxy on a free loopback port with the given
// extra config lines (BasicAuth, ConnectPort, ...).
func startTinyproxy(t *testing.T, r *runner, extra ...string) *tinyproxy {
	t.Helper()
	if _, err := exec.LookPath("tinyproxy"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tinyproxy is not installed; .ci/run installs it")
		}
		t.Skip("tinyproxy is not installed (apt-get install tinyproxy)")
	}
	tp := &tinyproxy{t: t, dir: filepath.Join(r.dir, "tinyproxy-"+freePort(t)), runner: r, options: extra}
	if err := os.MkdirAll(tp.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tp.dir, 0o777)
	tp.port = freePort(t)
	tp.log = filepath.Join(tp.dir, "tinyproxy.log")
	tp.conf = filepath.Join(tp.dir, "tinyproxy.conf")
	lines := []string{"Port " + tp.port, "Listen 127.0.0.1", "Timeout 600", "MaxClients 100", "Allow 127.0.0.1",
		fmt.Sprintf("LogFile %q", tp.log), "LogLevel Info", fmt.Sprintf("PidFile %q", filepath.Join(tp.dir, "pid"))}
	writeFile(t, tp.conf, strings.Join(append(lines, extra...), "\n")+"\n", 0o644)
	tp.start()
	return tp
}

func (tp *tinyproxy) start() {
	tp.t.Helper()
	cmd := exec.Command("tinyproxy", "-d", "-c", tp.conf)
	var out testnet.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tp.t.Fatal(err)
	}
	tp.proc = &proc{t: tp.t, name: "tinyproxy", cmd: cmd, out: &out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(tp.proc.done) }()
	tp.t.Cleanup(tp.proc.stop)
	if !eventually(readyTimeout, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+tp.port)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		tp.t.Fatalf("tinyproxy did not come up:\n%s", out.String())
	}
}

func (tp *tinyproxy) url() string { return "http://127.0.0.1:" + tp.port }

func (tp *tinyproxy) logText() string {
	b, _ := os.ReadFile(tp.log)
	return string(b)
}

func TestConnectorBehindProxy(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	be := newBackend(t)
	c.publish(t, c.admin, "web", be.url)
	tp := startTinyproxy(t, c.admin, "BasicAuth alice s3cret-proxy", "ConnectPort "+c.port)

	// Right credentials: registration and tunnels go through the proxy.
	dir := filepath.Join(c.admin.dir, "conn")
	c.admin.ok(t, "s3cret-proxy\n", "connector", "proxy", "set", tp.url(), "--user", "alice", "--password-stdin", "--dir", dir)
	show := c.admin.ok(t, "", "connector", "proxy", "show", "--dir", dir)
	if strings.Contains(show.stdout, "s3cret-proxy") || !strings.Contains(show.stdout, "alice") {
		t.Errorf("proxy show: %s", show.stdout)
	}
	if fi, err := os.Stat(filepath.Join(dir, "connector.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("connector.json: %v %v", fi, err)
	}
	st := c.mustRegister(t, c.admin, dir, contosoAdmin, contosoPW)
	if !strings.Contains(tp.logText(), "CONNECT 127.0.0.1:"+c.port) { // *.localhost is asked for as 127.0.0.1
		t.Errorf("the proxy did not see the registration's CONNECT:\n%s", tp.logText())
	}
	p := c.runConnector(t, c.admin, st)
	if resp, body := c.get(t, "web-contoso."+cloudName, "/page"); resp.StatusCode != 200 {
		t.Fatalf("through the proxy: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(p.out.String(), "s3cret-proxy") {
		t.Error("the connector logged the proxy password")
	}

	// The proxy dies mid-traffic and comes back: the connector reconnects.
	tp.proc.cmd.Process.Kill()
	<-tp.proc.done
	c.waitConnector(t, c.admin, st.id, p, func(x *apiConnector) bool { return x != nil && x.Tunnels == 0 })
	tp.start()
	c.waitConnector(t, c.admin, st.id, p, func(x *apiConnector) bool { return x != nil && x.Tunnels == 2 })
	if resp, body := c.get(t, "web-contoso."+cloudName, "/page"); resp.StatusCode != 200 {
		t.Fatalf("after the proxy came back: %d %s", resp.StatusCode, body)
	}

	// Wrong and missing credentials: the 407 message says which.
	wrong := filepath.Join(c.admin.dir, "wrong")
	c.admin.ok(t, "not-the-password\n", "connector", "proxy", "set", tp.url(), "--user", "alice", "--password-stdin", "--dir", wrong)
	_, res := c.register(t, c.admin, wrong, contosoAdmin, contosoPW)
	checkRefusal(t, res, "rejected the configured user name and password", "401") // tinyproxy answers 401 where squid says 407
	none := filepath.Join(c.admin.dir, "none")
	_, res = c.register(t, c.admin, none, contosoAdmin, contosoPW, "--ca-file", c.caFile, "--proxy", tp.url())
	checkRefusal(t, res, "requires authentication", "no credentials are configured")
}

func TestProxyRefusesCloudPort(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	tp := startTinyproxy(t, c.admin, "ConnectPort 443")
	dir := filepath.Join(c.admin.dir, "conn")
	_, res := c.register(t, c.admin, dir, contosoAdmin, contosoPW, "--ca-file", c.caFile, "--proxy", tp.url())
	checkRefusal(t, res, "refused to open a tunnel to "+cloudName+":"+c.port, "it answered \"403", "allow CONNECT to")
	// Unreachable proxy.
	_, res = c.register(t, c.admin, dir, contosoAdmin, contosoPW, "--ca-file", c.caFile, "--proxy", "http://127.0.0.1:"+freePort(t))
	checkRefusal(t, res, "outbound proxy", "cannot be reached")
	// The doctor names the proxy's answer: register directly, then put the
	// refusing proxy in the way.
	reg := c.mustRegister(t, c.admin, filepath.Join(c.admin.dir, "doctor"), contosoAdmin, contosoPW)
	c.admin.ok(t, "", "connector", "proxy", "set", tp.url(), "--dir", reg.dir)
	doc := c.admin.run(t, "", "connector", "doctor", "--dir", reg.dir)
	if doc.code == 0 || !strings.Contains(doc.stdout, "403") || !strings.Contains(doc.stdout, "FAIL") {
		t.Errorf("the doctor does not name the proxy's refusal:\n%s", doc)
	}

	// HTTPS_PROXY from the environment is used too (and so is its refusal).
	env := *c.admin
	env.extra = []string{"HTTPS_PROXY=" + tp.url()}
	_, res = c.register(t, &env, filepath.Join(c.admin.dir, "env"), contosoAdmin, contosoPW)
	checkRefusal(t, res, "refused to open a tunnel", "(from HTTPS_PROXY)")
}

// TestBackendForwardProxy: an application's requests go through its
// forward proxy, which sees them.
func TestBackendForwardProxy(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	be := newBackend(t)
	tp := startTinyproxy(t, c.admin)
	c.publish(t, c.admin, "viaproxy", be.url, "--backend-proxy", tp.url())
	st := c.mustRegister(t, c.admin, filepath.Join(c.admin.dir, "conn"), contosoAdmin, contosoPW)
	c.runConnector(t, c.admin, st)
	if resp, body := c.get(t, "viaproxy-contoso."+cloudName, "/page"); resp.StatusCode != 200 {
		t.Fatalf("GET through the backend proxy: %d %s", resp.StatusCode, body)
	}
	re := regexp.MustCompile(`Request \(file descriptor \d+\): GET ` + regexp.QuoteMeta(strings.TrimSuffix(be.url, "/")) + `/page`)
	if !eventually(5*time.Second, func() bool { return re.MatchString(tp.logText()) }) {
		t.Errorf("the forward proxy did not see the backend request:\n%s", tp.logText())
	}
}
