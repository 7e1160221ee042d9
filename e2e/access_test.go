package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var (
	userCodeRe = regexp.MustCompile(`enter the code ([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})\n`)
	csrfFormRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// TestAccessDeviceFlow: a program signs in to an application with
// pre-authentication through the device flow, with the real binary —
// 'access login' prints a code, the user approves it at the cloud's
// /device page (signed in with a password), and 'access token' and
// 'access curl' reach the backend as that user; 'access logout' forgets
// the tokens.
func TestAccessDeviceFlow(t *testing.T) {
	pc := startPreauthCloud(t)
	appURL := pc.appURL(pc.webHost, "/")
	user := newRunner(t, "alice")

	login := user.start(t, "access login", "access", "login", appURL, "--ca-file", pc.caFile)
	m, ok := login.waitOutput(userCodeRe, readyTimeout)
	if !ok {
		t.Fatalf("access login printed no code:\n%s", login.out.String())
	}
	code := m[1]
	for _, want := range []string{pc.url + "/device\n", pc.url + "/device?user_code=" + code} {
		if !strings.Contains(login.out.String(), want) {
			t.Errorf("access login does not print %q:\n%s", want, login.out.String())
		}
	}

	// Alice approves in "a browser": signs in at the cloud with her
	// password, then posts the approval form.
	pc.approveDevice(t, code, alice, userPW)
	if exit, ok := login.waitExit(readyTimeout); !ok || exit != 0 {
		t.Fatalf("access login did not end well after the approval (exit %d, ended %v):\n%s", exit, ok, login.out.String())
	}
	if out := login.out.String(); !strings.Contains(out, "Signed in to web") || !strings.Contains(out, "as "+alice) {
		t.Errorf("access login does not say who signed in:\n%s", out)
	}
	dir := filepath.Join(user.home, ".config", "sallyport", "access")
	file := filepath.Join(dir, pc.webHost+"_"+pc.port+".json")
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{dir: 0o700, file: 0o600} {
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
				t.Errorf("%s: %v %v, want mode %v", path, st, err, want)
			}
		}
	}

	// access token: a bearer token the edge takes for this application.
	tok := strings.TrimSpace(user.ok(t, "", "access", "token", appURL).stdout)
	if !strings.HasPrefix(tok, "spa_") {
		t.Fatalf("access token printed %q", tok)
	}
	resp, body := pc.get(t, pc.webHost, "/headers", "Accept", "application/json", "Authorization", "Bearer "+tok)
	var h map[string][]string
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &h) != nil {
		t.Fatalf("GET /headers with the token: %s\n%s", resp.Status, body)
	}
	if got := h["X-Sallyport-User"]; len(got) != 1 || got[0] != alice {
		t.Errorf("the backend saw X-Sallyport-User %q, want %s", got, alice)
	}
	if len(h["Authorization"]) != 0 {
		t.Errorf("the backend got the access token: %v", h["Authorization"])
	}
	noSecretIn(t, filepath.Join(pc.dataDir), tok, "the cloud's data directory")

	// access curl: curl with the token, its arguments after the URL, its
	// exit code.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl is not installed: access curl not tried")
	} else {
		res := user.ok(t, "", "access", "curl", pc.appURL(pc.webHost, "/headers"), "--silent", "--show-error")
		h = nil
		if err := json.Unmarshal([]byte(res.stdout), &h); err != nil || len(h["X-Sallyport-User"]) != 1 || h["X-Sallyport-User"][0] != alice {
			t.Errorf("access curl did not reach the backend as %s (%v):\n%s", alice, err, res)
		}
		res = user.run(t, "", "access", "curl", pc.appURL(pc.webHost, "/headers"), "--silent", "--output", filepath.Join(user.dir, "no", "such", "dir"))
		if res.code != 23 { // curl: write error
			t.Errorf("access curl's exit code %d, want curl's 23:\n%s", res.code, res)
		}
	}

	// access logout: the cloud ends the sign-in (the token no longer
	// opens the application), the tokens are gone; token says how to
	// sign in.
	if res := user.ok(t, "", "access", "logout", appURL); !strings.Contains(res.stdout, "the cloud ended the sign-in") {
		t.Errorf("access logout: %s", res)
	}
	if resp, _ := pc.get(t, pc.webHost, "/headers", "Accept", "application/json", "Authorization", "Bearer "+tok); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the access token after logout: %s, want 401", resp.Status)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the token file is still there after logout: %v", err)
	}
	user.refused(t, "", []string{"access", "token", appURL}, "not signed in", "sallyport access login "+appURL)
}

// approveDevice signs user in at the cloud's sign-in page for the device
// code and approves it on the /device page, as a browser would (cookies,
// CSRF tokens, no redirect followed blindly).
func (pc *preauthCloud) approveDevice(t *testing.T, code, user, password string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: pc.client(cloudName, "h1").Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		var rd io.Reader
		if form != nil {
			rd = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, pc.url+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/html")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	csrf := func(page string) string {
		t.Helper()
		m := csrfFormRe.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no CSRF token in the page:\n%s", page)
		}
		return m[1]
	}
	resp, _ := do("GET", "/device?user_code="+url.QueryEscape(code), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?device="+code {
		t.Fatalf("/device without a sign-in: %s %s, want a redirect to /signin?device=%s", resp.Status, resp.Header.Get("Location"), code)
	}
	resp, page := do("GET", "/signin?device="+code, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("the sign-in page: %s\n%s", resp.Status, page)
	}
	resp, page = do("POST", "/signin", url.Values{"csrf": {csrf(page)}, "user": {user}, "password": {password}, "device": {code}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/device?user_code="+code {
		t.Fatalf("sign-in for the device: %s %s\n%s", resp.Status, resp.Header.Get("Location"), page)
	}
	resp, page = do("GET", "/device?user_code="+code, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `value="approve"`) || !strings.Contains(page, user) {
		t.Fatalf("the approval page: %s\n%s", resp.Status, page)
	}
	resp, page = do("POST", "/device", url.Values{"csrf": {csrf(page)}, "user_code": {code}, "action": {"approve"}})
	if resp.StatusCode != 200 || !strings.Contains(page, "approved") {
		t.Fatalf("the approval: %s\n%s", resp.Status, page)
	}
}
