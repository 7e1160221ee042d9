// Package accessclient is `sallyport access`: a program's sign-in to an
// application with pre-authentication, for clients that are not browsers.
// It finds the cloud that serves the application from the application's
// own 401 answer (WWW-Authenticate: Bearer … authorization_uri=…), signs
// in with the OAuth 2.0 device authorization grant (RFC 8628): the user
// approves a code in any browser, and keeps the application's access
// token and refresh token in the user's configuration directory
// (os.UserConfigDir()/sallyport/access/HOST.json, 0600), refreshing the
// access token before it expires. See docs/identity.md, "Clients that are
// not browsers".
//
// It must not import the cloud's packages: it speaks HTTP to the cloud
// like any OAuth client.
package accessclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// ClientID is the OAuth client_id of `sallyport access`.
const ClientID = "sallyport-cli"

const (
	deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"
	// refreshBefore: a token that expires within this is refreshed first.
	refreshBefore = time.Minute
	maxAnswer     = 1 << 20
)

// Options are what every `sallyport access` command takes.
type Options struct {
	// AppURL is the application's URL (https://HOST[:PORT][/path]).
	AppURL string
	// CAFile, on login, is a PEM file of extra roots to trust (the
	// cloud's CA for a cloud without a public certificate); it is
	// remembered with the tokens.
	CAFile string
	// User, on login, makes it a network sign-in: AppURL is then the
	// cloud's own address, and the user name's domain names the tenant
	// whose network applications the tokens are for.
	User string
	// Dir is where tokens are kept; "" is DefaultDir().
	Dir string
	// Out receives what the user reads (the code to approve, who signed
	// in); nil discards it.
	Out io.Writer
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) out() io.Writer {
	if o.Out == nil {
		return io.Discard
	}
	return o.Out
}

// DefaultDir is os.UserConfigDir()/sallyport/access.
func DefaultDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", problem.Newf(400, "no_config_dir", "set HOME (or XDG_CONFIG_HOME)", "There is no configuration directory to keep the tokens in (%v)", err)
	}
	return filepath.Join(d, "sallyport", "access"), nil
}

func (o *Options) dir() (string, error) {
	if o.Dir != "" {
		return o.Dir, nil
	}
	return DefaultDir()
}

// app is a parsed application URL.
type app struct {
	origin string // https://host[:port]
	key    string // the token file's name: host, or host_port
	raw    string // as given (for curl)
}

// parseApp checks an application URL.
func parseApp(raw string) (app, error) {
	bad := func(why string) error {
		return problem.Newf(400, "bad_app_url", "give the application's address as https://HOST/, for example https://web-contoso.sallyport.example.com/",
			"The application URL %q is not usable: %s", raw, why)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return app{}, bad("it does not parse as a URL")
	}
	if u.Scheme != "https" {
		return app{}, bad("only https:// is allowed")
	}
	if u.Hostname() == "" || u.User != nil {
		return app{}, bad("it has no host name, or has a user name")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return app{}, bad("its host is not a DNS name")
		}
	}
	a := app{origin: "https://" + host, key: host, raw: u.String()}
	if p := u.Port(); p != "" && p != "443" {
		a.origin += ":" + p
		a.key += "_" + p
	}
	return a, nil
}

// saved is the token file of one application.
type saved struct {
	App            string    `json:"app_url"`
	AppName        string    `json:"app"`
	User           string    `json:"user"`
	TokenURL       string    `json:"token_url"`
	CAFile         string    `json:"ca_file,omitempty"`
	AccessToken    string    `json:"access_token"`
	AccessExpires  time.Time `json:"access_expires_at"`
	RefreshToken   string    `json:"refresh_token"`
	RefreshExpires time.Time `json:"refresh_expires_at"`
	// Network: a network sign-in (the cloud's own address, for private
	// access), not one application's.
	Network bool `json:"network,omitempty"`
}

