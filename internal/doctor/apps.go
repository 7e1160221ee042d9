package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/neterr"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// appParallel bounds how many applications are checked at once.
const appParallel = 8

const appsTitle = "Applications of the connector group, from this machine"

// checkApps adds one step per application of the group (or only
// Options.App), checked in parallel, in name order.
func (r *runner) checkApps() {
	if r.status == nil {
		r.do("apps", appsTitle, r.needStatus, nil)
		return
	}
	apps := slices.Clone(r.status.Apps)
	slices.SortFunc(apps, func(a, b tunnel.AppConfig) int { return strings.Compare(a.Name, b.Name) })
	if r.o.App != "" {
		i := slices.IndexFunc(apps, func(a tunnel.AppConfig) bool { return strings.EqualFold(a.Name, r.o.App) })
		if i < 0 {
			r.do("app "+r.o.App, fmt.Sprintf("Application '%s'", r.o.App), nil, r.unknownApp)
			return
		}
		apps = apps[i : i+1]
	}
	steps := make([]Step, len(apps))
	sem := make(chan struct{}, appParallel)
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			steps[i] = r.runStep("app "+a.Name, fmt.Sprintf("Application '%s' from this machine", a.Name), nil,
				func(ctx context.Context, s *Step) { r.checkApp(ctx, s, a) })
		}()
	}
	wg.Wait()
	r.rep.Steps = append(r.rep.Steps, steps...)
}

