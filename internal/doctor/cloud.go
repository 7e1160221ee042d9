package doctor

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Thresholds.
const (
	// ExpiryWarning: a certificate with less left warns. The running
	// connector renews once a third of its life (30 of 90 days) remains,
	// so this little left means renewals have been failing.
	ExpiryWarning = 14 * 24 * time.Hour
	// ClockWarn and ClockFail bound the difference with the cloud's clock.
	ClockWarn = 30 * time.Second
	ClockFail = 5 * time.Minute
)

const timeFormat = time.RFC3339

// ---------------------------------------------------------------------------
// state

func (r *runner) checkState(_ context.Context, s *Step) {
	dir := r.o.Dir
	s.Checked = fmt.Sprintf("the state directory %s: the trust settings file %s, the certificate and private key it names (readable, matching each other, the key not readable by other users), the certificate's thumbprint against %s, the pinned cloud CA %s, and the certificate's validity on this machine's clock",
		dir, statedir.TrustFile, statedir.TrustFile, statedir.CloudCAFile)
	st, err := statedir.Load(dir)
	if err != nil {
		r.loadPartial()
		msg, step := explain(err)
		if p, ok := problem.As(err); ok {
			r.stateCode = p.Code
		}
		s.set(Fail, msg, step)
		return
	}
	r.st, r.trust, r.target, r.haveTarget, r.ca = st, &st.Trust, st.Target, true, st.CloudCA
	r.setProxy(st.Target.Proxy)
	r.rep.Connector, r.rep.Cloud = st.Trust.ConnectorID, st.Target.URL
	now := r.o.Now()
	leaf := st.Leaf
	if err := st.CheckValidity(now); err != nil {
		msg, step := explain(err)
		if p, ok := problem.As(err); ok {
			r.stateCode = p.Code
			if p.Code == "trust_expired" {
				msg = fmt.Sprintf("The connector's trust certificate (thumbprint %s) expired on %s, %s ago by this machine's clock (%s): the connector refuses to run and records event 1000, '%s'",
					st.Trust.Thumbprint, leaf.NotAfter.UTC().Format(timeFormat), days(now.Sub(leaf.NotAfter)), now.UTC().Format(timeFormat),
					strings.SplitN(statedir.ExpiredMessage, ". ", 2)[0])
			}
		}
		s.set(Fail, msg, step)
		return
	}
	left := leaf.NotAfter.Sub(now)
	keyNote := "the private key is readable only by its owner"
	if runtime.GOOS == "windows" {
		keyNote = "the private key is readable (its permissions are not checked on Windows)"
	}
	found := fmt.Sprintf("connector %s of %s (group '%s'); the certificate's thumbprint %s matches %s; %s; the certificate is valid until %s (%s left)",
		st.Trust.ConnectorID, st.Trust.Tenant, st.Trust.Group, st.Trust.Thumbprint, statedir.TrustFile, keyNote, leaf.NotAfter.UTC().Format(timeFormat), days(left))
	if left < ExpiryWarning {
		s.set(Warn, found+"; less than "+days(ExpiryWarning)+" left, so renewals have been failing",
			fmt.Sprintf("run 'sallyport connector renew --dir %s --force' now, and look for event 1101 (renewal failed) with 'sallyport connector events --dir %s'; once it expires the connector stops (event 1000) and must be registered again with 'sallyport connector register --dir %s'", dir, dir, dir))
		return
	}
	s.set(Pass, found, "")
}

