package connector

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"strings"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/neterr"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// The connector serves a request on one of four paths: through net/http's
// Transport (serveProxied: tunnel version 1, and applications behind a
// backend forward proxy), an upgrade through the Transport (serveUpgrade),
// on a relay stream's own backend connection (serveDirect, direct.go), and
// an upgrade on a relay stream (serveDirectUpgrade). They share what the
// backend gets (outgoing), what the cloud gets back (writeResponse), and
// how a failure is told (backendFailed, from classifyBackendError): a
// behaviour changed here changes on every path, and TestServingPaths runs
// each one through all four.

// outgoing is r as the backend gets it, for application a: the internal
// URL's scheme, host and path joined with r's (the internal URL's query
// first), no Host of the client's; no tunnel headers (in any spelling)
// and no hop-by-hop headers; the X-Forwarded-For, -Host and -Proto the
// edge set, and no Forwarded; no default User-Agent of Go's; no Expect
// (the edge answered it and sends the body at once). proto, if not
// empty, makes it an upgrade to that protocol (without a body).
//
// The copy is shallow but for the URL: r's header map becomes the
// outgoing request's (r came off the tunnel and is the handler's own).
func outgoing(r *http.Request, a *app, proto string) *http.Request {
	out := r.WithContext(r.Context())
	u := *r.URL
	out.URL = &u
	out.RequestURI = ""
	out.Close = false
	(&httputil.ProxyRequest{In: r, Out: out}).SetURL(a.target)
	te := out.Header["Te"]
	removeHopHeaders(out.Header)
	for _, v := range te {
		if strings.EqualFold(strings.TrimSpace(v), "trailers") {
			out.Header["Te"] = []string{"trailers"} // the one end-to-end use of Te
			break
		}
	}
	tunnel.StripProtocolHeaders(out.Header)
	out.Header.Del("Forwarded")
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // no default User-Agent of Go's
	}
	out.Header.Del("Expect")
	switch {
	case proto != "":
		out.Body, out.ContentLength = http.NoBody, 0
		tunnel.PrepareUpgrade(out.Header, proto)
	case out.ContentLength == 0:
		out.Body = http.NoBody
	case out.Body != nil && out.Body != http.NoBody:
		// The server (relay loop or HTTP/2) deals with what the backend
		// did not read; closing the body here would read it all first (an
		// early answer would wait for the whole upload).
		out.Body = noDrainBody{out.Body}
	}
	return out
}

// noDrainBody is a request body whose Close leaves the rest unread.
type noDrainBody struct{ io.Reader }

func (noDrainBody) Close() error { return nil }

// hopHeaders are the connection's own headers, not passed on.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopHeaders removes the hop-by-hop headers and those a Connection
// header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// writeResponse writes a backend's response to w: its headers without
// tunnel headers (a backend cannot speak for the connector) and without
// hop-by-hop headers, the body (flushed after each read when its length
// is unknown or it is an event stream), then its trailers. It reports
// whether the body was copied whole.
func writeResponse(w *countingWriter, resp *http.Response) bool {
	hdr := w.Header()
	for k, v := range resp.Header {
		if !tunnel.IsProtocolHeader(k) {
			hdr[k] = v
		}
	}
	removeHopHeaders(hdr)
	var announced map[string]bool
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		announced = make(map[string]bool, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
			announced[k] = true
		}
		hdr["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	ok := true
	if resp.ContentLength != 0 {
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		ok = copyBody(w, resp.Body, resp.ContentLength < 0 || ct == "text/event-stream")
	}
	for k, v := range resp.Trailer {
		if tunnel.IsProtocolHeader(k) {
			continue
		}
		if announced[k] {
			hdr[k] = v
		} else {
			hdr[http.TrailerPrefix+k] = v // a trailer the backend did not announce
		}
	}
	return ok
}

// copyBody copies a response body in tunnel-frame-sized pieces (bufPool),
// flushing after each when flush is set (streams, server-sent events).
func copyBody(w *countingWriter, body io.Reader, flush bool) bool {
	buf := bufPool.Get()
	defer bufPool.Put(buf)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false
			}
			if flush {
				w.Flush()
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// serveProxied serves r through a's Transport: the path of tunnel version
// 1 (stream 0) and of applications behind a backend forward proxy.
func (h *handler) serveProxied(w *countingWriter, r *http.Request, a *app) {
	ctx := r.Context()
	out := outgoing(r, a, "")
	// Interim answers (103 Early Hints) are passed on as they come.
	out = out.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
			hdr := w.Header()
			for k, v := range header {
				if !tunnel.IsProtocolHeader(k) {
					hdr[k] = v
				}
			}
			w.ResponseWriter.WriteHeader(code) // not counted: the final answer is
			clear(hdr)
			return nil
		},
	}))
	resp, err := a.rt.RoundTrip(out)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		err = errUnaskedSwitch
	}
	if err == nil {
		if err = tunnel.CheckResponseHeader(resp.Header, respLimits); err != nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			h.backendFailed(w, a, err)
		}
		return
	}
	defer resp.Body.Close()
	if !writeResponse(w, resp) && ctx.Value(http.ServerContextKey) != nil {
		// Cut off: the cloud must see the answer end in error, not end
		// short as if complete (what httputil.ReverseProxy does).
		panic(http.ErrAbortHandler)
	}
}