func (r *runner) unknownApp(_ context.Context, s *Step) {
	st := r.status
	s.Checked = fmt.Sprintf("that the connector group '%s' has an application named '%s'", st.Group, r.o.App)
	names := []string{}
	for _, a := range st.Apps {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	list := "it has none"
	if len(names) > 0 {
		list = "its applications are: " + strings.Join(names, ", ")
	}
	s.set(Fail, fmt.Sprintf("The connector group '%s' has no application '%s'; %s", st.Group, r.o.App, list),
		"give one of those names to --app, or find the application's group with 'sallyport admin app show NAME'")
}

func (r *runner) checkApp(ctx context.Context, s *Step, a tunnel.AppConfig) {
	if a.IsNetwork() {
		r.checkNetworkApp(ctx, s, a)
		return
	}
	tname := r.status.TimeoutNames[a.ID]
	limit, byApp := r.o.StepTimeout, false
	if a.Timeout > 0 && a.Timeout <= limit {
		limit, byApp = a.Timeout, true
	}
	s.Checked = fmt.Sprintf("on this machine, as the connector would: the host of %s resolves, and not back to the cloud (%s); GET %s loads (waiting at most %s); its response time against the application's backend timeout %s",
		a.InternalURL, r.target.Addr, a.InternalURL, round(limit), timeoutDesc(a.Timeout, tname))
	var bproxy *url.URL
	if a.BackendProxy != "" {
		var err error
		if bproxy, err = url.Parse(a.BackendProxy); err != nil || bproxy.Host == "" {
			s.set(Fail, fmt.Sprintf("The backend proxy %q of application '%s' is not usable", a.BackendProxy, a.Name),
				fmt.Sprintf("give it as http://HOST:PORT: 'sallyport admin app update %s --backend-proxy URL'", a.Name))
			return
		}
		s.Checked = fmt.Sprintf("on this machine, as the connector would, through the application's backend proxy %s: GET %s loads (waiting at most %s), and not from the cloud (%s); its response time against the application's backend timeout %s",
			a.BackendProxy, a.InternalURL, round(limit), r.target.Addr, timeoutDesc(a.Timeout, tname))
	}
	u, err := url.Parse(a.InternalURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		s.set(Fail, fmt.Sprintf("The internal URL %q of application '%s' is not usable", a.InternalURL, a.Name),
			fmt.Sprintf("give it the URL this machine reaches the application at: 'sallyport admin app update %s --internal-url http://HOST:PORT/'", a.Name))
		return
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	hostport := net.JoinHostPort(host, port)
	var f findings
	defer f.to(s)

	// (a) the internal host resolves on this machine ;
	// through a backend proxy, the proxy resolves it.
	ips, err := r.resolveApp(ctx, host)
	if err != nil && bproxy != nil {
		f.add(Pass, fmt.Sprintf("this machine does not resolve %s, which is fine: the connector sends the application's requests through its backend proxy %s, which resolves it", host, a.BackendProxy), "")
		ips = nil
	} else if err != nil {
		why := err.Error()
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			why = dnsErr.Err
		}
		if isTimeout(err) {
			why = "no answer within " + round(r.o.StepTimeout).String()
		}
		f.add(Fail, fmt.Sprintf("The internal host '%s' of application '%s' does not resolve on this machine (%s)", host, a.Name, why),
			fmt.Sprintf("check the internal URL of application '%s' and that this machine resolves %s (DNS server or hosts file)", a.Name, host))
		return
	}
	if _, err := netip.ParseAddr(host); err == nil {
		f.add(Pass, fmt.Sprintf("%s is an IP address: nothing to resolve", host), "")
	} else if len(ips) > 0 {
		f.add(Pass, fmt.Sprintf("%s resolves to %s", host, joinIPs(ips)), "")
	}

	// (b) ... and not back to the cloud.
	status, found, advice := loopCheck(a.Name, host, ips, port, r.target, r.cloudIPs)
	f.add(status, found, advice)
	if status == Fail {
		return // never load the cloud as if it were the application
	}

	// (c) the internal URL loads from this machine .
	res := load(ctx, a.InternalURL, host, ips, bproxy, limit)
	if res.err != nil {
		f.add(loadFailed(a, tname, hostport, res, limit, byApp))
		return
	}
	through := ""
	if bproxy != nil {
		through = " through the backend proxy " + a.BackendProxy
	}
	slow := a.Timeout > 0 && res.took > a.Timeout/2
	switch {
	case res.edge:
		f.add(Fail, fmt.Sprintf("GET %s answered %s with a %s header, as the Sallyport cloud's edge does: the internal URL leads back to the cloud and every request would loop", a.InternalURL, res.status, tunnel.HeaderRequestID),
			fmt.Sprintf("give the application's internal address, which this machine reaches inside the site: 'sallyport admin app update %s --internal-url URL'", a.Name))
		return
	case res.code >= 500 && bproxy != nil && (res.code == http.StatusBadGateway || res.code == http.StatusGatewayTimeout):
		f.add(Warn, fmt.Sprintf("GET %s%s answered %s in %s: the backend proxy may be saying that it cannot reach the application", a.InternalURL, through, res.status, round(res.took)),
			fmt.Sprintf("check that the backend proxy %s reaches %s, or the application's own log; users get this error too", a.BackendProxy, hostport))
	case res.code >= 500:
		f.add(Warn, fmt.Sprintf("GET %s%s answered %s in %s: the application loads but reports a server error", a.InternalURL, through, res.status, round(res.took)),
			"check the application's own log: users get this error too")
	case slow:
		f.add(Pass, fmt.Sprintf("GET %s%s answered %s", a.InternalURL, through, res.status), "")
	default:
		within := ""
		if a.Timeout > 0 {
			within = fmt.Sprintf(", well within its backend timeout of %s", timeoutDesc(a.Timeout, tname))
		}
		f.add(Pass, fmt.Sprintf("GET %s%s answered %s in %s%s", a.InternalURL, through, res.status, round(res.took), within), "")
	}

	// (d) the response time against the application's timeout .
	if slow {
		f.add(Warn, fmt.Sprintf("it answered in %s, more than half of its backend timeout of %s", round(res.took), timeoutDesc(a.Timeout, tname)),
			slowAdvice(a.Name, tname))
	}
}

// timeoutDesc says an application's timeout with its name: "1m25s ('default')".
func timeoutDesc(d time.Duration, name string) string {
	if d <= 0 {
		return "(unknown)"
	}
	if name == "" {
		return d.String()
	}
	return fmt.Sprintf("%s ('%s')", d, name)
}

// slowAdvice: lengthen the backend timeout, unless it is
// already the long one.
func slowAdvice(app, timeoutName string) string {
	if timeoutName == "long" {
		return "its timeout is already 'long' (180 s), the longest there is: make the application answer faster"
	}
	return fmt.Sprintf("lengthen its timeout with 'sallyport admin app update %s --timeout long' (180 s instead of 85 s), or make the application answer faster", app)
}

func (r *runner) resolveApp(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	addrs, err := r.o.Resolver.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := parseIPs(addrs)
	if len(ips) == 0 {
		return nil, errors.New("no address")
	}
	return ips, nil
}

func joinIPs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}