// loadPartial reads what it can of a state directory statedir.Load refused,
// so that the network steps can still run: the cloud's URL from
// trust.json and the pinned cloud CA.
func (r *runner) loadPartial() {
	raw, err := os.ReadFile(filepath.Join(r.o.Dir, statedir.TrustFile))
	if err != nil {
		return
	}
	var tr statedir.Trust
	if json.Unmarshal(raw, &tr) != nil {
		return
	}
	r.trust = &tr
	r.rep.Connector = tr.ConnectorID
	if t, err := cloudlink.ParseURL(tr.CloudURL); err == nil {
		r.target, r.haveTarget = t, true
		r.rep.Cloud = t.URL
		if p, err := statedir.EffectiveProxy(r.o.Dir, ""); err == nil {
			r.target.Proxy = p
			r.setProxy(p)
		}
	}
	if pemBytes, err := os.ReadFile(filepath.Join(r.o.Dir, statedir.CloudCAFile)); err == nil {
		if b, _ := pem.Decode(pemBytes); b != nil {
			if ca, err := x509.ParseCertificate(b.Bytes); err == nil {
				r.ca = ca
			}
		}
	}
}

// human says a duration for people: in days beyond two days.
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return days(d)
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	}
	return round(d).String()
}

// setProxy notes the outbound proxy when it applies to the cloud's host.
func (r *runner) setProxy(p *cloudlink.Proxy) {
	if p != nil && p.Applies(r.target.Host) {
		r.proxy = p
	}
}

// viaProxy describes the proxy for messages: "the proxy URL (from SOURCE)".
func (r *runner) viaProxy() string {
	src := ""
	if r.proxy.Source != "" {
		src = " (from " + r.proxy.Source + ")"
	}
	return "the proxy " + r.proxy.String() + src
}

// days says a duration in days (or hours, under two days).
func days(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < 48*time.Hour {
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// ---------------------------------------------------------------------------
// dns

func (r *runner) checkDNS(ctx context.Context, s *Step) {
	t := r.target
	s.Checked = fmt.Sprintf("this machine resolves the cloud's name %s (from cloud_url in %s)", t.Host, statedir.TrustFile)
	if ip, err := netip.ParseAddr(t.Host); err == nil {
		r.cloudIPs = []netip.Addr{ip.Unmap()}
		s.set(Pass, fmt.Sprintf("the cloud's address %s is an IP address: there is nothing to resolve", t.Host), "")
		return
	}
	if cloudlink.IsLoopbackName(t.Host) {
		r.cloudIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		s.set(Pass, fmt.Sprintf("%s is a name under .localhost, which Sallyport resolves to 127.0.0.1 itself (RFC 6761, as browsers and curl do)", t.Host), "")
		return
	}
	addrs, err := r.o.Resolver.LookupHost(ctx, t.Host)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		why := err.Error()
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			why = dnsErr.Err
		}
		if isTimeout(err) {
			why = fmt.Sprintf("no answer within %s", r.o.StepTimeout)
		}
		if r.proxy != nil {
			s.set(Pass, fmt.Sprintf("this machine does not resolve %s (%s), which is fine: the connector reaches the cloud through %s, which resolves the name itself", t.Host, why, r.viaProxy()), "")
			return
		}
		s.set(Fail, fmt.Sprintf("The cloud's name %s does not resolve on this machine (%s)", t.Host, why),
			fmt.Sprintf("check the cloud's name (cloud_url in %s) and this machine's DNS servers or hosts file; the connector must reach %s",
				filepath.Join(r.o.Dir, statedir.TrustFile), t.Addr))
		return
	}
	r.cloudIPs = parseIPs(addrs)
	s.set(Pass, fmt.Sprintf("%s resolves to %s", t.Host, strings.Join(addrs, ", ")), "")
}

func parseIPs(addrs []string) []netip.Addr {
	var ips []netip.Addr
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil {
			ips = append(ips, ip.WithZone("").Unmap())
		}
	}
	return ips
}

// ---------------------------------------------------------------------------
// tcp

// cloudPath is one way to the cloud: directly, or through the outbound
// proxy (HTTP CONNECT). Each has its own TCP step; the TLS and later steps
// use the one the connector uses (used), once its TCP step passed.
type cloudPath struct {
	id, title string
	needs     []string // steps the path depends on ("dns" for the direct path)
	via       string   // how it reaches the cloud, for messages
	used      bool     // the connector reaches the cloud this way
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
}

