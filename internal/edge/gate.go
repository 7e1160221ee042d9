package edge

import (
	"net/http"
	"strings"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// Gate signs users in before a request reaches an application with
// pre-authentication (App.PreAuth): no byte of a request goes to a
// connector until the gate admits it.
type Gate interface {
	// Admit returns the identity of the signed-in user a request comes
	// from, to pass to the backend; or nil and the code of the answer it
	// wrote itself (a redirect to sign-in, 401, 403, the gate's own paths
	// under /.sallyport/), for the access log and metrics.
	Admit(w http.ResponseWriter, r *http.Request, app *App, requestID string) (*Identity, string)
}

// Identity is the signed-in user of a request, as the backend learns it.
type Identity struct {
	User   string   // X-Sallyport-User: the user name (name@domain)
	Email  string   // X-Sallyport-Email ("" when unknown: the header is not sent)
	Groups []string // X-Sallyport-Groups: the user's user groups
	// Assertion is the signed JWT sent as Sallyport-Assertion.
	Assertion string
	// Bearer: the request carried the user's access token in
	// Authorization, which is removed before the backend (unless the
	// application keeps it).
	Bearer bool
}

// Identity headers the edge sends to a pre-authenticated application's
// backend. A client's copies are always removed (protectedHeaders), for
// every application.
const (
	HeaderUser      = "X-Sallyport-User"
	HeaderEmail     = "X-Sallyport-Email"
	HeaderGroups    = "X-Sallyport-Groups"
	HeaderAssertion = tunnel.HeaderAssertion
)

// CookiePrefix starts the names of the cookies of Sallyport's own on an
// application host (the session cookie): never sent to a backend.
const CookiePrefix = "__Host-sallyport"

// identityHeaders sets the identity headers of id on h (the copy going to
// the backend), after forwardHeaders removed the client's.
func identityHeaders(h http.Header, id *Identity, keepAuthorization bool) {
	h[HeaderUser] = []string{id.User}
	if id.Email != "" {
		h[HeaderEmail] = []string{id.Email}
	}
	if len(id.Groups) > 0 {
		h[HeaderGroups] = []string{strings.Join(id.Groups, ",")}
	}
	if id.Assertion != "" {
		h[HeaderAssertion] = []string{id.Assertion}
	}
	if id.Bearer && !keepAuthorization {
		delete(h, "Authorization")
	}
}

// stripOwnCookies removes Sallyport's cookies from the Cookie headers of
// h, keeping the application's own.
func stripOwnCookies(h http.Header) {
	vv := h["Cookie"]
	if len(vv) == 0 {
		return
	}
	out := vv[:0]
	for _, v := range vv {
		if !strings.Contains(v, CookiePrefix) {
			out = append(out, v)
			continue
		}
		var kept []string
		for _, part := range strings.Split(v, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.HasPrefix(name, CookiePrefix) {
				continue
			}
			if p := strings.TrimSpace(part); p != "" {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, "; "))
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = out
}
