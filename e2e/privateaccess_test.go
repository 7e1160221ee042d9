package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
)

var (
	listeningRe = regexp.MustCompile(`Listening on (\S+): each connection`)
	socksRe     = regexp.MustCompile(`SOCKS5 on (\S+): `)
)

// sshServer is an OpenSSH sshd run by the test as the current user on a
// loopback port, with its own host key and one authorized key.
type sshServer struct {
	port    int
	dir     string
	key     string // the client's private key file
	user    string
	sshPath string
	scpPath string
}

// startSSHD starts sshd, or skips (fails under CI=true) when OpenSSH's
// server or client is not installed (.ci/run installs openssh-server).
func startSSHD(t *testing.T) *sshServer {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	sshPath, err1 := exec.LookPath("ssh")
	scpPath, err2 := exec.LookPath("scp")
	keygen, err3 := exec.LookPath("ssh-keygen")
	if _, err := os.Stat(sshd); err != nil || err1 != nil || err2 != nil || err3 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OpenSSH (sshd, ssh, scp, ssh-keygen) is not installed: .ci/run installs openssh-server")
		}
		t.Skip("OpenSSH (sshd, ssh, scp, ssh-keygen) is not installed")
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &sshServer{dir: dir, key: filepath.Join(dir, "client_key"), user: me.Username, sshPath: sshPath, scpPath: scpPath}
	for _, k := range []string{filepath.Join(dir, "host_key"), s.key} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(s.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
`, s.port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logb bytes.Buffer
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd's log:\n%s", logb.String())
		}
	})
	testnet.WaitUntil(t, "sshd listens", func() bool {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return s
}

// opts are the ssh/scp options: the test's key, no known hosts, and the
// ProxyCommand through Sallyport.
func (s *sshServer) opts(r *runner) []string {
	return []string{"-F", "/dev/null", "-i", s.key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
		"-o", "ProxyCommand=" + binary + " access stdio %h %p"}
}

// runSSH runs ssh or scp with r's environment (its token directory).
func runSSH(t *testing.T, r *runner, timeout time.Duration, prog string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = r.env()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// networkLogin runs 'access login CLOUD-URL --user' for user and approves it.
func (pc *preauthCloud) networkLogin(t *testing.T, r *runner, user string) {
	t.Helper()
	login := r.start(t, "access login (network)", "access", "login", pc.url+"/", "--user", user, "--ca-file", pc.caFile)
	m, ok := login.waitOutput(userCodeRe, readyTimeout)
	if !ok {
		t.Fatalf("access login printed no code:\n%s", login.out.String())
	}
	pc.approveDevice(t, m[1], user, userPW)
	if exit, ok := login.waitExit(readyTimeout); !ok || exit != 0 {
		t.Fatalf("access login did not end well after the approval (exit %d, ended %v):\n%s", exit, ok, login.out.String())
	}
}

// TestPrivateAccessSSH: with the real binary, a cloud, a connector and
// OpenSSH's sshd on loopback — one network sign-in, then ssh through
// 'access stdio' (ProxyCommand) runs a command and scp copies 100 MB
// intact; and each refusal is one sentence: not signed in, not assigned,
// outside every segment, no connector active in the group, refused and
// unreachable at the connector.
func TestPrivateAccessSSH(t *testing.T) {
	sshd := startSSHD(t)
	pc := startPreauthCloud(t)
	dest := "127.0.0.1:" + strconv.Itoa(sshd.port)
	pc.admin.ok(t, "", "admin", "app", "create", "ssh", "--type", "tcp", "--internal-address", dest,
		"--internal-address", "127.0.0.1:1", "--internal-address", "nowhere.invalid:22")
	pc.admin.ok(t, "", "admin", "app", "assign", "ssh", "--user", alice)
	pc.admin.ok(t, "", "admin", "group", "create", "empty")
	pc.admin.ok(t, "", "admin", "app", "create", "lonely", "--type", "tcp", "--internal-address", "10.255.255.1:22", "--group", "empty")
	pc.admin.ok(t, "", "admin", "app", "assign", "lonely", "--user", alice)

	a := newRunner(t, "alice")
	stdio := []string{"access", "stdio", "127.0.0.1", strconv.Itoa(sshd.port)}
	a.refused(t, "", stdio, "not signed in", "sallyport access login https://CLOUDNAME/ --user NAME@DOMAIN")
	pc.networkLogin(t, a, alice)

	// ssh runs a command through the connector.
	sshArgs := append(sshd.opts(a), "-p", strconv.Itoa(sshd.port), sshd.user+"@127.0.0.1", "echo", "through-sallyport")
	out, err := runSSH(t, a, cmdTimeout, sshd.sshPath, sshArgs...)
	if err != nil || strings.TrimSpace(out) != "through-sallyport" {
		t.Fatalf("ssh through access stdio: %v\n%s", err, out)
	}

	// scp copies 100 MB, checksums equal.
	src := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, 100<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := h.Sum(nil)
	copyTo := filepath.Join(sshd.dir, "copy")
	scpArgs := append(sshd.opts(a), "-P", strconv.Itoa(sshd.port), src, sshd.user+"@127.0.0.1:"+copyTo)
	if out, err := runSSH(t, a, 5*time.Minute, sshd.scpPath, scpArgs...); err != nil {
		t.Fatalf("scp of 100 MB: %v\n%s", err, out)
	}
	cf, err := os.Open(copyTo)
	if err != nil {
		t.Fatal(err)
	}
	h.Reset()
	n, _ := io.Copy(h, cf)
	cf.Close()
	if n != 100<<20 || !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("the copy has %d bytes and another checksum", n)
	}

	// access tcp: a local listener; ssh straight to it.
	tcp := a.start(t, "access tcp", "access", "tcp", "ssh", "--listen", "127.0.0.1:0")
	m, ok := tcp.waitOutput(listeningRe, readyTimeout)
	if !ok {
		t.Fatalf("access tcp does not listen:\n%s", tcp.out.String())
	}
	lhost, lport, _ := net.SplitHostPort(m[1])
	out, err = runSSH(t, a, cmdTimeout, sshd.sshPath, append(sshd.opts(a)[:len(sshd.opts(a))-2], "-p", lport, sshd.user+"@"+lhost, "echo", "through-access-tcp")...)
	if err != nil || strings.TrimSpace(out) != "through-access-tcp" {
		t.Fatalf("ssh through access tcp: %v\n%s", err, out)
	}
	tcp.stop()

	// access socks: curl --socks5-hostname to the web backend, as a tcp
	// application.
	if curl, err := exec.LookPath("curl"); err == nil {
		beURL, _ := url.Parse(pc.backend.url)
		pc.admin.ok(t, "", "admin", "app", "create", "intranet", "--type", "tcp", "--internal-address", beURL.Host)
		pc.admin.ok(t, "", "admin", "app", "assign", "intranet", "--user", alice)
		socks := a.start(t, "access socks", "access", "socks", "--listen", "127.0.0.1:0")
		m, ok := socks.waitOutput(socksRe, readyTimeout)
		if !ok {
			t.Fatalf("access socks does not listen:\n%s", socks.out.String())
		}
		out, err := runSSH(t, a, cmdTimeout, curl, "--silent", "--show-error", "--socks5-hostname", m[1], strings.TrimSuffix(beURL.String(), "/")+"/headers")
		if err != nil || !strings.Contains(out, "User-Agent") {
			t.Fatalf("curl through access socks: %v\n%s", err, out)
		}
		if out, err := runSSH(t, a, cmdTimeout, curl, "--silent", "--show-error", "--socks5-hostname", m[1], "http://db.corp:5432/"); err == nil || !strings.Contains(out, "SOCKS5 connection to db.corp. (2)") { // reply 2: not allowed
			t.Errorf("curl through access socks to an address no segment covers: %v\n%s", err, out)
		}
		socks.stop()
	}

	// Refusals, each one sentence.
	a.refused(t, "", []string{"access", "stdio", "db.corp", "5432"}, "db.corp:5432 is outside every tcp segment of contoso.com")
	a.refused(t, "", []string{"access", "stdio", "10.255.255.1", "22"}, "No connector is active in group 'empty'")
	a.refused(t, "", []string{"access", "stdio", "127.0.0.1", "1"}, "connection was refused there")
	a.refused(t, "", []string{"access", "stdio", "nowhere.invalid", "22"}, "cannot reach nowhere.invalid:22")
	a.refused(t, "", []string{"access", "tcp", "nosuch"}, "contoso.com has no tcp application named nosuch")
	b := newRunner(t, "bob")
	pc.networkLogin(t, b, bob)
	b.refused(t, "", stdio, "bob@contoso.com) are not assigned to the application ssh")
	b.refused(t, "", []string{"access", "tcp", "ssh"}, "not assigned to the application ssh")

	// access logout ends the network sign-in.
	a.ok(t, "", "access", "logout", pc.url+"/")
	a.refused(t, "", stdio, "not signed in")
}
