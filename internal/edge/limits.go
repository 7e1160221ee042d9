package edge

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sallyport/sallyport/internal/problem"
)

// Limits bound what the edge accepts from the internet. Zero fields take
// the defaults of DefaultLimits.
type Limits struct {
	// MaxHeaderCount is the most request header fields, counting each
	// value of a repeated field (default 256).
	MaxHeaderCount int
	// MaxHeaderBytes is the most bytes of request header names and values,
	// counting the name once per value (default 64 KiB, at most
	// MaxHeaderBytesCeiling).
	MaxHeaderBytes int
	// MaxURLLength is the longest request target (path and query, default 8192).
	MaxURLLength int
	// AppRate and AppBurst limit requests per second to one application
	// (default 5000/s; the burst defaults to twice the rate, 10000).
	AppRate  float64
	AppBurst int
	// TenantRate and TenantBurst limit requests per second to all the
	// applications of one tenant (default 10000/s; the burst defaults to
	// twice the rate, 20000).
	TenantRate  float64
	TenantBurst int
	// RetryAfter is the least a 429 asks clients to wait (default 1s); it
	// asks for longer when the limiter needs longer to grant a request.
	RetryAfter time.Duration
}

// DefaultLimits are the limits taken by zero fields of Limits. They beat
// the usual reference (60 headers, 260-character paths, 500 requests/s
// per application and 750 per tenant) by a wide margin.
var DefaultLimits = Limits{
	MaxHeaderCount: 256,
	MaxHeaderBytes: 64 << 10,
	MaxURLLength:   8192,
	AppRate:        5000,
	AppBurst:       10000,
	TenantRate:     10000,
	TenantBurst:    20000,
	RetryAfter:     time.Second,
}

// MaxHeaderBytesCeiling is the most header bytes the cloud's HTTP server
// reads (http.Server.MaxHeaderBytes); a larger MaxHeaderBytes would never
// apply.
const MaxHeaderBytesCeiling = 1 << 20

// withDefaults returns l with every zero (or negative) field replaced by
// its default. A burst left zero is twice its rate, so that a lower rate
// does not keep the default burst.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxHeaderCount <= 0 {
		l.MaxHeaderCount = d.MaxHeaderCount
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxURLLength <= 0 {
		l.MaxURLLength = d.MaxURLLength
	}
	if !(l.AppRate > 0) {
		l.AppRate = d.AppRate
	}
	if l.AppBurst <= 0 {
		l.AppBurst = burstFor(l.AppRate)
	}
	if !(l.TenantRate > 0) {
		l.TenantRate = d.TenantRate
	}
	if l.TenantBurst <= 0 {
		l.TenantBurst = burstFor(l.TenantRate)
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = d.RetryAfter
	}
	return l
}

// burstFor is the default burst of a rate: twice the rate, at least 1.
func burstFor(r float64) int {
	b := math.Ceil(2 * r)
	switch {
	case b < 1:
		return 1
	case b > math.MaxInt32:
		return math.MaxInt32
	}
	return int(b)
}

