package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// frp's TCP proxy data path, rebuilt for the run (frp itself cannot be
// fetched here). It is not frp: it is the part of frp a TCP proxy's bytes
// go through, written after frp ≥ 0.50's defaults, so that Sallyport's
// throughput can be set beside it:
//
//	client ─TCP─▶ frps (remote port) ─yamux stream─▶ one TLS connection
//	       ─▶ frpc ─TCP─▶ backend
//
//   - frpc dials frps once; the connection starts with frp's TLS marker
//     byte (0x17) and is TLS (transport.tls.enable is on by default since
//     0.50; frpc does not verify frps's certificate unless configured).
//   - Over it runs one yamux session (transport.tcpMux, on by default),
//     configured as frp configures it: MaxStreamWindowSize 6 MiB, keep-alive
//     on, logs discarded.
//   - The first stream is the control stream (frp's Login/NewProxy,
//     reduced here to one Login and its answer). For each user connection
//     frps takes a work connection from its pool or sends ReqWorkConn on
//     the control stream; frpc answers by opening a new stream and sending
//     NewWorkConn on it; frps sends StartWorkConn on that stream and then
//     both sides copy. After taking a work connection frps asks for
//     another (frp's pool refill). Messages are frp's framing: one type
//     byte, an 8-byte big-endian length, JSON.
//   - The copy is frp's io.Join: two io.CopyBuffer with 16 KiB pooled
//     buffers. One deviation: frp's Join closes both connections when
//     either direction ends; here a direction's end is passed on as a
//     half-close (yamux's Close is one), because the bench's upload test
//     reads a count after closing its side. It costs nothing per byte.
//
// Both sides run as child processes of the bench (-frp-serve frps|frpc),
// like the bare relay, so that no side shares the load generator's process.

// frp's message types (golib/msg).
const (
	frpLogin          = 'o'
	frpLoginResp      = '1'
	frpReqWorkConn    = 'r'
	frpNewWorkConn    = 'w'
	frpStartWorkConn  = 's'
	frpTLSHeadByte    = 0x17
	frpMaxStreamWin   = 6 << 20
	frpMaxMsgLength   = 10240
	frpWorkConnWait   = 10 * time.Second
	frpCopyBufferSize = 16 << 10
)

func frpYamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.MaxStreamWindowSize = frpMaxStreamWin
	cfg.LogOutput = io.Discard
	cfg.KeepAliveInterval = 30 * time.Second
	return cfg
}

func frpWrite(w io.Writer, typ byte, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b := make([]byte, 9, 9+len(js))
	b[0] = typ
	binary.BigEndian.PutUint64(b[1:], uint64(len(js)))
	_, err = w.Write(append(b, js...))
	return err
}

