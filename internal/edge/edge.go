package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// App is a published application as the edge needs it.
type App struct {
	ID           string
	TenantID     string
	Tenant       string // primary domain, for messages
	Name         string
	GroupID      string
	Group        string // name, for messages
	ExternalHost string
	InternalURL  string
	Timeout      time.Duration
	TimeoutName  string // "default" or "long"
	// Affinity keeps a browser on the same connector (cookie) while that
	// connector stays usable.
	Affinity bool
	// DetailedErrors shows the detailed problem on error pages (for the
	// application's developers) instead of the public sentence.
	DetailedErrors bool
	// PreAuth: only users the Gate admits reach the backend.
	PreAuth bool
	// KeepAuthorization sends a bearer token the gate accepted on to the
	// backend (by default it is removed).
	KeepAuthorization bool
}

// Routes finds the application published at a normalised host.
type Routes interface {
	Lookup(host string) (*App, bool)
}

// Dispatcher sends a request to a connector of app's group and returns
// its response. It fails with a *problem.Problem when no connector can
// take the request.
type Dispatcher interface {
	RoundTrip(app *App, req *http.Request) (*http.Response, error)
}

// Config configures a Handler.
type Config struct {
	Routes     Routes
	Dispatcher Dispatcher
	Logger     *slog.Logger
	// TimeoutOverride, when positive, replaces every application's backend
	// timeout (a test-only setting).
	TimeoutOverride time.Duration
	// Limits bound request sizes and rates; zero fields take the defaults
	// of DefaultLimits.
	Limits Limits
	// OnError, if set, is told of every request for an application that
	// fails with a Sallyport error page (before the page is written), with
	// the detailed problem, for diagnosis.
	OnError func(f *Failure)
	// Gate admits the requests for applications with PreAuth; without a
	// gate such an application answers 503.
	Gate Gate
}

// Failure is a request for an application that the edge answered with an
// error page: the whole story an administrator needs, internal detail
// included. The page itself showed Public unless the application has
// DetailedErrors.
type Failure struct {
	App        *App
	RequestID  string
	Method     string
	Host       string // as the client sent it
	Path       string
	Client     string   // the client's IP address
	Connectors []string // the connectors the request was offered to, in order
	Connector  string   // the connector that answered, when it made the error
	Refused    bool     // turned away by the edge's limits, never sent
	// FromConnector: Problem is the connector's own account of the failure
	// (a response it made itself), not the edge's.
	FromConnector bool
	Problem       *problem.Problem
	Public        *problem.Problem
}

// Handler serves application hosts.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	proxy  *httputil.ReverseProxy
	limits Limits // cfg.Limits with defaults
	rates  rateLimiters
	now    func() time.Time // the rate limiters' clock; tests stop it
}

type ctxKey struct{}

type reqInfo struct {
	*Outcome  // the application and request id, filled in as the request goes
	timeout   time.Duration
	preferred string              // connector named by the affinity cookie
	w         http.ResponseWriter // for an upgrade (see upgrade)
	upgrade   string              // the protocol the client asked to switch to
	tried     []string            // connectors the request was offered to (TriedConnector)
	connErr   bool                // the connector made the error response
	identity  *Identity           // the signed-in user (pre-authentication)
}

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, limits: cfg.Limits.withDefaults(), now: time.Now}
	h.rates.tenants = map[string]*tenantLimiter{}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      roundTripperFunc(h.roundTrip),
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.errorHandler,
		ErrorLog:       log.New(io.Discard, "", 0),
		// 0: flush at once only what streams (no Content-Length, server-sent
		// events); a response of known length goes out in as few writes as
		// possible (measured in bench/RESULTS.md).
		FlushInterval: 0,
		BufferPool:    copyBuffers,
	}
	return h
}

// Outcome is what the edge tells its caller about a request it served
// (for the access log and metrics).
type Outcome struct {
	App       *App // nil when no application is published at the host
	RequestID string
	Connector string // id of the connector that answered, if one did
	Error     string // code of the Sallyport page the edge answered with
}

// ServeHTTP serves one request for an application host.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.Serve(w, r, &Outcome{}) }

