package cloud

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mholt/acmez/v3/acme"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
)

// acmeCause is a failed ACME order told in one sentence: what failed and
// why (Why, after "no certificate for HOST could be obtained: "), the
// recommended step, and the CA's own words.
type acmeCause struct {
	Kind   string // stable: "dns", "unreachable", "rate_limit", "caa", "account", "rejected", "ca", "other"
	Why    string
	Step   string
	Detail string // the CA's message (the problem document's detail), or the error
}

// The kinds of acmeCause, by the RFC 8555 §6.7 problem type the CA
// answered (a compound problem is classified by its first subproblem).
var acmeCauses = map[string]acmeCause{
	acme.ProblemTypeDNS: {Kind: "dns", Why: "the CA could not resolve the host's DNS name",
		Step: "point the host's DNS name (or *.NAME) at this cloud's public address with an A or AAAA record, then open the host again"},
	acme.ProblemTypeUnauthorized: {Kind: "dns", Why: "the CA reached a server that did not answer its challenge, so the host's DNS name points at another machine",
		Step: "point the host's DNS name at this cloud's public address (not at a proxy that ends TLS or answers port 80 itself)"},
	acme.ProblemTypeIncorrectResponse: {Kind: "dns", Why: "the CA reached a server that answered its challenge wrongly, so the host's DNS name points at another machine",
		Step: "point the host's DNS name at this cloud's public address (not at a proxy that ends TLS or answers port 80 itself)"},
	// Pebble (and other CAs) answer "connection" for a name that does
	// not resolve too, so the step names DNS first.
	acme.ProblemTypeConnection: {Kind: "unreachable", Why: "the CA could not connect to this cloud to check the challenge",
		Step: "check that the host's DNS name points at this cloud's public address, and open the TLS port (as 443) and port 80 (--http-listen) to the internet; behind a load balancer or NAT, forward TCP on both to this cloud"},
	acme.ProblemTypeTLS: {Kind: "unreachable", Why: "the CA's TLS connection to this cloud for the TLS-ALPN-01 challenge failed",
		Step: "let the TLS port (as 443) reach this cloud unchanged, without a proxy that ends TLS, or open port 80 (--http-listen) for HTTP-01"},
	acme.ProblemTypeRateLimited: {Kind: "rate_limit", Why: "the CA's rate limit for this name or account is reached",
		Step: "wait until the time the CA names, and use --acme-ca with a staging directory while testing; the edge serves the next certificate in line meanwhile"},
	acme.ProblemTypeCAA: {Kind: "caa", Why: "a CAA record of the host's domain does not allow this CA",
		Step: "add a CAA record allowing this CA (for Let's Encrypt: 0 issue \"letsencrypt.org\") to the domain, or remove the CAA records that forbid it"},
	acme.ProblemTypeAccountDoesNotExist: {Kind: "account", Why: "the CA does not know the cloud's ACME account",
		Step: "remove the account from the ACME storage so that the cloud registers a new one, or check that --acme-ca names the CA that holds it"},
	acme.ProblemTypeInvalidContact: {Kind: "account", Why: "the CA refused the contact address of the ACME account",
		Step: "give --acme-email an address the CA accepts (a real mailbox, not an example or local domain)"},
	acme.ProblemTypeUnsupportedContact: {Kind: "account", Why: "the CA refused the contact address of the ACME account",
		Step: "give --acme-email a plain e-mail address"},
	acme.ProblemTypeExternalAccountRequired: {Kind: "account", Why: "the CA issues only to accounts bound to an account held with it (external account binding)",
		Step: "use a CA that needs no external account binding (Let's Encrypt), or one without it through --acme-ca"},
	acme.ProblemTypeUserActionRequired: {Kind: "account", Why: "the CA requires an action on the ACME account (for example agreeing to new terms of service)",
		Step: "follow the instance URL the CA gives in its message, then open the host again"},
	acme.ProblemTypeRejectedIdentifier: {Kind: "rejected", Why: "the CA will not issue certificates for this name",
		Step: "publish the application under a public DNS name the CA issues for, or give it its own certificate (--cert-file)"},
	acme.ProblemTypeUnsupportedIdentifier: {Kind: "rejected", Why: "the CA will not issue certificates for this kind of name",
		Step: "publish the application under a public DNS name, or give it its own certificate (--cert-file)"},
	acme.ProblemTypeServerInternal: {Kind: "ca", Why: "the CA failed on its side",
		Step: "nothing on this cloud: a later handshake for the host tries again; check the CA's status page if it lasts"},
}

