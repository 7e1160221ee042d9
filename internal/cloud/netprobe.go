package cloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/segment"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// A network application's diagnosis probes its internal addresses from
// the connectors, the way a user's stream would go: the cloud opens a raw
// stream (docs/protocol.md §15.5) to each address that names one host or
// one address, through each connected connector of the group. For tcp the
// connector's dial is the probe (a TCP connect, then close); for udp the
// connector resolves the name and opens a socket, and for a DNS server
// (port 53) the cloud sends one query and waits for an answer. Ranges
// (prefixes, wildcards) have no one host to try.

// Bounds of a network diagnosis.
const (
	maxNetProbeDests = 16
	// netProbeDNSWait bounds the wait for a DNS server's answer.
	netProbeDNSWait = 3 * time.Second
)

// netProbeDNS reports whether a udp destination's port is a DNS server's,
// whose probe sends a query (tests use other ports).
var netProbeDNS = func(port string) bool { return port == "53" }

// netProbeTargets are the destinations to probe (HOST:PORT, the first port
// of a range) and the segments not probed, with why.
func netProbeTargets(set segment.Set) (dests, skipped []string) {
	for _, seg := range set {
		host, ok := seg.OneHost()
		if !ok {
			skipped = append(skipped, seg.String()+": a range")
			continue
		}
		d := net.JoinHostPort(host, strconv.Itoa(int(seg.PortLo)))
		switch {
		case slices.Contains(dests, d):
		case len(dests) >= maxNetProbeDests:
			skipped = append(skipped, fmt.Sprintf("%s: more than %d addresses", seg, maxNetProbeDests))
		default:
			dests = append(dests, d)
		}
	}
	return dests, skipped
}

// probeNetwork probes app's destinations through each connected connector
// of its group (at most maxProbes, by id), all at once.
func (s *Server) probeNetwork(ctx context.Context, app *netApp, user string) (probes []api.NetworkProbe, skipped []string) {
	dests, skipped := netProbeTargets(app.Segments)
	cands := slices.Clone((*s.registry.groups.Load())[app.GroupID]) // the snapshot is shared
	sort.Slice(cands, func(i, j int) bool { return cands[i].lc.ID < cands[j].lc.ID })
	cands = cands[:min(len(cands), maxProbes)]
	probes = make([]api.NetworkProbe, 0, len(cands)*len(dests))
	for _, c := range cands {
		for _, d := range dests {
			probes = append(probes, api.NetworkProbe{Connector: c.lc.ID, Network: app.Type, Destination: d})
		}
	}
	var wg sync.WaitGroup
	for i := range probes {
		c := cands[i/len(dests)]
		wg.Go(func() { s.registry.probeNet(ctx, app, c, user, &probes[i]) })
	}
	wg.Wait()
	return probes, skipped
}

// probeNet opens one raw stream through connector c and fills p.
func (r *registry) probeNet(ctx context.Context, app *netApp, c candidate, user string, p *api.NetworkProbe) {
	lt := leastBusyTunnel(c.tunnels)
	if lt == nil || !c.lc.reserve(r.limit) {
		p.Code, p.Message = "connector_busy", "The connector had no tunnel free for a probe (closing, draining or at its limit of concurrent streams being opened)"
		return
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	start := time.Now()
	rc, err := rawOpen(ctx, lt, app.Type, app.ID, p.Destination, user)
	c.lc.active.Add(-1) // the reservation covers the opening only
	defer func() { p.Millis = time.Since(start).Milliseconds() }()
	if err != nil {
		var rr *tunnel.RawError
		switch {
		case errors.As(err, &rr):
			p.Code, p.Message = rr.Code, strings.TrimSuffix(rr.Message, ".")
		case ctx.Err() != nil:
			p.Code, p.Message = "timeout", fmt.Sprintf("The connector did not open the stream within %s", probeTimeout)
		default:
			p.Code, p.Message = "tunnel_failed", "The probe did not get an answer through the connector's tunnel ("+err.Error()+")"
		}
		return
	}
	defer rc.Close()
	host, port, _ := net.SplitHostPort(p.Destination)
	if app.Type == tunnel.NetworkTCP {
		p.OK, p.Message = true, "The connector connected to "+p.Destination
		return
	}
	if !netProbeDNS(port) {
		p.OK, p.Message = true, "The connector resolved "+host+" and opened a UDP socket to it (UDP has no handshake: whether a service answers there is not known)"
		return
	}
	p.OK, p.Code, p.Message = dnsProbe(rc, host)
}

// dnsProbe sends one DNS query on a udp raw stream (the name itself, or
// "." NS for an address) and says whether an answer came.
func dnsProbe(rc tunnel.RawConn, host string) (ok bool, code, msg string) {
	q := new(dns.Msg)
	name, qtype := ".", dns.TypeNS
	if net.ParseIP(host) == nil {
		name, qtype = dns.Fqdn(host), dns.TypeA
	}
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	wire, err := q.Pack()
	if err != nil {
		return false, "probe_failed", "The DNS query could not be made (" + err.Error() + ")"
	}
	what := fmt.Sprintf("%s %s", name, dns.TypeToString[qtype])
	rc.SetDeadline(time.Now().Add(netProbeDNSWait))
	if _, err := rc.Write(wire); err != nil {
		return false, "tunnel_failed", "The DNS query for " + what + " could not be sent through the connector (" + err.Error() + ")"
	}
	buf := make([]byte, tunnel.MaxRawDatagram)
	for {
		n, err := rc.Read(buf)
		if err != nil {
			return false, "no_dns_answer", fmt.Sprintf("The connector sent a DNS query for %s but no answer came within %s", what, netProbeDNSWait)
		}
		var a dns.Msg
		if a.Unpack(buf[:n]) != nil || a.Id != q.Id || !a.Response {
			continue // not the answer: wait for it
		}
		return true, "", fmt.Sprintf("The DNS server answered a query for %s through the connector: %s, %d record(s)", what, dns.RcodeToString[a.Rcode], len(a.Answer))
	}
}

// netFinding is the finding of a failed probe: the destination, what
// failed and the next step.
func netFinding(app string, p api.NetworkProbe) string {
	host, port, _ := net.SplitHostPort(p.Destination)
	next := "check that the connector's machine reaches it (run 'sallyport connector doctor' there)"
	switch p.Code {
	case tunnel.RawRefused:
		next = fmt.Sprintf("check that the service at %s runs and listens on port %s, and that no firewall refuses the connector's machine", host, port)
	case tunnel.RawUnreachable:
		next = fmt.Sprintf("check that the connector's machine resolves %s and has a route to it (run 'sallyport connector doctor' there), or correct the address with 'sallyport admin app update %s --internal-address …'", host, app)
	case tunnel.RawNotCovered:
		next = "the connector has not yet got the application's internal addresses, or resolved the name outside them: run the diagnosis again in a moment, and check the addresses with 'sallyport admin app show " + app + "'"
	case tunnel.RawUnsupported:
		next = "update the connector (sallyport connector update)"
	case tunnel.RawBusy, "connector_busy":
		next = "run the diagnosis again in a moment"
	case "no_dns_answer":
		next = fmt.Sprintf("check that a DNS server answers on %s and that no firewall drops UDP from the connector's machine", p.Destination)
	}
	return fmt.Sprintf("The probe of %s through connector %s failed (%s): %s; %s", p.Destination, p.Connector, p.Code, p.Message, next)
}