// Serve serves one request for an application host and fills o.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, o *Outcome) {
	host, ok := NormalizeHost(r.Host)
	var app *App
	if ok {
		app, ok = h.cfg.Routes.Lookup(host)
	}
	rid := newRequestID()
	o.App, o.RequestID = app, rid
	w.Header().Set(tunnel.HeaderRequestID, rid)
	if !ok {
		// The same page whatever the host: it tells nobody whether a
		// tenant or an application exists.
		o.Error = "no_application"
		WritePage(w, r, PublicProblem(&problem.Problem{Code: o.Error, Status: http.StatusNotFound}), rid)
		return
	}
	if p := h.checkSize(r); p != nil {
		h.refuse(w, r, o, p)
		return
	}
	if p, retryAfter := h.admit(app); p != nil {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		h.refuse(w, r, o, p)
		return
	}
	var id *Identity
	if app.PreAuth {
		if h.cfg.Gate == nil {
			h.refuse(w, r, o, problem.New(http.StatusServiceUnavailable, "signin_unavailable",
				"ask the cloud's operator to check its configuration", "Sign-in is not available on this cloud"))
			return
		}
		var code string
		if id, code = h.cfg.Gate.Admit(w, r, app, rid); id == nil {
			o.Error = code
			return
		}
	}
	// Read the request body while the response is being written: a proxy
	// must be full duplex (see docs/protocol.md).
	http.NewResponseController(w).EnableFullDuplex()
	timeout := app.Timeout
	if h.cfg.TimeoutOverride > 0 {
		timeout = h.cfg.TimeoutOverride
	}
	ri := &reqInfo{Outcome: o, timeout: timeout, w: w, upgrade: tunnel.UpgradeProtocol(r.Header), identity: id}
	ctx := context.WithValue(r.Context(), ctxKey{}, ri)
	if app.Affinity {
		if c, err := r.Cookie(AffinityCookie); err == nil && len(c.Value) <= 64 {
			ri.preferred = c.Value
			ctx = WithPreferredConnector(ctx, c.Value)
		}
	}
	h.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// refuse answers a request the limits turn away.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, o *Outcome, p *problem.Problem) {
	o.Error = p.Code
	h.logRefusal(o.App, o.RequestID, p)
	h.fail(w, r, o, nil, p, true)
}

// fail tells OnError of a failed request and answers with its page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, o *Outcome, ri *reqInfo, p *problem.Problem, refused bool) {
	pub := shown(o.App, p)
	if h.cfg.OnError != nil {
		f := &Failure{App: o.App, RequestID: o.RequestID, Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(),
			Connector: o.Connector, Refused: refused, Problem: p, Public: pub}
		if ri != nil {
			f.Connectors, f.FromConnector = ri.tried, ri.connErr
		}
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			f.Client = ip
		}
		h.cfg.OnError(f)
	}
	WritePage(w, r, pub, o.RequestID)
}

// TriedConnector records that the request of ctx was offered to connector
// id (the dispatcher calls it for each attempt), for the failure's story.
func TriedConnector(ctx context.Context, id string) {
	if ri, ok := ctx.Value(ctxKey{}).(*reqInfo); ok {
		ri.tried = append(ri.tried, id)
	}
}

func info(r *http.Request) *reqInfo { return r.Context().Value(ctxKey{}).(*reqInfo) }

func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	ri := info(pr.In)
	forwardHeaders(pr.Out.Header, pr.In.RemoteAddr, pr.In.Host, ri.App.ID, ri.RequestID)
	stripOwnCookies(pr.Out.Header)
	if ri.identity != nil {
		identityHeaders(pr.Out.Header, ri.identity, ri.App.KeepAuthorization)
	}
	pr.Out.URL.Scheme = "https"
	pr.Out.URL.Host = ri.App.ExternalHost
	pr.Out.Host = pr.In.Host
}

var errTimeout = errors.New("backend application timeout")

