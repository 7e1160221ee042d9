package accessclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Private access (docs/private-access.md): after `sallyport access login
// https://CLOUDNAME/ --user NAME@DOMAIN` (a network sign-in, kept like an
// application's under the cloud's host), each stream is one TLS
// connection to the cloud with the ALPN sallyport-access/1: one request
// line with the token, one answer line, then the stream's bytes.

// answerWait bounds the cloud's answer (it waits up to 30 s for the
// connector to open the stream).
const answerWait = 45 * time.Second

// Stream is one private access stream: a TCP connection's bytes through
// the cloud and a connector, with half-close.
type Stream struct {
	*tls.Conn
	br   *bufio.Reader // holds what was read past the answer line
	App  string        // the application that serves it
	Dest string        // its destination, HOST:PORT
}

func (s *Stream) Read(p []byte) (int, error) { return s.br.Read(p) }

// StreamOptions name a stream.
type StreamOptions struct {
	Options
	Network string // "tcp" (the default) or "udp"
	App     string // "" lets the cloud choose by the destination
	Dest    string // HOST:PORT; "" with App: the application's one internal address
	// Check asks only whether the stream would be admitted; the Stream
	// returned is closed, with App and Dest set.
	Check bool
}

// Open opens a stream (network tcp). Refusals are one sentence each: not
// signed in, not assigned, outside the segments, no connector, refused or
// unreachable at the connector.
func Open(ctx context.Context, o StreamOptions) (*Stream, error) {
	tok, s, err := networkToken(ctx, &o.Options)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(s.App)
	if err != nil {
		return nil, err
	}
	hc, err := tlsConfig(s.CAFile)
	if err != nil {
		return nil, err
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	hc.ServerName, hc.NextProtos = host, []string{tunnel.AccessALPN}
	dctx, cancel := context.WithTimeout(ctx, answerWait)
	defer cancel()
	raw, err := cloudlink.DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, unreachable("The cloud", s.App, err)
	}
	c := tls.Client(tunnel.NewBatchConn(raw), hc) // for CorkWrites in Pipe
	if dl, ok := dctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := c.HandshakeContext(dctx); err != nil {
		c.Close()
		return nil, unreachable("The cloud", s.App, err)
	}
	if c.ConnectionState().NegotiatedProtocol != tunnel.AccessALPN {
		c.Close()
		return nil, problem.Newf(502, "no_private_access", "update the cloud, or ask its operator", "The cloud at %s does not offer private access (it is an older version)", s.App)
	}
	network := o.Network
	if network == "" {
		network = tunnel.NetworkTCP
	}
	req := tunnel.AccessRequest{Token: tok, Network: network, App: o.App, Dest: o.Dest, Check: o.Check}
	if err := tunnel.WriteAccessLine(c, req); err != nil {
		c.Close()
		return nil, unreachable("The cloud", s.App, err)
	}
	br := bufio.NewReader(c)
	ans, err := tunnel.ReadAccessAnswer(br)
	if err != nil {
		c.Close()
		var ae *tunnel.AccessError
		if errors.As(err, &ae) {
			return nil, problem.New(refusalStatus(ae.Code), ae.Code, "", strings.TrimSuffix(ae.Message, "."))
		}
		return nil, unreachable("The cloud", s.App, err)
	}
	c.SetDeadline(time.Time{})
	tunnel.ReadAheadWhileBusy(c) // 64 KiB reads while the cloud sends fast
	st := &Stream{Conn: c, br: br, App: ans.App, Dest: ans.Dest}
	if o.Check {
		c.Close()
	}
	return st, nil
}

// networkToken is the access token of the network sign-in at o.AppURL
// (set to the one kept on this machine when empty).
func networkToken(ctx context.Context, o *Options) (string, *saved, error) {
	if o.AppURL == "" {
		cloud, err := networkCloud(*o)
		if err != nil {
			return "", nil, err
		}
		o.AppURL = cloud
	}
	tok, s, err := token(ctx, *o)
	a, _ := parseApp(o.AppURL)
	if p, ok := problem.As(err); ok && p.Code == "not_signed_in" {
		return "", nil, problem.Newf(401, "not_signed_in", "run 'sallyport access login "+a.origin+"/ --user NAME@DOMAIN'", "You are not signed in to the network of %s/", a.origin)
	}
	if err != nil {
		return "", nil, err
	}
	if !s.Network {
		return "", nil, problem.Newf(401, "not_signed_in", "run 'sallyport access login "+a.origin+"/ --user NAME@DOMAIN'",
			"You are signed in to %s/ for one web application only, not for its network applications", a.origin)
	}
	return tok, s, nil
}

// refusalStatus is the exit's HTTP-like status of a refusal code.
func refusalStatus(code string) int {
	switch code {
	case tunnel.AccessNotSignedIn:
		return 401
	case tunnel.AccessNotAssigned, tunnel.AccessNotCovered:
		return 403
	case tunnel.AccessNoApp:
		return 404
	case tunnel.AccessRateLimited:
		return 429
	case tunnel.AccessBadRequest:
		return 400
	}
	return 502
}

// tlsConfig trusts the system's roots and caFile's certificates. The
// configuration is kept per CA file while the file is unchanged (its size
// and modification time): 'access tcp' and 'access socks' open one TLS
// connection per stream, and building the pool (the system's roots
// copied, the file read and parsed) cost as much as a tenth of a stream's
// setup.
func tlsConfig(caFile string) (*tls.Config, error) {
	var stamp string
	if caFile != "" {
		if fi, err := os.Stat(caFile); err == nil {
			stamp = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		}
	}
	if v, ok := tlsConfigs.Load(caFile); ok && v.(*cachedTLS).stamp == stamp {
		return v.(*cachedTLS).cfg.Clone(), nil
	}
	hc, err := httpClient(caFile)
	if err != nil {
		return nil, err
	}
	cfg := hc.Transport.(*http.Transport).TLSClientConfig
	tlsConfigs.Store(caFile, &cachedTLS{cfg: cfg, stamp: stamp})
	return cfg.Clone(), nil
}

// tlsConfigs are the kept configurations, by CA file.
var tlsConfigs sync.Map

type cachedTLS struct {
	cfg   *tls.Config
	stamp string
}

// Pipe copies both ways between a and the stream until both directions
// end, passing each half-close on. It returns the error reading the
// stream, if it did not end cleanly (not an error writing to a: the local
// client that went away is no stream that ended abruptly).
func Pipe(a io.ReadWriter, closeWriteA func() error, s *Stream) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tunnel.Copy(tunnel.CorkWrites(s.Conn), a)
		s.CloseWrite()
	}()
	sr := &streamReader{s: s}
	tunnel.Copy(a, sr)
	switch {
	case sr.err != nil:
		// The stream broke: a is reset (a TCP connection), not ended
		// cleanly, so that its program does not take a truncated answer
		// for a whole one, and the copy the other way ends too.
		if tc, ok := a.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		if c, ok := a.(io.Closer); ok {
			c.Close()
		}
	case closeWriteA != nil:
		closeWriteA()
	}
	wg.Wait()
	return sr.err
}

