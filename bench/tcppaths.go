package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The -tcp paths other than direct: the whole path of a user of private
// access (the real binary), ssh -L, and the frp stand-in (frplike.go).

const (
	tcpAppName = "bench-tcp"
	// benchAccessRate is the cloud's --access-stream-rate for the bench: the
	// default (20 streams a second per user) would be measured instead
	// of the path.
	benchAccessRate = "1000000"
)

var (
	userCodeRE  = regexp.MustCompile(`enter the code ([A-Z]{4}-[A-Z]{4})`)
	listeningRE = regexp.MustCompile(`Listening on (\S+): each connection`)
	formCSRFRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// accessPath is the user's whole path through Sallyport:
//
//	client ─TCP─▶ sallyport access tcp ─TLS (sallyport-access/1)─▶ cloud serve
//	       ─tunnel (TLS, raw stream)─▶ connector run ─TCP─▶ backend
//
// set up as a user and an administrator do it: cloud init and serve, a
// network application (--type tcp) covering the backend, a user assigned
// to it, a registered connector, the user's network sign-in ('access
// login', approved in the cloud's pages as a browser does) and 'access tcp
// APP --listen'.
type accessPath struct {
	s      *sallyport
	access *child
	addr   string
}

func (p *accessPath) pids() []int {
	return []int{p.s.cloudPID(), p.s.connectorPID(), p.access.pid()}
}

func startAccessPath(ctx context.Context, h *harness, backend string, o *options) (*accessPath, error) {
	so := sallyportOpts{connections: o.connections, tunnelVersion: o.tunnelVer, noWebApp: true,
		cloudArgs: append([]string{"--access-stream-rate", benchAccessRate}, strings.Fields(o.cloudArgs)...)}
	s, err := startCloudSignedIn(ctx, h, so)
	if err != nil {
		return nil, err
	}
	if _, err := h.run(ctx, "", "admin", "app", "create", tcpAppName, "--type", "tcp", "--internal-address", backend); err != nil {
		return nil, err
	}
	if _, err := h.run(ctx, benchUserPW+"\n", "admin", "user", "create", benchUser, "--role", "user", "--password-stdin"); err != nil {
		return nil, err
	}
	if _, err := h.run(ctx, "", "admin", "app", "assign", tcpAppName, "--user", benchUser); err != nil {
		return nil, err
	}
	if _, err := h.run(ctx, adminPW+"\n", "connector", "register", "--cloud", s.url, "--dir", s.connDir,
		"--user", adminUser, "--password-stdin", "--ca-file", s.caFile); err != nil {
		return nil, err
	}
	if err := s.startConnector(ctx, o.connections); err != nil {
		return nil, err
	}
	if err := s.networkLogin(ctx); err != nil {
		return nil, fmt.Errorf("the network sign-in: %w", err)
	}
	access, err := h.start("access tcp", "access", "tcp", tcpAppName, "--listen", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var addr string
	err = poll(ctx, readyTimeout, func() (bool, error) {
		if m := listeningRE.FindStringSubmatch(access.out.String()); m != nil {
			addr = m[1]
			return true, nil
		}
		if access.exited() {
			return false, fmt.Errorf("access tcp exited: %s", access.tail(10))
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return &accessPath{s: s, access: access, addr: addr}, nil
}

// networkLogin signs benchUser in to the cloud's network: 'access login
// https://CLOUD/ --user' prints a code, which the bench approves in the
// cloud's /device page after signing in there, as a browser does.
func (s *sallyport) networkLogin(ctx context.Context) error {
	login, err := s.h.start("access login", "access", "login", s.url+"/", "--user", benchUser, "--ca-file", s.caFile)
	if err != nil {
		return err
	}
	var code string
	if err := poll(ctx, readyTimeout, func() (bool, error) {
		if m := userCodeRE.FindStringSubmatch(login.out.String()); m != nil {
			code = m[1]
			return true, nil
		}
		if login.exited() {
			return false, fmt.Errorf("access login exited: %s", login.tail(10))
		}
		return false, nil
	}); err != nil {
		return err
	}
	if err := s.approveDevice(ctx, code); err != nil {
		return err
	}
	select {
	case <-login.done:
	case <-time.After(readyTimeout):
		return fmt.Errorf("access login did not end after the approval: %s", login.tail(10))
	}
	if c := login.cmd.ProcessState.ExitCode(); c != 0 {
		return fmt.Errorf("access login exited with %d: %s", c, login.tail(10))
	}
	s.h.forget(login)
	return nil
}

// approveDevice signs benchUser in at the cloud's sign-in page for the
// device code and approves the code on /device.
func (s *sallyport) approveDevice(ctx context.Context, code string) error {
	jar, _ := cookiejar.New(nil)
	hc := s.client(cloudName)
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer hc.CloseIdleConnections()
	do := func(method, path string, form url.Values) (int, string, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, s.url+path, body)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Accept", "text/html")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	csrf := func(page string) string {
		if m := formCSRFRE.FindStringSubmatch(page); m != nil {
			return m[1]
		}
		return ""
	}
	_, page, err := do("GET", "/signin?device="+url.QueryEscape(code), nil)
	if err != nil {
		return err
	}
	st, _, err := do("POST", "/signin", url.Values{"csrf": {csrf(page)}, "user": {benchUser}, "password": {benchUserPW}, "device": {code}})
	if err != nil {
		return err
	}
	if st != http.StatusSeeOther {
		return fmt.Errorf("signing in for the device code: %d", st)
	}
	_, page, err = do("GET", "/device?user_code="+url.QueryEscape(code), nil)
	if err != nil {
		return err
	}
	st, page, err = do("POST", "/device", url.Values{"csrf": {csrf(page)}, "user_code": {code}, "action": {"approve"}})
	if err != nil {
		return err
	}
	if st != http.StatusOK || !strings.Contains(page, "approved") {
		return fmt.Errorf("approving the device code: %d", st)
	}
	return nil
}

// sshPath is 'ssh -N -L' to an sshd the bench starts on loopback with
// its own host and client keys (as e2e's startSSHD does).
type sshPath struct {
	sshd, ssh *child
	addr      string
}

// pids are ssh's and sshd's, with sshd's children (the session of the
// forwarding connection, which does its crypto).
func (p *sshPath) pids() []int { return append([]int{p.ssh.pid()}, withDescendants(p.sshd.pid())...) }

// withDescendants is pid and its descendants, from /proc (Linux; elsewhere
// pid alone).
func withDescendants(pid int) []int {
	out := []int{pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return out
	}
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			out = append(out, withDescendants(c)...)
		}
	}
	return out
}

// errNoSSH: OpenSSH is not installed; the path is left out.
var errNoSSH = errors.New("OpenSSH (sshd, ssh, ssh-keygen) is not installed")

func startSSHPath(ctx context.Context, h *harness, backend string) (*sshPath, error) {
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	sshBin, err1 := exec.LookPath("ssh")
	keygen, err2 := exec.LookPath("ssh-keygen")
	if _, err := os.Stat(sshd); err != nil || err1 != nil || err2 != nil {
		return nil, errNoSSH
	}
	me, err := user.Current()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(h.dir, "ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	hostKey, key := filepath.Join(dir, "host_key"), filepath.Join(dir, "client_key")
	for _, k := range []string{hostKey, key} {
		if out, err := exec.CommandContext(ctx, keygen, "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, err
	}
	if os.Getuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\nStrictModes no\nUsePAM no\n"+
		"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n",
		port, hostKey, filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p := &sshPath{}
	if p.sshd, err = h.startCmd("sshd", exec.Command(sshd, "-D", "-e", "-f", cfgFile)); err != nil {
		return nil, err
	}
	if err := poll(ctx, readyTimeout, func() (bool, error) {
		if p.sshd.exited() {
			return false, fmt.Errorf("sshd exited: %s", p.sshd.tail(10))
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	lport, err := freePort()
	if err != nil {
		return nil, err
	}
	p.addr = fmt.Sprintf("127.0.0.1:%d", lport)
	cmd := exec.Command(sshBin, "-N", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
		"-L", p.addr+":"+backend, "-p", strconv.Itoa(port), me.Username+"@127.0.0.1")
	if p.ssh, err = h.startCmd("ssh -L", cmd); err != nil {
		return nil, err
	}
	// Ready when a byte goes through the forwarding.
	err = poll(ctx, readyTimeout, func() (bool, error) {
		if p.ssh.exited() {
			return false, fmt.Errorf("ssh -L exited: %s", p.ssh.tail(10))
		}
		return pingTCP(p.addr) == nil, nil
	})
	return p, err
}

// pingTCP exchanges one byte with the tcp backend at addr.
func pingTCP(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{'P'}); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadByte()
	return err
}
