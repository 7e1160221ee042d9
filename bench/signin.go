package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// The pre-authenticated path: the same backend published a second time
// with sign-in at the cloud (--pre-auth sallyport), reached with the
// session cookie of a signed-in user. The bench signs in as a browser
// does (the sign-in form, its CSRF token, the one-time code), so the
// cookie is a real session and every request goes through the gate.

const (
	preauthApp  = "bench-signed"
	benchUser   = "user@contoso.com"
	benchUserPW = "bench-user-password-1"
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// publishPreauth publishes the backend as preauthApp, makes a user
// assigned to it, and returns its external host.
func (s *sallyport) publishPreauth(ctx context.Context, backendAddr string) (string, error) {
	out, err := s.h.run(ctx, "", "admin", "app", "create", preauthApp, "--internal-url", "http://"+backendAddr+"/", "--pre-auth", "sallyport", "--json")
	if err != nil {
		return "", err
	}
	host := jsonField(out, "external_host")
	if host == "" {
		return "", fmt.Errorf("'admin app create --json' printed no external host: %q", out)
	}
	if _, err := s.h.run(ctx, benchUserPW+"\n", "admin", "user", "create", benchUser, "--role", "user", "--password-stdin"); err != nil {
		return "", err
	}
	if _, err := s.h.run(ctx, "", "admin", "app", "assign", preauthApp, "--user", benchUser); err != nil {
		return "", err
	}
	return host, nil
}

var fieldRE = regexp.MustCompile(`"external_host":\s*"([^"]+)"`)

func jsonField(js, _ string) string {
	if m := fieldRE.FindStringSubmatch(js); m != nil {
		return m[1]
	}
	return ""
}

// signIn signs benchUser in to host as a browser does and returns the
// application's session cookie ("Cookie: __Host-sallyport=…").
func (s *sallyport) signIn(ctx context.Context, host string) (string, error) {
	jar, _ := cookiejar.New(nil)
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Jar: jar, Timeout: cmdTimeout}
	get := func(u string) (*http.Response, string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	appURL := fmt.Sprintf("https://%s:%d/small", host, s.port)
	resp, page, err := get(appURL)
	if err != nil {
		return "", err
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil || resp.Request.URL.Path != "/signin" {
		return "", fmt.Errorf("GET %s did not lead to the sign-in form (%s at %s)", appURL, resp.Status, resp.Request.URL)
	}
	form := url.Values{"csrf": {m[1]}, "user": {benchUser}, "password": {benchUserPW}, "rd": {resp.Request.URL.Query().Get("rd")}}
	req, _ := http.NewRequestWithContext(ctx, "POST", resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err = c.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Host != host+":"+fmt.Sprint(s.port) {
		return "", fmt.Errorf("signing in as %s ended with %s at %s", benchUser, resp.Status, resp.Request.URL)
	}
	u, _ := url.Parse(appURL)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "__Host-sallyport" {
			return "Cookie: " + ck.Name + "=" + ck.Value, nil
		}
	}
	return "", errors.New("signed in, but the application host set no session cookie")
}

// preauthTarget is the pre-authenticated application as a load target.
func (s *sallyport) preauthTarget(host, cookie string) *target {
	return &target{
		name:      "sallyport-preauth",
		addr:      fmt.Sprintf("127.0.0.1:%d", s.port),
		host:      host,
		tls:       s.tlsConfig(host),
		scheme:    "https",
		headers:   []string{cookie},
		smallOnly: true,
	}
}
