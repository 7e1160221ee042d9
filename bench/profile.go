package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/cloud"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/tunnel"
	"github.com/sallyport/sallyport/internal/version"
)

// -profile DIR: the cloud and the connector run inside the bench process
// (the same packages 'cloud serve' and 'connector run' use, configured as
// the bench configures the binary), with pprof labels role=cloud and
// role=connector on all their goroutines, while the load runs against the
// edge. It writes DIR/cpu-small.pprof, cpu-download.pprof,
// cpu-upload.pprof, mutex-small.pprof, allocs-small.pprof and heap-ws.pprof (with the idle
// WebSockets open), and prints the top functions of each CPU profile,
// flat and cumulative, for both and for each role. The backend and wrk
// stay separate processes; the built-in load generator, when used, runs
// under role=load and is left out of the summaries.

// inProcess runs the cloud and the connector inside the bench.
type inProcess struct {
	logFile       *os.File
	tunnelVersion int

	mu        sync.Mutex
	cloudStop func()
	connStop  func()
}

func newInProcess(dir string) (*inProcess, error) {
	f, err := os.Create(filepath.Join(dir, "inprocess.log"))
	if err != nil {
		return nil, err
	}
	return &inProcess{logFile: f}, nil
}

func (p *inProcess) logger(component string) *slog.Logger {
	return slog.New(slog.NewTextHandler(p.logFile, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", component)
}

// labelled runs f in a new goroutine whose goroutines all carry the pprof
// label role; stop cancels its context and waits (at most 20 s) for f.
func labelled(role string, f func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go pprof.Do(ctx, pprof.Labels("role", role), func(ctx context.Context) {
		defer close(done)
		f(ctx)
	})
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
		}
	}
}

func (p *inProcess) startCloud(_ context.Context, dataDir, listen string) error {
	srv, err := cloud.New(cloud.Config{
		DataDir:           dataDir,
		Listen:            listen,
		ConnectorLimit:    1000000,
		MaxConnsPerSource: 1000000,
		ShutdownGrace:     time.Second,
		EdgeLimits:        edge.Limits{AppRate: 1e7, TenantRate: 1e7},
		Logger:            p.logger("cloud"),
	})
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		srv.Close()
		return err
	}
	stop := labelled("cloud", func(ctx context.Context) {
		defer srv.Close()
		if err := srv.Serve(ctx, ln); err != nil {
			p.logger("bench").Error("cloud stopped", "error", err.Error())
		}
	})
	p.mu.Lock()
	p.cloudStop = stop
	p.mu.Unlock()
	return nil
}

func (p *inProcess) startConnector(_ context.Context, dir string, n int) error {
	c, err := connector.New(connector.Config{
		Dir:           dir,
		Connections:   n,
		TunnelVersion: p.tunnelVersion,
		Version:       version.Version,
		Tunnel:        tunnel.ServerConfig{DrainTimeout: time.Second},
		Logger:        p.logger("connector"),
	})
	if err != nil {
		return err
	}
	stop := labelled("connector", func(ctx context.Context) {
		defer c.Close()
		if err := c.Run(ctx); err != nil {
			p.logger("bench").Error("connector stopped", "error", err.Error())
		}
	})
	p.mu.Lock()
	p.connStop = stop
	p.mu.Unlock()
	return nil
}

