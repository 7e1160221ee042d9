package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/version"
)

// -scale: how many connectors and idle WebSockets one cloud instance
// holds, and what each costs in memory.
//
//  1. One real 'cloud serve' child (the binary), with --metrics-listen for
//     its Go heap; K backends (one per 20 000 WebSockets), each on its own
//     loopback address and published as its own application, so that the
//     connectors' connections to them do not run out of ephemeral ports.
//  2. N simulated connectors register IN THE BENCH with the product's own
//     code (connector.Register: a key pair each, a CSR, a certificate
//     signed by the cloud) with registration tokens of up to 10 000 uses
//     each, through an in-bench CONNECT proxy that spreads them over many
//     loopback source addresses (the cloud allows 5 registrations a second
//     per address).
//  3. The cloud is restarted (fresh memory), then the N connectors run
//     (connector.New + Run, each with its state directory, T tunnels each,
//     dialled from 16 loopback source addresses): the cloud's RSS and heap
//     before and with every tunnel up give the cost per tunnel.
//  4. M idle WebSockets are opened through the edge by a child process
//     (the bench's own executable, -ws-clients), spread over the
//     applications and 16 source addresses: the cloud's cost per WebSocket,
//     and the simulated connectors' (the bench's heap) separately.
//
// Every phase has a deadline (-phase-timeout): a target that is not
// reached is reported with the highest count reached and why.

const (
	maxTokenUses     = 10000 // api.MaxTokenMaxUses: registrations one token allows
	wsPerBackend     = 20000 // WebSockets per backend address (ephemeral ports: 28 231)
	scaleSources     = 16    // source addresses of the tunnels, and of the WebSockets
	registerSources  = 250   // source addresses of the registrations
	registerParallel = 16
)

// scaleResult is what a -scale run measured.
type scaleResult struct {
	wantConnectors, wantWS, tunnelsEach int
	fdLimit                             uint64
	stateDir                            string
	cloudArgs                           string // -cloud-args

	registered   int
	registerTime time.Duration
	registerErr  string

	connected   int // connectors with all their tunnels up
	tunnelsUp   int
	listed      int // connectors 'admin connector list' shows active with all tunnels
	connectTime time.Duration
	connectErr  string
	connect90   time.Duration // until 90 % of the tunnels were up
	peakRate    float64       // most tunnels that came up in one second (the cloud's handshake rate)
	hsRefused   float64       // connections the cloud closed before TLS (sallyport_cloud_tls_handshakes_refused_total)
	hsFailed    float64       // TLS handshakes that failed or timed out (sallyport_cloud_tls_handshakes_failed_total)

	cloudBase, cloudConn, cloudWS procMem // the cloud before the tunnels, with them, with the WebSockets
	benchBase, benchConn, benchWS procMem // the simulated connectors (the bench process)
	clientsRSS                    int64   // the WebSocket clients' process
	cloudIdleCPU, benchIdleCPU    float64 // share of one CPU over 10 s with every tunnel up and idle

	cloudFDsBase                int    // open files of the cloud before the tunnels
	cloudFDs                    int    // open files of the cloud with every tunnel up
	wsCapped                    string // why fewer WebSockets than asked were opened
	wsOpened, wsFailed, wsAlive int
	wsTime                      time.Duration
	wsErr                       string
}

// procMem is one memory reading: RSS from /proc, the Go heap in use and
// the goroutines (the cloud's from its metrics endpoint, the bench's own
// after a GC).
type procMem struct {
	rss, heap  int64
	goroutines int
}

func (o *options) scaleFlags() {
	flag.BoolVar(&o.scale, "scale", false, "measure how many connectors and idle WebSockets one cloud holds (see README, 'Scale'); not part of the default run")
	flag.IntVar(&o.scaleConnectors, "connectors", 10000, "-scale: simulated connectors")
	flag.IntVar(&o.scaleWS, "websockets", 50000, "-scale: idle WebSockets through the edge (0: skip)")
	flag.IntVar(&o.scaleTunnels, "connector-tunnels", 1, "-scale: tunnels of each simulated connector (1 to 16)")
	flag.Float64Var(&o.connectRate, "connect-rate", 100, "-scale: simulated connectors started a second, all hosts together (a cloud on 2 CPUs completes about 110-150 tunnel handshakes a second)")
	flag.DurationVar(&o.phaseTimeout, "phase-timeout", 10*time.Minute, "-scale: longest time for each phase (registering, connecting, opening WebSockets); the count reached by then is reported")
	flag.StringVar(&o.wsClients, "ws-clients", "", "internal: run as the WebSocket clients of -scale (JSON spec)")
	flag.BoolVar(&o.connectorHost, "connector-host", false, "internal: run simulated connectors of -scale (spec on standard input)")
}