// roundTrip sends the request through the dispatcher, bounded by the
// backend application timeout until the response headers arrive.
func (h *Handler) roundTrip(req *http.Request) (*http.Response, error) {
	ri := info(req)
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(ri.timeout, func() { cancel(errTimeout) })
	resp, err := h.cfg.Dispatcher.RoundTrip(ri.App, req.WithContext(ctx))
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, timeoutProblem(ri)
	}
	if err != nil {
		cancel(nil)
		if tunnel.IsHeadersTooLarge(err) {
			return nil, headersTooLargeProblem(ri, err)
		}
		return nil, err
	}
	if resp.Request == nil {
		resp.Request = req
	}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = tunnel.UpgradedConn(rw, func() error {
			err := rw.Close()
			cancel(nil)
			return err
		})
	} else {
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	}
	return resp, nil
}

// headersTooLargeProblem: the connector's answer had a head over the
// cloud's limits (tunnel.ResponseLimits.Relayed); a connector holding to
// its own limits answers backend_headers_too_large itself.
func headersTooLargeProblem(ri *reqInfo, err error) *problem.Problem {
	return problem.Newf(http.StatusBadGateway, "backend_headers_too_large",
		fmt.Sprintf("make application '%s' send smaller response headers (at most 64 KiB of names and values, 256 fields; large or many cookies are the usual cause)", ri.App.Name),
		"The internal application '%s' answered with response headers larger than the cloud accepts", ri.App.Name).Wrap(err)
}

func timeoutProblem(ri *reqInfo) *problem.Problem {
	step := fmt.Sprintf("make the application answer faster, or set its timeout to 'long' (180 s) with 'sallyport admin app update %s --timeout long'", ri.App.Name)
	if ri.App.TimeoutName == "long" {
		step = "make the application answer faster; 180 s is the longest backend application timeout"
	}
	return problem.Newf(http.StatusGatewayTimeout, "backend_timeout", step,
		"The internal application '%s' at %s did not answer within %s (backend application timeout '%s')",
		ri.App.Name, ri.App.InternalURL, ri.timeout, ri.App.TimeoutName)
}

// modifyResponse turns a response the connector made itself (an error)
// into an edge error, and removes protocol headers.
func (h *Handler) modifyResponse(resp *http.Response) error {
	code := resp.Header.Get(tunnel.HeaderError)
	ri := info(resp.Request)
	ri.Connector = resp.Header.Get(tunnel.HeaderConnector)
	if ri.App.Affinity {
		if chosen := ri.Connector; chosen != "" && chosen != ri.preferred {
			resp.Header.Add("Set-Cookie", (&http.Cookie{Name: AffinityCookie, Value: chosen, Path: "/",
				HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}).String())
		}
	}
	tunnel.StripProtocolHeaders(resp.Header)
	if code == "" {
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return h.upgrade(ri, resp)
		}
		return nil
	}
	ri.connErr = true
	var eb tunnel.ErrorBody
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb)
	resp.Body.Close()
	msg := eb.Error.Message
	if msg == "" {
		msg = "The connector could not serve the request"
	}
	return &problem.Problem{Status: resp.StatusCode, Code: code, Message: msg, Step: eb.Error.Step}
}

func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errUpgraded) {
		return // the upgraded connection goes on without the request
	}
	ri := info(r)
	var p *problem.Problem
	switch {
	case r.Context().Err() != nil:
		h.log.Info("client went away", "app", ri.App.Name, "request_id", ri.RequestID)
		return
	default:
		var ok bool
		if p, ok = problem.As(err); !ok {
			p = problem.Newf(http.StatusBadGateway, "connector_lost",
				"retry; if it keeps happening, check the group's connectors with 'sallyport admin connector list' and the connector's log for this request id",
				"The connection to the connector serving '%s' (group '%s' of %s) broke before it answered", ri.App.Name, ri.App.Group, ri.App.Tenant).Wrap(err)
		}
	}
	ri.Error = p.Code
	attrs := []any{"app", ri.App.Name, "tenant", ri.App.Tenant, "request_id", ri.RequestID, "status", p.Status, "code", p.Code}
	if p.Err != nil {
		attrs = append(attrs, "error", p.Err.Error())
	}
	h.log.Warn("edge request failed", attrs...)
	h.fail(w, r, ri.Outcome, ri, p, false)
}

// errUpgraded ends ReverseProxy's handling of a request whose upgraded
// connection upgrade took over.
var errUpgraded = errors.New("edge: upgraded connection served")

