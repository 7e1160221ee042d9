package clouddoctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// Step statuses (as internal/doctor's).
const (
	Pass = "pass"
	Warn = "warn"
	Fail = "fail"
	Skip = "skip"
)

// Verdicts of a Report.
const (
	Healthy  = "healthy"
	Warnings = "warnings"
	Failed   = "failed"
)

// ExpiringWithin is how close to its expiry a certificate warns: as the
// admin center's Overview.
const ExpiringWithin = 14 * 24 * time.Hour

// DefaultStepTimeout bounds each step when Options.StepTimeout is zero.
const DefaultStepTimeout = 5 * time.Second

// Step is one check. The JSON field names are those of the connector's
// doctor (docs/doctor.md).
type Step struct {
	// ID names the step: "settings", "store", "tls-port", "http-port",
	// "cert cloud-ca", "cert edge", "cert app HOST", "cert acme HOST",
	// "acme-account", "acme-orders".
	ID         string `json:"id"`
	Title      string `json:"title"`
	Status     string `json:"status"` // pass, warn, fail or skip
	Checked    string `json:"checked"`
	Found      string `json:"found"`
	Advice     string `json:"advice"`
	DurationMS int64  `json:"duration_ms"`
}

// Report is the outcome of a run.
type Report struct {
	Cloud   string    `json:"cloud"`    // the cloud's name; empty when the settings are unreadable
	DataDir string    `json:"data_dir"` // the data directory checked
	Steps   []Step    `json:"steps"`
	Verdict string    `json:"verdict"` // healthy, warnings or failed
	Started time.Time `json:"started"`
}

