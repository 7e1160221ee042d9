package cloudlink

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/sallyport/sallyport/internal/problem"
)

// Proxy is an outbound HTTP proxy through which a site reaches the cloud
// (HTTP CONNECT), as corporate networks require. Its password is a
// secret: String never shows it.
type Proxy struct {
	URL      *url.URL // http:// or https:// (TLS to the proxy), no credentials in it
	Username string
	Password string
	NoProxy  string // hosts, domains (.corp), IPs and CIDRs reached directly, comma-separated
	Source   string // where it came from: "flag", "config file", "HTTPS_PROXY"
}

// ParseProxy checks a proxy URL; credentials may be in it (user:pass@)
// or given apart (those win).
func ParseProxy(raw, user, password, noProxy, source string) (*Proxy, error) {
	bad := func(why string) error {
		return problem.Newf(400, "bad_proxy_url", "give it as http://HOST:PORT or https://HOST:PORT, for example http://proxy.corp:3128",
			"The proxy URL %q is not usable: %s", redactURL(raw), why)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, bad("it does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("only http:// and https:// proxies are supported")
	}
	if u.Hostname() == "" {
		return nil, bad("it has no host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, bad("it must not contain a path or query")
	}
	p := &Proxy{Username: user, Password: password, NoProxy: noProxy, Source: source}
	if u.User != nil && p.Username == "" {
		p.Username = u.User.Username()
		p.Password, _ = u.User.Password()
	}
	if u.Port() == "" {
		if u.Scheme == "https" {
			u.Host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			u.Host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	p.URL = &url.URL{Scheme: u.Scheme, Host: u.Host}
	return p, nil
}

// ProxyFromEnvironment returns the proxy HTTPS_PROXY (or https_proxy)
// names, with NO_PROXY, or nil when none is set.
func ProxyFromEnvironment() (*Proxy, error) {
	cfg := httpproxy.FromEnvironment()
	if cfg.HTTPSProxy == "" {
		return nil, nil
	}
	return ParseProxy(cfg.HTTPSProxy, "", "", cfg.NoProxy, "HTTPS_PROXY")
}

// String describes the proxy without its password.
func (p *Proxy) String() string {
	if p == nil {
		return "none"
	}
	s := p.URL.String()
	if p.Username != "" {
		s += " (user " + p.Username + ")"
	}
	return s
}

// Applies reports whether connections to host go through the proxy
// (NO_PROXY rules, as curl and Go apply them).
func (p *Proxy) Applies(host string) bool {
	if p == nil {
		return false
	}
	fn := (&httpproxy.Config{HTTPSProxy: p.URL.String(), NoProxy: p.NoProxy}).ProxyFunc()
	u, err := fn(&url.URL{Scheme: "https", Host: host})
	return err == nil && u != nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// Dialer dials the cloud, directly or through a proxy.
type Dialer struct {
	Proxy *Proxy
}

// DialContext connects to addr (host:port), through the proxy when one
// applies: TCP (or TLS) to the proxy, then HTTP CONNECT.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	if d == nil || !d.Proxy.Applies(host) {
		return DialContext(ctx, network, addr)
	}
	return d.Proxy.connect(ctx, addr)
}

// ProxyError is a proxy's refusal or failure; Explain turns it into a
// sentence naming the proxy and its answer.
type ProxyError struct {
	Proxy  *Proxy
	Target string // host:port asked for
	Status string // the proxy's status line, "" when it could not be reached
	Code   int
	Auth   bool // credentials were sent
	Err    error
}

func (e *ProxyError) Error() string {
	if e.Status == "" {
		return fmt.Sprintf("the proxy %s cannot be reached: %v", e.Proxy, e.Err)
	}
	return fmt.Sprintf("the proxy %s answered %q to CONNECT %s", e.Proxy, e.Status, e.Target)
}

func (e *ProxyError) Unwrap() error { return e.Err }

// connect opens a tunnel to target through the proxy.
func (p *Proxy) connect(ctx context.Context, target string) (net.Conn, error) {
	conn, err := DialContext(ctx, "tcp", p.URL.Host)
	if err != nil {
		return nil, &ProxyError{Proxy: p, Target: target, Err: err}
	}
	if p.URL.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: p.URL.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, &ProxyError{Proxy: p, Target: target, Err: fmt.Errorf("TLS with the proxy: %w", err)}
		}
		conn = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(DialTimeout))
	}
	// Names under .localhost are loopback by Sallyport's own rule (RFC
	// 6761), which the proxy's resolver may not follow: ask for the address.
	ask := target
	if h, port, err := net.SplitHostPort(target); err == nil && IsLoopbackName(h) {
		ask = net.JoinHostPort("127.0.0.1", port)
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: ask}, Host: ask, Header: http.Header{}}
	req.Header.Set("User-Agent", "sallyport-connector")
	if p.Username != "" {
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(p.Username+":"+p.Password)))
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, &ProxyError{Proxy: p, Target: target, Err: err}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, &ProxyError{Proxy: p, Target: target, Err: fmt.Errorf("reading its answer to CONNECT: %w", err)}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, &ProxyError{Proxy: p, Target: target, Status: resp.Status, Code: resp.StatusCode, Auth: p.Username != ""}
	}
	conn.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn reads first what the proxy sent along with its answer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// explainProxy turns a ProxyError into the sentence users see.
func explainProxy(pe *ProxyError, t Target) error {
	where := pe.Proxy.String()
	if pe.Proxy.Source != "" {
		where += " (from " + pe.Proxy.Source + ")"
	}
	switch {
	case pe.Status == "":
		return problem.Newf(502, "proxy_unreachable",
			"check the proxy address in the connector's proxy settings ('sallyport connector proxy show') or HTTPS_PROXY, and that the proxy runs",
			"The outbound proxy %s cannot be reached (%v)", where, rootCause(pe.Err)).Wrap(pe)
	// 407 is the standard answer; some proxies (tinyproxy) answer 401.
	case (pe.Code == http.StatusProxyAuthRequired || pe.Code == http.StatusUnauthorized) && !pe.Auth:
		return problem.Newf(407, "proxy_auth_required",
			"give the proxy's user name and password with 'sallyport connector proxy set URL --user USER --password-stdin'",
			"The proxy %s requires authentication (it answered %q) and no credentials are configured", where, pe.Status).Wrap(pe)
	case pe.Code == http.StatusProxyAuthRequired || pe.Code == http.StatusUnauthorized:
		return problem.Newf(407, "proxy_auth_failed",
			"check the proxy user name and password ('sallyport connector proxy set URL --user USER --password-stdin')",
			"The proxy %s rejected the configured user name and password (it answered %q)", where, pe.Status).Wrap(pe)
	}
	return problem.Newf(502, "proxy_refused",
		fmt.Sprintf("ask the proxy's administrator to allow CONNECT to %s (for example tinyproxy's ConnectPort, squid's SSL_ports)", t.Addr),
		"The proxy %s refused to open a tunnel to %s: it answered %q", where, t.Addr, pe.Status).Wrap(pe)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		if _, ok := u.(*os.SyscallError); ok {
			return u
		}
		err = u
	}
}
