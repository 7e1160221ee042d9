package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The report: medians over rounds of every measurement, each path also as
// a ratio to the direct path, the cost of the proxy processes, idle
// memory, WebSockets, and the targets. Markdown tables, so that
// RESULTS.md can quote them as printed. MB is 10^6 bytes, KB 10^3 bytes.

// run is one measurement: one test on one path in one round.
type run struct {
	round   int
	test    string // testSmall, testDownload, testUpload
	target  string
	res     result
	use     map[string]usage // by watched process name
	machine machineUse
}

// ours is the CPU time of everything the run consists of: the watched
// processes (bench, backend, cloud, connector, other), wrk, and the
// kernel's softirq work (loopback packets).
func (r run) ours() time.Duration {
	t := r.machine.softirq + r.res.toolCPU
	for _, u := range r.use {
		t += u.cpu
	}
	return t
}

// foreign is the share of the machine's capacity that other programs
// used during the run (0 to 1; 0 when unknown).
func (r run) foreign() float64 {
	capacity := r.machine.wall.Seconds() * float64(runtime.NumCPU())
	if r.machine.busy <= 0 || capacity <= 0 {
		return 0
	}
	return max(0, (r.machine.busy-r.ours()).Seconds()/capacity)
}

const (
	testSmall    = "small"
	testDownload = "download"
	testUpload   = "upload"
)

type report struct {
	opts        *options
	tool        string // load generator of small requests
	targets     []string
	otherProcs  bool // -other-pids given
	runs        []run
	setupCloud  int64 // cloud RSS after the setup (logins), before the restart
	idleCloud   int64 // fresh cloud, connector connected, one request served
	idleConn    int64
	idleTunnels int
	ws          *wsResult
	wsErr       error
	started     time.Time
	source      string // what the sallyport binary was built from
}

func (rp *report) runsFor(test, target string) []run {
	var out []run
	for _, r := range rp.runs {
		if r.test == test && r.target == target {
			out = append(out, r)
		}
	}
	return out
}

func median(xs []float64) float64 {
	xs = slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return math.IsNaN(x) })
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// med is the median over runs of f.
func med(runs []run, f func(run) float64) float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return median(xs)
}

// peak is the largest peak RSS of process name over runs.
func peak(runs []run, name string) int64 {
	var p int64
	for _, r := range runs {
		if u := r.use[name]; u.ok {
			p = max(p, u.peak)
		}
	}
	return p
}

// perK is CPU seconds per 1000 requests (NaN without requests or readings).
func perK(cpu time.Duration, ok bool, requests int64) float64 {
	if !ok || requests <= 0 {
		return math.NaN()
	}
	return cpu.Seconds() / float64(requests) * 1000
}

// perReq is a count per request (NaN without requests or readings).
func perReq(n int64, ok bool, requests int64) float64 {
	if !ok || requests <= 0 {
		return math.NaN()
	}
	return float64(n) / float64(requests)
}

// perGB is CPU seconds per 10^9 bytes transferred.
func perGB(cpu time.Duration, ok bool, bytes int64) float64 {
	if !ok || bytes <= 0 {
		return math.NaN()
	}
	return cpu.Seconds() / (float64(bytes) / 1e9)
}

// ---------------------------------------------------------------------------
// Formatting

