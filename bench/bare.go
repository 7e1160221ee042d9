package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"time"
)

// The bare relay is the floor of Sallyport's architecture on this
// machine: the least any proxy with the same two TLS legs can cost.
//
//	client ─TLS─▶ bare edge ─TLS─▶ bare site ─TCP─▶ backend
//
// Each client connection gets its own TLS connection between the two
// relay processes (no multiplexing, no framing) and every byte is copied
// as it comes: nothing is parsed, no header is read or added, no request
// is routed, limited, logged or counted. It runs as two child processes
// of the bench (the same executable with -bare-serve), so that its CPU
// time is measured like the cloud's and the connector's. It is not a
// product: it exists to say how far Sallyport's per-request work is from
// the cost of the TLS and loopback work no design of this shape avoids.

// bareRelay is the running pair.
type bareRelay struct {
	edge, site *child
	addr       string // the edge's 127.0.0.1:PORT
}

func (b *bareRelay) pids() []int { return []int{b.edge.pid(), b.site.pid()} }

// target is the bare relay as a path of the measurements.
func (b *bareRelay) target() *target {
	return &target{name: "bare relay", scheme: "https", addr: b.addr, host: b.addr, tls: tlsInsecure("bare.test")}
}

// startBareRelay starts the site (dialling backendAddr) and the edge
// (dialling the site).
func startBareRelay(ctx context.Context, h *harness, backendAddr string) (*bareRelay, error) {
	site, siteAddr, err := startServeChild(ctx, h, "bare site", "-bare-serve", "site", "-bare-to", backendAddr)
	if err != nil {
		return nil, err
	}
	edge, edgeAddr, err := startServeChild(ctx, h, "bare edge", "-bare-serve", "edge", "-bare-to", siteAddr)
	if err != nil {
		return nil, err
	}
	return &bareRelay{edge: edge, site: site, addr: edgeAddr}, nil
}

// serveBare is the child process of one side: it listens with TLS on a
// loopback port, prints "listening on ADDR", and relays (relayBare) until
// its standard input closes.
func serveBare(mode, upstream string) error {
	ln, err := listenBare(mode)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin) // returns when the parent goes away
		ln.Close()
	}()
	return relayBare(ln, mode, upstream)
}

// listenBare listens with TLS (a certificate of its own) on a free
// loopback port.
func listenBare(mode string) (net.Listener, error) {
	if mode != "edge" && mode != "site" {
		return nil, fmt.Errorf("-bare-serve is edge or site, not %q", mode)
	}
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	return tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

// relayBare copies each connection accepted on ln to a new connection to
// upstream (TLS for the edge, plain TCP for the site), both ways, until
// ln is closed; then it waits for the connections it serves to end.
func relayBare(ln net.Listener, mode, upstream string) error {
	// The site's certificate is this run's own, made a moment ago on
	// loopback; checking it would cost once per connection, not per request.
	up := &tls.Config{ServerName: "bare.test", InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer c.Close()
			var u net.Conn
			var err error
			if mode == "edge" {
				u, err = tls.Dial("tcp", upstream, up)
			} else {
				u, err = net.Dial("tcp", upstream)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "dial %s: %v\n", upstream, err)
				return
			}
			defer u.Close()
			done := make(chan struct{})
			go func() {
				copyPooled(u, c)
				closeWrite(u)
				close(done)
			}()
			copyPooled(c, u)
			closeWrite(c)
			<-done
		})
	}
}

var bareBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func copyPooled(dst io.Writer, src io.Reader) {
	b := bareBuffers.Get().(*[]byte)
	defer bareBuffers.Put(b)
	io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *b)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// selfSigned makes a P-256 certificate for bare.test, valid for a day.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bare.test"},
		DNSNames:     []string{"bare.test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
