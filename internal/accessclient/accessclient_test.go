package accessclient

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/problem/problemtest"
	"github.com/sallyport/sallyport/internal/testnet"
)

// fakeCloud is an application with pre-authentication and its cloud's
// device flow, on one TLS server: enough of the protocol to drive the
// client (the real one is tested in the cloud package and e2e).
type fakeCloud struct {
	srv    *httptest.Server
	caFile string

	mu        sync.Mutex
	polls     int
	approved  bool
	refreshes int
	refresh   string // the live refresh token
	forms     []string
	expiresIn int
}

func startFake(t *testing.T) *fakeCloud {
	t.Helper()
	f := &fakeCloud{expiresIn: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="sallyport", authorization_uri=%q`, f.srv.URL+"/oauth/device_authorization"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello %s", r.Header.Get("Authorization"))
	})
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /oauth/device_authorization", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm.Encode())
		f.mu.Unlock()
		answer(w, 200, map[string]any{"device_code": "spd_x", "user_code": "BCDF-GHJK", "verification_uri": "https://cloud/device",
			"verification_uri_complete": "https://cloud/device?user_code=BCDF-GHJK", "expires_in": 600, "interval": 1})
	})
	mux.HandleFunc("POST /oauth/revoke", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.forms = append(f.forms, r.PostForm.Encode())
		if r.PostForm.Get("token") == f.refresh {
			f.refresh = "revoked"
		}
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.forms = append(f.forms, r.PostForm.Encode())
		switch r.PostForm.Get("grant_type") {
		case deviceGrantType:
			f.polls++
			if !f.approved {
				answer(w, 400, map[string]string{"error": "authorization_pending", "error_description": "Not yet"})
				f.approved = true // the user approves during the next interval
				return
			}
		case "refresh_token":
			if r.PostForm.Get("refresh_token") != f.refresh {
				answer(w, 400, map[string]string{"error": "invalid_grant", "error_description": "The refresh token was already used; run 'sallyport access login' again"})
				return
			}
			f.refreshes++
		}
		f.refresh = fmt.Sprintf("spr_%d", f.refreshes)
		answer(w, 200, map[string]any{"access_token": fmt.Sprintf("spa_%d", f.refreshes), "token_type": "Bearer", "expires_in": f.expiresIn,
			"refresh_token": f.refresh, "refresh_expires_in": 30 * 86400, "user": "alice@contoso.com", "app": "web"})
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	testnet.WriteFile(t, f.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})), 0o600)
	return f
}

func TestLoginTokenRefreshLogout(t *testing.T) {
	f := startFake(t)
	dir := filepath.Join(t.TempDir(), "access")
	now := time.Now()
	var out bytes.Buffer
	o := Options{AppURL: f.srv.URL + "/some/page", CAFile: f.caFile, Dir: dir, Out: &out, Now: func() time.Time { return now }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Login(ctx, o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"https://cloud/device", "BCDF-GHJK", "https://cloud/device?user_code=BCDF-GHJK", "Signed in to web", "as alice@contoso.com"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("login printed no %q:\n%s", want, out.String())
		}
	}
	if f.polls != 2 {
		t.Errorf("%d polls, want 2 (pending, then the tokens)", f.polls)
	}
	if !strings.Contains(f.forms[0], "client_id=sallyport-cli") || !strings.Contains(f.forms[0], "resource=https%3A%2F%2F127.0.0.1") {
		t.Errorf("device authorization form %q", f.forms[0])
	}
	file := filepath.Join(dir, strings.NewReplacer("https://", "", ":", "_").Replace(f.srv.URL)+".json")
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{dir: 0o700, file: 0o600} {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
			}
		}
	}

	tok, err := Token(ctx, o)
	if err != nil || tok != "spa_0" {
		t.Fatalf("Token = %q, %v; want spa_0 (no refresh)", tok, err)
	}
	// 59 minutes and a half later the token expires within the minute: refreshed.
	now = now.Add(59*time.Minute + 30*time.Second)
	if tok, err = Token(ctx, o); err != nil || tok != "spa_1" {
		t.Fatalf("Token near expiry = %q, %v; want spa_1", tok, err)
	}
	if tok, err = Token(ctx, o); err != nil || tok != "spa_1" {
		t.Fatalf("Token after the refresh = %q, %v; want spa_1 again", tok, err)
	}

	// The cloud ended the sign-in: one sentence, and the file is gone.
	f.mu.Lock()
	f.refresh = "spr_other"
	f.mu.Unlock()
	now = now.Add(2 * time.Hour)
	_, err = Token(ctx, o)
	problemtest.Want(t, "a refresh the cloud refuses", err, "signin_ended", "already used", "sallyport access login "+f.srv.URL+"/")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the token file is still there after the sign-in ended: %v", err)
	}
	_, err = Token(ctx, o)
	problemtest.Want(t, "Token after the sign-in ended", err, "not_signed_in", "sallyport access login "+f.srv.URL+"/")
	if res, err := Logout(ctx, o); err != nil || res.Removed {
		t.Errorf("Logout when signed out = %+v, %v", res, err)
	}
}

func TestCurl(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake curl is a shell script")
	}
	f := startFake(t)
	dir := t.TempDir()
	o := Options{AppURL: f.srv.URL + "/", CAFile: f.caFile, Dir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Login(ctx, o); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(t.TempDir(), "curl")
	testnet.WriteFile(t, fake, "#!/bin/sh\nfor a; do echo \"arg $a\"; case $a in @*) cat \"${a#@}\";; esac; done\nexit 7\n", 0o700)
	var stdout bytes.Buffer
	code, err := Curl(ctx, CurlOptions{Options: o, Args: []string{"-s", "-X", "POST"}, Stdout: &stdout, Stderr: &stdout, Program: fake})
	if err != nil || code != 7 {
		t.Fatalf("Curl = %d, %v; want curl's exit code 7", code, err)
	}
	got := stdout.String()
	for _, want := range []string{"Authorization: Bearer spa_0\n", "arg --cacert\narg " + f.caFile, "arg " + f.srv.URL + "/\narg -s\narg -X\narg POST\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("curl's arguments do not contain %q:\n%s", want, got)
		}
	}
	if strings.Contains(strings.ReplaceAll(got, "Authorization: Bearer spa_0", ""), "spa_0") {
		t.Errorf("the token is on curl's command line:\n%s", got)
	}
	if res, err := Logout(ctx, o); err != nil || !res.Removed || !res.Ended {
		t.Errorf("Logout = %+v, %v", res, err)
	}
	f.mu.Lock()
	if f.refresh != "revoked" {
		t.Errorf("Logout did not revoke the refresh token at the cloud: %q", f.forms[len(f.forms)-1])
	}
	f.mu.Unlock()
	_, err = Curl(ctx, CurlOptions{Options: o, Program: fake})
	problemtest.Want(t, "Curl signed out", err, "not_signed_in")
}

func TestLoginRefusals(t *testing.T) {
	f := startFake(t)
	public := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hi")) }))
	t.Cleanup(public.Close)
	ctx := context.Background()
	for _, tc := range []struct {
		url, ca string
		code    string
		words   []string
	}{
		{"http://app.example.com/", "", "bad_app_url", []string{"only https://"}},
		{"https://user@app.example.com/", "", "bad_app_url", nil},
		{"https://ex ample/", "", "bad_app_url", nil},
		{f.srv.URL + "/", "", "unreachable", []string{"--ca-file"}},
		{f.srv.URL + "/", "/nonexistent/ca.pem", "ca_file", nil},
	} {
		err := Login(ctx, Options{AppURL: tc.url, CAFile: tc.ca, Dir: t.TempDir()})
		problemtest.Want(t, tc.url, err, tc.code, tc.words...)
	}
	caPublic := filepath.Join(t.TempDir(), "public.pem")
	testnet.WriteFile(t, caPublic, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: public.Certificate().Raw})), 0o600)
	err := Login(ctx, Options{AppURL: public.URL + "/", CAFile: caPublic, Dir: t.TempDir()})
	problemtest.Want(t, "a public application", err, "no_signin", "does not ask for a sign-in")
}

func TestParseApp(t *testing.T) {
	for in, want := range map[string][2]string{
		"https://Web-Contoso.Example.com/path?q": {"https://web-contoso.example.com", "web-contoso.example.com"},
		"https://web.example.com:443":            {"https://web.example.com", "web.example.com"},
		"https://web.sallyport.localhost:8443/":  {"https://web.sallyport.localhost:8443", "web.sallyport.localhost_8443"},
	} {
		a, err := parseApp(in)
		if err != nil || a.origin != want[0] || a.key != want[1] {
			t.Errorf("parseApp(%q) = %+v, %v; want %v", in, a, err, want)
		}
	}
}

// TestConcurrentRefresh: commands refreshing at once take turns, so the
// refresh token is presented once (twice would end the sign-in).
func TestConcurrentRefresh(t *testing.T) {
	f := startFake(t)
	dir := t.TempDir()
	start := time.Now()
	o := Options{AppURL: f.srv.URL + "/", CAFile: f.caFile, Dir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Login(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.Now = func() time.Time { return start.Add(2 * time.Hour) } // every command sees an expired token
	const n = 8
	toks := make(chan string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := Token(ctx, o)
			toks <- tok
			errs <- err
		}()
	}
	wg.Wait()
	close(toks)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The first refresh's token expires an hour after "now" (2 h after
	// start): the others find it fresh after waiting for the lock.
	if f.refreshes != 1 {
		t.Errorf("%d refreshes for %d commands at once, want 1", f.refreshes, n)
	}
	for tok := range toks {
		if tok != "spa_1" {
			t.Errorf("a command got %q, want spa_1", tok)
		}
	}
}
