package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Step statuses.
const (
	Pass = "pass"
	Warn = "warn"
	Fail = "fail"
	Skip = "skip"
)

// Verdicts of a Report.
const (
	Healthy  = "healthy"  // every step passed (or was skipped without a failure)
	Warnings = "warnings" // some step warns, none failed
	Failed   = "failed"   // some step failed
)

// DefaultStepTimeout bounds each step when Options.StepTimeout is zero.
const DefaultStepTimeout = 5 * time.Second

// Step is one checked step of the flowchart. The JSON field names are a
// documented, stable interface (docs/doctor.md).
type Step struct {
	// ID names the step: "state", "dns", "tcp", "tcp-proxy" (only when a
	// proxy applies), "tls", "registration",
	// "clock", "group", "app NAME" (one per application; "apps" when the
	// applications are unknown) and "events".
	ID    string `json:"id"`
	Title string `json:"title"`
	// Status is "pass", "warn", "fail" or "skip".
	Status     string `json:"status"`
	Checked    string `json:"checked"` // what was checked
	Found      string `json:"found"`   // what was found (for "skip": why it was not checked)
	Advice     string `json:"advice"`  // the recommended step; empty when there is nothing to do
	DurationMS int64  `json:"duration_ms"`
}

// Report is the outcome of a run.
type Report struct {
	Connector string `json:"connector"` // connector id from trust.json; empty when unreadable
	Cloud     string `json:"cloud"`     // the cloud's URL from trust.json; empty when unreadable
	Steps     []Step `json:"steps"`
	// Verdict is "healthy", "warnings" or "failed".
	Verdict string    `json:"verdict"`
	Started time.Time `json:"started"`
}

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Options is what to check and how.
type Options struct {
	// Dir is the connector's state directory (default statedir.DefaultDir()).
	Dir string
	// App, when set, limits the application checks to the application
	// of that name.
	App string
	// StepTimeout bounds each step (default 5s). An application's load
	// is bounded by the smaller of this and the application's timeout.
	StepTimeout time.Duration
	// Now is this machine's clock (default time.Now).
	Now func() time.Time
	// Dial dials TCP to the cloud, like cloudlink.DialContext (the
	// default), which resolves names under .localhost to 127.0.0.1.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolver resolves the cloud's name and the applications' internal
	// hosts (default net.DefaultResolver).
	Resolver Resolver
	// AdjustStatus, when set, may change what the cloud answered before
	// the steps use it (tests: a short application timeout).
	AdjustStatus func(*tunnel.Status)
}

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = statedir.DefaultDir()
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dial == nil {
		o.Dial = cloudlink.DialContext
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
}

// runner holds what the steps learnt for the later ones.
type runner struct {
	ctx context.Context
	o   Options
	rep Report

	st         *statedir.State // nil when the state step failed
	stateCode  string          // the state step's problem code when it failed
	trust      *statedir.Trust // from st, or read alone when st is nil
	target     cloudlink.Target
	haveTarget bool
	ca         *x509.Certificate // the pinned cloud CA, when readable
	cloudIPs   []netip.Addr      // from the dns step
	proxy      *cloudlink.Proxy  // the outbound proxy the connector uses for the cloud, nil for none
	path       *cloudPath        // the way to the cloud the connector uses, once its TCP step passed
	status     *tunnel.Status    // from the registration step
	localMid   time.Time         // this machine's clock in the middle of the status call
	halfRTT    time.Duration
}

// Run walks the steps and returns the report; it never fails as a whole:
// every failure is a step's.
func Run(ctx context.Context, o Options) Report {
	o.defaults()
	r := &runner{ctx: ctx, o: o}
	r.rep.Started = o.Now().UTC()
	r.rep.Steps = []Step{}

	r.do("state", "Trust certificate and state directory", nil, r.checkState)
	r.do("dns", "Name resolution of the cloud", r.needTarget, r.checkDNS)
	for _, p := range r.paths() {
		r.do(p.id, p.title, r.needs(p.needs...), func(ctx context.Context, s *Step) { r.checkTCP(ctx, s, p) })
	}
	r.do("tls", "TLS handshake with the cloud", r.needPath, r.checkTLS)
	r.do("registration", "Registration at the cloud", r.needRegistration, r.checkRegistration)
	r.do("clock", "This machine's clock against the cloud's", r.needStatus, r.checkClock)
	r.do("group", "Connector group and its applications", r.needStatus, r.checkGroup)
	r.checkApps()
	r.do("events", "Event log errors of the last hour", nil, r.checkEvents)
	r.do("updater", "The updater: service and recent problems", nil, r.checkUpdater)

	r.rep.Verdict = verdict(r.rep.Steps)
	return r.rep
}

