package e2e

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/sallyport/sallyport/internal/browsertest"
	"github.com/sallyport/sallyport/internal/idptest"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/testnet"
)

// preauthCloud is a running cloud with one connector, the e2e backend
// published as 'web' with pre-authentication, and the users alice
// (assigned) and bob (not assigned) of contoso.com.
type preauthCloud struct {
	*cloud
	backend *backend
	webHost string
}

const (
	alice   = "alice@contoso.com"
	bob     = "bob@contoso.com"
	userPW  = "user-password-for-tests"
	webHost = "web-contoso." + cloudName
)

func startPreauthCloud(t *testing.T, serveArgs ...string) *preauthCloud {
	t.Helper()
	c := startCloud(t, serveArgs...)
	be := newBackend(t)
	st := c.mustRegister(t, c.admin, filepath.Join(t.TempDir(), "connector"), contosoAdmin, contosoPW)
	c.runConnector(t, c.admin, st)
	a := c.publish(t, c.admin, "web", be.url, "--pre-auth", "sallyport")
	if a.PreAuth != "sallyport" || a.ExternalHost != webHost {
		t.Fatalf("published %+v", a)
	}
	for _, u := range []string{alice, bob} {
		c.admin.ok(t, userPW+"\n", "admin", "user", "create", u, "--role", "user", "--password-stdin")
	}
	c.admin.ok(t, "", "admin", "app", "assign", "web", "--user", alice)
	return &preauthCloud{cloud: c, backend: be, webHost: webHost}
}

