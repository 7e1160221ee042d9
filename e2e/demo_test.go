package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const demoPage = "Hello from the internal app"

// TestDemo: 'sallyport demo' comes up, its printed URL, curl line and
// admin instructions work, and Ctrl-C stops it cleanly.
func TestDemo(t *testing.T) {
	t.Parallel()
	r := newRunner(t, "demo")
	p := r.start(t, "demo", "demo", "--listen", "127.0.0.1:0")
	// Its steps show as they happen, before it is ready (issue 20, defect 8).
	if _, ok := p.waitOutput(regexp.MustCompile(`(?m)^• Creating the demo cloud `), 60*time.Second); !ok {
		t.Fatalf("the demo did not say it is creating its cloud:\n%s", tail(p.out.String(), 30))
	}
	m, ok := p.waitOutput(regexp.MustCompile(`(?m)^  (curl .*)\n`), 60*time.Second)
	if !ok {
		t.Fatalf("the demo printed no curl line:\n%s", tail(p.out.String(), 30))
	}
	curlLine := m[1]
	out := p.out.String()
	field := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the demo's output has no match for %s:\n%s", re, out)
		}
		return m[1]
	}
	extURL := field(`Application\s+'web': (https://\S+)`)
	cloudURL := field(`Cloud service\s+(https://\S+)`)
	dataDir := field(`\(data in (\S+)\)`)
	admin := field(`(?m)^\s+Admin\s+(\S+)$`)
	password := field(`(?m)^\s+Password\s+(\S+)$`)
	caFile := field(`--cacert (\S+)`)
	user := field(`(?m)^\s+User\s+(\S+)$`)
	userPW := field(`(?m)^\s+User password\s+(\S+)$`)

	u, err := url.Parse(extURL)
	if err != nil || u.Hostname() != "web-contoso."+cloudName {
		t.Fatalf("external URL %q", extURL)
	}
	if tmp := filepath.Join(r.dir, "tmp"); !strings.HasPrefix(dataDir, tmp+string(os.PathSeparator)) {
		t.Errorf("the demo's temporary directory %s is not under TMPDIR %s", dataDir, tmp)
	}

	t.Run("sign in at the printed URL", func(t *testing.T) {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no certificate", caFile)
		}
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, Timeout: cmdTimeout, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", u.Port()))
			},
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		}}
		defer hc.CloseIdleConnections()
		get := func(accept string) (*http.Response, string) {
			req, _ := http.NewRequest(http.MethodGet, extURL, nil)
			req.Header.Set("Accept", accept)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp, string(body)
		}
		// Anonymous: nothing of the application, a 401 for an API client.
		if resp, body := get("application/json"); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, demoPage) {
			t.Fatalf("anonymous GET %s: %s %s", extURL, resp.Status, body)
		}
		// A browser goes to the sign-in page, signs in as the printed user
		// and lands on the application's page.
		resp, page := get("text/html")
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil || resp.Request.URL.Path != "/signin" {
			t.Fatalf("GET %s as a browser: %s at %s, not the sign-in page", extURL, resp.Status, resp.Request.URL)
		}
		form := url.Values{"csrf": {m[1]}, "user": {user}, "password": {userPW}, "rd": {resp.Request.URL.Query().Get("rd")}}
		resp, err = hc.PostForm(resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+"/signin", form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("signing in as %s: %s %s", user, resp.Status, body)
		}
		mustContain(t, "demo page", string(body), demoPage, "Signed-in user: "+user, "X-Forwarded-Proto: https", "X-Forwarded-For: 127.0.0.1")
	})

	t.Run("the printed curl line", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl is not installed")
		}
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", curlLine)
		cmd.Env = r.env() // no proxy settings
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", curlLine, err, got)
		}
		mustContain(t, "curl output", string(got), demoPage)
	})

	t.Run("the steps as they happened", func(t *testing.T) {
		ready := strings.Index(out, "Sallyport demo is running.")
		for _, s := range []string{"• Creating the demo cloud", "• Starting the cloud on", "• Registering connector 1 of 2", "• Registering connector 2 of 2",
			"• Publishing the internal application", "• Waiting for the connectors' tunnels"} {
			if i := strings.Index(out, s); i < 0 || i > ready {
				t.Errorf("the demo did not say %q before it was ready:\n%s", s, out)
			}
		}
	})

	t.Run("the printed admin instructions", func(t *testing.T) {
		// The binary is not on PATH: the demo prints its absolute path, and
		// the printed line works as printed.
		m := regexp.MustCompile(`(?m)^  (\S+) admin login --cloud (\S+) --user (\S+) --ca-file (\S+) --password-stdin$`).FindStringSubmatch(out)
		if m == nil || m[1] != binary || m[2] != cloudURL || m[3] != admin || m[4] != caFile {
			t.Fatalf("the demo's admin login line %q, want it to start with the binary %s:\n%s", m, binary, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", strings.TrimPrefix(m[0], "  "))
		cmd.Env = r.env()
		cmd.Stdin = strings.NewReader(password + "\n")
		if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), "Signed in to "+cloudURL) {
			t.Fatalf("%s: %v\n%s", m[0], err, got)
		}
		mustContain(t, "demo output", out, binary+" admin connector list")
		var cs []apiConnector
		r.okJSON(t, &cs, "admin", "connector", "list", "--json")
		active := 0
		for _, x := range cs {
			if x.Status == "active" && x.Tunnels > 0 && x.Group == "Default" {
				active++
			}
		}
		if active != 2 {
			t.Errorf("the demo has %d active connectors, want 2: %+v", active, cs)
		}
	})

	p.signal(os.Interrupt)
	code, ok := p.waitExit(30 * time.Second)
	if !ok {
		t.Fatalf("the demo still runs 30s after Ctrl-C:\n%s", tail(p.out.String(), 20))
	}
	if code != 0 {
		t.Errorf("the demo exited %d after Ctrl-C, want 0:\n%s", code, tail(p.out.String(), 20))
	}
	mustContain(t, "demo output", p.out.String(), "Stopping the demo")
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the demo's temporary directory %s is still there after it stopped (%v)", dataDir, err)
	}
}