// errUnaskedSwitch is a 101 to a request that did not ask to upgrade.
var errUnaskedSwitch = errors.New("the application switched protocols on a request that did not ask to")

// serveUpgrade carries an upgraded connection (WebSocket) to the backend
// through a's Transport.
func (h *handler) serveUpgrade(w *countingWriter, r *http.Request, a *app, proto string) {
	resp, err := a.rt.RoundTrip(outgoing(r, a, proto))
	if err == nil {
		if err = tunnel.CheckResponseHeader(resp.Header, respLimits); err != nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		if r.Context().Err() == nil {
			h.backendFailed(w, a, err)
		}
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		writeResponse(w, resp)
		return
	}
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		writeError(w, problem.New(502, "backend_upgrade", "report this to the Sallyport developers", "The internal application switched protocols but the connection cannot be carried"))
		return
	}
	tunnel.StripProtocolHeaders(resp.Header) // a backend cannot speak for the connector
	tunnel.ServeUpgrade(w, r, resp.Header, backend, proto)
}

// backendErr is what went wrong reaching a backend.
type backendErr int

const (
	errBackendOther        backendErr = iota
	errBackendHeadersLarge            // response head beyond respLimits
	errBackendDNS                     // the host does not resolve
	errBackendRefused                 // nothing listens
	errBackendTimeout                 // no connection in time
	errBackendClosed                  // the connection was closed or reset under the request
	errBackendTLS                     // the TLS handshake failed
)

// classifyBackendError is the one place that decides what a backend error
// is, by its type (internal/neterr).
func classifyBackendError(err error) backendErr {
	if tunnel.IsHeadersTooLarge(err) {
		return errBackendHeadersLarge
	}
	switch k := neterr.Classify(err); {
	case k == neterr.DNS:
		return errBackendDNS
	case k == neterr.Refused:
		return errBackendRefused
	case k == neterr.Timeout:
		return errBackendTimeout
	case k == neterr.Closed:
		return errBackendClosed
	case k.IsTLS():
		return errBackendTLS
	}
	return errBackendOther
}

// staleConn reports whether err is how a request meets a connection the
// backend had closed before it got there.
func staleConn(err error) bool { return classifyBackendError(err) == errBackendClosed }

// backendFailed answers a request the backend could not serve, and logs
// it (event 1400).
func (h *handler) backendFailed(w *countingWriter, a *app, err error) {
	p := h.backendProblem(a, err)
	h.logBackendFailure(a, w.requestID, p)
	writeError(w, p)
}

