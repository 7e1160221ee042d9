package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrk (https://github.com/wg/wrk, Debian package "wrk") generates the
// small-request load when it is on PATH: it costs less CPU per request
// than any Go client, and its numbers compare with published ones.
//
// wrk takes the server name for TLS (SNI) from the URL, which holds the
// dialled address 127.0.0.1:PORT; the application is chosen by the Host
// header, given with -H. The edge then presents its default certificate,
// which wrk does not verify.

func wrkPath() string {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	return p
}

// runWrk runs wrk against t's /small for d (whole seconds, at least 1).
func runWrk(ctx context.Context, wrk string, t *target, conns, threads int, d time.Duration) (result, error) {
	secs := max(1, int(math.Ceil(d.Seconds())))
	threads = max(1, min(threads, conns))
	args := []string{
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", secs),
		"--latency", "--timeout", "10s", "-H", "Host: " + t.host,
	}
	for _, h := range t.headers {
		args = append(args, "-H", h)
	}
	args = append(args, t.url("/small"))
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	setChildAttrs(cmd)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return result{}, ctx.Err()
		}
		return result{}, fmt.Errorf("wrk %s: %v: %s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	r, err := parseWrk(out.String())
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %v; its output:\n%s", strings.Join(args, " "), err, out.String())
	}
	r.toolCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}

var (
	wrkTotalRe   = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),`)
	wrkRPSRe     = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkPctRe     = regexp.MustCompile(`(?m)^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
	wrkSockErrRe = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xxRe  = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads wrk's output (run with --latency): the requests, the
// rate, the 50th and 99th percentiles and the errors (socket errors plus
// non-2xx/3xx answers).
func parseWrk(out string) (result, error) {
	r := result{tool: "wrk"}
	m := wrkTotalRe.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no 'N requests in T' line")
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	el, err := wrkDuration(m[2], m[3])
	if err != nil {
		return r, err
	}
	r.elapsed = el
	m = wrkRPSRe.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no 'Requests/sec' line")
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	found := 0
	for _, m := range wrkPctRe.FindAllStringSubmatch(out, -1) {
		d, err := wrkDuration(m[2], m[3])
		if err != nil {
			return r, err
		}
		switch m[1] {
		case "50":
			r.p50 = d
			found++
		case "99":
			r.p99 = d
			found++
		}
	}
	if found != 2 {
		return r, fmt.Errorf("no latency distribution (was --latency given?)")
	}
	if m := wrkSockErrRe.FindStringSubmatch(out); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.errors += n
		}
	}
	if m := wrkNon2xxRe.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.errors += n
		if total := r.requests; total > 0 {
			r.requests -= n
			r.rps *= float64(r.requests) / float64(total) // successful answers only
		}
	}
	return r, nil
}

func wrkDuration(num, unit string) (time.Duration, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad duration %s%s", num, unit)
	}
	mult := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	return time.Duration(v * float64(mult)), nil
}