// httpClient trusts the system's roots and, when caFile is set, its
// certificates; it resolves *.localhost to loopback as browsers do.
func httpClient(caFile string) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		raw, err := os.ReadFile(caFile)
		if err != nil {
			return nil, problem.Newf(400, "ca_file", "give a PEM file of the CA certificates to trust (the cloud's cloud-ca.pem)", "The CA file %s cannot be read (%v)", caFile, err)
		}
		if !roots.AppendCertsFromPEM(raw) {
			return nil, problem.Newf(400, "ca_file", "give a PEM file of the CA certificates to trust (the cloud's cloud-ca.pem)", "The CA file %s holds no PEM certificate", caFile)
		}
	}
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         cloudlink.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: pki.MinTLSVersion},
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// Never follow a redirect: an answer that is not the one asked for
		// is reported as it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// unreachable turns a failed request into one sentence.
func unreachable(what, u string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	step := "check the URL and the network"
	var certErr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &certErr) || errors.As(err, &unknown) {
		step = "if the cloud uses its own CA, run 'sallyport access login' with --ca-file and the cloud's cloud-ca.pem"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		step = "check the host name"
	}
	return problem.Newf(502, "unreachable", step, "%s %s cannot be reached (%v)", what, u, err)
}

// Login signs in to the application with the device flow and keeps its
// tokens.
func Login(ctx context.Context, o Options) error {
	a, err := parseApp(o.AppURL)
	if err != nil {
		return err
	}
	dir, err := o.dir()
	if err != nil {
		return err
	}
	caFile := o.CAFile
	if caFile != "" {
		if caFile, err = filepath.Abs(caFile); err != nil {
			return err
		}
	}
	hc, err := httpClient(caFile)
	if err != nil {
		return err
	}
	var authURI *url.URL
	form := url.Values{"client_id": {ClientID}, "resource": {a.origin + "/"}}
	if o.User != "" {
		// A network sign-in: the cloud itself is the resource.
		authURI, _ = url.Parse(a.origin + "/oauth/device_authorization")
		form.Set("login_hint", o.User)
	} else if authURI, err = discover(ctx, hc, a); err != nil {
		return err
	}
	tokenURL := *authURI
	tokenURL.Path, tokenURL.RawQuery = "/oauth/token", ""

	var da struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURI         string `json:"verification_uri"`
		VerificationURIComplete string `json:"verification_uri_complete"`
		ExpiresIn               int    `json:"expires_in"`
		Interval                int    `json:"interval"`
	}
	if err := postForm(ctx, hc, authURI.String(), form, &da); err != nil {
		return err
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return problem.Newf(502, "bad_answer", "check that the application is published by a Sallyport cloud", "The cloud at %s gave no device code", authURI.Host)
	}
	out := o.out()
	fmt.Fprintf(out, "To sign in to %s/, open this page in a browser:\n\n    %s\n\nand enter the code %s\n", a.origin, da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(out, "(or open %s)\n", da.VerificationURIComplete)
	}
	fmt.Fprintln(out, "\nWaiting for the approval…")

	interval := 5 * time.Second // RFC 8628 §3.2: the default
	if da.Interval > 0 {
		interval = time.Duration(da.Interval) * time.Second
	}
	deadline := o.now().Add(time.Duration(max(da.ExpiresIn, 60)) * time.Second)
	form = url.Values{"grant_type": {deviceGrantType}, "device_code": {da.DeviceCode}, "client_id": {ClientID}}
	for {
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		var tok tokenAnswer
		err := postForm(ctx, hc, tokenURL.String(), form, &tok)
		var oe *oauthError
		switch {
		case errors.As(err, &oe) && oe.Code == "authorization_pending":
			if o.now().After(deadline) {
				return problem.Newf(400, "expired", "run 'sallyport access login "+a.origin+"/' again", "The code %s was not approved in time", da.UserCode)
			}
			continue
		case errors.As(err, &oe) && oe.Code == "slow_down":
			interval += 5 * time.Second
			continue
		case err != nil:
			return err
		}
		s := saved{App: a.origin + "/", TokenURL: tokenURL.String(), CAFile: caFile, Network: o.User != ""}
		s.update(tok, o.now())
		if err := save(dir, a.key, &s); err != nil {
			return err
		}
		fmt.Fprintf(out, "Signed in to %s (%s/) as %s; the tokens are kept in %s until %s.\n", s.AppName, a.origin, s.User,
			filepath.Join(dir, a.key+".json"), s.RefreshExpires.Local().Format("2006-01-02 15:04"))
		return nil
	}
}

