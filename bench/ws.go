package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"
)

// Idle WebSockets: open n through the edge (one connector), each echoes
// one message, then nothing moves while the resident memory of the cloud
// and of the connector is read. The cost per WebSocket is the RSS delta
// divided by n.

type wsResult struct {
	n, opened, alive     int
	tunnels              int
	openTime             time.Duration
	connBefore, connOpen int64 // connector VmRSS before and with the WebSockets open
	cloudBefore, cloudOp int64
	perConnector         float64 // bytes per WebSocket
	perCloud             float64
}

// measureWebSockets opens n idle WebSockets through t (at most 64 opening
// at once) and measures the processes of s; before each reading, memory
// is left to settle (see settleRSS) for settle, at most 5 × settle.
func measureWebSockets(ctx context.Context, s *sallyport, t *target, n int, settle time.Duration) (wsResult, error) {
	r := wsResult{n: n, tunnels: s.tunnels}
	pids := []int{s.connectorPID(), s.cloudPID()}
	rss := settleRSS(ctx, pids, settle, 5*settle)
	r.connBefore, r.cloudBefore = rss[0], rss[1]

	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range min(64, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ws, err := openWS(ctx, t)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				conns[i] = ws
			}
		}()
	}
	wg.Wait()
	r.openTime = time.Since(start)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return r, err
	}
	for _, c := range conns {
		if c != nil {
			r.opened++
		}
	}
	if r.opened == 0 {
		return r, fmt.Errorf("no WebSocket could be opened through the edge: %v", firstErr)
	}
	rss = settleRSS(ctx, pids, settle, 5*settle)
	r.connOpen, r.cloudOp = rss[0], rss[1]
	r.perConnector = float64(r.connOpen-r.connBefore) / float64(r.opened)
	r.perCloud = float64(r.cloudOp-r.cloudBefore) / float64(r.opened)
	// Every WebSocket must still echo.
	var alive atomic.Int64
	next.Store(0)
	for range min(64, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if c := conns[i]; c != nil && echo(c) == nil {
					alive.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r.alive = int(alive.Load())
	if firstErr != nil {
		return r, fmt.Errorf("%d of %d WebSockets could not be opened; the first error: %v", n-r.opened, n, firstErr)
	}
	return r, nil
}

// openWS opens one WebSocket to /ws and checks that it echoes.
func openWS(ctx context.Context, t *target) (*websocket.Conn, error) {
	c, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	scheme := "ws"
	if t.tls != nil {
		scheme = "wss"
	}
	cfg, err := websocket.NewConfig(fmt.Sprintf("%s://%s%s/ws", scheme, t.host, t.prefix), "https://"+t.host+"/")
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	ws, err := websocket.NewClient(cfg, c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("WebSocket handshake: %w", err)
	}
	if err := echo(ws); err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

func echo(ws *websocket.Conn) error {
	ws.SetDeadline(time.Now().Add(15 * time.Second))
	defer ws.SetDeadline(time.Time{})
	const msg = "ping"
	if err := websocket.Message.Send(ws, msg); err != nil {
		return err
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil {
		return err
	}
	if got != msg {
		return fmt.Errorf("WebSocket echoed %q, want %q", got, msg)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