// streamReader keeps the error reading a stream (io.EOF is none).
type streamReader struct {
	s   *Stream
	err error
}

func (r *streamReader) Read(p []byte) (int, error) {
	n, err := r.s.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Stdio is `sallyport access stdio HOST PORT` (OpenSSH's ProxyCommand):
// one stream between standard input and output. It returns when the
// destination has closed its side; standard input's end is passed on as
// a half-close.
func Stdio(ctx context.Context, o Options, host, port string, stdin io.Reader, stdout io.Writer) error {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return problem.Newf(400, "bad_port", "give a port from 1 to 65535", "The port %q is not a number from 1 to 65535", port)
	}
	s, err := Open(ctx, StreamOptions{Options: o, Dest: net.JoinHostPort(host, port)})
	if err != nil {
		return err
	}
	defer s.Close()
	go func() {
		io.Copy(s, stdin)
		s.CloseWrite()
	}()
	_, err = io.Copy(stdout, s)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return streamEnded(net.JoinHostPort(host, port), err)
	}
	return nil
}

// streamEnded: a stream ended without the destination's end (TLS's
// close_notify): the connector or the cloud went away.
func streamEnded(dest string, err error) error {
	return problem.Newf(502, "stream_ended", "connect again (a new stream goes to a live connector); if it persists, ask an administrator to check the group's connectors",
		"The stream to %s ended abruptly: its connector or the cloud went away (%v)", dest, err)
}

