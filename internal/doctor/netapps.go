package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/sallyport/sallyport/internal/segment"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// checkNetworkApp checks a network application (tcp, udp) from this
// machine, as the connector would reach it: each internal address that
// names one host resolves, for tcp its first port accepts a connection,
// and for udp on port 53 a DNS server answers a query. Wildcards and prefixes are ranges with no one host to try.
func (r *runner) checkNetworkApp(ctx context.Context, s *Step, a tunnel.AppConfig) {
	limit := r.o.StepTimeout
	what := "resolves (and on port 53 answers a DNS query)"
	if a.Type == "tcp" {
		what = fmt.Sprintf("resolves and its port (the first of a range) accepts a TCP connection within %s", round(limit))
	}
	s.Checked = fmt.Sprintf("on this machine, as the connector would: each internal address of the %s application '%s' that names one host %s", a.Type, a.Name, what)
	set, err := segment.ParseSet(a.Segments)
	if err != nil || len(set) == 0 {
		why := "it has none"
		if err != nil {
			why = err.Error()
		}
		s.set(Fail, fmt.Sprintf("The internal addresses of application '%s' are not usable: %s", a.Name, why),
			fmt.Sprintf("give it usable ones: 'sallyport admin app update %s --internal-address HOST:PORT'", a.Name))
		return
	}
	var f findings
	defer f.to(s)
	var ranges []string
	for _, seg := range set {
		host, ok := seg.OneHost()
		if !ok {
			ranges = append(ranges, seg.String())
			continue
		}
		ips, err := r.resolveApp(ctx, host)
		if err != nil {
			why := err.Error()
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) {
				why = dnsErr.Err
			}
			if isTimeout(err) {
				why = "no answer within " + round(limit).String()
			}
			f.add(Fail, fmt.Sprintf("The internal address %s of application '%s' does not resolve on this machine (%s)", seg, a.Name, why),
				fmt.Sprintf("check that this machine resolves %s (DNS server or hosts file), or correct the address with 'sallyport admin app update %s --internal-address …'", host, a.Name))
			continue
		}
		resolved := host + " is an IP address"
		if seg.Kind == segment.Name {
			resolved = host + " resolves to " + joinIPs(ips)
		}
		if a.Type != "tcp" {
			if isDNSPort(seg.PortLo) {
				status, found, advice := r.dnsAnswer(ctx, a.Name, seg, ips)
				if status == Pass {
					found = resolved + ", and " + found
				}
				f.add(status, found, advice)
				continue
			}
			f.add(Pass, resolved, "")
			continue
		}
		status, found, advice := r.tcpReach(ctx, a.Name, seg, ips)
		if status == Pass {
			found = resolved + ", and " + found
		}
		f.add(status, found, advice)
	}
	if len(ranges) > 0 {
		f.add(Pass, strings.Join(ranges, ", ")+" not checked: a range has no one host to try", "")
	}
}

// tcpReach connects to the segment's first port at its addresses, in
// order, until one accepts.
func (r *runner) tcpReach(ctx context.Context, app string, seg segment.Segment, ips []netip.Addr) (status, found, advice string) {
	port := strconv.Itoa(int(seg.PortLo))
	var err error
	for _, ip := range ips {
		dctx, cancel := context.WithTimeout(ctx, r.o.StepTimeout)
		var d net.Dialer
		var c net.Conn
		c, err = d.DialContext(dctx, "tcp", net.JoinHostPort(ip.String(), port))
		cancel()
		if err == nil {
			c.Close()
			return Pass, fmt.Sprintf("%s accepts a TCP connection on port %s", ip, port), ""
		}
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Fail, fmt.Sprintf("The internal address %s of application '%s' refused a TCP connection from this machine on port %s", seg, app, port),
			"check that the service runs and listens on that port, and that no firewall refuses this machine"
	case isTimeout(err):
		return Fail, fmt.Sprintf("The internal address %s of application '%s' did not accept a TCP connection from this machine on port %s within %s", seg, app, port, round(r.o.StepTimeout)),
			"check the routes and firewalls between this machine and the service"
	default:
		return Fail, fmt.Sprintf("The internal address %s of application '%s' is not reachable from this machine on port %s (%v)", seg, app, port, err),
			"check the routes and firewalls between this machine and the service"
	}
}

// isDNSPort reports whether a udp port is a DNS server's, whose addresses
// must answer a query (tests use other ports).
var isDNSPort = func(port uint16) bool { return port == 53 }

// dnsAnswer sends one DNS query (the segment's name, A; ". NS" for an
// address) over UDP to the segment's addresses, in order, until one
// answers within the step's timeout.
func (r *runner) dnsAnswer(ctx context.Context, app string, seg segment.Segment, ips []netip.Addr) (status, found, advice string) {
	name, qtype := ".", dns.TypeNS
	if seg.Kind == segment.Name {
		name, qtype = dns.Fqdn(seg.Host), dns.TypeA
	}
	what := name + " " + dns.TypeToString[qtype]
	port := strconv.Itoa(int(seg.PortLo))
	var err error
	for _, ip := range ips {
		var a *dns.Msg
		if a, err = dnsQuery(ctx, net.JoinHostPort(ip.String(), port), name, qtype, r.o.StepTimeout); err == nil {
			return Pass, fmt.Sprintf("%s answered a DNS query for %s on port %s (%s, %d record(s))", ip, what, port, dns.RcodeToString[a.Rcode], len(a.Answer)), ""
		}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return Fail, fmt.Sprintf("The internal address %s of application '%s' refused a DNS query from this machine on UDP port %s (nothing listens there)", seg, app, port),
			"check that the DNS server runs and listens on that port, and that no firewall refuses this machine"
	}
	return Fail, fmt.Sprintf("The internal address %s of application '%s' did not answer a DNS query for %s from this machine within %s (%v)", seg, app, what, round(r.o.StepTimeout), err),
		"check that the DNS server runs and answers on that port, and that no firewall drops UDP between this machine and it"
}

// dnsQuery asks addr one question over UDP and returns its answer.
func dnsQuery(ctx context.Context, addr, name string, qtype uint16, limit time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(wire); err != nil {
		return nil, err
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if isTimeout(err) {
				return nil, errors.New("no answer")
			}
			return nil, err
		}
		a := new(dns.Msg)
		if a.Unpack(buf[:n]) == nil && a.Id == q.Id && a.Response {
			return a, nil
		}
	}
}
