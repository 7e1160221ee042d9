package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/websocket"
)

// The backend is the internal application every path leads to. It runs
// as a child process of the bench (the same executable with -backend-serve)
// so that its CPU time and memory are measured apart from the load
// generator's, and so that it never shares a Go runtime with the client.

// smallBody is the answer of /small: 13 bytes, as in the runs.
const smallBody = "Hello, world!"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// pattern is the content of /download bodies and of uploads: random, so
// that nothing on the way can compress it.
var pattern = func() []byte {
	b := make([]byte, 256<<10)
	r := rand.NewChaCha8([32]byte{'s', 'a', 'l', 'l', 'y'})
	r.Read(b)
	return b
}()

// patternCRC returns the CRC-32C of the first n bytes of the pattern
// repeated, which is what /upload answers for an upload of n bytes.
func patternCRC(n int64) uint32 {
	var c uint32
	for n > 0 {
		k := min(n, int64(len(pattern)))
		c = crc32.Update(c, castagnoli, pattern[:k])
		n -= k
	}
	return c
}

func backendHandler() http.Handler {
	mux := http.NewServeMux()
	ctText := []string{"text/plain"}
	ctBin := []string{"application/octet-stream"}
	smallLen := []string{strconv.Itoa(len(smallBody))}
	small := []byte(smallBody)
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = ctText
		h["Content-Length"] = smallLen
		w.Write(small)
	})
	// /download?n=BYTES streams n bytes of the pattern.
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "give n=BYTES", http.StatusBadRequest)
			return
		}
		h := w.Header()
		h["Content-Type"] = ctBin
		h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
		for n > 0 {
			k := min(n, int64(len(pattern)))
			if _, err := w.Write(pattern[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	// /upload reads the whole body and answers "BYTES CRC32C".
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 256<<10)
		var n int64
		var c uint32
		for {
			k, err := r.Body.Read(buf)
			c = crc32.Update(c, castagnoli, buf[:k])
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		w.Header()["Content-Type"] = ctText
		fmt.Fprintf(w, "%d %08x\n", n, c)
	})
	// /ws echoes every WebSocket message (no Origin check).
	mux.Handle("/ws", websocket.Server{Handler: func(ws *websocket.Conn) {
		io.Copy(ws, ws)
	}})
	return mux
}

// serveBackend is the child process: it serves the backend on addr,
// prints "listening on ADDR" and stops when its standard input closes
// (the bench ended, however it ended) or on SIGTERM.
func serveBackend(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: backendHandler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin) // returns when the parent goes away
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// backendProc is the running backend child process.
type backendProc struct {
	proc *child
	addr string // 127.0.0.1:PORT
}

// startBackend starts the backend child on 127.0.0.1:port (0: any port).
func startBackend(ctx context.Context, h *harness, port int) (*backendProc, error) {
	p, addr, err := startServeChild(ctx, h, "backend", "-backend-serve", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	return &backendProc{proc: p, addr: addr}, nil
}

// startServeChild starts the bench's own executable with args as a child
// that serves something on loopback, and returns once it said where
// ("listening on ADDR" on its standard output). The child stops when its
// standard input closes.
func startServeChild(ctx context.Context, h *harness, name string, args ...string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	p, err := h.startCmd(name, cmd)
	if err != nil {
		return nil, "", err
	}
	p.stdin = stdin
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-lines:
		addr, found := strings.CutPrefix(l, "listening on ")
		if !ok || !found {
			return nil, "", fmt.Errorf("the %s did not start: %s", name, p.tail(10))
		}
		return p, addr, nil
	case <-time.After(10 * time.Second):
		return nil, "", fmt.Errorf("the %s did not start within 10 s", name)
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}