// classifyACME tells err, the error of a failed ACME order, in one
// sentence with the recommended step. It reads the typed errors (an
// RFC 8555 problem document, a network error), never the message text.
func classifyACME(err error) acmeCause {
	var p acme.Problem
	if errors.As(err, &p) {
		typ, detail := p.Type, p.Detail
		if (typ == acme.ProblemTypeCompound || typ == acme.ProblemTypeMalformed || typ == "") && len(p.Subproblems) > 0 {
			typ, detail = p.Subproblems[0].Type, p.Subproblems[0].Detail
		}
		c, ok := acmeCauses[typ]
		if !ok {
			c = acmeCause{Kind: "other", Why: "the CA refused the order (" + strings.TrimPrefix(typ, acme.ProblemTypeNamespace) + ")",
				Step: "read the CA's message; a later handshake for the host tries again"}
		}
		c.Detail = detail
		return c
	}
	c := acmeCause{Kind: "other", Why: "the order failed", Step: "read the message; a later handshake for the host tries again"}
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded):
		c = acmeCause{Kind: "ca", Why: "the ACME server (--acme-ca) could not be reached from this cloud",
			Step: "check that this machine reaches the URL of --acme-ca over HTTPS (firewall, proxy, DNS), and --acme-ca-root for a private CA"}
	}
	if err != nil {
		c.Detail = err.Error()
	}
	return c
}

// acmeFailed records a failed order of host and writes event 2986 with
// the CA's message and the recommended step.
func (s *Server) acmeFailed(host string, renewal bool, err error) {
	c := classifyACME(err)
	s.acme.book.failed(host, s.now(), c)
	s.events.Event(eventlog.ACMECertFailed, acmeFailureSentence(host, c, renewal),
		"host", host, "renewal", strconv.FormatBool(renewal), "cause", c.Kind, "error", c.Detail)
}

// acmeBook is what this instance saw of each host's ACME orders: an order
// in progress, the last failure. Safe for concurrent use (certmagic's
// events arrive from its goroutines).
type acmeBook struct {
	mu    sync.Mutex
	hosts map[string]*acmeHost
}

type acmeHost struct {
	obtaining bool
	failedAt  time.Time
	cause     acmeCause
}

// maxACMEBook bounds the hosts remembered: orders are only made for
// published hosts, so the bound is never reached in practice.
const maxACMEBook = 100000

func (b *acmeBook) host(name string) *acmeHost {
	if b.hosts == nil {
		b.hosts = map[string]*acmeHost{}
	}
	h := b.hosts[name]
	if h == nil {
		if len(b.hosts) >= maxACMEBook {
			clear(b.hosts)
		}
		h = &acmeHost{}
		b.hosts[name] = h
	}
	return h
}

func (b *acmeBook) obtaining(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.host(name).obtaining = true
}

func (b *acmeBook) obtained(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.hosts, name)
}

func (b *acmeBook) failed(name string, at time.Time, c acmeCause) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.host(name)
	h.obtaining, h.failedAt, h.cause = false, at, c
}

// status is the API's ACME state of name: valid when a certificate is
// held (held), else failed with the last failure, else pending (ordered
// now, or at the next handshake for the host).
func (b *acmeBook) status(name string, held bool) *api.ACMEStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.hosts[name]
	switch {
	case held && (h == nil || h.failedAt.IsZero()):
		return &api.ACMEStatus{State: api.ACMEValid}
	case h != nil && !h.failedAt.IsZero():
		st := &api.ACMEStatus{State: api.ACMEFailed, Cause: h.cause.Kind, Error: h.cause.Detail, Message: acmeFailureSentence(name, h.cause, held), Step: h.cause.Step, FailedAt: h.failedAt.UTC()}
		if held {
			st.State = api.ACMEValid // a renewal failed; the certificate held still serves
		}
		return st
	}
	return &api.ACMEStatus{State: api.ACMEPending}
}

// acmeFailureSentence is event 2986's message and the API's: what failed,
// why, the CA's words, what to do, what serves meanwhile.
func acmeFailureSentence(host string, c acmeCause, renewal bool) string {
	what := "No ACME certificate could be obtained for " + host
	meanwhile := "the edge presents --edge-cert or the cloud CA's certificate meanwhile"
	if renewal {
		what = "The ACME certificate of " + host + " could not be renewed"
		meanwhile = "the current certificate serves until it expires"
	}
	detail := ""
	if c.Detail != "" {
		detail = " (the CA said: " + strings.TrimSuffix(c.Detail, ".") + ")"
	}
	return what + ": " + c.Why + detail + "; " + c.Step + " (" + meanwhile + ")"
}