// logBackendFailure records a failed backend request (at most one event
// per application per second; the next says how many were suppressed).
func (h *handler) logBackendFailure(a *app, requestID string, p *problem.Problem) {
	if n, ok := h.backendLogs.Allow(a.cfg.ID); ok {
		h.c.events.Event(eventlog.BackendRequestFailed, p.Error(), "app", a.cfg.Name, "request_id", requestID, "code", p.Code, "suppressed", fmt.Sprint(n))
	}
}

// backendProblem explains why the internal application could not be reached.
func (h *handler) backendProblem(a *app, err error) *problem.Problem {
	host := a.target.Hostname()
	hostport := a.target.Host
	where := fmt.Sprintf("connector %s", h.c.cfg.Hostname)
	switch classifyBackendError(err) {
	case errBackendHeadersLarge:
		return problem.Newf(http.StatusBadGateway, "backend_headers_too_large",
			fmt.Sprintf("make application '%s' send smaller response headers (at most %d KiB of names and values, %d fields; large or many cookies are the usual cause)", a.cfg.Name, respLimits.MaxHeaderBytes>>10, respLimits.MaxHeaderCount),
			"The internal application '%s' at %s answered with response headers larger than the connector accepts, on %s", a.cfg.Name, a.cfg.InternalURL, where).Wrap(err)
	case errBackendDNS:
		var dnsErr *net.DNSError
		errors.As(err, &dnsErr)
		return problem.Newf(http.StatusBadGateway, "backend_dns",
			fmt.Sprintf("check the internal URL of application '%s' and that the connector's machine resolves %s (DNS server or hosts file)", a.cfg.Name, host),
			"The internal host '%s' of application '%s' does not resolve on %s (%s)", host, a.cfg.Name, where, dnsErr.Err).Wrap(err)
	case errBackendRefused:
		return problem.Newf(http.StatusBadGateway, "backend_refused",
			fmt.Sprintf("check that the application is running and listening on %s, and that no firewall blocks the connector's machine", hostport),
			"The internal application '%s' at %s refused the connection from %s", a.cfg.Name, a.cfg.InternalURL, where).Wrap(err)
	case errBackendTimeout:
		return problem.Newf(http.StatusBadGateway, "backend_unreachable",
			fmt.Sprintf("check the network path from the connector's machine to %s (routing, firewall)", hostport),
			"The internal application '%s' at %s did not accept a connection from %s in time", a.cfg.Name, a.cfg.InternalURL, where).Wrap(err)
	case errBackendTLS:
		step := fmt.Sprintf("check the TLS certificate of %s, or publish the application with an http:// internal URL", hostport)
		var nameErr x509.HostnameError
		switch {
		case errors.As(err, &nameErr):
			step = fmt.Sprintf("the certificate of %s does not name %s: publish the application with an internal URL whose host the certificate names, or reissue the certificate for %s", hostport, host, host)
		case errors.As(err, new(x509.UnknownAuthorityError)):
			step = fmt.Sprintf("the connector's machine does not trust the issuer of %s's certificate: add the CA that signed it to the machine's trust store (Debian: copy it to /usr/local/share/ca-certificates/ and run update-ca-certificates; or set SSL_CERT_FILE for the connector service), then restart the connector", hostport)
		}
		return problem.Newf(http.StatusBadGateway, "backend_tls", step,
			"The TLS handshake with the internal application '%s' at %s failed on %s (%v)", a.cfg.Name, a.cfg.InternalURL, where, err).Wrap(err)
	}
	return problem.Newf(http.StatusBadGateway, "backend_failed",
		fmt.Sprintf("check that the application at %s works when loaded from the connector's machine", a.cfg.InternalURL),
		"The request to the internal application '%s' at %s failed on %s (%v)", a.cfg.Name, a.cfg.InternalURL, where, err).Wrap(err)
}

// writeError answers with a response the connector made itself.
func writeError(w http.ResponseWriter, p *problem.Problem) {
	var eb tunnel.ErrorBody
	eb.Error.Code, eb.Error.Message, eb.Error.Step = p.Code, p.Message, p.Step
	w.Header().Set(tunnel.HeaderError, p.Code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(eb)
}
