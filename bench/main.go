// Command bench measures Sallyport against a direct connection to the
// same backend, and optionally against another proxy, on loopback: small
// requests (rate, latency, errors), 10 MiB transfers both ways, the CPU
// time and memory of the cloud and connector processes, idle memory and
// memory per idle WebSocket. See bench/README.md.
//
//	go run ./bench               # the full run
//	go run ./bench -smoke        # a few seconds, what CI runs
//	go run ./bench -profile DIR  # CPU profiles of the cloud and connector code
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	conns       int
	xferConns   int
	size        int64
	ws          int
	load        string
	threads     int
	connections int
	tunnelVer   int
	backendPort int
	settle      time.Duration
	quietWait   time.Duration

	other, otherHost, otherName, otherPIDs string
	cloudArgs                              string

	tests []string // which of testSmall, testDownload, testUpload to run

	smoke   bool
	profile string
	bin     string
	keep    bool
	verbose bool
	timeout time.Duration

	bare bool // measure the bare relay too

	tcp bool // -tcp (tcp.go)

	// -scale (scale.go)
	scale                                  bool
	scaleConnectors, scaleWS, scaleTunnels int
	phaseTimeout                           time.Duration
	connectRate                            float64
	wsClients                              string // internal: run as the WebSocket clients of -scale
	connectorHost                          bool   // internal: run simulated connectors of -scale (scale_hosts.go)

	backendServe string // internal: run as the backend child
	bareServe    string // internal: run as a side of the bare relay
	bareTo       string // internal: where that side dials
	frpServe     string // internal: run as a side of the frp stand-in (frplike.go)
	frpServer    string // internal: where the frpc stand-in dials
}