func frpRead(r io.Reader, want byte, v any) error {
	var h [9]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint64(h[1:])
	if h[0] != want || n > frpMaxMsgLength {
		return fmt.Errorf("message type %q of %d bytes, want %q", h[0], n, want)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

var frpBuffers = sync.Pool{New: func() any { b := make([]byte, frpCopyBufferSize); return &b }}

// frpJoin copies both ways with 16 KiB buffers (frp's io.Join), passing
// each end on as a half-close, and closes both when both directions end.
func frpJoin(a, b net.Conn) {
	var wg sync.WaitGroup
	pipe := func(to, from net.Conn) {
		defer wg.Done()
		buf := frpBuffers.Get().(*[]byte)
		io.CopyBuffer(to, from, *buf)
		frpBuffers.Put(buf)
		if s, ok := to.(*yamux.Stream); ok {
			s.Close() // yamux: FIN, reading goes on
		} else {
			closeWrite(to)
		}
	}
	wg.Add(2)
	go pipe(a, b)
	go pipe(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// serveFrp runs one side: "frps" listens for frpc and for users and
// prints "listening on CONTROL USERS"; "frpc" dials frps at server,
// serves work connections to backend and prints "listening on ready"
// once logged in. Both stop when standard input closes.
func serveFrp(role, server, backend string) error {
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	switch role {
	case "frps":
		return serveFrps()
	case "frpc":
		return serveFrpc(server, backend)
	}
	return fmt.Errorf("-frp-serve is frps or frpc, not %q", role)
}

func serveFrps() error {
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	users, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s %s\n", ctl.Addr(), users.Addr())
	raw, err := ctl.Accept()
	if err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(raw, b[:]); err != nil || b[0] != frpTLSHeadByte {
		return errors.New("frpc did not start with the TLS marker byte")
	}
	sess, err := yamux.Server(tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), frpYamuxConfig())
	if err != nil {
		return err
	}
	control, err := sess.AcceptStream()
	if err != nil {
		return err
	}
	var login struct{ User string }
	if err := frpRead(control, frpLogin, &login); err != nil {
		return err
	}
	var ctlMu sync.Mutex
	send := func(typ byte, v any) error {
		ctlMu.Lock()
		defer ctlMu.Unlock()
		return frpWrite(control, typ, v)
	}
	if err := send(frpLoginResp, map[string]string{"version": "0.61.0", "run_id": "bench"}); err != nil {
		return err
	}
	// The work connection pool: streams frpc opened with NewWorkConn.
	work := make(chan *yamux.Stream, 64)
	go func() {
		for {
			s, err := sess.AcceptStream()
			if err != nil {
				os.Exit(0)
			}
			go func() {
				var nw struct{ RunID string }
				if err := frpRead(s, frpNewWorkConn, &nw); err != nil {
					s.Close()
					return
				}
				work <- s
			}()
		}
	}()
	for {
		c, err := users.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			var s *yamux.Stream
			select {
			case s = <-work:
			default:
				if send(frpReqWorkConn, struct{}{}) != nil {
					return
				}
				select {
				case s = <-work:
				case <-time.After(frpWorkConnWait):
					return
				}
			}
			send(frpReqWorkConn, struct{}{}) // refill the pool
			src, dst := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
			if frpWrite(s, frpStartWorkConn, map[string]any{"proxy_name": "bench", "src_addr": src.IP.String(), "src_port": src.Port,
				"dst_addr": dst.IP.String(), "dst_port": dst.Port}) != nil {
				s.Close()
				return
			}
			frpJoin(c, s)
		}()
	}
}

func serveFrpc(server, backend string) error {
	raw, err := net.Dial("tcp", server)
	if err != nil {
		return err
	}
	if _, err := raw.Write([]byte{frpTLSHeadByte}); err != nil {
		return err
	}
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	sess, err := yamux.Client(tc, frpYamuxConfig())
	if err != nil {
		return err
	}
	control, err := sess.OpenStream()
	if err != nil {
		return err
	}
	if err := frpWrite(control, frpLogin, map[string]string{"user": "bench", "version": "0.61.0"}); err != nil {
		return err
	}
	var resp struct{ RunID string }
	if err := frpRead(control, frpLoginResp, &resp); err != nil {
		return err
	}
	fmt.Println("listening on ready")
	br := bufio.NewReader(control)
	for {
		var req struct{}
		if err := frpRead(br, frpReqWorkConn, &req); err != nil {
			return err
		}
		go func() {
			s, err := sess.OpenStream()
			if err != nil {
				return
			}
			if frpWrite(s, frpNewWorkConn, map[string]string{"run_id": "bench"}) != nil {
				s.Close()
				return
			}
			var start struct{ ProxyName string }
			if err := frpRead(s, frpStartWorkConn, &start); err != nil {
				s.Close()
				return
			}
			c, err := net.Dial("tcp", backend)
			if err != nil {
				s.Close()
				return
			}
			frpJoin(c, s)
		}()
	}
}

// frpLike is the running pair.
type frpLike struct {
	frps, frpc *child
	addr       string // users connect here
}

func startFrpLike(ctx context.Context, h *harness, backend string) (*frpLike, error) {
	frps, addrs, err := startServeChild(ctx, h, "frps stand-in", "-frp-serve", "frps")
	if err != nil {
		return nil, err
	}
	ctl, users, ok := strings.Cut(addrs, " ")
	if !ok {
		return nil, fmt.Errorf("the frps stand-in printed %q", addrs)
	}
	frpc, _, err := startServeChild(ctx, h, "frpc stand-in", "-frp-serve", "frpc", "-frp-server", ctl, "-bare-to", backend)
	if err != nil {
		return nil, err
	}
	return &frpLike{frps: frps, frpc: frpc, addr: users}, nil
}
