// Package browsertest drives a real headless Chromium for tests, through
// the DevTools protocol (github.com/chromedp/chromedp): navigate, wait for
// text, fill and submit forms, read the browser's cookies.
//
// The browser is Debian's chromium package (.ci/run installs it), or the
// binary named by SALLYPORT_CHROMIUM. Without one a test is skipped,
// except under CI=true, where it fails.
//
// Certificates: the browser trusts exactly the certificates a test names
// in Options.Trust, by their public keys (Chromium's
// --ignore-certificate-errors-spki-list, which accepts a chain only when
// one of its certificates has a listed key); every other certificate
// error stays an error. Chromium on Linux reads its roots from an NSS
// database, which would need certutil (libnss3-tools) to fill; the key
// list needs nothing more and is as narrow.
//
// It is for tests only: nothing outside _test.go files imports it.
package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sallyport/sallyport/internal/testnet"
)

// EnvBinary names the Chromium binary to run.
const EnvBinary = "SALLYPORT_CHROMIUM"

// Binary is the path of the browser: $SALLYPORT_CHROMIUM, else chromium
// (or chromium-browser) on PATH. Without one the test is skipped, or
// fails under CI=true (.ci/run installs chromium).
func Binary(t testing.TB) string {
	t.Helper()
	return testnet.Tool{
		Env: EnvBinary, Names: []string{"chromium", "chromium-browser"},
		CI:   "chromium is not installed; .ci/run installs it (apt-get install chromium)",
		Skip: fmt.Sprintf("chromium is not installed (apt-get install chromium, or set %s), so the browser test is skipped", EnvBinary),
	}.Path(t)
}

// Options change how Start runs the browser. The zero value is fine.
type Options struct {
	// Trust are certificates (a test CA, or a leaf) whose public keys the
	// browser accepts for any name: a chain with one of them is valid.
	Trust []*x509.Certificate
	// HostRules is Chromium's --host-resolver-rules, e.g.
	// "MAP *.example.test 127.0.0.1, MAP example.test 127.0.0.1", to send
	// names of a test's own to loopback. Names under .localhost already
	// resolve to loopback.
	HostRules string
	// Timeout bounds each action (default 30 s).
	Timeout time.Duration
}

// Browser is one headless Chromium with one tab, its own profile (a
// temporary directory) and so its own cookies. Its methods are called
// from the test's goroutine.
type Browser struct {
	t       testing.TB
	ctx     context.Context // the tab's
	timeout time.Duration
}

// Start starts a browser that is closed when the test ends (the process
// is waited for and its profile removed).
func Start(t testing.TB, opts Options) *Browser {
	t.Helper()
	bin := Binary(t)
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	flags := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		// The sandbox needs user namespaces, or a setuid helper when run
		// as root, as CI does; the pages a test loads are its own.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// Never a proxy from the environment: the test's servers are on
		// loopback.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
	}
	if len(opts.Trust) > 0 {
		var pins []string
		for _, c := range opts.Trust {
			sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			pins = append(pins, base64.StdEncoding.EncodeToString(sum[:]))
		}
		flags = append(flags, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(pins, ",")))
	}
	if opts.HostRules != "" {
		flags = append(flags, chromedp.Flag("host-resolver-rules", opts.HostRules))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], flags...)...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		// Closes the browser and waits for it, then the allocator, which
		// waits for the process and removes what it created.
		cancelTab()
		cancelAlloc()
	})
	// The first action starts the browser and opens the tab, and the
	// context it is given owns them: it is the tab's own, not one bounded
	// by a timeout (a failed start ends the process and returns).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	b := &Browser{t: t, ctx: ctx, timeout: opts.Timeout}
	// Registered after the browser's own cleanup, so run before it: a
	// failed test leaves the page it ended on, as a picture and as HTML.
	t.Cleanup(func() {
		if t.Failed() {
			b.saveFailure()
		}
	})
	return b
}

// EnvArtifacts names the directory where a failed browser test leaves a
// screenshot and the HTML of the page it ended on (default: a directory
// under the system's temporary directory, which the test's log names).
const EnvArtifacts = "SALLYPORT_ARTIFACTS"