func parseFlags() *options {
	o := &options{}
	var size string
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measurement (one test on one path in one round)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every path in turn, the table shows medians")
	flag.IntVar(&o.conns, "c", 50, "connections for the small-request load")
	flag.IntVar(&o.xferConns, "xfer-c", 4, "connections for the transfers")
	flag.StringVar(&size, "size", "10MiB", "body size of the transfers (bytes, or with KiB/MiB)")
	flag.IntVar(&o.ws, "ws", 5000, "idle WebSockets to open through one connector (0: skip)")
	flag.StringVar(&o.load, "load", "auto", "small-request load generator: auto (wrk if on PATH), wrk or builtin")
	flag.IntVar(&o.threads, "threads", runtime.NumCPU(), "wrk threads")
	flag.IntVar(&o.connections, "connections", 2, "tunnels of the connector ('connector run --connections'), as by default")
	flag.IntVar(&o.tunnelVer, "tunnel-version", 2, "tunnel protocol version the connector offers ('connector run --tunnel-version'): 2, as by default, or 1 to measure the HTTP/2-only protocol")
	flag.IntVar(&o.backendPort, "backend-port", 0, "loopback port of the backend (0: any); fix it to point another proxy at it")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "memory readings wait until RSS has been steady this long (at most 5×)")
	flag.DurationVar(&o.quietWait, "quiet-wait", 20*time.Second, "before each measurement, wait up to this long for other programs to leave the CPUs (under 10 % busy); 0: never wait")
	flag.StringVar(&o.other, "other", "", "another proxy to measure side by side: its loopback URL leading to the backend, e.g. http://127.0.0.1:8080")
	flag.StringVar(&o.otherHost, "other-host", "", "Host header (and TLS server name) for -other (default: the URL's host)")
	flag.StringVar(&o.otherName, "other-name", "other", "name of -other in the tables")
	flag.StringVar(&o.otherPIDs, "other-pids", "", "comma-separated PIDs of -other's processes, to report their CPU time and memory")
	tests := flag.String("tests", "small,download,upload", "the measurements to run, comma-separated (memory at rest and WebSockets: see -ws)")
	flag.BoolVar(&o.smoke, "smoke", false, "a few seconds with small counts, to check the harness works (CI)")
	flag.StringVar(&o.profile, "profile", "", "run the cloud and connector inside the bench and write CPU profiles into this directory")
	flag.StringVar(&o.bin, "bin", "", "use this sallyport binary instead of building one")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data directories, logs)")
	flag.BoolVar(&o.verbose, "v", false, "log every step")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "stop everything after this long")
	flag.StringVar(&o.cloudArgs, "cloud-args", "", "more flags for 'cloud serve', space-separated, e.g. \"--access-log /tmp/access.log\" to measure its cost")
	flag.BoolVar(&o.tcp, "tcp", false, "measure private access instead: the whole path (access tcp, cloud, connector) beside direct, ssh -L and frp's data path rebuilt; throughput with -xfer-c and -size, connection setup rate with -c (bench/tcp.go)")
	flag.BoolVar(&o.bare, "bare", true, "also measure the bare relay: two processes copying bytes over the same two TLS legs, the floor of this architecture's cost (bench/bare.go)")
	flag.StringVar(&o.backendServe, "backend-serve", "", "internal: serve the backend on this address")
	flag.StringVar(&o.bareServe, "bare-serve", "", "internal: serve one side (edge or site) of the bare relay")
	flag.StringVar(&o.bareTo, "bare-to", "", "internal: the address the bare relay side dials")
	flag.StringVar(&o.frpServe, "frp-serve", "", "internal: serve one side (frps or frpc) of the frp stand-in")
	flag.StringVar(&o.frpServer, "frp-server", "", "internal: the address the frpc stand-in dials")
	o.scaleFlags()
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	for _, t := range strings.Split(*tests, ",") {
		switch t = strings.TrimSpace(t); t {
		case testSmall, testDownload, testUpload:
			o.tests = append(o.tests, t)
		case "":
		default:
			fail(fmt.Errorf("-tests: unknown measurement %q (small, download, upload)", t))
		}
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.smoke {
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("duration", func() { o.duration = 300 * time.Millisecond })
		def("rounds", func() { o.rounds = 1 })
		def("c", func() { o.conns = 10 })
		def("ws", func() { o.ws = 200 })
		def("settle", func() { o.settle = 300 * time.Millisecond })
		def("timeout", func() { o.timeout = 3 * time.Minute })
		def("load", func() { o.load = "builtin" }) // wrk runs whole seconds
		def("quiet-wait", func() { o.quietWait = 0 })
	}
	o.warmup = min(time.Second, o.duration)
	if o.smoke {
		o.warmup = 100 * time.Millisecond
	}
	var err error
	if o.size, err = parseSize(size); err != nil {
		fail(err)
	}
	switch {
	case o.duration <= 0 || o.rounds < 1 || o.conns < 1 || o.xferConns < 1 || o.size < 1 || o.ws < 0:
		fail(errors.New("-duration, -rounds, -c, -xfer-c and -size must be positive, -ws at least 0"))
	case o.load != "auto" && o.load != "wrk" && o.load != "builtin":
		fail(fmt.Errorf("-load is auto, wrk or builtin, not %q", o.load))
	case o.connections < 1 || o.connections > 16:
		fail(errors.New("-connections is 1 to 16"))
	case o.tunnelVer != 1 && o.tunnelVer != 2:
		fail(errors.New("-tunnel-version is 1 or 2"))
	case o.ws > 14000:
		fail(errors.New("-ws is at most 14000 (a connector has at most 16 tunnels of 1000 streams)"))
	case o.scale && (o.scaleConnectors < 1 || o.scaleWS < 0 || o.phaseTimeout <= 0 || !(o.connectRate > 0)):
		fail(errors.New("-connectors must be at least 1, -websockets at least 0, -phase-timeout and -connect-rate positive"))
	case o.scale && (o.scaleTunnels < 1 || o.scaleTunnels > 16):
		fail(errors.New("-connector-tunnels is 1 to 16"))
	case o.scale && o.scaleConnectors > 100*maxTokenUses:
		fail(fmt.Errorf("-connectors is at most %d", 100*maxTokenUses))
	}
	return o
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad -size %q: give bytes, or a number with KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	os.Exit(2)
}