// do runs one step with its own timeout, unless skip gives a reason not to.
func (r *runner) do(id, title string, skip func() string, check func(ctx context.Context, s *Step)) {
	r.rep.Steps = append(r.rep.Steps, r.runStep(id, title, skip, check))
}

func (r *runner) runStep(id, title string, skip func() string, check func(ctx context.Context, s *Step)) Step {
	s := Step{ID: id, Title: title}
	start := time.Now()
	why := ""
	if r.ctx.Err() != nil {
		why = "Not checked: the doctor was interrupted"
	} else if skip != nil {
		why = skip()
	}
	if why != "" {
		s.Status, s.Found = Skip, why
		return s
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.StepTimeout)
	check(ctx, &s)
	cancel()
	if s.Status == "" { // a check that forgot to conclude
		s.Status = Pass
	}
	s.DurationMS = time.Since(start).Milliseconds()
	return s
}

// needs skips a step unless the given steps passed or only warned.
func (r *runner) needs(ids ...string) func() string {
	return func() string {
		for _, id := range ids {
			s := r.find(id)
			if s == nil {
				continue
			}
			switch s.Status {
			case Fail:
				return fmt.Sprintf("Not checked because the %s step failed", id)
			case Skip:
				return fmt.Sprintf("Not checked because the %s step was skipped", id)
			}
		}
		return ""
	}
}

func (r *runner) find(id string) *Step {
	for i := range r.rep.Steps {
		if r.rep.Steps[i].ID == id {
			return &r.rep.Steps[i]
		}
	}
	return nil
}

func (r *runner) needTarget() string {
	if !r.haveTarget {
		return "Not checked: the cloud's address is unknown because the trust settings file cannot be used (see the state step)"
	}
	return ""
}

func (r *runner) needPath() string {
	if why := r.needTarget(); why != "" {
		return why
	}
	if r.path == nil {
		ids := []string{}
		for _, p := range r.paths() {
			ids = append(ids, p.id)
		}
		for _, p := range r.paths() {
			if p.used {
				if why := r.needs(p.id)(); why != "" {
					return why
				}
			}
		}
		return fmt.Sprintf("Not checked because no TCP connection to the cloud could be made (steps %s)", strings.Join(ids, ", "))
	}
	if r.ca == nil {
		return "Not checked: the pinned cloud CA (" + statedir.CloudCAFile + ") cannot be read (see the state step)"
	}
	return ""
}

func (r *runner) needRegistration() string {
	if why := r.needs("tls")(); why != "" {
		return why
	}
	if r.st == nil {
		return "Not checked: the connector's certificate cannot be used (see the state step)"
	}
	return ""
}

func (r *runner) needStatus() string {
	if r.status == nil {
		return "Not checked because the cloud's view of this connector is unknown (see the registration step)"
	}
	return ""
}

// findings gathers the partial results of a step that checks several
// things; the step's status is the worst of them, and what was found is
// told worst first.
type findings struct {
	status string
	found  []finding
	advice []string
}

type finding struct{ status, text string }

var rank = map[string]int{"": -1, Pass: 0, Skip: 0, Warn: 1, Fail: 2}

func (f *findings) add(status, found, advice string) {
	if rank[status] > rank[f.status] {
		f.status = status
	}
	if found != "" {
		f.found = append(f.found, finding{status, found})
	}
	if advice != "" && (status == Warn || status == Fail) {
		f.advice = append(f.advice, advice)
	}
}

func (f *findings) to(s *Step) {
	s.Status = f.status
	if s.Status == "" {
		s.Status = Pass
	}
	slices.SortStableFunc(f.found, func(a, b finding) int { return rank[b.status] - rank[a.status] })
	texts := make([]string, len(f.found))
	for i, x := range f.found {
		texts[i] = x.text
	}
	s.Found = strings.Join(texts, "; ")
	s.Advice = strings.Join(f.advice, "; ")
}

func (s *Step) set(status, found, advice string) {
	s.Status, s.Found, s.Advice = status, found, advice
}

// explain returns the message and the step of err.
func explain(err error) (msg, step string) {
	if p, ok := problem.As(err); ok {
		return p.Message, p.Step
	}
	return err.Error(), ""
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

// Err returns nil when no step failed, else the one-sentence summary
// naming the failed steps; step is the recommended next step (where the
// advice is to be read).
func (rep Report) Err(step string) error {
	failed := rep.IDs(Fail)
	if len(failed) == 0 {
		return nil
	}
	noun := "steps"
	if len(failed) == 1 {
		noun = "step"
	}
	return problem.Newf(400, "doctor_failed", step, "The doctor found %d failing %s: %s", len(failed), noun, strings.Join(failed, ", "))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// round shortens a duration for people.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