// Options are the settings of 'cloud serve' the checks need, as its
// flags and configuration file give them.
type Options struct {
	DataDir           string
	Store             string // in place of cloud.json's, as cloud serve --store
	StorePasswordFile string
	Listen            string // cloud serve --listen (default :443)
	HTTPListen        string // --http-listen (default :80 with ACME on)
	EdgeCertFile      string
	ACMEEmail         string // ACME is on when set
	ACMECA            string // default: Let's Encrypt's production directory
	StepTimeout       time.Duration
	Now               func() time.Time
	// Dial connects to the cloud's ports (default net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

type runner struct {
	ctx      context.Context
	o        Options
	rep      Report
	settings *datadir.Settings
	st       store.Store
	caPool   *x509.CertPool
}

// Run walks the checks and returns the report; a failure is a step's.
func Run(ctx context.Context, o Options) Report {
	if o.Listen == "" {
		o.Listen = ":443"
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	r := &runner{ctx: ctx, o: o, rep: Report{DataDir: o.DataDir, Steps: []Step{}, Started: o.Now().UTC()}}
	defer func() {
		if r.st != nil {
			r.st.Close()
		}
	}()
	r.do("settings", "Data directory and settings", nil, r.checkSettings)
	r.do("store", "The store, reachable and its schema current", r.needs("settings"), r.checkStore)
	r.do("tls-port", "The TLS port (--listen) answers as this cloud", r.needs("settings"), r.checkTLSPort)
	if o.ACMEEmail != "" {
		r.do("http-port", "The plain HTTP port (--http-listen) for HTTP-01 and the redirect", nil, r.checkHTTPPort)
	}
	r.checkCertificates()
	if o.ACMEEmail != "" {
		r.do("acme-account", "The ACME account at the CA", nil, r.checkACMEAccount)
		r.do("acme-orders", "ACME orders that failed in the last 24 hours", nil, r.checkACMEOrders)
	}
	r.rep.Verdict = verdict(r.rep.Steps)
	return r.rep
}

func (r *runner) do(id, title string, skip func() string, check func(ctx context.Context, s *Step)) {
	s := Step{ID: id, Title: title}
	start := time.Now()
	if why := r.skipWhy(skip); why != "" {
		s.Status, s.Found = Skip, why
		r.rep.Steps = append(r.rep.Steps, s)
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.StepTimeout)
	check(ctx, &s)
	cancel()
	if s.Status == "" {
		s.Status = Pass
	}
	s.DurationMS = time.Since(start).Milliseconds()
	r.rep.Steps = append(r.rep.Steps, s)
}

func (r *runner) skipWhy(skip func() string) string {
	if r.ctx.Err() != nil {
		return "Not checked: the doctor was interrupted"
	}
	if skip != nil {
		return skip()
	}
	return ""
}

// needs skips a step unless the given steps passed or only warned.
func (r *runner) needs(ids ...string) func() string {
	return func() string {
		for _, id := range ids {
			for _, s := range r.rep.Steps {
				if s.ID == id && (s.Status == Fail || s.Status == Skip) {
					return fmt.Sprintf("Not checked because the %s step did not pass", id)
				}
			}
		}
		return ""
	}
}

func (s *Step) set(status, found, advice string) { s.Status, s.Found, s.Advice = status, found, advice }

// explain is err's message and step.
func explain(err error) (string, string) {
	if p, ok := problem.As(err); ok {
		return p.Message, p.Step
	}
	return err.Error(), ""
}

func (r *runner) checkSettings(_ context.Context, s *Step) {
	s.Checked = "the data directory " + r.o.DataDir + " (" + datadir.SettingsFile + ", " + datadir.CACertFile + ")"
	st, err := datadir.LoadSettings(r.o.DataDir)
	if err != nil {
		msg, step := explain(err)
		s.set(Fail, msg, step)
		return
	}
	if r.o.Store != "" {
		if err := datadir.CheckStoreURL(r.o.Store); err != nil {
			msg, step := explain(err)
			s.set(Fail, msg, step)
			return
		}
		st.Store = r.o.Store
		if st.Store == "sqlite:" {
			st.Store = ""
		}
	}
	if r.o.StorePasswordFile != "" {
		st.StorePasswordFile = r.o.StorePasswordFile
	}
	r.settings, r.rep.Cloud = &st, st.Name
	s.set(Pass, "the cloud "+st.Name, "")
}

func (r *runner) checkStore(ctx context.Context, s *Step) {
	where := "sqlite: " + filepath.Join(r.o.DataDir, "store.db")
	if r.settings.Store != "" {
		where = r.settings.Store
	}
	s.Checked = "opening the store " + where + " as 'cloud serve' does (its migrations applied) and reading its tenants"
	done := make(chan error, 1)
	go func() {
		st, err := datadir.OpenStore(r.o.DataDir, *r.settings)
		if err == nil {
			r.st = st
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		s.set(Fail, fmt.Sprintf("The store %s did not answer within %s", where, r.o.StepTimeout),
			"check that the database server is running and reachable from this machine (address, firewall, password)")
		<-done // the open ends with its own timeouts; its store, if any, is closed by Run
		return
	}
	if err != nil {
		msg, step := explain(err)
		s.set(Fail, msg, step)
		return
	}
	ts, err := r.st.ListTenants(ctx)
	if err != nil {
		s.set(Fail, fmt.Sprintf("The store %s opened but cannot be read (%v)", where, err), "check the database server's log and the store's permissions")
		return
	}
	s.set(Pass, fmt.Sprintf("the store answers, its schema is current, tenants: %d", len(ts)), "")
}

// loopback is where the doctor reaches a listen address: the address
// itself, or this machine's loopback when it listens on all addresses.
func loopback(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// dialPort connects to a listen address; on failure it says that the
// service is not running there.
func (r *runner) dialPort(ctx context.Context, s *Step, flag, addr string) net.Conn {
	target, err := loopback(addr)
	if err != nil {
		s.set(Fail, fmt.Sprintf("The address %s of %s is not HOST:PORT", addr, flag), "give "+flag+" as HOST:PORT or :PORT, as 'cloud serve' has it")
		return nil
	}
	s.Checked = fmt.Sprintf("a TCP connection to %s (%s %s)", target, flag, addr)
	conn, err := r.o.Dial(ctx, "tcp", target)
	if err != nil {
		s.set(Fail, fmt.Sprintf("Nothing answers on %s (%v), so 'cloud serve' is not running or listens elsewhere", target, err), "start the cloud ('systemctl start sallyport-cloud' or 'sallyport cloud serve'), and give the doctor the same --listen, --http-listen and --config as the service")
		return nil
	}
	return conn
}

func (r *runner) checkTLSPort(ctx context.Context, s *Step) {
	conn := r.dialPort(ctx, s, "--listen", r.o.Listen)
	if conn == nil {
		return
	}
	defer conn.Close()
	pool, err := r.cloudCAPool()
	if err != nil {
		s.set(Fail, err.Error(), "restore "+datadir.CACertFile+" from the data directory's backup")
		return
	}
	tc := tls.Client(conn, &tls.Config{ServerName: r.settings.Name, RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err := tc.HandshakeContext(ctx); err != nil {
		s.set(Fail, fmt.Sprintf("Something answers on %s but not as this cloud: the TLS handshake for %s failed (%v)", conn.RemoteAddr(), r.settings.Name, err),
			"check that this port is 'cloud serve' of this data directory, not another program or a proxy that ends TLS")
		return
	}
	leaf := tc.ConnectionState().PeerCertificates[0]
	s.set(Pass, fmt.Sprintf("the cloud answers on %s with its certificate for %s, valid until %s", conn.RemoteAddr(), r.settings.Name, leaf.NotAfter.UTC().Format("2006-01-02")), "")
}

func (r *runner) checkHTTPPort(ctx context.Context, s *Step) {
	addr := r.o.HTTPListen
	if addr == "" {
		addr = ":80"
	}
	conn := r.dialPort(ctx, s, "--http-listen", addr)
	if conn == nil {
		s.Advice += "; the CA's HTTP-01 validation and the redirect to https need it (TLS-ALPN-01 on the TLS port still works)"
		return
	}
	conn.Close()
	s.set(Pass, "the plain HTTP port answers on "+conn.RemoteAddr().String()+"; whether it is reachable from the internet only the CA can tell (see events 2986)", "")
}

func (r *runner) cloudCAPool() (*x509.CertPool, error) {
	if r.caPool != nil {
		return r.caPool, nil
	}
	leaf, err := r.cloudCA()
	if err != nil {
		return nil, err
	}
	r.caPool = x509.NewCertPool()
	r.caPool.AddCert(leaf)
	return r.caPool, nil
}

func (r *runner) cloudCA() (*x509.Certificate, error) {
	path := filepath.Join(r.o.DataDir, datadir.CACertFile)
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("The cloud CA's certificate %s cannot be read (%v)", path, errors.Unwrap(err))
	}
	certs, err := parseChain(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("The cloud CA's certificate %s does not parse", path)
	}
	return certs[0], nil
}

func verdict(steps []Step) string {
	v := Healthy
	for _, s := range steps {
		switch s.Status {
		case Fail:
			return Failed
		case Warn:
			v = Warnings
		}
	}
	return v
}

// IDs returns the ids of the steps with the given status, in order.
func (rep Report) IDs(status string) []string {
	ids := []string{}
	for _, s := range rep.Steps {
		if s.Status == status {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// Err is nil when no step failed, else one sentence naming the failed
// steps; step is where the advice is to be read.
func (rep Report) Err(step string) error {
	failed := rep.IDs(Fail)
	if len(failed) == 0 {
		return nil
	}
	return problem.Newf(400, "doctor_failed", step, "The cloud doctor found %d failing step(s): %s", len(failed), strings.Join(failed, ", "))
}