// paths lists the ways to the cloud to check: directly (a port test
// like telnet's) and, when a proxy applies to the cloud's host, through it
// which is then the way the connector uses. Through
// the proxy, the cloud's name is resolved by the proxy: that path does not
// depend on the dns step.
func (r *runner) paths() []cloudPath {
	direct := cloudPath{id: "tcp", title: "TCP connection to the cloud port", needs: []string{"dns"}, via: "directly", used: r.proxy == nil, dial: r.o.Dial}
	if r.proxy == nil {
		return []cloudPath{direct}
	}
	proxied := cloudPath{id: "tcp-proxy", title: "TCP connection to the cloud through the proxy", via: "through " + r.viaProxy(), used: true,
		dial: (&cloudlink.Dialer{Proxy: r.proxy}).DialContext}
	return []cloudPath{direct, proxied}
}

func (r *runner) checkTCP(ctx context.Context, s *Step, p cloudPath) {
	t := r.target
	s.Checked = fmt.Sprintf("a TCP connection from this machine to %s, %s", t.Addr, p.via)
	if p.id == "tcp-proxy" {
		s.Checked = fmt.Sprintf("an HTTP CONNECT tunnel to %s %s, the way the connector reaches the cloud (the connector uses the site's proxy)", t.Addr, p.via)
	}
	start := time.Now()
	conn, err := p.dial(ctx, "tcp", t.Addr)
	took := time.Since(start)
	if err != nil {
		fw := fmt.Sprintf("allow outbound TCP from this machine to %s in the firewall, and check that the cloud service is running", t.Addr)
		var pe *cloudlink.ProxyError
		msg, step := "", ""
		switch {
		case errors.As(err, &pe):
			msg, step = explain(cloudlink.Explain(err, t))
		case isTimeout(err):
			msg, step = fmt.Sprintf("Nothing answered at %s within %s: a firewall drops the packets, or the cloud's machine is down", t.Addr, round(took)), fw
		default:
			msg, step = explain(cloudlink.Explain(err, t))
		}
		switch {
		case !p.used:
			// Direct, while the connector goes through the proxy.
			s.set(Pass, fmt.Sprintf("no direct connection (%s), which is fine: the connector reaches the cloud through %s", strings.TrimSuffix(msg, "."), r.viaProxy()), "")
		case r.proxy == nil:
			s.set(Fail, msg, step+"; if this network reaches the internet only through a proxy, configure it with 'sallyport connector proxy set URL'")
		default:
			if d := r.find("tcp"); d != nil && strings.HasPrefix(d.Found, "connected") {
				step += fmt.Sprintf("; this machine also reaches the cloud directly, so 'sallyport connector proxy clear --dir %s' (and unsetting HTTPS_PROXY) is another way", r.o.Dir)
			}
			s.set(Fail, msg, step)
		}
		return
	}
	remote := conn.RemoteAddr().String()
	conn.Close()
	if p.used {
		r.path = &p
	}
	if p.id == "tcp-proxy" {
		s.set(Pass, fmt.Sprintf("the proxy opened a tunnel to %s in %s", t.Addr, round(took)), "")
		return
	}
	found := fmt.Sprintf("connected to %s (%s) in %s", t.Addr, remote, round(took))
	if !p.used {
		found += fmt.Sprintf("; the connector itself goes through %s", r.viaProxy())
	}
	s.set(Pass, found, "")
}

// ---------------------------------------------------------------------------
// tls