// runScale is the -scale run; every process it starts is stopped before
// it returns.
func runScale(ctx context.Context, o *options) error {
	r := &scaleResult{wantConnectors: o.scaleConnectors, wantWS: o.scaleWS, tunnelsEach: o.scaleTunnels, cloudArgs: o.cloudArgs}
	var err error
	r.fdLimit, err = raiseNoFile(fdsNeeded(o.scaleConnectors, o.scaleTunnels, o.scaleWS))
	h, herr := newHarness(o.verbose, o.keep)
	if herr != nil {
		return herr
	}
	defer h.close()
	if err != nil {
		h.logf("warning: %v", err)
	}
	h.logf("open files limit %d (the cloud and the bench's children inherit it)", r.fdLimit)
	if o.bin != "" {
		err = h.useBinary(ctx, o.bin)
	} else {
		h.logf("building sallyport")
		err = h.build(ctx)
	}
	if err != nil {
		return err
	}

	// Backends, one per 20 000 WebSockets, each on its own address.
	var backends []string
	for i := range backendsFor(o.scaleWS) {
		_, addr, err := startServeChild(ctx, h, fmt.Sprintf("backend %d", i+1), "-backend-serve", net.JoinHostPort(sourceAddr(2, i).String(), "0"))
		if err != nil {
			return err
		}
		backends = append(backends, addr)
	}

	mport, err := freePort()
	if err != nil {
		return err
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	h.logf("starting the cloud (metrics on %s)", metricsURL)
	s, err := startCloudSignedIn(ctx, h, sallyportOpts{cloudArgs: append([]string{"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport)}, strings.Fields(o.cloudArgs)...)})
	if err != nil {
		return err
	}
	var appHosts []string
	for i, b := range backends {
		out, err := h.run(ctx, "", "admin", "app", "create", fmt.Sprintf("%s-%d", appName, i+1), "--internal-url", "http://"+b+"/", "--pre-auth", "passthrough", "--json")
		if err != nil {
			return err
		}
		var app struct {
			ExternalHost string `json:"external_host"`
		}
		if err := json.Unmarshal([]byte(out), &app); err != nil || app.ExternalHost == "" {
			return fmt.Errorf("'admin app create --json' printed no external host: %q", out)
		}
		appHosts = append(appHosts, app.ExternalHost)
	}
	var tokens []string
	for _, uses := range tokenUses(o.scaleConnectors) {
		out, err := h.run(ctx, "", "admin", "token", "create", "--uses", strconv.Itoa(uses), "--expires", "24h", "--json")
		if err != nil {
			return err
		}
		var tok struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
			return fmt.Errorf("'admin token create --json' printed no token: %q", out)
		}
		tokens = append(tokens, tok.Token)
	}

	// The state directories on tmpfs when there is one: every connector
	// rewrites its status.json every 5 s with an fsync, which on a disk
	// would measure the disk.
	root := h.dir
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "sallyport-scale-"); err == nil {
			root = d
			if !o.keep {
				defer os.RemoveAll(d)
			}
		}
	}
	r.stateDir = root

	// Phase 1: registration.
	proxy, err := startConnectProxy(sourceRange(5, registerSources))
	if err != nil {
		return err
	}
	defer proxy.close()
	h.logf("registering %d connectors (%d at once, through %d source addresses)", o.scaleConnectors, registerParallel, registerSources)
	dirs := registerConnectors(ctx, h, r, s, proxy, tokens, root, o.phaseTimeout)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(dirs) == 0 {
		return fmt.Errorf("no connector could be registered: %s", r.registerErr)
	}

	// Phase 2: fresh cloud, then every connector's tunnels.
	h.logf("restarting the cloud (fresh memory)")
	s.stopCloud()
	for range 20 {
		if err = s.serveOn(ctx, s.port); !errors.Is(err, errPortTaken) {
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}
	if err != nil {
		return err
	}
	r.cloudBase = cloudMem(ctx, s.cloudPID(), metricsURL, o.settle)
	r.cloudFDsBase = countFDs(s.cloudPID())
	hosts, err := startConnectorHosts(ctx, h, dirs, o.scaleTunnels, o.connectRate)
	if err != nil {
		return err
	}
	r.benchBase = hostsMem(ctx, hosts, o.settle)
	h.logf("cloud: RSS %s, heap %s; connector hosts: RSS %s, heap %s", fmtMB(r.cloudBase.rss), fmtMB(r.cloudBase.heap), fmtMB(r.benchBase.rss), fmtMB(r.benchBase.heap))

	connectAll(ctx, h, r, hosts, len(dirs), o.scaleTunnels, o.phaseTimeout)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.hsRefused = cloudCounter(ctx, metricsURL, "sallyport_cloud_tls_handshakes_refused_total")
	r.hsFailed = cloudCounter(ctx, metricsURL, "sallyport_cloud_tls_handshakes_failed_total")
	h.logf("the cloud closed %.0f connections before TLS (no handshake slot); %.0f handshakes failed", r.hsRefused, r.hsFailed)
	r.listed = listedActive(ctx, h, o.scaleTunnels)
	r.cloudConn = cloudMem(ctx, s.cloudPID(), metricsURL, o.settle)
	r.benchConn = hostsMem(ctx, hosts, o.settle)
	h.logf("cloud: RSS %s, heap %s, %d goroutines; connector hosts: RSS %s, heap %s, %d goroutines", fmtMB(r.cloudConn.rss), fmtMB(r.cloudConn.heap), r.cloudConn.goroutines,
		fmtMB(r.benchConn.rss), fmtMB(r.benchConn.heap), r.benchConn.goroutines)
	h.logf("measuring idle CPU for 10 s")
	r.cloudIdleCPU, r.benchIdleCPU = idleCPU(ctx, s.cloudPID(), hosts, 10*time.Second)

	// Phase 3: idle WebSockets, as many as the cloud's open files limit
	// allows (a WebSocket is one open file at the cloud).
	r.cloudFDs = countFDs(s.cloudPID())
	if room := int(r.fdLimit) - r.cloudFDs - fdMargin; r.fdLimit > 0 && r.cloudFDs >= 0 && o.scaleWS > room {
		r.wsCapped = fmt.Sprintf("capped at %s: the cloud holds %s open files and may hold %d (`ulimit -Hn`; raising it needs CAP_SYS_RESOURCE), a WebSocket takes one, %d are kept for its store, metrics and admin API",
			fmtNum(float64(max(0, room))), fmtNum(float64(r.cloudFDs)), r.fdLimit, fdMargin)
		h.logf("%s", r.wsCapped)
		o.scaleWS = max(0, room)
	}
	if o.scaleWS > 0 && r.tunnelsUp > 0 {
		h.logf("opening %d idle WebSockets over %d applications", o.scaleWS, len(appHosts))
		if err := openScaleWS(ctx, h, r, s, appHosts, hosts, metricsURL, o); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.wsErr = err.Error()
		}
	}
	r.print(os.Stdout, h.source)
	return nil
}

// registerConnectors registers up to n connectors in directories under
// root and returns the directories that hold a registration.
func registerConnectors(ctx context.Context, h *harness, r *scaleResult, s *sallyport, proxy *connectProxy, tokens []string, root string, limit time.Duration) []string {
	n := r.wantConnectors
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	px := &cloudlink.Proxy{URL: &url.URL{Scheme: "http", Host: proxy.addr()}, Source: "bench"}
	dirs := make([]string, n)
	var next, done atomic.Int64
	var errMu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	stopLog := logEvery(h, 5*time.Second, func() string { return fmt.Sprintf("%d of %d registered", done.Load(), n) })
	for range min(registerParallel, n) {
		wg.Go(func() {
			failures := 0
			for pctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				dir := filepath.Join(root, fmt.Sprintf("c%05d", i))
				_, err := connector.Register(pctx, connector.RegisterOptions{
					CloudURL: s.url, Dir: dir, Token: tokens[i/maxTokenUses], CAFile: s.caFile,
					Hostname: fmt.Sprintf("scale-%05d", i), Version: version.Version, Proxy: px,
				})
				if err != nil {
					errMu.Lock()
					if r.registerErr == "" && pctx.Err() == nil {
						r.registerErr = err.Error()
					}
					errMu.Unlock()
					if failures++; failures >= 5 {
						return // this worker gives up; the others go on
					}
					continue
				}
				failures = 0
				dirs[i] = dir
				done.Add(1)
			}
		})
	}
	wg.Wait()
	stopLog()
	r.registerTime = time.Since(start)
	var out []string
	for _, d := range dirs {
		if d != "" {
			out = append(out, d)
		}
	}
	r.registered = len(out)
	if r.registered < n && r.registerErr == "" && pctx.Err() != nil {
		r.registerErr = fmt.Sprintf("the phase's deadline (-phase-timeout %s) passed", limit)
	}
	h.logf("%d of %d connectors registered in %s", r.registered, n, r.registerTime.Round(100*time.Millisecond))
	return out
}

// connectAll starts the connector hosts' connectors and waits until all
// their tunnels are up, or the phase's deadline.
func connectAll(ctx context.Context, h *harness, r *scaleResult, hosts []*connectorHost, n, tunnels int, limit time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	h.logf("starting %d connectors in %d host process(es), %d tunnel(s) each", n, len(hosts), tunnels)
	for _, ch := range hosts {
		ch.send("start")
	}
	want := n * tunnels
	last := -1
	lastChange := time.Now()
	prevUp, prevAt := 0, time.Now()
	for {
		st := hostsState(hosts)
		r.tunnelsUp, r.connected = st.Up, st.Full
		if el := time.Since(prevAt).Seconds(); el >= 0.5 {
			r.peakRate = max(r.peakRate, float64(st.Up-prevUp)/el)
			prevUp, prevAt = st.Up, time.Now()
		}
		if r.connect90 == 0 && 10*st.Up >= 9*want {
			r.connect90 = time.Since(start)
		}
		if st.Err != "" && r.connectErr == "" {
			r.connectErr = st.Err
		}
		if st.Up == want {
			break
		}
		if st.Up != last {
			h.logf("%d of %d connectors started, %d of %d tunnels up, %d connectors with all their tunnels", st.Started, n, st.Up, want, st.Full)
			last, lastChange = st.Up, time.Now()
		}
		if pctx.Err() != nil {
			if r.connectErr == "" {
				r.connectErr = fmt.Sprintf("the phase's deadline (-phase-timeout %s) passed with %d of %d tunnels up", limit, st.Up, want)
			}
			break
		}
		if time.Since(lastChange) > 2*time.Minute {
			r.connectErr = fmt.Sprintf("no more tunnel came up for 2 minutes (%d of %d up)", st.Up, want)
			break
		}
		if x := h.exitedChildren(); x != "" {
			r.connectErr = oneLine(x)
			break
		}
		sleep(pctx, time.Second)
	}
	r.connectTime = time.Since(start)
	h.logf("%d of %d tunnels up (%d connectors complete) after %s", r.tunnelsUp, want, r.connected, r.connectTime.Round(100*time.Millisecond))
}

// listedActive is how many connectors 'admin connector list' shows active
// with all their tunnels.
func listedActive(ctx context.Context, h *harness, tunnels int) int {
	out, err := h.run(ctx, "", "admin", "connector", "list", "--json")
	if err != nil {
		h.logf("'admin connector list': %v", err)
		return -1
	}
	var cs []struct {
		Status  string `json:"status"`
		Tunnels int    `json:"tunnels"`
	}
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		h.logf("'admin connector list --json': %v", err)
		return -1
	}
	n := 0
	for _, c := range cs {
		if c.Status == "active" && c.Tunnels == tunnels {
			n++
		}
	}
	return n
}