// discover asks the application, without credentials, where to sign in.
func discover(ctx context.Context, hc *http.Client, a app) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.origin+"/", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, unreachable("The application", a.origin+"/", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	c, ok := BearerChallenge(resp.Header.Values("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || !ok || c.Params["authorization_uri"] == "" {
		if resp.StatusCode < 300 {
			return nil, problem.Newf(400, "no_signin", "use it without a token; if it is the cloud's own address, sign in to its network applications with --user NAME@DOMAIN",
				"The application %s/ does not ask for a sign-in (it answered %s)", a.origin, resp.Status)
		}
		return nil, problem.Newf(400, "no_signin", "check that the URL is an application published by Sallyport with pre-authentication",
			"The application %s/ did not ask for a Sallyport sign-in (it answered %s without a Bearer challenge naming an authorization_uri)", a.origin, resp.Status)
	}
	u, err := url.Parse(c.Params["authorization_uri"])
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, problem.Newf(502, "bad_challenge", "tell the application's administrator",
			"The application %s/ names an authorization_uri that is not an https:// URL (%.100q)", a.origin, c.Params["authorization_uri"])
	}
	return u, nil
}

// tokenAnswer is the token endpoint's answer.
type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	User             string `json:"user"`
	App              string `json:"app"`
}

func (s *saved) update(t tokenAnswer, now time.Time) {
	s.AccessToken, s.AccessExpires = t.AccessToken, now.Add(time.Duration(t.ExpiresIn)*time.Second).UTC()
	if t.RefreshToken != "" {
		s.RefreshToken = t.RefreshToken
		if t.RefreshExpiresIn > 0 {
			s.RefreshExpires = now.Add(time.Duration(t.RefreshExpiresIn) * time.Second).UTC()
		}
	}
	if t.User != "" {
		s.User = t.User
	}
	if t.App != "" {
		s.AppName = t.App
	}
}

// oauthError is an RFC 6749 error answer.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
	status      int
}

func (e *oauthError) Error() string {
	d := strings.TrimSuffix(strings.TrimSpace(e.Description), ".")
	if d == "" {
		d = "The cloud refused the request (" + e.Code + ")"
	}
	return d + "."
}

