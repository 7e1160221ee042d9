package edge

import (
	"net"
	"net/http"
	"strings"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// protectedHeaders are the request header names (lower case) the edge
// alone may send to the backend: a client's header whose name, lower-cased
// with '_' read as '-', equals one of them or starts with one is dropped.
// Servers that map header names to variables (CGI, WSGI, PHP, Rack) turn
// '-' into '_', so 'X_Forwarded_For' would be read as the real one.
//
// Besides the headers the edge sets (the X-Forwarded family, X-Real-IP,
// Sallyport-*), the list holds those that frameworks behind a proxy are
// commonly told to trust for the client's address (Client-IP,
// True-Client-IP, X-Client-IP, X-Cluster-Client-IP, CF-Connecting-IP) or
// for the URL that was asked for (X-Original-URL and X-Rewrite-URL, read
// by IIS URL Rewrite and Symfony; X-Original-Host, X-Host): a client could
// otherwise reach a path the edge never saw, or pose as another address.
var protectedHeaders = []string{
	"sallyport-",
	"x-sallyport-",
	"x-forwarded-",
	"forwarded",
	"x-real-ip",
	"x-original-url",
	"x-rewrite-url",
	"x-original-host",
	"x-host",
	"client-ip",
	"true-client-ip",
	"x-client-ip",
	"x-cluster-client-ip",
	"cf-connecting-ip",
}

// protectedHeader reports whether a header named name may come only from
// the edge.
func protectedHeader(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	for _, p := range protectedHeaders {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return tunnel.IsProtocolHeader(name)
}

// forwardHeaders drops from h (the copy of a client's request headers
// going to the backend) every protected header, then sets those the edge
// vouches for: the client's address (X-Forwarded-For, X-Real-IP; none
// when remoteAddr has no IP), the host asked for, normalised
// (X-Forwarded-Host), the scheme (X-Forwarded-Proto: https), the
// application and the request id.
func forwardHeaders(h http.Header, remoteAddr, host, appID, requestID string) {
	for k := range h {
		if protectedHeader(k) {
			delete(h, k)
		}
	}
	if ip, _, err := net.SplitHostPort(remoteAddr); err == nil && net.ParseIP(ip) != nil {
		h["X-Forwarded-For"] = []string{ip}
		h["X-Real-Ip"] = []string{ip}
	}
	if nh, ok := NormalizeHost(host); ok {
		h["X-Forwarded-Host"] = []string{nh}
	}
	h["X-Forwarded-Proto"] = []string{"https"}
	h[tunnel.HeaderApp] = []string{appID}
	h[tunnel.HeaderRequestID] = []string{requestID}
}