func (r *runner) checkTLS(ctx context.Context, s *Step) {
	t := r.target
	s.Checked = fmt.Sprintf("a TLS handshake with %s, %s, trusting only the pinned cloud CA '%s': TLS version (1.2 at least), the certificate's issuer (another issuer means TLS inspection), its name against %s, and the Sallyport control protocol (ALPN %s)",
		t.Addr, r.path.via, issuerName(r.ca), t.Host, tunnel.ControlALPN)
	raw, err := r.path.dial(ctx, "tcp", t.Addr)
	if err != nil {
		msg, step := explain(cloudlink.Explain(err, t))
		s.set(Fail, msg, step)
		return
	}
	defer raw.Close()
	cfg := cloudlink.TLSConfig(t.Host, r.ca, tunnel.ControlALPN)
	var peer []*x509.Certificate
	verify := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		peer = cs.PeerCertificates
		return verify(cs)
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		r.tlsFailed(ctx, s, err, peer)
		return
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	leaf := cs.PeerCertificates[0]
	version := tls.VersionName(cs.Version)
	if cs.NegotiatedProtocol != tunnel.ControlALPN {
		s.set(Fail, fmt.Sprintf("The server at %s completed a %s handshake with a certificate of the pinned cloud CA but does not speak the Sallyport connector protocol (no ALPN %s)", t.Addr, version, tunnel.ControlALPN),
			fmt.Sprintf("check that %s is the Sallyport cloud and that no proxy in between strips TLS ALPN", t.Addr))
		return
	}
	found := fmt.Sprintf("%s negotiated; the certificate for %s was issued by '%s', the pinned cloud CA (%s), so nothing inspects TLS on the way; it is valid until %s; the cloud speaks %s",
		version, t.Host, issuerName(leaf), fingerprint(r.ca), leaf.NotAfter.UTC().Format(timeFormat), cs.NegotiatedProtocol)
	if cs.Version < tls.VersionTLS13 {
		found += " (TLS 1.3 is preferred, 1.2 is enough)"
	}
	s.set(Pass, found, "")
}

// tlsFailed explains a failed handshake: an old TLS version (named), TLS
// inspection (the issuer named), a certificate for another name, or the
// cloudlink explanation.
func (r *runner) tlsFailed(ctx context.Context, s *Step, err error, peer []*x509.Certificate) {
	t := r.target
	if len(peer) > 0 {
		leaf := peer[0]
		fromCA := leaf.CheckSignatureFrom(r.ca) == nil
		if fromCA && leaf.VerifyHostname(t.Host) != nil {
			names := strings.Join(leaf.DNSNames, ", ")
			if names == "" {
				names = "no DNS name"
			}
			s.set(Fail, fmt.Sprintf("The cloud's certificate, issued by the pinned cloud CA, is for %s, not for %s", names, t.Host),
				fmt.Sprintf("reach the cloud by the name it was set up with ('sallyport cloud init --name'): register again with 'sallyport connector register --cloud https://NAME:PORT --dir %s', NAME one of %s", r.o.Dir, names))
			return
		}
		if fromCA && time.Now().After(leaf.NotAfter) {
			s.set(Fail, fmt.Sprintf("The cloud's certificate for %s expired on %s", t.Host, leaf.NotAfter.UTC().Format(timeFormat)),
				"ask the cloud's operator to restart 'sallyport cloud serve', which issues a new certificate, and check this machine's clock")
			return
		}
	}
	msg, step := explain(cloudlink.ExplainDial(ctx, err, t))
	s.set(Fail, msg, step)
}

func issuerName(c *x509.Certificate) string {
	if c == nil {
		return "unknown"
	}
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// fingerprint is the CA fingerprint as 'sallyport cloud init' prints it.
func fingerprint(c *x509.Certificate) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(c.Raw))
}

// ---------------------------------------------------------------------------
// registration

