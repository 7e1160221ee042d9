// Package demo runs Sallyport's main job in one process on the embedded
// default: a cloud service on SQLite, a tenant and its administrator, two
// registered connectors in the Default group, a small internal web app,
// published — then prints how to reach it. It uses the same code paths as
// the separate commands (registration and the admin API over real TLS).
package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/cloud"
	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tenancy"
	"github.com/sallyport/sallyport/internal/version"
)

// Options configure the demo.
type Options struct {
	Dir    string // "" for a temporary directory removed at the end
	Listen string // default 127.0.0.1:8443, or a free port if taken
	Logger *slog.Logger
	Out    io.Writer
	// Ready, if set, receives the summary once everything answers.
	Ready func(Summary)
	// Command is how a user on this machine runs this sallyport, as the
	// printed commands say it (SelfCommand); default "sallyport".
	Command string
}

// Summary is what the demo prints.
type Summary struct {
	Dir, CloudURL, ExternalURL, CAFile, Admin, Password, Curl string
	Port, Command                                             string
	// User and UserPassword sign in to the application in a browser (it
	// uses pre-authentication); Token is the user's access token in Curl.
	User, UserPassword, Token string
}

const (
	cloudName = "sallyport.localhost"
	tenant    = "contoso.com"
	admin     = "admin@contoso.com"
	demoUser  = "alice@contoso.com"
	// tokenLifetime is how long the printed curl line's token works.
	tokenLifetime = 24 * time.Hour
)

// Run runs the demo until ctx is done.
func Run(ctx context.Context, o Options) (err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8443"
	}
	if o.Command == "" {
		o.Command = "sallyport"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	step := func(format string, args ...any) { fmt.Fprintf(o.Out, "• "+format+"\n", args...) }
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sallyport-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	cloudDir := filepath.Join(dir, "cloud")
	password := tenancy.GeneratePassword()
	if _, err := os.Stat(filepath.Join(cloudDir, datadir.SettingsFile)); err == nil {
		return problem.Newf(409, "demo_dir", "give a new directory with --dir, or none for a temporary one",
			"The demo directory %s already holds a demo cloud", dir)
	}
	step("Creating the demo cloud %s in %s", cloudName, cloudDir)
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: cloudDir, Name: cloudName, Tenant: tenant, Admin: admin, AdminPassword: password}); err != nil {
		return err
	}
	app, err := startInternalApp()
	if err != nil {
		return err
	}
	defer app.Close()

	ln, err := listen(o.Listen)
	if err != nil {
		return err
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	srv, err := cloud.New(cloud.Config{DataDir: cloudDir, Listen: ln.Addr().String(), Logger: o.Logger.With("component", "cloud")})
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()
	step("Starting the cloud on %s (port %s)", ln.Addr(), port)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			o.Logger.Error("cloud stopped", "error", err.Error())
		}
	}()

	cloudURL := "https://" + cloudName + ":" + port
	caFile := filepath.Join(cloudDir, datadir.CACertFile)
	var conns []*connector.Connector
	for i := 1; i <= 2; i++ {
		cdir := filepath.Join(dir, fmt.Sprintf("connector%d", i))
		step("Registering connector %d of 2 (state in %s) and starting it", i, cdir)
		if _, err := connector.Register(ctx, connector.RegisterOptions{
			CloudURL: cloudURL, Dir: cdir, User: admin, Password: password, CAFile: caFile,
			Hostname: fmt.Sprintf("demo-connector-%d", i), Version: version.Version,
		}); err != nil {
			return err
		}
		c, err := connector.New(connector.Config{Dir: cdir, Hostname: fmt.Sprintf("demo-connector-%d", i), Version: version.Version,
			Logger: o.Logger.With("component", fmt.Sprintf("connector%d", i))})
		if err != nil {
			return err
		}
		conns = append(conns, c)
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				o.Logger.Error("connector stopped", "error", err.Error())
			}
		}()
	}
	userPassword := tenancy.GeneratePassword()
	step("Publishing the internal application %s as 'web', with sign-in, for the user %s", app.URL, demoUser)
	extURL, err := publish(ctx, cloudURL, caFile, password, app.URL, userPassword)
	if err != nil {
		return err
	}
	token, err := srv.IssueAccessToken(ctx, tenant, demoUser, "web", tokenLifetime)
	if err != nil {
		return err
	}
	sum := Summary{
		Dir: dir, CloudURL: cloudURL, ExternalURL: extURL, CAFile: caFile, Admin: admin, Password: password, Port: port,
		Command: o.Command, User: demoUser, UserPassword: userPassword, Token: token,
		Curl: fmt.Sprintf("curl -sS --cacert %s --resolve web-contoso.%s:%s:127.0.0.1 -H 'Authorization: Bearer %s' %s",
			shellQuote(caFile), cloudName, port, token, extURL),
	}
	step("Waiting for the connectors' tunnels and the application to answer")
	if err := waitServing(ctx, conns, extURL, caFile, token); err != nil {
		return err
	}
	printSummary(o.Out, sum)
	if o.Ready != nil {
		o.Ready(sum)
	}
	<-ctx.Done()
	fmt.Fprintln(o.Out, "\nStopping the demo…")
	return nil
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	if ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0")); err2 == nil {
		return ln, nil
	}
	return nil, problem.Newf(400, "listen", "choose another address with --listen", "The demo cannot listen on %s (%v)", addr, err)
}

