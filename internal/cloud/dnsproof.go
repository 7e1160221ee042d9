package cloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// Domain proof by DNS: the tenant creates a TXT record named
// _sallyport.DOMAIN with the value sallyport-verify=TOKEN (tenancy.TXTName,
// tenancy.TXTValue).
const (
	// dnsTimeout bounds one TXT look-up (both transports together).
	dnsTimeout = 5 * time.Second
	// maxTXTBytes is how much TXT data of an answer is considered.
	maxTXTBytes = 4096
)

var (
	errNoTXT          = errors.New("no TXT record")
	errDNSUnreachable = errors.New("the resolver cannot be reached")
)

// txtResolver looks up TXT records: the values of name's TXT records
// (each record's strings joined), errNoTXT when the name has none, or an
// error wrapping errDNSUnreachable.
type txtResolver struct {
	addr string // HOST:PORT of the resolver; "" for the system's
}

func (r txtResolver) String() string {
	if r.addr == "" {
		return "the system's resolver"
	}
	return r.addr
}

// LookupTXT returns the TXT values of name, at most maxTXTBytes of them.
func (r txtResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	if r.addr == "" {
		vals, err := net.DefaultResolver.LookupTXT(ctx, name)
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, errNoTXT
		}
		if err != nil {
			return nil, fmt.Errorf("%w (%v)", errDNSUnreachable, err)
		}
		return boundTXT(vals)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp", UDPSize: 4096}
	in, _, err := c.ExchangeContext(ctx, m, r.addr)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", errDNSUnreachable, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, errNoTXT
	default:
		return nil, fmt.Errorf("%w (it answered %s)", errDNSUnreachable, dns.RcodeToString[in.Rcode])
	}
	var vals []string
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.EqualFold(t.Hdr.Name, dns.Fqdn(name)) {
			vals = append(vals, strings.Join(t.Txt, ""))
		}
	}
	return boundTXT(vals)
}

// boundTXT keeps the values that fit in maxTXTBytes; none is errNoTXT.
func boundTXT(vals []string) ([]string, error) {
	n := 0
	for i, v := range vals {
		if n += len(v); n > maxTXTBytes {
			vals = vals[:i]
			break
		}
	}
	if len(vals) == 0 {
		return nil, errNoTXT
	}
	return vals, nil
}

// proveByDNS looks up d's TXT record and reports, in one sentence, why it
// does not prove d: no record, a record with another value (the expected
// one is shown), or a resolver that cannot be reached.
func proveByDNS(ctx context.Context, r txtResolver, d store.Domain) error {
	name, want := tenancy.TXTName(d.Domain), tenancy.TXTValue(d.Token)
	step := fmt.Sprintf("create a TXT record %s with the value %s at the domain's DNS host, wait until it is served, and run 'sallyport admin domain verify %s' again", name, want, d.Domain)
	vals, err := r.LookupTXT(ctx, name)
	switch {
	case errors.Is(err, errNoTXT):
		return problem.Newf(http.StatusConflict, "domain_txt_missing", step,
			"No TXT record %s was found, so %s is not proven", name, d.Domain)
	case err != nil:
		return problem.Newf(http.StatusServiceUnavailable, "dns_unreachable",
			"try again in a minute; if it persists, the cloud's operator checks the resolver given with 'cloud serve --dns-resolver'",
			"The DNS look-up of %s failed: %s cannot be reached or did not answer: %v", name, r, errors.Unwrap(err))
	}
	var seen []string
	for _, v := range vals {
		if strings.TrimSpace(v) == want {
			return nil
		}
		seen = append(seen, fmt.Sprintf("%q", tenancy.Truncate(v, 80)))
		if len(seen) == 3 {
			break
		}
	}
	return problem.Newf(http.StatusConflict, "domain_txt_mismatch", fmt.Sprintf("set the record's value to %s (the value 'sallyport admin domain add' printed) and run 'sallyport admin domain verify %s' again", want, d.Domain),
		"The TXT record %s was found, but it holds %s instead of the expected %s", name, strings.Join(seen, ", "), want)
}