// openScaleWS opens the WebSockets from a child process and measures.
func openScaleWS(ctx context.Context, h *harness, r *scaleResult, s *sallyport, hosts []string, conns []*connectorHost, metricsURL string, o *options) error {
	var srcs []string
	for _, a := range sourceRange(4, scaleSources) {
		srcs = append(srcs, a.String())
	}
	spec, _ := json.Marshal(wsClientSpec{N: o.scaleWS, Addr: fmt.Sprintf("127.0.0.1:%d", s.port), Hosts: hosts, CAFile: s.caFile, Sources: srcs, Deadline: o.phaseTimeout})
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cl, lines, send, err := startLineChild(h, "WebSocket clients", self, "-ws-clients", string(spec))
	if err != nil {
		return err
	}
	defer cl.stop(10 * time.Second)
	start := time.Now()
	var done wsClientReport
	deadline := time.After(o.phaseTimeout + time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return fmt.Errorf("the WebSocket clients exited: %s", cl.tail(10))
			}
			var rep wsClientReport
			if json.Unmarshal([]byte(l), &rep) != nil {
				continue
			}
			if !rep.Done {
				h.logf("%d of %d WebSockets open, %d failed", rep.Opened, o.scaleWS, rep.Failed)
				continue
			}
			done = rep
			break wait
		case <-deadline:
			return fmt.Errorf("the WebSocket clients did not finish within %s", o.phaseTimeout+time.Minute)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.wsTime = time.Since(start)
	r.wsOpened, r.wsFailed = done.Opened, done.Failed
	if done.Err != "" {
		r.wsErr = done.Err
	}
	h.logf("%d WebSockets open, %d failed, in %s", r.wsOpened, r.wsFailed, r.wsTime.Round(100*time.Millisecond))
	r.cloudWS = cloudMem(ctx, s.cloudPID(), metricsURL, o.settle)
	r.benchWS = hostsMem(ctx, conns, o.settle)
	r.clientsRSS = readProc(cl.pid()).rss
	h.logf("cloud: RSS %s, heap %s; connector hosts: RSS %s, heap %s; clients: RSS %s", fmtMB(r.cloudWS.rss), fmtMB(r.cloudWS.heap), fmtMB(r.benchWS.rss), fmtMB(r.benchWS.heap), fmtMB(r.clientsRSS))
	h.logf("checking that every WebSocket still echoes")
	if err := send("check"); err != nil {
		return err
	}
	select {
	case l, ok := <-lines:
		var rep wsClientReport
		if ok && json.Unmarshal([]byte(l), &rep) == nil {
			r.wsAlive = rep.Alive
		}
	case <-time.After(5 * time.Minute):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// startLineChild starts a child whose standard output is read line by
// line; send writes a line to its standard input.
func startLineChild(h *harness, name, path string, args ...string) (*child, <-chan string, func(string) error, error) {
	cmd := exec.Command(path, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := h.startCmd(name, cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	c.stdin = stdin
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	send := func(l string) error {
		_, err := io.WriteString(stdin, l+"\n")
		return err
	}
	return c, lines, send, nil
}

// cloudMem reads the cloud's RSS (once steady) and its heap and
// goroutines from its metrics endpoint.
func cloudMem(ctx context.Context, pid int, metricsURL string, settle time.Duration) procMem {
	m := procMem{rss: settleRSS(ctx, []int{pid}, settle, 5*settle)[0]}
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(metricsURL)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if v, ok := promValue(string(body), "go_memstats_heap_inuse_bytes"); ok {
		m.heap = int64(v)
	}
	if v, ok := promValue(string(body), "go_goroutines"); ok {
		m.goroutines = int(v)
	}
	return m
}

// cloudCounter reads one metric of the cloud's (-1 when it cannot).
func cloudCounter(ctx context.Context, metricsURL, name string) float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return -1
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if v, ok := promValue(string(body), name); ok {
		return v
	}
	return -1
}

// idleCPU is the share of one CPU the cloud and the connector hosts used
// over d.
func idleCPU(ctx context.Context, cloudPID int, hosts []*connectorHost, d time.Duration) (cloud, conns float64) {
	c0, b0 := readProc(cloudPID).cpu, hostsCPU(hosts)
	t0 := time.Now()
	sleep(ctx, d)
	el := time.Since(t0).Seconds()
	return (readProc(cloudPID).cpu - c0).Seconds() / el, (hostsCPU(hosts) - b0).Seconds() / el
}

// fdMargin open files are left to the cloud besides the WebSockets.
const fdMargin = 300

// countFDs is the number of open files of pid (-1 if unknown).
func countFDs(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

// logEvery logs line() every d until stop is called.
func logEvery(h *harness, d time.Duration, line func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.logf("%s", line())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// ---------------------------------------------------------------------------
// Pure helpers (bench_test.go)

// sourceAddr is the i-th loopback address of block b: 127.b.x.y, y from
// 1 to 250.
func sourceAddr(b, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(b), byte(i / 250), byte(i%250 + 1)})
}

// sourceRange is the first n addresses of block b.
func sourceRange(b, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = sourceAddr(b, i)
	}
	return out
}

// tokenUses splits n registrations over tokens of at most maxTokenUses.
func tokenUses(n int) []int {
	var out []int
	for ; n > 0; n -= maxTokenUses {
		out = append(out, min(n, maxTokenUses))
	}
	return out
}

// backendsFor is the number of backends for n WebSockets (at least one).
func backendsFor(n int) int {
	return max(1, int(math.Ceil(float64(n)/wsPerBackend)))
}

// fdsNeeded is a generous bound on the open files of the busiest process
// of a -scale run (the bench: tunnels, state files, connections to the
// backends; the cloud: tunnels and WebSockets).
func fdsNeeded(connectors, tunnels, ws int) uint64 {
	return uint64(connectors*(tunnels+4)+2*ws) + 10000
}

// promValue is the value of an unlabelled sample name in Prometheus text.
func promValue(text, name string) (float64, bool) {
	for _, l := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(l, name)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// perItem is the cost of one item: (after - before) / n, 0 when n is 0.
func perItem(before, after int64, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(after-before) / float64(n)
}

// ---------------------------------------------------------------------------
// The registrations' CONNECT proxy

// connectProxy is an HTTP CONNECT proxy on 127.0.0.1 that dials each
// connection from the next of its loopback source addresses, as if the
// simulated connectors registered from many machines: the cloud allows 5
// registrations a second (30 at once) per client address. It dials
// loopback addresses only.
type connectProxy struct {
	ln      net.Listener
	sources []netip.Addr
	next    atomic.Uint64
	wg      sync.WaitGroup
}

func startConnectProxy(sources []netip.Addr) (*connectProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &connectProxy{ln: ln, sources: sources}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.serve(c) })
		}
	})
	return p, nil
}