// Validate reports the first limit that is negative (zero means the
// default) or a rate that is not a finite number, as a *problem.Problem
// naming the 'sallyport cloud serve' flag that sets it.
func (l Limits) Validate() error {
	ints := []struct {
		flag string
		v    int
		def  int
	}{
		{"--max-header-count", l.MaxHeaderCount, DefaultLimits.MaxHeaderCount},
		{"--max-header-bytes", l.MaxHeaderBytes, DefaultLimits.MaxHeaderBytes},
		{"--max-url-length", l.MaxURLLength, DefaultLimits.MaxURLLength},
		{"--app-burst", l.AppBurst, DefaultLimits.AppBurst},
		{"--tenant-burst", l.TenantBurst, DefaultLimits.TenantBurst},
	}
	for _, f := range ints {
		if f.v < 0 {
			return badLimit(f.flag, strconv.Itoa(f.v), "is negative", strconv.Itoa(f.def))
		}
	}
	if l.MaxHeaderBytes > MaxHeaderBytesCeiling {
		return problem.Newf(http.StatusBadRequest, "bad_edge_limit",
			fmt.Sprintf("give at most %d, or 0 for the default (%d)", MaxHeaderBytesCeiling, DefaultLimits.MaxHeaderBytes),
			"The edge limit --max-header-bytes is %d, more than the %d bytes of headers the cloud's HTTP server reads",
			l.MaxHeaderBytes, MaxHeaderBytesCeiling)
	}
	rates := []struct {
		flag string
		v    float64
		def  float64
	}{
		{"--app-rate", l.AppRate, DefaultLimits.AppRate},
		{"--tenant-rate", l.TenantRate, DefaultLimits.TenantRate},
	}
	for _, f := range rates {
		switch {
		case math.IsNaN(f.v) || math.IsInf(f.v, 0):
			return badLimit(f.flag, formatRate(f.v), "is not a finite number", formatRate(f.def))
		case f.v < 0:
			return badLimit(f.flag, formatRate(f.v), "is negative", formatRate(f.def))
		}
	}
	if l.RetryAfter < 0 {
		return badLimit("Retry-After", l.RetryAfter.String(), "is negative", DefaultLimits.RetryAfter.String())
	}
	return nil
}

func badLimit(flag, value, why, def string) *problem.Problem {
	return problem.Newf(http.StatusBadRequest, "bad_edge_limit",
		fmt.Sprintf("give a positive value, or 0 for the default (%s)", def),
		"The edge limit %s is %s, which %s", flag, value, why)
}

// formatRate writes a rate without exponent: 5000, 0.5.
func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) }

// checkSize refuses a request whose headers or URL exceed the limits.
func (h *Handler) checkSize(r *http.Request) *problem.Problem {
	count, size := 0, 0
	for name, values := range r.Header {
		count += len(values)
		for _, v := range values {
			size += len(name) + len(v)
		}
	}
	if count > h.limits.MaxHeaderCount {
		return problem.Newf(http.StatusRequestHeaderFieldsTooLarge, "headers_too_large",
			"send fewer headers (often: clear this site's cookies); an administrator can raise the limit with 'sallyport cloud serve --max-header-count'",
			"The request has %d header fields, more than the %d this edge accepts", count, h.limits.MaxHeaderCount)
	}
	if size > h.limits.MaxHeaderBytes {
		return problem.Newf(http.StatusRequestHeaderFieldsTooLarge, "headers_too_large",
			"send smaller headers (often: clear this site's cookies); an administrator can raise the limit with 'sallyport cloud serve --max-header-bytes'",
			"The request headers take %d bytes, more than the %d this edge accepts", size, h.limits.MaxHeaderBytes)
	}
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		// Empty (a request made in the program) or absolute-form
		// ("https://host/path", from proxy-aware clients): count only
		// the path and query, as the message says.
		target = r.URL.RequestURI()
	}
	if len(target) > h.limits.MaxURLLength {
		return problem.Newf(http.StatusRequestURITooLong, "url_too_long",
			"use a shorter address (send long parameters in a request body instead); an administrator can raise the limit with 'sallyport cloud serve --max-url-length'",
			"The request URL (path and query) is %d characters long, more than the %d this edge accepts", len(target), h.limits.MaxURLLength)
	}
	return nil
}

// rateLimiters holds one token bucket per tenant and, inside it, one per
// application. Entries are made on a request's first pass, only for
// applications the route table knows, so their number is bounded by the
// applications published since start (a deleted application's entry, a
// few hundred bytes, stays until restart).
type rateLimiters struct {
	mu      sync.Mutex
	tenants map[string]*tenantLimiter // by tenant id
}

// tenantLimiter is a tenant's bucket and its applications' buckets. Its
// mutex makes "check both buckets, then take from both" one step, so a
// request refused by one bucket takes nothing from the other.
type tenantLimiter struct {
	mu   sync.Mutex
	rate *rate.Limiter
	apps map[string]*appLimiter // by application id
}

type appLimiter struct {
	rate *rate.Limiter
	logs map[string]*logGate // by problem code; guarded by the tenant's mu
}

