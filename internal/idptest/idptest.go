// Package idptest runs a real OpenID provider for tests: Ory Hydra
// (`hydra serve all --dev`, in-memory storage) on free ports of 127.0.0.1,
// with a small login and consent app in the test process that signs in
// the user a test sets, without a page, and grants what was asked.
//
// The hydra binary is built by .ci/run from the tools module (tools/go.mod)
// and named by SALLYPORT_HYDRA; locally, run
//
//	(cd tools && go build -tags sqlite,sqlite_omit_load_extension -o bin/hydra github.com/ory/hydra/v2)
//
// (the tests find tools/bin/hydra), or set SALLYPORT_HYDRA, or put a
// hydra on PATH. Without one a test is skipped, except under CI=true,
// where it fails.
//
// It is for tests only: nothing outside _test.go files imports it.
package idptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/testnet"
)

// EnvBinary names the hydra binary to run.
const EnvBinary = "SALLYPORT_HYDRA"

// Binary is the path of the hydra binary: $SALLYPORT_HYDRA, else
// tools/bin/hydra in the repository, else hydra on PATH. Without one the
// test is skipped, or fails under CI=true (.ci/run always builds it).
func Binary(t testing.TB) string {
	t.Helper()
	return testnet.Tool{
		Env: EnvBinary, Names: []string{builtHydra(), "hydra"},
		CI: fmt.Sprintf("Ory Hydra is not built: .ci/run builds it from tools/go.mod and sets %s", EnvBinary),
		Skip: fmt.Sprintf("Ory Hydra is not built, so the test against a real OpenID provider is skipped: "+
			"(cd tools && go build -tags sqlite,sqlite_omit_load_extension -o bin/hydra github.com/ory/hydra/v2), "+
			"or set %s", EnvBinary),
	}.Path(t)
}

// builtHydra is tools/bin/hydra in the repository (the nearest directory
// up from here with tools/go.mod), or "" outside one.
func builtHydra() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "tools", "go.mod")); err == nil {
			return filepath.Join(dir, "tools", "bin", "hydra")
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// User is who the login app signs in: the subject, and the claims put in
// the ID token.
type User struct {
	Subject string
	Email   string
	Name    string
	Groups  []string
}

// Provider is a running Hydra with its login and consent app. Its methods
// may be called from any goroutine.
type Provider struct {
	issuer string // the public URL, with its trailing slash, as Hydra names itself
	admin  string // the admin API's base URL, no trailing slash
	client *http.Client
	// rootCAs: what the harness's clients trust (Options.RootCAs).
	rootCAs *x509.CertPool

	mu     sync.Mutex
	user   *User
	logins int
}

// Options change how Start runs Hydra. The zero value is fine.
type Options struct {
	// Env are extra environment variables for hydra (KEY=VALUE), e.g.
	// "TTL_ID_TOKEN=1m".
	Env []string
	// Timeout is how long Hydra may take to become ready (default 60 s:
	// it migrates its in-memory database at start).
	Timeout time.Duration
	// CertPEM and KeyPEM, when set, make the public endpoint (discovery,
	// authorization, token, keys) serve HTTPS with this certificate chain
	// (valid for 127.0.0.1) and key, and the issuer https://127.0.0.1:PORT/.
	// The admin API stays plain HTTP on loopback.
	CertPEM, KeyPEM []byte
	// RootCAs are what the harness's own clients (readiness, Authorize)
	// trust for the public endpoint: the CA of CertPEM.
	RootCAs *x509.CertPool
}

// Start runs Hydra and the login app; both stop when the test ends (the
// process is killed and waited for, the app closed).
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	bin := Binary(t)
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: opts.RootCAs}}
	p := &Provider{client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, rootCAs: opts.RootCAs}
	t.Cleanup(tr.CloseIdleConnections)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{Handler: p.routes(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		app.Serve(ln)
	}()
	t.Cleanup(func() {
		app.Close()
		<-served
	})
	appURL := "http://" + ln.Addr().String()

	// Hydra takes port numbers, not listeners: a free port is found, closed
	// and handed over. Another process may take it in between; Hydra then
	// exits at once and is started again on other ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = p.run(t, bin, appURL, opts); lastErr == nil {
			return p
		}
	}
	t.Fatal(lastErr)
	return nil
}

// run starts one hydra process and waits for it to be ready. A process
// that exits before it is ready is an error (and may be retried); one
// that does not become ready in time fails the test.
func (p *Provider) run(t testing.TB, bin, appURL string, opts Options) error {
	t.Helper()
	public, admin := freePort(t), freePort(t)
	scheme := "http"
	if opts.CertPEM != nil {
		scheme = "https"
	}
	p.issuer = scheme + "://127.0.0.1:" + public + "/"
	p.admin = "http://127.0.0.1:" + admin
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Dir = dir
	cmd.Env = append([]string{
		"HOME=" + dir,
		"PATH=" + os.Getenv("PATH"),
		"DSN=memory",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT=" + public,
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT=" + admin,
		"URLS_SELF_ISSUER=" + p.issuer,
		"URLS_LOGIN=" + appURL + "/login",
		"URLS_CONSENT=" + appURL + "/consent",
		"SECRETS_SYSTEM=idptest-system-secret-0123456789abcdef",
		"LOG_LEVEL=warn",
		"LOG_LEAK_SENSITIVE_VALUES=true",
	}, opts.Env...)
	if opts.CertPEM != nil {
		cmd.Env = append(cmd.Env, "SERVE_PUBLIC_TLS_ENABLED=true",
			"SERVE_PUBLIC_TLS_CERT_BASE64="+base64.StdEncoding.EncodeToString(opts.CertPEM),
			"SERVE_PUBLIC_TLS_KEY_BASE64="+base64.StdEncoding.EncodeToString(opts.KeyPEM))
	}
	var out testnet.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// Ready: the admin API answers, and the public one serves the
		// discovery document with the issuer asked for.
		if p.ready(ctx) {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("hydra exited before it was ready (%v):\n%s", waitErr, out.String())
		case <-ctx.Done():
			stop()
			t.Fatalf("hydra was not ready within %s:\n%s", opts.Timeout, out.String())
		case <-tick.C:
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("hydra's output:\n%s", out.String())
		}
	})
	return nil
}