func (r *runner) checkRegistration(ctx context.Context, s *Step) {
	tr := r.st.Trust
	s.Checked = fmt.Sprintf("the cloud's control API, called with this connector's certificate: the cloud knows connector %s (not revoked or deleted), its status there, and its group against the group in %s ('%s')",
		tr.ConnectorID, statedir.TrustFile, tr.Group)
	before := r.o.Now()
	start := time.Now()
	st, err := cloudlink.FetchStatus(ctx, r.st, r.path.dial)
	rtt := time.Since(start)
	if err != nil {
		p, ok := problem.As(err)
		switch {
		case ok && (p.Code == "connector_revoked" || p.Code == "connector_deleted" || p.Code == "connector_unknown" || p.Code == "trust_expired" || p.Code == "clock_skew"):
			s.set(Fail, "The cloud refuses this connector: "+p.Message, p.Step)
		case isTimeout(err) && ctx.Err() != nil:
			s.set(Fail, fmt.Sprintf("The cloud did not answer the status call within %s", r.o.StepTimeout),
				fmt.Sprintf("check the cloud service's load and log; the network path to %s works (the steps above)", r.target.Addr))
		default:
			msg, step := explain(err)
			if step == "" {
				step = "check the network path to the cloud (the steps above) and that the cloud runs the same Sallyport version"
			}
			s.set(Fail, msg, step)
		}
		return
	}
	if r.o.AdjustStatus != nil {
		r.o.AdjustStatus(&st)
	}
	r.status, r.localMid, r.halfRTT = &st, before.Add(rtt/2), rtt/2

	var f findings
	f.add(Pass, fmt.Sprintf("the cloud knows connector %s in tenant %s", st.ConnectorID, st.Tenant), "")
	switch st.Status {
	case "active":
		f.add(Pass, "its status is active", "")
		r.instances(&f)
	default:
		found, advice := r.notActive(st.Status)
		f.add(Warn, found, advice)
	}
	if st.Group != tr.Group {
		f.add(Warn, fmt.Sprintf("it is in group '%s' at the cloud but %s says '%s': it was moved", st.Group, statedir.TrustFile, tr.Group),
			fmt.Sprintf("nothing to do if an administrator moved it on purpose (it serves the applications of '%s'); otherwise move it back with 'sallyport admin connector move %s --group %s'", st.Group, tr.ConnectorID, shellQuote(tr.Group)))
	} else {
		f.add(Pass, fmt.Sprintf("its group is '%s', as in %s", st.Group, statedir.TrustFile), "")
	}
	if st.CertSerial != "" && st.CertSerial != tr.Serial {
		f.add(Warn, fmt.Sprintf("the cloud holds certificate %s as current, this machine uses %s (a renewal was interrupted)", st.CertSerial, tr.Serial),
			fmt.Sprintf("run 'sallyport connector renew --dir %s --force'", r.o.Dir))
	}
	f.to(s)
}

// instances adds what status.json says of the cloud's instances, when
// the cloud runs several (docs/scale-out.md): a tunnel to each is a pass.
func (r *runner) instances(f *findings) {
	rs, fresh := statedir.ReadRunStatus(r.o.Dir, r.o.Now())
	if !fresh || rs.Listed == 0 {
		return
	}
	if missing := rs.InstancesMissing(); len(missing) > 0 {
		f.add(Warn, fmt.Sprintf("the connector running on this machine has %s; none to %s", rs.InstancesLine(), strings.Join(missing, ", ")),
			fmt.Sprintf("check that the advertise addresses of those instances are reachable from this machine (firewall, NO_PROXY); event 1208 in 'sallyport connector events --dir %s --level warning' names the cause", r.o.Dir))
		return
	}
	f.add(Pass, "the connector running on this machine has "+rs.InstancesLine(), "")
}

// notActive explains an inactive connector with what status.json says.
func (r *runner) notActive(status string) (found, advice string) {
	found = fmt.Sprintf("its status at the cloud is %s: the cloud has no tunnel from it and has not seen one recently", status)
	rs, fresh := statedir.ReadRunStatus(r.o.Dir, r.o.Now())
	switch {
	case !fresh:
		return found + "; the connector does not run on this machine", fmt.Sprintf("start it: 'sallyport connector run --dir %s' (or its service)", r.o.Dir)
	case rs.TunnelsUp == 0 && rs.LastError != "":
		return found + "; it runs on this machine but has no tunnel up: " + strings.TrimSuffix(rs.LastError, "."),
			fmt.Sprintf("see 'sallyport connector events --dir %s --level error'", r.o.Dir)
	case rs.TunnelsUp == 0:
		return found + "; it runs on this machine and is connecting", "run the doctor again in a few seconds"
	default:
		return found + fmt.Sprintf("; yet it runs on this machine with %d tunnel(s) up", rs.TunnelsUp),
			"check that this connector and the doctor reach the same cloud (cloud_url in " + statedir.TrustFile + ")"
	}
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " '\"\\$`!*?&;|<>()") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ---------------------------------------------------------------------------
// clock

