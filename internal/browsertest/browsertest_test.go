package browsertest_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"html"
	"image/png"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/browsertest"
	"github.com/sallyport/sallyport/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFormAndCookies drives a real Chromium through an HTTPS page of the
// test's own (a certificate from a CA made here, trusted by its key): the
// form is filled and submitted, the answer sets a __Host- cookie (Secure,
// HttpOnly, SameSite=Lax) and a plain one (SameSite=Strict), and the test
// reads back what the browser kept: the attributes, that the HttpOnly
// cookie is hidden from scripts, and that it is sent on the next request.
// A server whose certificate the browser was not told to trust does not
// load.
func TestFormAndCookies(t *testing.T) {
	ca := testnet.NewCA(t)
	srv := httptest.NewUnstartedServer(pages())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Cert(t, "127.0.0.1")}}
	srv.StartTLS()
	defer srv.Close()
	stranger := httptest.NewUnstartedServer(pages())      // httptest's own certificate
	stranger.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	stranger.StartTLS()
	defer stranger.Close()

	b := browsertest.Start(t, browsertest.Options{Trust: []*x509.Certificate{ca.Root}})
	b.Navigate(srv.URL + "/")
	b.WaitText("Who are you?")
	b.Fill(`button[type="submit"]`, map[string]string{"name": "Ada <Lovelace>"})
	b.WaitText("Hello, Ada <Lovelace>.")
	if got := b.Location(); got != srv.URL+"/hello" {
		t.Fatalf("after the form the browser is at %s, want %s/hello (the 303 followed)", got, srv.URL)
	}
	if !strings.Contains(b.Text(), "The session cookie came back.") {
		t.Fatalf("the browser did not send the cookie set by the form's answer:\n%s", b.Text())
	}

	session := b.Cookie(srv.URL+"/", "__Host-session")
	if session == nil {
		t.Fatalf("no __Host-session cookie in the browser; it has %v", names(b.Cookies(srv.URL+"/")))
	}
	if !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax || session.Path != "/" ||
		session.Value != "s3cr3t" || session.Session != true {
		t.Fatalf("__Host-session as kept: secure %v httpOnly %v sameSite %q path %q value %q session %v",
			session.Secure, session.HTTPOnly, session.SameSite, session.Path, session.Value, session.Session)
	}
	plain := b.Cookie(srv.URL+"/", "theme")
	if plain == nil || plain.Secure || plain.HTTPOnly || plain.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("theme cookie as kept: %+v", plain)
	}
	script := browsertest.Eval[string](b, "document.cookie")
	if script != "theme=dark" {
		t.Fatalf("document.cookie = %q, want only theme=dark (the HttpOnly cookie hidden)", script)
	}

	if err := b.NavigateErr(stranger.URL + "/"); err == nil || !strings.Contains(err.Error(), "ERR_CERT_AUTHORITY_INVALID") {
		t.Fatalf("a page with an untrusted certificate: %v, want net::ERR_CERT_AUTHORITY_INVALID (at %s)", err, b.Location())
	}
}

// pages: / a form, POST /submit sets the cookies and redirects (303) to
// /hello, which greets the name and says whether the session cookie came.
func pages() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>form</title><h1>Who are you?</h1>
<form method="post" action="/submit"><input name="name"><button type="submit">Send</button></form>`)
	})
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "__Host-session", Value: "s3cr3t", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark", Path: "/", SameSite: http.SameSiteStrictMode})
		http.SetCookie(w, &http.Cookie{Name: "greet", Value: url.QueryEscape(r.PostFormValue("name")), Path: "/hello", Secure: true, HttpOnly: true})
		http.Redirect(w, r, "/hello", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		name := ""
		if c, err := r.Cookie("greet"); err == nil {
			name, _ = url.QueryUnescape(c.Value)
		}
		fmt.Fprintf(w, "<!doctype html><title>hello</title><p>Hello, %s.</p>", html.EscapeString(name))
		if c, err := r.Cookie("__Host-session"); err == nil && c.Value == "s3cr3t" {
			fmt.Fprint(w, "<p>The session cookie came back.</p>")
		}
	})
	return mux
}

func names(cs []*browsertest.Cookie) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}

// TestScreenshot: a screenshot is a PNG of the width asked for.
func TestScreenshot(t *testing.T) {
	ca := testnet.NewCA(t)
	srv := httptest.NewUnstartedServer(pages())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Cert(t, "127.0.0.1")}}
	srv.StartTLS()
	defer srv.Close()
	b := browsertest.Start(t, browsertest.Options{Trust: []*x509.Certificate{ca.Root}})
	b.Navigate(srv.URL + "/")
	b.WaitText("Who are you?")
	path := filepath.Join(t.TempDir(), "page.png")
	b.Screenshot(path, 375, 600)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if cfg.Width != 375 {
		t.Fatalf("the screenshot is %d px wide, want 375", cfg.Width)
	}
}
