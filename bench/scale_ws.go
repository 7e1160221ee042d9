package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"
)

// The WebSocket clients of -scale run in a child process of their own
// (the bench's executable with -ws-clients SPEC), so that the bench's heap
// holds only the simulated connectors' side of each WebSocket. The child
// opens spec.N WebSockets (64 at once) through the edge, round-robin over
// the applications' hosts and the source addresses, and writes one JSON
// line (wsClientReport) a second while opening and one with done=true at
// the end; then it keeps them open. A line "check" on its standard input
// has every WebSocket echo once, answered by a line with alive; the end
// of its standard input closes everything.

// wsClientSpec is the child's task.
type wsClientSpec struct {
	N        int           `json:"n"`
	Addr     string        `json:"addr"`  // the edge, 127.0.0.1:PORT
	Hosts    []string      `json:"hosts"` // applications' external hosts
	CAFile   string        `json:"ca_file"`
	Sources  []string      `json:"sources"` // loopback source addresses
	Deadline time.Duration `json:"deadline"`
}

// wsClientReport is one line of the child's output.
type wsClientReport struct {
	Opened int    `json:"opened"`
	Failed int    `json:"failed"`
	Done   bool   `json:"done,omitempty"`
	Err    string `json:"error,omitempty"` // why opening stopped early, or the first failure
	Alive  int    `json:"alive,omitempty"`
}

// giveUpAfter consecutive failures end the opening: a resource ran out
// (open files, ports, memory), and the count reached is the answer.
const giveUpAfter = 500

func serveWSClients(specJSON string) error {
	var spec wsClientSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	if spec.N <= 0 || len(spec.Hosts) == 0 || len(spec.Sources) == 0 {
		return errors.New("the spec needs n, hosts and sources")
	}
	pem, err := os.ReadFile(spec.CAFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no certificate", spec.CAFile)
	}
	var targets []*target
	for _, h := range spec.Hosts {
		for _, s := range spec.Sources {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return err
			}
			targets = append(targets, &target{name: "sallyport", scheme: "https", addr: spec.Addr, host: h,
				tls:   &tls.Config{RootCAs: pool, ServerName: h, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
				local: &net.TCPAddr{IP: a.AsSlice()}})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.Deadline)
	defer cancel()

	var mu sync.Mutex
	out := json.NewEncoder(os.Stdout)
	report := func(r wsClientReport) {
		mu.Lock()
		defer mu.Unlock()
		out.Encode(r)
	}
	conns := make([]*websocket.Conn, spec.N)
	var next, opened, failed, inARow atomic.Int64
	var errMu sync.Mutex
	var firstErr, stopErr string
	stop := make(chan struct{})
	var stopOnce sync.Once
	var tick sync.WaitGroup
	tick.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				report(wsClientReport{Opened: int(opened.Load()), Failed: int(failed.Load())})
			}
		}
	})
	var wg sync.WaitGroup
	for range min(64, spec.N) {
		wg.Go(func() {
			for ctx.Err() == nil {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1)) - 1
				if i >= spec.N {
					return
				}
				// Hosts change fastest, then sources: every application
				// gets its share from every source address.
				t := targets[(i%len(spec.Hosts))*len(spec.Sources)+(i/len(spec.Hosts))%len(spec.Sources)]
				ws, err := openWS(ctx, t)
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == "" {
						firstErr = err.Error()
					}
					errMu.Unlock()
					if inARow.Add(1) >= giveUpAfter {
						stopOnce.Do(func() {
							errMu.Lock()
							stopErr = fmt.Sprintf("%d openings in a row failed, the last: %v", giveUpAfter, err)
							errMu.Unlock()
							close(stop)
						})
					}
					continue
				}
				inARow.Store(0)
				conns[i] = ws
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	stopOnce.Do(func() { close(stop) })
	tick.Wait()
	final := wsClientReport{Opened: int(opened.Load()), Failed: int(failed.Load()), Done: true, Err: firstErr}
	if stopErr != "" {
		final.Err = stopErr
	} else if ctx.Err() != nil && int(opened.Load()) < spec.N {
		final.Err = fmt.Sprintf("the phase's deadline (%s) passed", spec.Deadline)
	}
	report(final)

	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() != "check" {
			continue
		}
		var alive atomic.Int64
		var i atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for {
					k := int(i.Add(1)) - 1
					if k >= len(conns) {
						return
					}
					if c := conns[k]; c != nil && echo(c) == nil {
						alive.Add(1)
					}
				}
			})
		}
		wg.Wait()
		report(wsClientReport{Opened: int(opened.Load()), Failed: int(failed.Load()), Done: true, Alive: int(alive.Load())})
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	return nil
}