// logGate lets one refusal log line through per second; the next line
// tells how many refusals were left out meanwhile.
type logGate struct {
	last       time.Time
	suppressed int
}

// locked runs f with app's and its tenant's buckets, made if missing,
// under the tenant's lock.
func (h *Handler) locked(app *App, f func(t *tenantLimiter, a *appLimiter)) {
	h.rates.mu.Lock()
	t, ok := h.rates.tenants[app.TenantID]
	if !ok {
		t = &tenantLimiter{rate: rate.NewLimiter(rate.Limit(h.limits.TenantRate), h.limits.TenantBurst), apps: map[string]*appLimiter{}}
		h.rates.tenants[app.TenantID] = t
	}
	h.rates.mu.Unlock()

	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.apps[app.ID]
	if !ok {
		a = &appLimiter{rate: rate.NewLimiter(rate.Limit(h.limits.AppRate), h.limits.AppBurst), logs: map[string]*logGate{}}
		t.apps[app.ID] = a
	}
	f(t, a)
}

// admit takes a token from app's bucket and one from its tenant's, or
// refuses the request with a 429 problem and the seconds to ask the client
// to wait. The application's bucket is checked first.
func (h *Handler) admit(app *App) (p *problem.Problem, retryAfter int) {
	h.locked(app, func(t *tenantLimiter, a *appLimiter) {
		now := h.now()
		if tokens := a.rate.TokensAt(now); tokens < 1 {
			retryAfter = h.retryAfter(tokens, h.limits.AppRate)
			p = problem.Newf(http.StatusTooManyRequests, "app_rate_limited",
				fmt.Sprintf("slow down and retry after %d s; an administrator can raise the limit with 'sallyport cloud serve --app-rate'", retryAfter),
				"Application '%s' of %s gets requests faster than the %s per second (burst %d) this edge accepts per application",
				app.Name, app.Tenant, formatRate(h.limits.AppRate), h.limits.AppBurst)
			return
		}
		if tokens := t.rate.TokensAt(now); tokens < 1 {
			retryAfter = h.retryAfter(tokens, h.limits.TenantRate)
			p = problem.Newf(http.StatusTooManyRequests, "tenant_rate_limited",
				fmt.Sprintf("slow down and retry after %d s; an administrator can raise the limit with 'sallyport cloud serve --tenant-rate'", retryAfter),
				"The applications of %s together get requests faster than the %s per second (burst %d) this edge accepts per tenant",
				app.Tenant, formatRate(h.limits.TenantRate), h.limits.TenantBurst)
			return
		}
		a.rate.AllowN(now, 1)
		t.rate.AllowN(now, 1)
	})
	return p, retryAfter
}

// maxRetryAfter caps Retry-After for very low rates.
const maxRetryAfter = 24 * 60 * 60

// retryAfter is the whole seconds until a bucket holding tokens at r
// per second has one, and at least Limits.RetryAfter.
func (h *Handler) retryAfter(tokens, r float64) int {
	secs := math.Max((1-tokens)/r, h.limits.RetryAfter.Seconds())
	return int(math.Min(math.Max(math.Ceil(secs), 1), maxRetryAfter))
}

// logRefusal logs a refused request at Info, at most one line per second
// for each application and problem code, so that a flood cannot flood
// the log.
func (h *Handler) logRefusal(app *App, requestID string, p *problem.Problem) {
	suppressed, skip := 0, false
	h.locked(app, func(_ *tenantLimiter, a *appLimiter) {
		g, ok := a.logs[p.Code]
		if !ok {
			g = &logGate{}
			a.logs[p.Code] = g
		}
		now := h.now()
		if ok && now.Sub(g.last) < time.Second {
			g.suppressed++
			skip = true
			return
		}
		suppressed, g.last, g.suppressed = g.suppressed, now, 0
	})
	if skip {
		return
	}
	attrs := []any{"app", app.Name, "tenant", app.Tenant, "request_id", requestID, "status", p.Status, "code", p.Code, "reason", p.Message}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	h.log.Info("edge request refused", attrs...)
}