// publish signs in over the admin API, publishes the internal app with
// pre-authentication, and creates the demo user assigned to it.
func publish(ctx context.Context, cloudURL, caFile, password, internal, userPassword string) (string, error) {
	t, err := cloudlink.ParseURL(cloudURL)
	if err != nil {
		return "", err
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return "", err
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return "", err
	}
	hc := cloudlink.HTTPClient(t, ca)
	defer hc.CloseIdleConnections()
	var login api.LoginResponse
	if err := cloudlink.PostJSON(ctx, hc, t, api.Prefix+"/login", api.LoginRequest{User: admin, Password: password}, &login); err != nil {
		return "", err
	}
	var app api.App
	err = cloudlink.DoJSON(ctx, hc, t, http.MethodPost, api.Prefix+"/apps", login.Token,
		api.CreateAppRequest{Name: "web", InternalURL: internal, PreAuth: "sallyport"}, &app)
	if err != nil {
		return "", err
	}
	if err := cloudlink.DoJSON(ctx, hc, t, http.MethodPost, api.Prefix+"/users", login.Token,
		api.CreateUserRequest{Name: demoUser, Role: "user", Password: userPassword}, nil); err != nil {
		return "", err
	}
	err = cloudlink.DoJSON(ctx, hc, t, http.MethodPost, api.Prefix+"/apps/web/assignments", login.Token, api.AssignRequest{User: demoUser}, nil)
	return app.ExternalURL, err
}

// waitServing waits until both connectors have tunnels and the app answers.
func waitServing(ctx context.Context, conns []*connector.Connector, extURL, caFile, token string) error {
	caPEM, _ := os.ReadFile(caFile)
	ca, _ := pki.ParseCertPEM(caPEM)
	roots := x509Pool(ca)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:     cloudlink.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for {
		up := true
		for _, c := range conns {
			up = up && c.TunnelsUp() > 0
		}
		if up {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, extURL, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, err := hc.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return problem.New(500, "demo_not_ready", "run it again with --verbose to see the logs", "The demo did not come up within 20 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printSummary(w io.Writer, s Summary) {
	fmt.Fprintf(w, `Sallyport demo is running.

  Cloud service   %s   (data in %s)
  Tenant          %s, with two connectors in group 'Default'
  Admin           %s
  Password        %s
  Application     'web': %s   (sign-in required)
  User            %s
  User password   %s

Try it in a browser: open the application's URL and sign in as %s
(the browser warns about the demo's own CA: %s).

Or from a shell on this machine, with the user's access token:

  %s

Manage it:

  %s admin login --cloud %s --user %s --ca-file %s --password-stdin
  %s admin connector list

Press Ctrl-C to stop.
`, s.CloudURL, s.Dir, tenant, s.Admin, s.Password, s.ExternalURL, s.User, s.UserPassword, s.User, shellQuote(s.CAFile), s.Curl,
		s.Command, s.CloudURL, s.Admin, shellQuote(s.CAFile), s.Command)
}

// SelfCommand is how a user on this machine runs the sallyport that is
// running, so that printed commands work as printed (issue 20, defect 8):
// "go run ./cmd/sallyport" for a binary that 'go run' built in its build
// cache, "sallyport" when that name on PATH is this binary, else the
// binary's absolute path.
func SelfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "sallyport"
	}
	onPath, _ := exec.LookPath("sallyport")
	return commandFor(exe, onPath, os.TempDir(), os.Getenv("GOTMPDIR"))
}

// commandFor is SelfCommand's decision, given the running binary exe, the
// sallyport found on PATH ("" for none) and the directories 'go run'
// builds in.
func commandFor(exe, onPath string, tmpDirs ...string) string {
	exe = resolve(exe)
	for _, tmp := range tmpDirs {
		if tmp == "" {
			continue
		}
		rel, err := filepath.Rel(resolve(tmp), exe)
		if err == nil && strings.HasPrefix(rel, "go-build") && !strings.HasPrefix(rel, "..") {
			return "go run ./cmd/sallyport"
		}
	}
	if onPath != "" && resolve(onPath) == exe {
		return "sallyport"
	}
	return shellQuote(exe)
}

func resolve(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func shellQuote(s string) string {
	if !strings.ContainsAny(s, " '\"$`\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// internalApp is the small built-in web app the demo publishes.
type internalApp struct {
	URL string
	srv *http.Server
	ln  net.Listener
}

func (a *internalApp) Close() { a.srv.Close() }

func startInternalApp() (*internalApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>Contoso intranet</title><h1>Hello from the internal app</h1>\n"+
			"<p>This page was served by a web app listening only on %s, reached through a Sallyport connector's outbound tunnel.</p>\n"+
			"<ul><li>Signed-in user: %s</li><li>Path: %s</li><li>X-Forwarded-For: %s</li><li>X-Forwarded-Host: %s</li><li>X-Forwarded-Proto: %s</li></ul>\n",
			html.EscapeString(ln.Addr().String()), html.EscapeString(r.Header.Get("X-Sallyport-User")), html.EscapeString(r.URL.Path), html.EscapeString(r.Header.Get("X-Forwarded-For")),
			html.EscapeString(r.Header.Get("X-Forwarded-Host")), html.EscapeString(r.Header.Get("X-Forwarded-Proto")))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
	return &internalApp{URL: "http://" + ln.Addr().String() + "/", srv: srv, ln: ln}, nil
}
