package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat and /proc/stat
// (USER_HZ, 100 on every Linux architecture Go supports).
const userHZ = 100

// procSample is one reading of a process's /proc files (Linux only; on
// other systems every field stays zero and ok is false).
type procSample struct {
	ok       bool
	cpu      time.Duration // utime + stime, all threads
	rss      int64         // VmRSS, bytes
	hwm      int64         // VmHWM (peak RSS since start or the last resetPeak), bytes
	threads  int
	syscalls int64 // read and write system calls (syscr + syscw of /proc/PID/io)
}

// readProc reads the CPU time and resident memory of pid.
func readProc(pid int) procSample {
	if pid <= 0 {
		return procSample{}
	}
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return s
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s
	}
	s.cpu = time.Duration(ut+st) * time.Second / userHZ
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			s.rss = n << 10
		case "VmHWM":
			s.hwm = n << 10
		case "Threads":
			s.threads = int(n)
		}
	}
	s.ok = true
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, l := range strings.Split(string(io), "\n") {
			k, v, _ := strings.Cut(l, ":")
			if k == "syscr" || k == "syscw" {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				s.syscalls += n
			}
		}
	}
	return s
}

// resetPeak resets VmHWM of pid to its current RSS (Linux clear_refs 5),
// so that the next reading's peak covers only what happened in between.
// It reports whether the kernel allowed it.
func resetPeak(pid int) bool {
	if pid <= 0 {
		return false
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// machineCPU returns the busy CPU time of the whole machine (every CPU:
// user, nice, system, irq, softirq; not idle, iowait or steal) and, of
// it, the softirq time (network receive work, charged to no process),
// from /proc/stat; zeros if it cannot be read.
func machineCPU() (busy, softirq time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0
	}
	var n [7]int64 // user nice system idle iowait irq softirq
	for i := range n {
		n[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	tick := func(v int64) time.Duration { return time.Duration(v) * time.Second / userHZ }
	return tick(n[0] + n[1] + n[2] + n[5] + n[6]), tick(n[6])
}

// watched is a process whose cost a measurement accounts for.
type watched struct {
	name string // "cloud", "connector", "backend", "other"
	pids []int
}

// usage is what watched processes spent during one measurement.
type usage struct {
	cpu      time.Duration // CPU time of all the pids
	peak     int64         // sum of the pids' peak RSS during the run
	rss      int64         // sum of the pids' RSS at the end
	syscalls int64         // read and write system calls
	ok       bool
}

// meter takes readings of watched processes and of the machine around one
// measurement.
type meter struct {
	procs    []watched
	start    map[string]procSample
	machine0 time.Duration
	softirq0 time.Duration
	wall0    time.Time
}

func newMeter(procs []watched) *meter {
	return &meter{procs: procs}
}

// begin resets the peaks and records the starting CPU times.
func (m *meter) begin() {
	m.start = map[string]procSample{}
	for _, w := range m.procs {
		var sum procSample
		for _, pid := range w.pids {
			resetPeak(pid)
			s := readProc(pid)
			sum.cpu += s.cpu
			sum.syscalls += s.syscalls
		}
		m.start[w.name] = sum
	}
	m.machine0, m.softirq0 = machineCPU()
	m.wall0 = time.Now()
}

// machineUse is what the whole machine did during one measurement.
type machineUse struct {
	busy    time.Duration // busy CPU time of all CPUs
	softirq time.Duration // of it, softirq
	wall    time.Duration
}

// end returns what each watched process spent since begin, and what the
// whole machine did.
func (m *meter) end() (map[string]usage, machineUse) {
	busy, softirq := machineCPU()
	machine := machineUse{busy: busy - m.machine0, softirq: softirq - m.softirq0, wall: time.Since(m.wall0)}
	out := map[string]usage{}
	for _, w := range m.procs {
		var u usage
		u.ok = len(w.pids) > 0
		for _, pid := range w.pids {
			s := readProc(pid)
			u.ok = u.ok && s.ok
			u.cpu += s.cpu
			u.peak += max(s.hwm, s.rss)
			u.rss += s.rss
			u.syscalls += s.syscalls
		}
		u.cpu -= m.start[w.name].cpu
		u.syscalls -= m.start[w.name].syscalls
		out[w.name] = u
	}
	return out, machine
}

// settleRSS waits until the resident memory of every pid has stopped
// moving — its readings over the last window (taken every 100 ms) differ
// by less than 1 % or 256 KiB — or until maxWait passes (the Go runtime
// returns freed memory to the system gradually). It returns the last
// reading of each pid.
func settleRSS(ctx context.Context, pids []int, window, maxWait time.Duration) []int64 {
	const every = 100 * time.Millisecond
	keep := max(2, int(window/every)+1)
	hist := make([][]int64, len(pids))
	deadline := time.Now().Add(maxWait)
	for {
		stable := true
		for i, pid := range pids {
			hist[i] = append(hist[i], readProc(pid).rss)
			if len(hist[i]) > keep {
				hist[i] = hist[i][1:]
			}
			lo, hi := slices.Min(hist[i]), slices.Max(hist[i])
			if len(hist[i]) < keep || (hi-lo > 256<<10 && float64(hi-lo) > 0.01*float64(hi)) {
				stable = false
			}
		}
		if stable || time.Now().After(deadline) || ctx.Err() != nil {
			out := make([]int64, len(pids))
			for i := range pids {
				out[i] = hist[i][len(hist[i])-1]
			}
			return out
		}
		sleep(ctx, every)
	}
}

// busyNow is the share of the machine's CPU capacity in use over the
// next d (0 to 1).
func busyNow(ctx context.Context, d time.Duration) float64 {
	b0, _ := machineCPU()
	t0 := time.Now()
	sleep(ctx, d)
	b1, _ := machineCPU()
	capacity := time.Since(t0).Seconds() * float64(runtime.NumCPU())
	if b1 <= b0 || capacity <= 0 {
		return 0
	}
	return (b1 - b0).Seconds() / capacity
}