func (p *inProcess) stopConnector() {
	p.mu.Lock()
	stop := p.connStop
	p.connStop = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (p *inProcess) close() {
	p.stopConnector()
	p.mu.Lock()
	stop := p.cloudStop
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
	p.logFile.Close()
}

// runProfile is -profile DIR.
func runProfile(ctx context.Context, h *harness, backend *backendProc, o *options, wrk string) error {
	if err := os.MkdirAll(o.profile, 0o755); err != nil {
		return err
	}
	ip, err := newInProcess(h.dir)
	if err != nil {
		return err
	}
	defer ip.close()
	ip.tunnelVersion = o.tunnelVer
	h.logf("starting the cloud and a connector (%d tunnels) inside the bench", o.connections)
	sp, err := startSallyport(ctx, h, backend.addr, sallyportOpts{connections: o.connections, tunnelVersion: o.tunnelVer, inProcess: ip})
	if err != nil {
		return err
	}
	t := sp.target()
	load := func(test string, d time.Duration) (result, error) {
		var res result
		var err error
		pprof.Do(ctx, pprof.Labels("role", "load"), func(ctx context.Context) {
			res, err = runTest(ctx, o, wrk, test, t, d)
		})
		return res, err
	}
	h.logf("warming up for %s", o.warmup)
	for _, test := range []string{testSmall, testDownload, testUpload} {
		if _, err := load(test, max(o.warmup, time.Second)); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	var files []string
	for _, test := range []string{testSmall, testDownload, testUpload} {
		d := o.duration * time.Duration(o.rounds) // one long run instead of rounds
		path := filepath.Join(o.profile, "cpu-"+test+".pprof")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if test == testSmall {
			runtime.SetMutexProfileFraction(20)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		res, err := load(test, d)
		pprof.StopCPUProfile()
		f.Close()
		if test == testSmall {
			if err := writeProfile("mutex", filepath.Join(o.profile, "mutex-small.pprof")); err != nil {
				return err
			}
			// Allocations since the start (set-up and warm-up included:
			// read it for where, not how much).
			if err := writeProfile("allocs", filepath.Join(o.profile, "allocs-small.pprof")); err != nil {
				return err
			}
			runtime.SetMutexProfileFraction(0)
		}
		if err != nil {
			return err
		}
		logRun(h, o, run{round: 1, test: test, target: "sallyport", res: res})
		files = append(files, path)
	}
	if o.ws > 0 {
		need := max(o.connections, int(math.Ceil(float64(o.ws)/900)))
		if need > sp.tunnels {
			if err := sp.restartConnector(ctx, need); err != nil {
				return err
			}
		}
		err := withWebSockets(ctx, t, o.ws, func() error {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			h.logf("with %d idle WebSockets (bench, cloud and connector together): %d goroutines, heap in use %.1f MB, stacks %.1f MB",
				o.ws, runtime.NumGoroutine(), float64(ms.HeapInuse)/1e6, float64(ms.StackInuse)/1e6)
			if err := writeProfile("goroutine", filepath.Join(o.profile, "goroutine-ws.pprof")); err != nil {
				return err
			}
			return writeProfile("heap", filepath.Join(o.profile, "heap-ws.pprof"))
		})
		if err != nil {
			return err
		}
		h.logf("heap profile with %d idle WebSockets open: %s", o.ws, filepath.Join(o.profile, "heap-ws.pprof"))
	}
	defer func() {
		if o.ws > 0 {
			fmt.Printf("\n### heap-ws.pprof — memory in use with %d idle WebSockets open (cloud and connector together)\n\n```\n", o.ws)
			out, _ := exec.CommandContext(ctx, "go", "tool", "pprof", "-sample_index=inuse_space", "-top", "-nodecount=20",
				filepath.Join(o.profile, "heap-ws.pprof")).CombinedOutput()
			fmt.Printf("%s```\n", out)
		}
	}()
	fmt.Printf("\n## CPU profiles (cloud and connector in one process; profiles in %s)\n", o.profile)
	for _, f := range files {
		for _, view := range []struct {
			title string
			args  []string
		}{
			{"cloud + connector, flat", []string{"-top", "-nodecount=25", "-tagignore=role=load"}},
			{"cloud + connector, cumulative", []string{"-top", "-cum", "-nodecount=40", "-tagignore=role=load"}},
			{"cloud only, cumulative", []string{"-top", "-cum", "-nodecount=25", "-tagfocus=role=cloud"}},
			{"connector only, cumulative", []string{"-top", "-cum", "-nodecount=25", "-tagfocus=role=connector"}},
		} {
			fmt.Printf("\n### %s — %s\n\n```\n", filepath.Base(f), view.title)
			out, err := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, view.args...), f)...).CombinedOutput()
			if err != nil {
				fmt.Printf("go tool pprof failed: %v\n", err)
			}
			fmt.Printf("%s```\n", out)
		}
	}
	return nil
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	p := pprof.Lookup(name)
	if p == nil {
		return errors.New("no profile " + name)
	}
	return p.WriteTo(f, 0)
}

// withWebSockets opens n idle WebSockets through t, calls f, and closes them.
func withWebSockets(ctx context.Context, t *target, n int, f func() error) error {
	var conns []interface{ Close() error }
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		ws, err := openWS(ctx, t)
		if err != nil {
			return fmt.Errorf("opening WebSockets: %w", err)
		}
		conns = append(conns, ws)
	}
	return f()
}