// loopCheck says whether an application's internal address leads back to
// the cloud, which would send every request round in a loop.
//
// The rule: the internal host is the cloud's name, or one of its
// addresses is one of the cloud's, AND the port is the cloud's port: a
// loop (fail). The same address on another port is another service on the
// cloud's machine: a warning (a redirect from there to the cloud loops
// too), except on a loopback address, where the cloud and the application
// share the machine the doctor runs on — a test or demo setup, not a loop
// (pass, noted).
func loopCheck(app, host string, ips []netip.Addr, port string, cloud cloudlink.Target, cloudIPs []netip.Addr) (status, found, advice string) {
	_, cloudPort, _ := net.SplitHostPort(cloud.Addr)
	sameName := strings.EqualFold(strings.TrimSuffix(host, "."), cloud.Host)
	var shared []netip.Addr
	for _, ip := range ips {
		if slices.Contains(cloudIPs, ip) {
			shared = append(shared, ip)
		}
	}
	fix := fmt.Sprintf("give the application's internal address, which this machine reaches inside the site: 'sallyport admin app update %s --internal-url URL'", app)
	switch {
	case (sameName || len(shared) > 0) && port == cloudPort:
		what := "the cloud's own name " + cloud.Host
		if !sameName {
			what = "the cloud's address " + joinIPs(shared)
		}
		return Fail, fmt.Sprintf("The internal host '%s' of application '%s' is %s on the cloud's port %s: the connector would send the application's requests back to the cloud, and every request would loop", host, app, what, port), fix
	case len(shared) > 0 && allLoopback(shared):
		return Pass, fmt.Sprintf("it shares the loopback address %s with the cloud, but on port %s, not the cloud's %s: another service on this machine, not a loop", joinIPs(shared), port, cloudPort), ""
	case sameName || len(shared) > 0:
		what := "it resolves to the cloud's address " + joinIPs(shared)
		if len(shared) == 0 {
			what = "it is the cloud's own name " + cloud.Host
		}
		return Warn, fmt.Sprintf("%s, on port %s (the cloud's is %s): if that port leads to the cloud, even by a redirect, requests loop", what, port, cloudPort),
			fmt.Sprintf("check that %s:%s is the application and not the cloud; if it is the cloud, %s", host, port, fix)
	}
	if len(ips) == 0 {
		return Pass, "", "" // not resolved here: only the name could be compared
	}
	return Pass, fmt.Sprintf("none of its addresses is the cloud's (%s)", joinIPs(cloudIPs)), ""
}

func allLoopback(ips []netip.Addr) bool {
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// loadResult is one GET of an internal URL.
type loadResult struct {
	code      int
	status    string // "200 OK"
	edge      bool   // the answer carries the edge's request id header
	took      time.Duration
	connected bool // a TCP connection was made
	err       error
}

// load GETs rawURL from this machine the way the connector's backend
// transport does (directly or through the application's backend proxy,
// system TLS roots, redirects not followed), dialing the addresses host
// resolved to, within limit.
func load(ctx context.Context, rawURL, host string, ips []netip.Addr, proxy *url.URL, limit time.Duration) loadResult {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var connected atomic.Bool
	var d net.Dialer
	tr := &http.Transport{
		Proxy: nil,
		// Dials are bounded by this load's context, whatever context the
		// transport passes.
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			h, p, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			targets := []string{addr}
			if strings.EqualFold(h, host) && len(ips) > 0 {
				targets = targets[:0]
				for _, ip := range ips {
					targets = append(targets, net.JoinHostPort(ip.String(), p))
				}
			}
			var last error
			for _, t := range targets {
				c, err := d.DialContext(ctx, "tcp", t)
				if err == nil {
					connected.Store(true)
					return c, nil
				}
				last = err
				if ctx.Err() != nil {
					break
				}
			}
			return nil, last
		},
		DisableKeepAlives:  true,
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	if proxy != nil {
		tr.Proxy = http.ProxyURL(proxy)
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var res loadResult
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		res.err = err
		return res
	}
	req.Header.Set("User-Agent", "sallyport-connector-doctor")
	start := time.Now()
	resp, err := client.Do(req)
	res.took = time.Since(start)
	res.connected = connected.Load()
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		res.err = err
		return res
	}
	res.code, res.status = resp.StatusCode, resp.Status
	res.edge = resp.Header.Get(tunnel.HeaderRequestID) != ""
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return res
}