func (p *connectProxy) addr() string { return p.ln.Addr().String() }

func (p *connectProxy) close() {
	p.ln.Close()
	p.wg.Wait()
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	ap, err := netip.ParseAddrPort(req.Host)
	if req.Method != http.MethodConnect || err != nil || !ap.Addr().IsLoopback() {
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	src := p.sources[p.next.Add(1)%uint64(len(p.sources))]
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	up, err := d.Dial("tcp", ap.String())
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	up.SetDeadline(time.Now().Add(2 * time.Minute))
	var wg sync.WaitGroup
	wg.Go(func() {
		io.Copy(up, br)
		up.(*net.TCPConn).CloseWrite()
	})
	io.Copy(c, up)
	c.(*net.TCPConn).CloseWrite()
	wg.Wait()
}

// ---------------------------------------------------------------------------
// The report

func fmtKB(v float64) string {
	if v == 0 || math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.1f KB", v/1e3)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return oneLine(s)
}

func (r *scaleResult) print(w io.Writer, source string) {
	fmt.Fprintf(w, "### Scale: %s connectors × %d tunnel(s), %s idle WebSockets, one cloud\n\n", fmtNum(float64(r.wantConnectors)), r.tunnelsEach, fmtNum(float64(r.wantWS)))
	fmt.Fprintf(w, "%s; open files limit %d; connectors' state directories under %s.", machineLine(source), r.fdLimit, r.stateDir)
	if r.cloudArgs != "" {
		fmt.Fprintf(w, " `cloud serve` with `%s`.", r.cloudArgs)
	}
	fmt.Fprint(w, "\n\n")
	listed := "–"
	if r.listed >= 0 {
		listed = fmtNum(float64(r.listed))
	}
	alive := ""
	if r.wsOpened > 0 {
		alive = fmt.Sprintf(" (%s echo afterwards)", fmtNum(float64(r.wsAlive)))
	}
	table(w, []string{"phase", "target", "reached", "took", "stopped because / first error"}, [][]string{
		{"connectors registered", fmtNum(float64(r.wantConnectors)), fmtNum(float64(r.registered)), fmtDur(r.registerTime.Seconds()), orDash(r.registerErr)},
		{"tunnels up", fmtNum(float64(r.registered * r.tunnelsEach)), fmt.Sprintf("%s (%s connectors complete, %s listed active)", fmtNum(float64(r.tunnelsUp)), fmtNum(float64(r.connected)), listed),
			fmtDur(r.connectTime.Seconds()), orDash(r.connectErr)},
		{"idle WebSockets", fmtNum(float64(r.wantWS)), fmtNum(float64(r.wsOpened)) + alive, fmtDur(r.wsTime.Seconds()), orDash(strings.Trim(r.wsCapped+"; "+r.wsErr, "; "))},
	})
	row := func(name string, c, b procMem) []string {
		return []string{name, fmtMB(c.rss), fmtMB(c.heap), fmtNum(float64(c.goroutines)), fmtMB(b.rss), fmtMB(b.heap), fmtNum(float64(b.goroutines))}
	}
	rows := [][]string{
		row("before the tunnels", r.cloudBase, r.benchBase),
		row(fmt.Sprintf("%s tunnels up", fmtNum(float64(r.tunnelsUp))), r.cloudConn, r.benchConn),
	}
	if r.wsOpened > 0 {
		rows = append(rows, row(fmt.Sprintf("+ %s idle WebSockets", fmtNum(float64(r.wsOpened))), r.cloudWS, r.benchWS))
	}
	fmt.Fprintf(w, "Tunnels: 90 %% up after %s; at most %.0f came up in one second (the cloud's handshake rate); the cloud closed %.0f connections before TLS (no handshake slot, `--max-handshakes`) and %.0f handshakes failed or timed out.\n\n",
		fmtDur(r.connect90.Seconds()), r.peakRate, r.hsRefused, r.hsFailed)
	table(w, []string{"memory", "cloud RSS", "cloud heap", "cloud goroutines", "connectors RSS", "connectors heap", "connectors goroutines"}, rows)
	per := [][]string{{"per tunnel (and its connector)",
		fmtKB(perItem(r.cloudBase.rss, r.cloudConn.rss, r.tunnelsUp)), fmtKB(perItem(r.cloudBase.heap, r.cloudConn.heap, r.tunnelsUp)),
		fmtKB(perItem(r.benchBase.rss, r.benchConn.rss, r.tunnelsUp)), fmtKB(perItem(r.benchBase.heap, r.benchConn.heap, r.tunnelsUp))}}
	if r.wsOpened > 0 {
		per = append(per, []string{"per idle WebSocket",
			fmtKB(perItem(r.cloudConn.rss, r.cloudWS.rss, r.wsOpened)), fmtKB(perItem(r.cloudConn.heap, r.cloudWS.heap, r.wsOpened)),
			fmtKB(perItem(r.benchConn.rss, r.benchWS.rss, r.wsOpened)), fmtKB(perItem(r.benchConn.heap, r.benchWS.heap, r.wsOpened))})
	}
	table(w, []string{"cost", "cloud RSS", "cloud heap", "connector side RSS", "connector side heap"}, per)
	fmt.Fprintf(w, "With every tunnel up and nothing else moving, over 10 s: the cloud used %.1f %% of one CPU, the simulated connectors %.1f %%.", 100*r.cloudIdleCPU, 100*r.benchIdleCPU)
	fmt.Fprintf(w, " The cloud held %d open files before the tunnels, %d with them.", r.cloudFDsBase, r.cloudFDs)
	if r.clientsRSS > 0 {
		fmt.Fprintf(w, " The WebSocket clients' process (not counted above) held %s.", fmtMB(r.clientsRSS))
	}
	fmt.Fprintln(w)
}