// startBrowser starts Chromium trusting only the cloud's CA.
func (pc *preauthCloud) startBrowser(t *testing.T) *browsertest.Browser {
	t.Helper()
	pem, err := os.ReadFile(pc.caFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCertPEM(pem)
	if err != nil {
		t.Fatal(err)
	}
	return browsertest.Start(t, browsertest.Options{Trust: []*x509.Certificate{ca}})
}

// signIn signs in with a password on the sign-in page the browser is on.
func signInForm(b *browsertest.Browser, user, password string) {
	b.WaitText("Sign in")
	b.Fill("#submit", map[string]string{"user": user, "password": password})
}

// backendHeaders reads the /headers JSON the browser shows.
func backendHeaders(t *testing.T, b *browsertest.Browser) map[string][]string {
	t.Helper()
	b.WaitText("X-Forwarded-Proto")
	var h map[string][]string
	if err := json.Unmarshal([]byte(b.Text()), &h); err != nil {
		t.Fatalf("the page is not the backend's headers: %v\n%s", err, b.Text())
	}
	return h
}

// TestBrowserSignInLocal, in a real Chromium: anonymous → the cloud's
// sign-in page → back to the page asked for, with the identity headers;
// a WebSocket works after sign-in; an unassigned user gets the 403 page;
// sign-out ends the session; a tenant that requires a second factor makes
// the user enrol (QR code, secret, recovery codes), and the next sign-in
// asks for the code.
func TestBrowserSignInLocal(t *testing.T) {
	pc := startPreauthCloud(t)
	appURL := pc.appURL(pc.webHost, "/headers")

	t.Run("password", func(t *testing.T) {
		b := pc.startBrowser(t)
		b.Navigate(appURL)
		if loc := b.Location(); !strings.HasPrefix(loc, pc.url+"/signin?rd=") {
			t.Fatalf("anonymous browser at %s, want the sign-in page", loc)
		}
		signInForm(b, alice, userPW)
		h := backendHeaders(t, b)
		if got := h["X-Sallyport-User"]; len(got) != 1 || got[0] != alice {
			t.Fatalf("X-Sallyport-User = %q", got)
		}
		if len(h["Sallyport-Assertion"]) != 1 {
			t.Fatal("no Sallyport-Assertion at the backend")
		}
		if c := strings.Join(h["Cookie"], ";"); strings.Contains(c, "sallyport") {
			t.Fatalf("the backend got Sallyport's cookie: %q", c)
		}
		if ck := b.Cookie(appURL, "__Host-sallyport"); ck == nil || !ck.HTTPOnly || !ck.Secure {
			t.Fatalf("session cookie %+v: want HttpOnly and Secure", ck)
		}

		// A WebSocket from the signed-in page reaches the backend's echo.
		wsURL := "wss://" + pc.webHost + ":" + pc.port + "/ws"
		got := browsertest.EvalPromise[string](b, `new Promise((ok, fail) => {
			const ws = new WebSocket(`+jsString(wsURL)+`);
			ws.onopen = () => ws.send("hello");
			ws.onmessage = (e) => { ok(e.data); ws.close(); };
			ws.onerror = () => fail("websocket error");
		})`)
		if got != "echo: hello" {
			t.Fatalf("WebSocket answer %q", got)
		}

		// Sign-out ends the session: the page asks to sign in again.
		b.Navigate(pc.appURL(pc.webHost, "/.sallyport/signout"))
		b.WaitText("Signed out")
		b.Navigate(appURL)
		b.WaitText("Sign in")
	})

	t.Run("not assigned", func(t *testing.T) {
		b := pc.startBrowser(t)
		b.Navigate(appURL)
		signInForm(b, bob, userPW)
		b.WaitText("not assigned")
		text := b.Text()
		for _, want := range []string{bob, "web", "Sign out", "request id"} {
			if !strings.Contains(text, want) {
				t.Fatalf("403 page without %q:\n%s", want, text)
			}
		}
	})

	t.Run("second factor", func(t *testing.T) {
		pc.admin.ok(t, "", "admin", "tenant", "set", "--require-mfa=true")
		b := pc.startBrowser(t)
		b.Navigate(appURL)
		signInForm(b, alice, userPW)
		b.WaitText("Set up a second factor")
		secret := browsertest.Eval[string](b, `document.getElementById("secret").textContent`)
		qr := browsertest.Eval[bool](b, `document.getElementById("qr").naturalWidth > 0`)
		if secret == "" || !qr {
			t.Fatalf("enrolment page: secret %q, QR code shown %v", secret, qr)
		}
		code, _ := totp.GenerateCode(secret, time.Now())
		b.Fill("#submit", map[string]string{"code": code})
		backendHeaders(t, b)

		// A new browser: password, then the code.
		b2 := pc.startBrowser(t)
		b2.Navigate(appURL)
		signInForm(b2, alice, userPW)
		b2.WaitText("Second factor")
		// The code of the next step: the one just used is refused.
		next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
		b2.Fill("#submit", map[string]string{"code": next})
		backendHeaders(t, b2)
	})
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowserSignInFederated, in a real Chromium against a real OpenID
// provider (Ory Hydra over TLS): an anonymous browser goes from the
// application straight to the provider (no page in between), signs in
// there, and lands on the page it asked for as a user created on first
// sign-in, in the user group its groups claim names — which is what
// assigns it to the application.
func TestBrowserSignInFederated(t *testing.T) {
	pc := startPreauthCloud(t)
	admin := pc.admin
	admin.ok(t, "", "admin", "user-group", "create", "Sales")
	admin.ok(t, "", "admin", "app", "assign", "web", "--user-group", "Sales")

	ca := testnet.NewCA(t)
	certPEM, keyPEM := ca.PEM(t, "127.0.0.1")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	// Hydra in --dev mode marks its CSRF cookies SameSite=None without
	// Secure, which Chromium drops; Lax is what a deployment uses.
	idp := idptest.Start(t, idptest.Options{CertPEM: certPEM, KeyPEM: keyPEM, RootCAs: roots, Env: []string{"SERVE_COOKIES_SAME_SITE_MODE=Lax"}})
	idp.SetUser(&idptest.User{Subject: "u-carol", Email: "carol@contoso.com", Name: "Carol", Groups: []string{"Sales", "Unknown"}})
	cl := idp.CreateClient(t, pc.url+"/signin/oidc/callback")
	dir := t.TempDir()
	secret := filepath.Join(dir, "idp-secret")
	writeFile(t, secret, cl.Secret+"\n", 0o600)
	caFile := filepath.Join(dir, "idp-ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})), 0o644)
	admin.ok(t, "", "admin", "idp", "set", "--issuer", idp.Issuer(), "--client-id", cl.ID, "--client-secret-file", secret, "--ca-file", caFile)

	cloudPEM, err := os.ReadFile(pc.caFile)
	if err != nil {
		t.Fatal(err)
	}
	cloudCA, err := pki.ParseCertPEM(cloudPEM)
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.Start(t, browsertest.Options{Trust: []*x509.Certificate{cloudCA, ca.Root}})
	b.Navigate(pc.appURL(pc.webHost, "/headers"))
	h := backendHeaders(t, b)
	if got := h["X-Sallyport-User"]; len(got) != 1 || got[0] != "carol@contoso.com" {
		t.Fatalf("X-Sallyport-User = %q", got)
	}
	if got := h["X-Sallyport-Groups"]; len(got) != 1 || got[0] != "Sales" {
		t.Fatalf("X-Sallyport-Groups = %q", got)
	}
	if idp.Logins() != 1 {
		t.Fatalf("the provider saw %d sign-ins, want 1", idp.Logins())
	}
	show := admin.ok(t, "", "admin", "user", "show", "carol@contoso.com").stdout
	mustContain(t, "user show", show, idp.Issuer(), "Sales")
}

// TestBrowserMyApps, in a real Chromium: at https://CLOUDNAME/ alice gives
// her user name, then her password, and sees My Apps with the tile of
// 'web' and its description; its link takes her to the application
// signed in, without a second sign-in.
func TestBrowserMyApps(t *testing.T) {
	pc := startPreauthCloud(t)
	const desc = "The team's intranet"
	pc.admin.ok(t, "", "admin", "app", "update", "web", "--description", desc)
	show := pc.admin.ok(t, "", "admin", "app", "show", "web").stdout
	mustContain(t, "app show", show, "Description:", desc)

	b := pc.startBrowser(t)
	b.Navigate(pc.url + "/")
	b.WaitText("Sign in")
	b.Fill("#submit", map[string]string{"user": alice})
	b.WaitText("Password")
	b.Fill("#submit", map[string]string{"password": userPW})
	b.WaitText("My Apps")
	text := b.Text()
	for _, want := range []string{alice, "web", desc, "Sign out"} {
		if !strings.Contains(text, want) {
			t.Fatalf("My Apps without %q:\n%s", want, text)
		}
	}
	if loc := b.Location(); loc != pc.url+"/" {
		t.Fatalf("My Apps at %s, want %s/", loc, pc.url)
	}
	// At a phone's width (375 px) the page fits: nothing scrolls sideways,
	// and the tile's link is as wide as the screen allows.
	if err := b.Do(chromedp.EmulateViewport(375, 740)); err != nil {
		t.Fatal(err)
	}
	if w := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		t.Fatalf("My Apps is %d px wide at a 375 px screen", w)
	}

	b.Fill("#app-web a", nil)
	home := pc.appURL(pc.webHost, "/")
	deadline := time.Now().Add(10 * time.Second)
	for b.Location() != home && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling the tab's location, bounded
	}
	if loc := b.Location(); loc != home {
		t.Fatalf("after the tile's link: at %s, want %s\n%s", loc, home, b.Text())
	}
	if ck := b.Cookie(home, "__Host-sallyport"); ck == nil {
		t.Fatal("no session cookie on web's host after the tile's link")
	}
	b.Navigate(pc.appURL(pc.webHost, "/headers"))
	if got := backendHeaders(t, b)["X-Sallyport-User"]; len(got) != 1 || got[0] != alice {
		t.Fatalf("X-Sallyport-User = %q", got)
	}
}