// loadFailed explains a failed load with the advice the connector gives
// for the same failure when it serves a request (its backendProblem).
func loadFailed(a tunnel.AppConfig, tname, hostport string, res loadResult, limit time.Duration, byApp bool) (status, found, advice string) {
	err := res.err
	var opErr *net.OpError
	if a.BackendProxy != "" && errors.As(err, &opErr) && opErr.Op == "proxyconnect" {
		return Fail, fmt.Sprintf("The backend proxy %s of application '%s' cannot be reached from this machine (%v)", a.BackendProxy, a.Name, opErr.Err),
			fmt.Sprintf("check that the backend proxy runs and that this machine reaches it, or change it with 'sallyport admin app update %s --backend-proxy URL' ('' to remove it)", a.Name)
	}
	via := ""
	if a.BackendProxy != "" {
		via = " through the backend proxy " + a.BackendProxy
	}
	var dnsErr *net.DNSError
	kind := neterr.Classify(err)
	timeout := kind == neterr.Timeout
	switch {
	case kind == neterr.DNS && errors.As(err, &dnsErr):
		return Fail, fmt.Sprintf("The internal host '%s' of application '%s' does not resolve on this machine (%s)", dnsErr.Name, a.Name, dnsErr.Err),
			fmt.Sprintf("check the internal URL of application '%s' and that this machine resolves %s (DNS server or hosts file)", a.Name, dnsErr.Name)
	case kind == neterr.Refused:
		return Fail, fmt.Sprintf("The internal application '%s' at %s refused the connection from this machine", a.Name, a.InternalURL),
			fmt.Sprintf("check that the application is running and listening on %s, and that no firewall blocks this machine", hostport)
	case timeout && !res.connected && a.BackendProxy != "":
		return Fail, fmt.Sprintf("The backend proxy %s of application '%s' did not accept a connection from this machine within %s", a.BackendProxy, a.Name, round(limit)),
			fmt.Sprintf("check the network path from this machine to the backend proxy (routing, firewall), or change it with 'sallyport admin app update %s --backend-proxy URL'", a.Name)
	case timeout && !res.connected:
		return Fail, fmt.Sprintf("The internal application '%s' at %s did not accept a connection from this machine within %s", a.Name, a.InternalURL, round(limit)),
			fmt.Sprintf("check the network path from this machine to %s (routing, firewall)", hostport)
	case timeout && byApp:
		return Fail, fmt.Sprintf("The internal application '%s' at %s did not answer within its backend timeout of %s: users get a gateway timeout", a.Name, a.InternalURL, timeoutDesc(a.Timeout, tname)),
			slowAdvice(a.Name, tname)
	case timeout:
		return Warn, fmt.Sprintf("The internal application '%s' at %s did not answer within the doctor's step timeout of %s (its backend timeout is %s)", a.Name, a.InternalURL, round(limit), timeoutDesc(a.Timeout, tname)),
			fmt.Sprintf("load %s from this machine to see how long it takes, or run the doctor again with a longer --timeout; if it takes more than half of its backend timeout, %s", a.InternalURL, slowAdvice(a.Name, tname))
	case kind.IsTLS():
		return Fail, fmt.Sprintf("The TLS handshake with the internal application '%s' at %s failed on this machine (%v)", a.Name, a.InternalURL, err),
			fmt.Sprintf("check the TLS certificate of %s, or publish the application with an http:// internal URL", hostport)
	}
	return Fail, fmt.Sprintf("The request to the internal application '%s' at %s%s failed on this machine (%v)", a.Name, a.InternalURL, via, err),
		fmt.Sprintf("check that the application at %s works when loaded from this machine%s", a.InternalURL, via)
}