// saveFailure writes the tab's screenshot and HTML and logs their paths.
func (b *Browser) saveFailure() {
	dir := os.Getenv(EnvArtifacts)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sallyport-browser-failures")
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("browser: cannot keep the failed page: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	var html string
	if err == nil {
		html, err = chromedp.Run(ctx, chromedp.Evaluate[string]("document.documentElement.outerHTML"))
	}
	if err != nil {
		b.t.Logf("browser: cannot keep the failed page: %v", err)
		return
	}
	shot, page := filepath.Join(dir, name+".png"), filepath.Join(dir, name+".html")
	if os.WriteFile(shot, png, 0o644) == nil && os.WriteFile(page, []byte(html), 0o644) == nil {
		b.t.Logf("browser: the page the test ended on: %s and %s", shot, page)
	}
}

// Screenshot saves the page as a PNG at path, at width × height CSS
// pixels (the whole page when it is taller), for the docs' images.
func (b *Browser) Screenshot(path string, width, height int64) {
	b.t.Helper()
	run(b, "set the screen's size", chromedp.EmulateViewport(width, height))
	png := run(b, "take a screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("browser: write %s: %v", path, err)
	}
}

// Context is the tab's context, for chromedp actions this package does not
// wrap; bound it with a timeout.
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs chromedp actions in the tab within the timeout.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// run runs one action within the timeout and fails the test on its error.
func run[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// Navigate loads url and waits for its document to load. The response
// status does not matter (an error page is a page); a network or
// certificate error fails the test.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	run(b, "navigate to "+url, chromedp.Navigate(url))
}

// NavigateErr loads url and returns the browser's error (a network or
// certificate error) instead of failing the test: for a test of what must
// not load.
func (b *Browser) NavigateErr(url string) error {
	return b.Do(chromedp.Navigate(url))
}

// Location is the tab's current URL.
func (b *Browser) Location() string {
	b.t.Helper()
	return run(b, "read the location", chromedp.Location())
}

// Text is the visible text of the page's body.
func (b *Browser) Text() string {
	b.t.Helper()
	return run(b, "read the page's text", chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
}

// WaitText waits until the page's body contains text (after a redirect or
// script, a form's submission) and fails the test at the timeout with the
// page it saw.
func (b *Browser) WaitText(text string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	expr := fmt.Sprintf("document.body !== null && document.body.innerText.includes(%q)", text)
	var err error
	// The poll runs in the page: a navigation while it waits (the form's
	// answer, a redirect) ends it with an error, and it starts again in
	// the new page. Each try ends at a navigation, so there are few.
	for try := 0; try < 20; try++ {
		if _, err = chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingMutation())); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		last, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		at, _ := chromedp.Run(last, chromedp.Location())
		seen, _ := chromedp.Run(last, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
		b.t.Fatalf("browser: waiting for %q at %s: %v; the page says:\n%s", text, at, err, seen)
	}
}

// Fill types the values into the form fields named (by their name
// attribute) and then clicks the element the CSS selector submit names
// (none when empty). The navigation that follows is not waited for:
// WaitText the page expected next.
func (b *Browser) Fill(submit string, fields map[string]string) {
	b.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		sel := chromedp.CSS(fmt.Sprintf(`[name=%q]`, name))
		steps = append(steps,
			chromedp.WaitVisible(sel),
			chromedp.Clear(sel),
			chromedp.SendKeys(sel, fields[name]))
	}
	if submit != "" {
		steps = append(steps, chromedp.Click(chromedp.CSS(submit), chromedp.NodeVisible))
	}
	run(b, "fill and submit the form", chromedp.Steps(steps...))
}

// Cookie is a cookie as the browser keeps it.
type Cookie = network.Cookie

// Cookies are the cookies the browser would send to url.
func (b *Browser) Cookies(url string) []*Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		b.t.Fatalf("browser: read the cookies of %s: %v", url, err)
	}
	return res.Cookies
}

// Cookie is the named cookie the browser would send to url, or nil.
func (b *Browser) Cookie(url, name string) *Cookie {
	b.t.Helper()
	for _, c := range b.Cookies(url) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page (a string, number,
// boolean or JSON value as T).
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	return run(b, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// EvalPromise evaluates a JavaScript expression whose value is a promise
// and returns what it resolves to (a rejection fails the test).
func EvalPromise[T any](b *Browser, expr string) T {
	b.t.Helper()
	return run(b, "evaluate "+expr, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}