// postForm posts a form and decodes a JSON answer; an error answer is an
// *oauthError.
func postForm(ctx context.Context, hc *http.Client, u string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return unreachable("The cloud", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return unreachable("The cloud", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		oe := &oauthError{status: resp.StatusCode}
		if json.Unmarshal(body, oe) != nil || oe.Code == "" {
			return problem.Newf(502, "bad_answer", "check that the application is published by a Sallyport cloud", "The cloud answered %s at %s", resp.Status, u)
		}
		return oe
	}
	if err := json.Unmarshal(body, out); err != nil {
		return problem.Newf(502, "bad_answer", "check that the application is published by a Sallyport cloud", "The cloud's answer at %s is not JSON (%v)", u, err)
	}
	return nil
}

func notSignedIn(a app) error {
	return problem.Newf(401, "not_signed_in", "run 'sallyport access login "+a.origin+"/'", "You are not signed in to %s/", a.origin)
}

// Token returns a valid access token for the application, refreshed
// first when it expires within a minute.
func Token(ctx context.Context, o Options) (string, error) {
	tok, _, err := token(ctx, o)
	return tok, err
}

func token(ctx context.Context, o Options) (string, *saved, error) {
	a, err := parseApp(o.AppURL)
	if err != nil {
		return "", nil, err
	}
	dir, err := o.dir()
	if err != nil {
		return "", nil, err
	}
	s, err := load(dir, a.key)
	if err != nil {
		return "", nil, err
	}
	if s == nil {
		return "", nil, notSignedIn(a)
	}
	if o.now().Add(refreshBefore).Before(s.AccessExpires) {
		return s.AccessToken, s, nil
	}
	// Refresh under the lock, so that two commands at once do not both
	// present the same refresh token: the second would be taken for a
	// stolen copy, and the sign-in ended.
	unlock, err := lock(ctx, dir, a.key)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	if s, err = load(dir, a.key); err != nil {
		return "", nil, err
	}
	if s == nil {
		return "", nil, notSignedIn(a)
	}
	if o.now().Add(refreshBefore).Before(s.AccessExpires) {
		return s.AccessToken, s, nil
	}
	if !o.now().Before(s.RefreshExpires) && !s.RefreshExpires.IsZero() {
		os.Remove(filepath.Join(dir, a.key+".json"))
		return "", nil, problem.Newf(401, "signin_expired", "run 'sallyport access login "+a.origin+"/' again", "Your sign-in to %s/ expired", a.origin)
	}
	hc, err := httpClient(s.CAFile)
	if err != nil {
		return "", nil, err
	}
	var t tokenAnswer
	err = postForm(ctx, hc, s.TokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.RefreshToken}, "client_id": {ClientID}}, &t)
	var oe *oauthError
	if errors.As(err, &oe) && oe.Code == "invalid_grant" {
		os.Remove(filepath.Join(dir, a.key+".json"))
		return "", nil, problem.Newf(401, "signin_ended", "run 'sallyport access login "+a.origin+"/' again", "Your sign-in to %s/ ended: %s", a.origin, strings.TrimSuffix(oe.Description, "."))
	}
	if err != nil {
		return "", nil, err
	}
	s.update(t, o.now())
	if err := save(dir, a.key, s); err != nil {
		return "", nil, err
	}
	return s.AccessToken, s, nil
}

// LogoutResult is what Logout did.
type LogoutResult struct {
	Removed bool // there were tokens, and they were removed
	// Ended: the cloud ended the sign-in (RFC 7009 revocation of the
	// refresh token and its access token). When it could not be told,
	// NotEnded says why, and the tokens end on their own (the refresh
	// token within 30 days).
	Ended    bool
	NotEnded error
}

// Logout ends the sign-in at the cloud and removes the application's
// tokens from this machine (removed even when the cloud cannot be
// reached).
func Logout(ctx context.Context, o Options) (LogoutResult, error) {
	var res LogoutResult
	a, err := parseApp(o.AppURL)
	if err != nil {
		return res, err
	}
	dir, err := o.dir()
	if err != nil {
		return res, err
	}
	path := filepath.Join(dir, a.key+".json")
	s, err := load(dir, a.key)
	if err == nil && s != nil {
		res.NotEnded = revoke(ctx, s)
		res.Ended = res.NotEnded == nil
	}
	err = os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, problem.Newf(400, "token_file", "check the directory's permissions", "The tokens of %s/ cannot be removed (%v)", a.origin, err)
	}
	res.Removed = true
	return res, nil
}

// revoke asks the cloud to end the refresh token (and its access token).
func revoke(ctx context.Context, s *saved) error {
	u, err := url.Parse(s.TokenURL)
	if err != nil {
		return err
	}
	u.Path = "/oauth/revoke"
	hc, err := httpClient(s.CAFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(),
		strings.NewReader(url.Values{"token": {s.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {ClientID}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return unreachable("The cloud", u.String(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the cloud answered %s at %s", resp.Status, u)
	}
	return nil
}