func fmtNum(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	s := fmt.Sprintf("%.0f", v)
	// thin groups of three digits: 15 234
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtDur(d float64) string { // d in seconds
	switch {
	case math.IsNaN(d) || d <= 0:
		return "–"
	case d < 1e-3:
		return fmt.Sprintf("%.0f µs", d*1e6)
	case d < 10e-3:
		return fmt.Sprintf("%.2f ms", d*1e3)
	case d < 1:
		return fmt.Sprintf("%.1f ms", d*1e3)
	}
	return fmt.Sprintf("%.2f s", d)
}

func fmtRatio(v, base float64) string {
	if math.IsNaN(v) || math.IsNaN(base) || base == 0 {
		return "–"
	}
	r := v / base
	if r >= 10 {
		return fmt.Sprintf("%.0f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

func fmtF(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func fmtMB(b int64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}

// table writes a Markdown table with aligned columns.
func table(w io.Writer, head []string, rows [][]string) {
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			pad := width[i] - len([]rune(c))
			if i == 0 {
				b.WriteString(" " + c + strings.Repeat(" ", pad) + " |")
			} else {
				b.WriteString(" " + strings.Repeat(" ", pad) + c + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		if i == 0 {
			sep[i] = strings.Repeat("-", width[i])
		} else {
			sep[i] = strings.Repeat("-", width[i]-1) + ":"
		}
	}
	fmt.Fprintln(w, "|"+strings.Join(func() []string {
		out := make([]string, len(sep))
		for i, s := range sep {
			out[i] = " " + s + " "
		}
		return out
	}(), "|")+"|")
	for _, r := range rows {
		line(r)
	}
	fmt.Fprintln(w)
}

// ---------------------------------------------------------------------------

// machineLine describes this machine and what was measured.
func machineLine(source string) string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s; sallyport from %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version(), source)
}

func (rp *report) print(w io.Writer) {
	o := rp.opts
	fmt.Fprintf(w, "\n## Sallyport bench, %s\n\n", rp.started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "%s\n\n", machineLine(rp.source))
	fmt.Fprintf(w, "Median of %d round(s) of %s per measurement, paths interleaved in each round. "+
		"Small requests: GET of a %d-byte body, %d connections, HTTP/1.1 keep-alive, load by %s. "+
		"Transfers: %s bodies, %d connections, built-in client. Sallyport: edge over TLS, connector with %d tunnels. "+
		"MB = 10^6 bytes.\n\n",
		o.rounds, o.duration, len(smallBody), o.conns, rp.tool, fmtSize(o.size), o.xferConns, rp.idleTunnels)

	direct := rp.runsFor(testSmall, "direct")
	baseRPS := med(direct, func(r run) float64 { return r.res.rps })
	baseP50 := med(direct, func(r run) float64 { return r.res.p50.Seconds() })
	baseP99 := med(direct, func(r run) float64 { return r.res.p99.Seconds() })
	baseMachine := med(direct, func(r run) float64 { return perK(r.ours(), r.machine.busy > 0, r.res.requests) })
	baseBackend := med(direct, func(r run) float64 { u := r.use["backend"]; return perK(u.cpu, u.ok, r.res.requests) })
	baseBackendRSS := peak(direct, "backend")

	fmt.Fprintf(w, "### Small requests (%d B body, %d connections)\n\n", len(smallBody), o.conns)
	var rows [][]string
	for _, t := range rp.targets {
		rs := rp.runsFor(testSmall, t)
		if len(rs) == 0 {
			continue
		}
		rps := med(rs, func(r run) float64 { return r.res.rps })
		p50 := med(rs, func(r run) float64 { return r.res.p50.Seconds() })
		p99 := med(rs, func(r run) float64 { return r.res.p99.Seconds() })
		mach := med(rs, func(r run) float64 { return perK(r.ours(), r.machine.busy > 0, r.res.requests) })
		other := med(rs, func(r run) float64 { return 100 * r.foreign() })
		var errs int64
		for _, r := range rs {
			errs += r.res.errors
		}
		rows = append(rows, []string{t, fmtNum(rps), fmtRatio(rps, baseRPS), fmtDur(p50), fmtRatio(p50, baseP50),
			fmtDur(p99), fmtRatio(p99, baseP99), fmt.Sprint(errs), fmtF(mach, 3), fmtRatio(mach, baseMachine), fmtF(other, 0) + " %"})
	}
	table(w, []string{"path", "req/s", "× direct", "p50", "× direct", "p99", "× direct", "errors", "all CPU s/1k req", "× direct", "other load"}, rows)
	rp.printPreauth(w)
	rp.printForeign(w)

	fmt.Fprintf(w, "### Cost of each process under the small-request load\n\n")
	fmt.Fprintf(w, "CPU seconds per 1000 requests, read and write system calls per request (/proc/PID/io) and peak RSS during the run; ratios to the backend's in the direct run. The load generator (wrk, or the bench's built-in client) and the kernel's softirq work (loopback receive, charged to no process) complete the 'all CPU' column above.\n\n")
	rows = nil
	addProc := func(t, name, label string, rs []run) {
		if len(rs) == 0 {
			return
		}
		cpu := med(rs, func(r run) float64 { u := r.use[name]; return perK(u.cpu, u.ok, r.res.requests) })
		sys := med(rs, func(r run) float64 { u := r.use[name]; return perReq(u.syscalls, u.ok, r.res.requests) })
		pk := peak(rs, name)
		rows = append(rows, []string{t, label, fmtF(cpu, 4), fmtRatio(cpu, baseBackend), fmtF(sys, 1), fmtMB(pk), fmtRatio(float64(pk), float64(baseBackendRSS))})
	}
	addProc("direct", "backend", "backend", direct)
	sp := rp.runsFor(testSmall, "sallyport")
	addProc("sallyport", "cloud", "cloud", sp)
	addProc("sallyport", "connector", "connector", sp)
	if len(sp) > 0 {
		cpu := med(sp, func(r run) float64 {
			c, k := r.use["cloud"], r.use["connector"]
			return perK(c.cpu+k.cpu, c.ok && k.ok, r.res.requests)
		})
		sys := med(sp, func(r run) float64 {
			c, k := r.use["cloud"], r.use["connector"]
			return perReq(c.syscalls+k.syscalls, c.ok && k.ok, r.res.requests)
		})
		pk := peak(sp, "cloud") + peak(sp, "connector")
		rows = append(rows, []string{"sallyport", "cloud + connector", fmtF(cpu, 4), fmtRatio(cpu, baseBackend), fmtF(sys, 1), fmtMB(pk), fmtRatio(float64(pk), float64(baseBackendRSS))})
	}
	addProc("sallyport", "backend", "backend", sp)
	br := rp.runsFor(testSmall, "bare relay")
	addProc("bare relay", "bare", "edge + site", br)
	addProc("bare relay", "backend", "backend", br)
	if rp.otherProcs {
		addProc(o.otherName, "other", "its -other-pids", rp.runsFor(testSmall, o.otherName))
	}
	// What the rest of a request costs on each path: the client and the
	// kernel's receive work on loopback (charged to no process).
	for _, t := range rp.targets {
		rs := rp.runsFor(testSmall, t)
		if len(rs) == 0 {
			continue
		}
		load := med(rs, func(r run) float64 {
			b := r.use["bench"]
			return perK(r.res.toolCPU+b.cpu, b.ok || r.res.toolCPU > 0, r.res.requests)
		})
		sirq := med(rs, func(r run) float64 { return perK(r.machine.softirq, r.machine.busy > 0, r.res.requests) })
		rows = append(rows,
			[]string{t, "load generator", fmtF(load, 4), fmtRatio(load, baseBackend), "", "", ""},
			[]string{t, "kernel softirq", fmtF(sirq, 4), fmtRatio(sirq, baseBackend), "", "", ""})
	}
	table(w, []string{"path", "process", "CPU s/1k req", "× backend direct", "read+write syscalls/req", "peak RSS", "× backend direct"}, rows)

	fmt.Fprintf(w, "### %s transfers (%d connections)\n\n", fmtSize(o.size), o.xferConns)
	fmt.Fprintf(w, "Throughput in GB/s (10^9 bytes/s). Proxy CPU and syscalls are the cloud's and the connector's together (the backend's for direct, -other-pids' for another proxy): CPU seconds per GB moved, read+write system calls per MB.\n\n")
	rows = nil
	dd, du := rp.runsFor(testDownload, "direct"), rp.runsFor(testUpload, "direct")
	baseDown := med(dd, func(r run) float64 { return r.res.gbps })
	baseUp := med(du, func(r run) float64 { return r.res.gbps })
	// proxyUse is what the processes of path t's proxy spent in r.
	proxyUse := func(t string, r run) usage {
		switch t {
		case "direct":
			return r.use["backend"]
		case "sallyport":
			c, k := r.use["cloud"], r.use["connector"]
			return usage{cpu: c.cpu + k.cpu, syscalls: c.syscalls + k.syscalls, ok: c.ok && k.ok}
		case "bare relay":
			return r.use["bare"]
		}
		return r.use["other"]
	}
	proxyCPU := func(t string, rs []run) float64 {
		return med(rs, func(r run) float64 { u := proxyUse(t, r); return perGB(u.cpu, u.ok, r.res.bytes) })
	}
	proxySys := func(t string, rs []run) float64 { // read+write system calls per MB moved
		return med(rs, func(r run) float64 { u := proxyUse(t, r); return perReq(u.syscalls, u.ok, r.res.bytes/1e6) })
	}
	for _, t := range rp.targets {
		down, up := rp.runsFor(testDownload, t), rp.runsFor(testUpload, t)
		if len(down)+len(up) == 0 {
			continue
		}
		connPeak := "–"
		if t == "sallyport" {
			connPeak = fmtMB(max(peak(down, "connector"), peak(up, "connector")))
		}
		dg := med(down, func(r run) float64 { return r.res.gbps })
		ug := med(up, func(r run) float64 { return r.res.gbps })
		var errs int64
		for _, r := range append(down, up...) {
			errs += r.res.errors
		}
		rows = append(rows, []string{t, fmtF(dg, 2), fmtRatio(dg, baseDown), fmtF(ug, 2), fmtRatio(ug, baseUp), fmt.Sprint(errs),
			fmtF(proxyCPU(t, down), 2), fmtF(proxyCPU(t, up), 2), fmtF(proxySys(t, down), 1), fmtF(proxySys(t, up), 1), connPeak})
	}
	table(w, []string{"path", "download GB/s", "× direct", "upload GB/s", "× direct", "errors", "proxy CPU s/GB down", "up", "proxy syscalls/MB down", "up", "connector peak RSS"}, rows)

	fmt.Fprintf(w, "### Memory at rest and per idle WebSocket\n\n")
	rows = [][]string{
		{"cloud RSS after the setup (2 password logins)", fmtMB(rp.setupCloud)},
		{"cloud RSS, idle (fresh start, one request served)", fmtMB(rp.idleCloud)},
		{fmt.Sprintf("connector RSS, idle (fresh start, %d tunnels, one request served)", rp.idleTunnels), fmtMB(rp.idleConn)},
		{"connector peak RSS under small-request load", fmtMB(peak(sp, "connector"))},
		{"connector peak RSS under transfers", fmtMB(max(peak(rp.runsFor(testDownload, "sallyport"), "connector"), peak(rp.runsFor(testUpload, "sallyport"), "connector")))},
		{"cloud peak RSS under any load", fmtMB(max(peak(sp, "cloud"), peak(rp.runsFor(testDownload, "sallyport"), "cloud"), peak(rp.runsFor(testUpload, "sallyport"), "cloud")))},
	}
	if ws := rp.ws; ws != nil {
		rows = append(rows,
			[]string{"idle WebSockets open through one connector", fmt.Sprintf("%d of %d (%d still echoing; %d tunnels; opened in %s)", ws.opened, ws.n, ws.alive, ws.tunnels, ws.openTime.Round(time.Millisecond))},
			[]string{fmt.Sprintf("connector RSS before (fresh start, %d tunnels) → with them open", ws.tunnels), fmtMB(ws.connBefore) + " → " + fmtMB(ws.connOpen)},
			[]string{"connector RSS per idle WebSocket", fmt.Sprintf("%.1f KB", ws.perConnector/1e3)},
			[]string{"cloud RSS before (fresh start) → with them open", fmtMB(ws.cloudBefore) + " → " + fmtMB(ws.cloudOp)},
			[]string{"cloud RSS per idle WebSocket", fmt.Sprintf("%.1f KB", ws.perCloud/1e3)},
		)
	}
	if rp.wsErr != nil {
		rows = append(rows, []string{"WebSockets", "failed: " + oneLine(rp.wsErr.Error())})
	}
	table(w, []string{"measure", "value"}, rows)

	rp.printTargets(w)
}

// printForeign warns when other programs used the machine meanwhile.
func (rp *report) printForeign(w io.Writer) {
	var fs []float64
	for _, r := range rp.runs {
		fs = append(fs, r.foreign())
	}
	if len(fs) == 0 {
		return
	}
	m, hi := median(fs), slices.Max(fs)
	if hi < 0.05 {
		return
	}
	fmt.Fprintf(w, "Warning: other programs used the machine during the measurements: %.0f %% of its CPU capacity in the median run, %.0f %% at most. Their load lowers throughput and raises latency; CPU per request is less affected.\n\n", 100*m, 100*hi)
}

// printTargets compares with the targets (informative only: the
// bench never fails on them).
func (rp *report) printTargets(w io.Writer) {
	sp := rp.runsFor(testSmall, "sallyport")
	if len(sp) == 0 {
		return
	}
	o := rp.opts
	mark := func(ok bool, comparable bool) string {
		switch {
		case !comparable:
			return "n/a"
		case ok:
			return "met"
		}
		return "NOT met"
	}
	rps := med(sp, func(r run) float64 { return r.res.rps })
	p99 := med(sp, func(r run) float64 { return r.res.p99.Seconds() })
	down := med(rp.runsFor(testDownload, "sallyport"), func(r run) float64 { return r.res.gbps })
	up := med(rp.runsFor(testUpload, "sallyport"), func(r run) float64 { return r.res.gbps })
	loadPeak := max(peak(sp, "connector"), peak(rp.runsFor(testDownload, "sallyport"), "connector"), peak(rp.runsFor(testUpload, "sallyport"), "connector"))
	std := o.conns == 50 && o.xferConns == 4 && o.size == 10<<20
	fmt.Fprintf(w, "### Against the issue's targets (informative; the bench never fails on them)\n\n")
	rows := [][]string{
		{"small requests through the edge ≥ 15 000 req/s", fmtNum(rps), mark(rps >= 15000, o.conns == 50)},
		{"p99 ≤ 10 ms at 50 connections", fmtDur(p99), mark(p99 <= 0.010, o.conns == 50)},
		{"10 MiB downloads ≥ 1.2 GB/s (4 connections)", fmtF(down, 2) + " GB/s", mark(down >= 1.2, std)},
		{"10 MiB uploads ≥ 1.2 GB/s (4 connections)", fmtF(up, 2) + " GB/s", mark(up >= 1.2, std)},
		{"connector idle RSS ≤ 20 MB", fmtMB(rp.idleConn), mark(rp.idleConn <= 20e6, rp.idleConn > 0)},
		{"connector RSS under load ≤ 64 MB", fmtMB(loadPeak), mark(loadPeak <= 64e6, loadPeak > 0 && std)},
	}
	if ws := rp.ws; ws != nil {
		rows = append(rows, []string{fmt.Sprintf("≤ 40 KB per idle WebSocket at the connector (5 000 open; here %d)", ws.opened),
			fmt.Sprintf("%.1f KB", ws.perConnector/1e3), mark(ws.perConnector <= 40e3, ws.opened >= 5000)})
	}
	table(w, []string{"target", "measured", "status"}, rows)
	if !std || o.conns != 50 {
		fmt.Fprintf(w, "(n/a: this run does not use the targets' conditions — 50 connections, 4 × 10 MiB, 5 000 WebSockets.)\n\n")
	}
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// printPreauth compares the pre-authenticated application with the
// passthrough one, round by round (each round measures both back to
// back, so the ratio of a round is less noisy than the ratio of medians).
func (rp *report) printPreauth(w io.Writer) {
	pre, pass := rp.runsFor(testSmall, "sallyport-preauth"), rp.runsFor(testSmall, "sallyport")
	var ratios []float64
	for _, p := range pre {
		for _, q := range pass {
			if p.round == q.round && q.res.rps > 0 {
				ratios = append(ratios, p.res.rps/q.res.rps)
			}
		}
	}
	if len(ratios) == 0 {
		return
	}
	r := median(ratios)
	verdict := "within"
	if r < 0.90 {
		verdict = "NOT within"
	}
	fmt.Fprintf(w, "Pre-authentication: the same backend published with sign-in (session cookie checked by the gate, identity headers and the signed assertion added) serves %.2f× the small requests per second of the passthrough application (median of %d rounds' ratios) — %s the 10 %% budget.\n\n", r, len(ratios), verdict)
}