func (r *runner) checkClock(_ context.Context, s *Step) {
	st := r.status
	s.Checked = fmt.Sprintf("this machine's clock against the cloud's, read in the status call (warn beyond %s, fail beyond %s)", ClockWarn, ClockFail)
	if st.CloudTime.IsZero() {
		s.set(Skip, "Not checked: the cloud did not send its time", "")
		return
	}
	off := r.localMid.Sub(st.CloudTime) // > 0: this machine is ahead
	abs, dir := off, "ahead of"
	if off < 0 {
		abs, dir = -off, "behind"
	}
	found := fmt.Sprintf("this machine's clock said %s when the cloud's said %s: this machine is %s %s the cloud (±%s for the round trip)",
		r.localMid.UTC().Format(timeFormat), st.CloudTime.UTC().Format(timeFormat), human(abs), dir, round(r.halfRTT))
	fix := "set this machine's clock right and keep it so with NTP ('timedatectl set-ntp true' on Linux, 'w32tm /resync' on Windows)"
	switch {
	case abs > ClockFail:
		s.set(Fail, found, fix+fmt.Sprintf("; a clock more than %s off makes certificates look not yet valid or expired", ClockFail))
		r.blameClock(abs, dir)
	case abs > ClockWarn:
		s.set(Warn, found, fix+fmt.Sprintf(" before the difference grows: beyond %s certificates look not yet valid or expired", ClockFail))
	default:
		s.set(Pass, found, "")
	}
}

// blameClock amends a state step that failed on the certificate's
// validity when this machine's clock, not the certificate, is wrong.
func (r *runner) blameClock(abs time.Duration, dir string) {
	if r.stateCode != "trust_expired" && r.stateCode != "clock_skew" {
		return
	}
	if s := r.find("state"); s != nil && s.Status == Fail {
		s.Advice = fmt.Sprintf("first set this machine's clock right: it is %s %s the cloud's (see the clock step), and the certificate is judged by it; then run the doctor again, and only if the step still fails: %s", human(abs), dir, s.Advice)
	}
}

// ---------------------------------------------------------------------------
// group

func (r *runner) checkGroup(_ context.Context, s *Step) {
	st := r.status
	s.Checked = fmt.Sprintf("the connector group of this connector at the cloud and the applications assigned to it")
	if len(st.Apps) == 0 {
		s.set(Warn, fmt.Sprintf("the connector group '%s' of %s has no application: this connector serves nothing", st.Group, st.Tenant),
			fmt.Sprintf("assign an application to the group: 'sallyport admin app create NAME --internal-url URL --group %s', or move one with 'sallyport admin app update NAME --group %s'", shellQuote(st.Group), shellQuote(st.Group)))
		return
	}
	var names []string
	for _, a := range st.Apps {
		if a.IsNetwork() {
			names = append(names, fmt.Sprintf("%s (%s → %s)", a.Name, a.Type, strings.Join(a.Segments, ", ")))
			continue
		}
		names = append(names, fmt.Sprintf("%s (%s → %s)", a.Name, a.ExternalHost, a.InternalURL))
	}
	noun := "applications"
	if len(names) == 1 {
		noun = "application"
	}
	s.set(Pass, fmt.Sprintf("the connector group '%s' of %s has %d %s: %s", st.Group, st.Tenant, len(names), noun, strings.Join(names, ", ")), "")
}