func main() {
	o := parseFlags()
	if o.backendServe != "" {
		if err := serveBackend(o.backendServe); err != nil {
			fmt.Fprintf(os.Stderr, "backend: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if o.connectorHost {
		if err := serveConnectorHost(); err != nil {
			fmt.Fprintf(os.Stderr, "connector host: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if o.wsClients != "" {
		if err := serveWSClients(o.wsClients); err != nil {
			fmt.Fprintf(os.Stderr, "WebSocket clients: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if o.bareServe != "" {
		if err := serveBare(o.bareServe, o.bareTo); err != nil {
			fmt.Fprintf(os.Stderr, "bare %s: %v\n", o.bareServe, err)
			os.Exit(1)
		}
		return
	}
	if o.frpServe != "" {
		if err := serveFrp(o.frpServe, o.frpServer, o.bareTo); err != nil {
			fmt.Fprintf(os.Stderr, "frp stand-in %s: %v\n", o.frpServe, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("the run took longer than -timeout %s", o.timeout))
	defer cancel()
	run := runBench
	if o.scale {
		run = runScale
	}
	if o.tcp {
		run = runTCP
	}
	err := run(ctx, o)
	switch {
	case err == nil:
		return
	case ctx.Err() != nil:
		fmt.Fprintf(os.Stderr, "bench: stopped: %v\n", context.Cause(ctx))
		os.Exit(130)
	}
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	os.Exit(1)
}

// runBench runs everything; every process it starts is stopped before it
// returns.
func runBench(ctx context.Context, o *options) error {
	h, err := newHarness(o.verbose, o.keep)
	if err != nil {
		return err
	}
	defer h.close()
	if o.bin != "" {
		if err := h.useBinary(ctx, o.bin); err != nil {
			return err
		}
	} else {
		h.logf("building sallyport")
		if err := h.build(ctx); err != nil {
			return err
		}
	}
	backend, err := startBackend(ctx, h, o.backendPort)
	if err != nil {
		return err
	}
	h.logf("backend on http://%s; sallyport from %s", backend.addr, h.source)
	if f := busyNow(ctx, min(time.Second, 2*o.duration)); f >= 0.2 {
		h.logf("warning: the machine is already %.0f %% busy before the measurements start; results will be noisy", 100*f)
	}
	other, err := otherTarget(o)
	if err != nil {
		return err
	}

	wrk := ""
	switch o.load {
	case "wrk", "auto":
		wrk = wrkPath()
		if wrk == "" && o.load == "wrk" {
			return errors.New("-load wrk: wrk is not on PATH (Debian: apt-get install wrk)")
		}
	}
	tool := "built-in Go client"
	if wrk != "" {
		tool = fmt.Sprintf("wrk (%d threads)", max(1, min(o.threads, o.conns)))
	}

	if o.profile != "" {
		return runProfile(ctx, h, backend, o, wrk)
	}

	h.logf("starting the cloud and a connector (%d tunnels)", o.connections)
	sp, err := startSallyport(ctx, h, backend.addr, sallyportOpts{connections: o.connections, tunnelVersion: o.tunnelVer, cloudArgs: strings.Fields(o.cloudArgs)})
	if err != nil {
		return err
	}
	h.logf("edge on https://%s:%d (app %s)", cloudName, sp.port, sp.appHost)

	rp := &report{opts: o, tool: tool, started: time.Now(), idleTunnels: o.connections, otherProcs: o.otherPIDs != "", source: h.source}
	rp.setupCloud = settleRSS(ctx, []int{sp.cloudPID()}, o.settle, 5*o.settle)[0]
	// Measure fresh processes: the setup's password logins leave the
	// cloud with argon2id work areas the runtime returns only slowly.
	h.logf("restarting the cloud and the connector")
	if err := sp.restart(ctx, o.connections); err != nil {
		return err
	}
	rss := settleRSS(ctx, []int{sp.cloudPID(), sp.connectorPID()}, o.settle, 5*o.settle)
	rp.idleCloud, rp.idleConn = rss[0], rss[1]

	direct := &target{name: "direct", scheme: "http", addr: backend.addr, host: backend.addr}
	targets := []*target{direct, sp.target()}
	if slices.Contains(o.tests, testSmall) {
		// The same backend behind sign-in, with a signed-in user's cookie
		// (small requests only: the gate's cost is per request).
		h.logf("publishing %s with pre-authentication and signing in", preauthApp)
		host, err := sp.publishPreauth(ctx, backend.addr)
		if err != nil {
			return err
		}
		cookie, err := sp.signIn(ctx, host)
		if err != nil {
			return err
		}
		targets = append(targets, sp.preauthTarget(host, cookie))
	}
	procs := []watched{
		{name: "bench", pids: []int{os.Getpid()}}, // the built-in load generator
		{name: "backend", pids: []int{backend.proc.pid()}},
		{name: "cloud", pids: []int{sp.cloudPID()}},
		{name: "connector", pids: []int{sp.connectorPID()}},
	}
	if o.bare {
		h.logf("starting the bare relay")
		bare, err := startBareRelay(ctx, h, backend.addr)
		if err != nil {
			return err
		}
		targets = append(targets, bare.target())
		procs = append(procs, watched{name: "bare", pids: bare.pids()})
	}
	if other != nil {
		targets = append(targets, other)
		pids, err := parsePIDs(o.otherPIDs)
		if err != nil {
			return err
		}
		procs = append(procs, watched{name: "other", pids: pids})
	}
	for _, t := range targets {
		rp.targets = append(rp.targets, t.name)
	}
	m := newMeter(procs)

	measure := func(round int, test string, t *target, d time.Duration) (run, error) {
		m.begin()
		res, err := runTest(ctx, o, wrk, test, t, d)
		use, machine := m.end()
		if err != nil {
			return run{}, fmt.Errorf("%s through %s: %w%s", test, t.name, err, h.exitedChildren())
		}
		return run{round: round, test: test, target: t.name, res: res, use: use, machine: machine}, nil
	}

	h.logf("warming up each path for %s", o.warmup)
	for _, t := range targets {
		for _, test := range o.tests {
			if t.smallOnly && test != testSmall {
				continue
			}
			d := o.warmup
			switch {
			case test == testSmall && wrk != "":
				d = time.Second // wrk runs whole seconds
			case test != testSmall:
				d = max(d, 300*time.Millisecond) // long enough to move a few bodies
			}
			r, err := measure(0, test, t, d)
			if err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			if r.res.requests == 0 && r.res.bytes == 0 && (r.res.errors > 0 || test == testSmall) {
				return fmt.Errorf("warm-up: no %s request through %s succeeded (%d errors)", test, t.name, r.res.errors)
			}
		}
	}

	for round := 1; round <= o.rounds; round++ {
		for _, test := range o.tests {
			// Rotate the order of the paths from round to round.
			for i := range targets {
				t := targets[(i+round-1)%len(targets)]
				if t.smallOnly && test != testSmall {
					continue
				}
				waitQuiet(ctx, h, o.quietWait)
				r, err := measure(round, test, t, o.duration)
				if err != nil {
					return err
				}
				rp.runs = append(rp.runs, r)
				logRun(h, o, r)
			}
		}
	}

	if o.ws > 0 {
		// A tunnel carries at most 1000 streams (the connector's HTTP/2
		// limit): spread the WebSockets over enough tunnels.
		// Fresh processes again, so that no memory freed by the load is
		// reused by the WebSockets (which would understate their cost).
		need := max(o.connections, int(math.Ceil(float64(o.ws)/900)))
		h.logf("restarting the cloud and the connector (%d tunnels) for %d WebSockets", need, o.ws)
		if err := sp.restart(ctx, need); err != nil {
			return err
		}
		h.logf("opening %d idle WebSockets", o.ws)
		ws, err := measureWebSockets(ctx, sp, sp.target(), o.ws, o.settle)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ws.opened > 0 {
			rp.ws = &ws
		}
		rp.wsErr = err
	}
	rp.print(os.Stdout)
	return nil
}

// waitQuiet waits up to d until the machine is less than 10 % busy (the
// bench's own processes are idle between measurements, so what is busy is
// other programs).
func waitQuiet(ctx context.Context, h *harness, d time.Duration) {
	if d <= 0 {
		return
	}
	deadline := time.Now().Add(d)
	for {
		f := busyNow(ctx, 300*time.Millisecond)
		if f < 0.10 || ctx.Err() != nil {
			return
		}
		if time.Now().After(deadline) {
			h.logf("the machine is still %.0f %% busy with other programs after %s; measuring anyway", 100*f, d)
			return
		}
	}
}

func logRun(h *harness, o *options, r run) {
	round := fmt.Sprintf("round %d/%d", r.round, o.rounds)
	if o.profile != "" {
		round = "profiled"
	}
	busy := ""
	if f := r.foreign(); f >= 0.05 {
		busy = fmt.Sprintf("  (other programs: %.0f %% of the machine)", 100*f)
	}
	switch r.test {
	case testSmall:
		h.logf("%s %-8s %-10s %8.0f req/s  p50 %-8s p99 %-8s errors %d%s", round, r.test, r.target,
			r.res.rps, fmtDur(r.res.p50.Seconds()), fmtDur(r.res.p99.Seconds()), r.res.errors, busy)
	default:
		h.logf("%s %-8s %-10s %8.2f GB/s   %d bodies, errors %d%s", round, r.test, r.target,
			r.res.gbps, r.res.requests, r.res.errors, busy)
	}
}

// otherTarget is the -other proxy, which must be on loopback.
func otherTarget(o *options) (*target, error) {
	if o.other == "" {
		return nil, nil
	}
	u, err := url.Parse(o.other)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-other %q is not an http:// or https:// URL", o.other)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil, fmt.Errorf("-other %q is not on loopback: the bench only dials 127.0.0.1, ::1 or localhost", o.other)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	t := &target{name: o.otherName, scheme: u.Scheme, addr: net.JoinHostPort(host, port), prefix: strings.TrimSuffix(u.Path, "/")}
	t.host = o.otherHost
	if t.host == "" {
		t.host = u.Host
	}
	if u.Scheme == "https" {
		sni := t.host
		if h, _, err := net.SplitHostPort(sni); err == nil {
			sni = h
		}
		// Another proxy's certificate is not ours to verify: loopback only.
		t.tls = tlsInsecure(sni)
	}
	return t, nil
}

func parsePIDs(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-other-pids: %q is not a process id", f)
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// runTest runs one measurement's load against t for d: wrk (or the
// built-in generator) for small requests, the transfer loop otherwise.
func runTest(ctx context.Context, o *options, wrk, test string, t *target, d time.Duration) (result, error) {
	switch test {
	case testSmall:
		if wrk != "" {
			return runWrk(ctx, wrk, t, o.conns, o.threads, d)
		}
		return builtinSmall(ctx, t, o.conns, d)
	case testDownload:
		return transfer(ctx, t, false, o.xferConns, o.size, d)
	case testUpload:
		return transfer(ctx, t, true, o.xferConns, o.size, d)
	}
	return result{}, fmt.Errorf("unknown test %q", test)
}