// prepareLocal is what access tcp and access udp do before they listen:
// find the network's cloud once (not again per connection or flow, into
// o.AppURL), check that a stream to app (dest) of network would be
// admitted, so that a wrong name or a missing sign-in fails at once, and
// choose the local address: listen, or 127.0.0.1 and the destination's
// port.
func prepareLocal(ctx context.Context, o *Options, network, app, dest, listen string) (*Stream, string, error) {
	if o.AppURL == "" {
		cloud, err := networkCloud(*o)
		if err != nil {
			return nil, "", err
		}
		o.AppURL = cloud
	}
	chk, err := Open(ctx, StreamOptions{Options: *o, Network: network, App: app, Dest: dest, Check: true})
	if err != nil {
		return nil, "", err
	}
	if listen == "" {
		_, port, _ := net.SplitHostPort(chk.Dest)
		listen = net.JoinHostPort("127.0.0.1", port)
	}
	return chk, listen, nil
}

// TCPOptions configure `sallyport access tcp APP`.
type TCPOptions struct {
	Options
	App    string
	Dest   string // "": the application's one internal address
	Listen string // "": 127.0.0.1 and the destination's port
	// Ready, when set, is called with the listener's address once it
	// listens.
	Ready func(addr string)
}

// TCP listens locally and makes each accepted connection one stream to
// the application, until ctx ends. It checks first that the streams
// would be admitted, so that a wrong name or a missing sign-in fails at
// once.
func TCP(ctx context.Context, o TCPOptions) error {
	chk, listen, err := prepareLocal(ctx, &o.Options, "", o.App, o.Dest, o.Listen)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return problem.Newf(400, "listen", "choose another address with --listen 127.0.0.1:PORT", "Cannot listen on %s (%v)", listen, err)
	}
	defer ln.Close()
	fmt.Fprintf(o.out(), "Listening on %s: each connection goes to %s through the application %s.\n", ln.Addr(), chk.Dest, chk.App)
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return problem.Newf(500, "listen", "start it again", "Accepting on %s failed (%v)", ln.Addr(), err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			s, err := Open(ctx, StreamOptions{Options: o.Options, App: chk.App, Dest: chk.Dest})
			if err != nil {
				fmt.Fprintf(o.out(), "A connection from %s was closed: %v\n", c.RemoteAddr(), err)
				return
			}
			defer s.Close()
			stop := context.AfterFunc(ctx, func() { c.Close(); s.Close() })
			defer stop()
			if err := Pipe(c, c.(*net.TCPConn).CloseWrite, s); err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(o.out(), "A connection from %s: %v\n", c.RemoteAddr(), streamEnded(chk.Dest, err))
			}
		}()
	}
}

// networkCloud is the cloud of the one network sign-in kept on this
// machine (the --cloud of the commands, when not given).
func networkCloud(o Options) (string, error) {
	dir, err := o.dir()
	if err != nil {
		return "", err
	}
	entries, _ := os.ReadDir(dir)
	var clouds []string
	for _, e := range entries {
		key, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if s, err := load(dir, key); err == nil && s != nil && s.Network {
			clouds = append(clouds, s.App)
		}
	}
	switch len(clouds) {
	case 0:
		return "", problem.New(401, "not_signed_in", "run 'sallyport access login https://CLOUDNAME/ --user NAME@DOMAIN'", "You are not signed in to any cloud's network on this machine")
	case 1:
		return clouds[0], nil
	}
	return "", problem.Newf(400, "several_clouds", "name one with --cloud", "You are signed in to the networks of several clouds (%s)", strings.Join(clouds, ", "))
}