// upgrade serves a 101 answer (a WebSocket) in place of ReverseProxy: it
// takes over the client's connection, sends the 101, and leaves two
// goroutines copying both ways with the upgraded body's small idle
// buffers until either side ends. The request then ends at once: its
// goroutine and net/http's buffers go (ReverseProxy would keep them and
// start three more goroutines). The body outlives the request's context
// (tunnel.Client.RoundTrip). It returns errUpgraded, or a problem if the
// answer cannot be carried.
func (h *Handler) upgrade(ri *reqInfo, resp *http.Response) error {
	reqUp, resUp := ri.upgrade, tunnel.UpgradeProtocol(resp.Header)
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || resUp == "" || !strings.EqualFold(reqUp, resUp) || strings.ContainsFunc(resUp, func(r rune) bool { return r < ' ' || r > '~' }) {
		return problem.Newf(http.StatusBadGateway, "backend_upgrade", "check that the application answers upgrades with the protocol asked for",
			"The internal application '%s' switched to protocol %q when %q was asked for", ri.App.Name, resUp, reqUp)
	}
	conn, brw, err := http.NewResponseController(ri.w).Hijack()
	if err != nil {
		return problem.Newf(http.StatusBadGateway, "backend_upgrade", "use HTTP/1.1 for this application's upgrades (WebSocket)",
			"The connection to the client cannot be switched to protocol %q (%v)", resUp, err)
	}
	resp.Body = http.NoBody // ReverseProxy closes it; the connection is ours now
	hdr := ri.w.Header()
	for k, vv := range resp.Header {
		hdr[k] = append(hdr[k], vv...)
	}
	resp.Header = hdr // resp.Write writes the status and headers only
	if resp.Write(brw) != nil || brw.Flush() != nil {
		conn.Close()
		backend.Close()
		return errUpgraded
	}
	// Bytes the client sent right behind its request go first.
	var fromClient io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		fromClient = io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)
	}
	end := func() {
		conn.Close()
		backend.Close()
	}
	go func() {
		defer end()
		io.Copy(backend, fromClient)
	}()
	go func() {
		defer end()
		io.Copy(conn, backend)
	}()
	return errUpgraded
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type preferredKey struct{}

// PreferredConnector returns the connector a request should go to if it
// can (session affinity), or "".
func PreferredConnector(ctx context.Context) string {
	s, _ := ctx.Value(preferredKey{}).(string)
	return s
}

// AffinityCookie is the cookie that keeps a browser on one connector for
// an application with session affinity.
const AffinityCookie = "sallyport_affinity"

// WithPreferredConnector returns ctx asking for connector id (session affinity).
func WithPreferredConnector(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, preferredKey{}, id)
}

// copyBuffers are the ReverseProxy's body copy buffers, reused instead of
// one allocation per response. Large: a large body moves in large writes,
// whose TLS records the cloud sends with one system call (see the cloud's
// statusRecorder); 256 KiB against 32 KiB cut the edge's CPU per GB
// downloaded by about a sixth (bench/RESULTS.md). Each response in flight
// holds one. At most maxBigBuffers responses hold a large one at once
// (8 MiB): others copy with 32 KiB, so that the responses of clients that
// do not read (each holds its buffer while the write waits) cost little
// (issue 14).
var copyBuffers = &bufferPool{
	big:   sync.Pool{New: func() any { b := make([]byte, bigBuffer); return &b }},
	small: sync.Pool{New: func() any { b := make([]byte, smallBuffer); return &b }},
}

const (
	bigBuffer     = 256 << 10
	smallBuffer   = 32 << 10
	maxBigBuffers = 32
)

type bufferPool struct {
	big, small sync.Pool
	bigOut     atomic.Int32 // large buffers handed out
}

func (b *bufferPool) Get() []byte {
	if b.bigOut.Add(1) <= maxBigBuffers {
		return *(b.big.Get().(*[]byte))
	}
	b.bigOut.Add(-1)
	return *(b.small.Get().(*[]byte))
}

func (b *bufferPool) Put(x []byte) {
	if cap(x) == bigBuffer {
		b.bigOut.Add(-1)
		b.big.Put(&x)
		return
	}
	b.small.Put(&x)
}