func (p *Provider) ready(ctx context.Context) bool {
	for _, u := range []string{p.admin + "/health/ready", p.issuer + ".well-known/openid-configuration"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := p.client.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// Issuer is the provider's issuer URL ("http://127.0.0.1:PORT/", or
// https with Options.CertPEM), as its
// discovery document and ID tokens name it.
func (p *Provider) Issuer() string { return p.issuer }

// AdminURL is the base URL of Hydra's admin API (no trailing slash).
func (p *Provider) AdminURL() string { return p.admin }

// SetUser makes the login app sign in u from now on; nil makes it refuse
// every sign-in (the provider answers the client with access_denied).
func (p *Provider) SetUser(u *User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u != nil {
		c := *u
		c.Groups = append([]string(nil), u.Groups...)
		u = &c
	}
	p.user = u
}

// Logins is how many sign-ins the login app has accepted.
func (p *Provider) Logins() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logins
}

// Client is an OAuth2 client registered at the provider.
type Client struct {
	ID     string
	Secret string
}

// CreateClient registers a confidential client (client_secret_basic) for
// the authorization code flow with these redirect URIs, allowed the scopes
// openid, email, profile, groups and offline_access.
func (p *Provider) CreateClient(t testing.TB, redirectURIs ...string) Client {
	t.Helper()
	body := map[string]any{
		"client_name":                "idptest",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "openid email profile groups offline_access",
		"redirect_uris":              redirectURIs,
		"token_endpoint_auth_method": "client_secret_basic",
	}
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := p.call(context.Background(), http.MethodPost, "/admin/clients", body, &c); err != nil {
		t.Fatalf("create OAuth2 client: %v", err)
	}
	if c.ID == "" || c.Secret == "" {
		t.Fatalf("create OAuth2 client: no id or secret in the answer")
	}
	return Client{ID: c.ID, Secret: c.Secret}
}

// call sends a JSON request to the admin API and decodes its answer into
// out (when not nil).
func (p *Provider) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.admin+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// routes is the login and consent app Hydra sends the browser to: it accepts (or refuses) each request through the admin API and
// redirects where Hydra says.
func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		challenge := url.QueryEscape(r.URL.Query().Get("login_challenge"))
		p.mu.Lock()
		u := p.user
		if u != nil {
			p.logins++
		}
		p.mu.Unlock()
		var to redirect
		var err error
		if u == nil {
			err = p.call(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/login/reject?login_challenge="+challenge,
				map[string]any{"error": "access_denied", "error_description": "idptest: no user is set"}, &to)
		} else {
			err = p.call(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+challenge,
				map[string]any{"subject": u.Subject, "remember": false}, &to)
		}
		p.send(w, r, to, err)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		challenge := url.QueryEscape(r.URL.Query().Get("consent_challenge"))
		var req struct {
			Subject   string   `json:"subject"`
			Scope     []string `json:"requested_scope"`
			Audiences []string `json:"requested_access_token_audience"`
		}
		if err := p.call(r.Context(), http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+challenge, nil, &req); err != nil {
			p.send(w, r, redirect{}, err)
			return
		}
		p.mu.Lock()
		u := p.user
		p.mu.Unlock()
		claims := map[string]any{}
		if u != nil && u.Subject == req.Subject {
			claims["email"] = u.Email
			claims["email_verified"] = u.Email != ""
			claims["name"] = u.Name
			claims["groups"] = append([]string{}, u.Groups...)
		}
		var to redirect
		err := p.call(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+challenge,
			map[string]any{
				"grant_scope":                 req.Scope,
				"grant_access_token_audience": req.Audiences,
				"remember":                    false,
				"session":                     map[string]any{"id_token": claims},
			}, &to)
		p.send(w, r, to, err)
	})
	return mux
}

type redirect struct {
	To string `json:"redirect_to"`
}

func (p *Provider) send(w http.ResponseWriter, r *http.Request, to redirect, err error) {
	if err == nil && to.To == "" {
		err = errors.New("the admin API gave no redirect_to")
	}
	if err != nil {
		http.Error(w, "idptest: "+err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, to.To, http.StatusFound)
}

// Authorize follows authURL through the provider and the login app as a
// browser would (cookies kept, redirects followed) up to the first
// redirect to a URL starting with redirectURI, and returns that URL (the
// client's callback, with its code and state, or error). It does not
// fetch the callback itself, so redirectURI need not listen.
func (p *Provider) Authorize(ctx context.Context, authURL, redirectURI string) (*url.URL, error) {
	var callback *url.URL
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: p.rootCAs}}
	defer tr.CloseIdleConnections()
	jar := newJar()
	c := &http.Client{
		Transport: tr,
		Jar:       jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURI) {
				callback = req.URL
				return http.ErrUseLastResponse
			}
			if len(via) > 20 {
				return errors.New("more than 20 redirects")
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if callback == nil {
		return nil, fmt.Errorf("the flow ended at %s (%s) without reaching %s: %s", resp.Request.URL, resp.Status, redirectURI, b)
	}
	return callback, nil
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// newJar is a cookie jar for one flow.
func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}
