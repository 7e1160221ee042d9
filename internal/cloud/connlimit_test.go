package cloud

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// TestConnsPerSource: one source holds at most MaxConnsPerSource
// connections on the cloud's port (each connection is bounded, their
// number was not: issue 14's "a client cannot exhaust the shared cloud");
// another source is not affected, and a closed connection gives its place
// back.
func TestConnsPerSource(t *testing.T) {
	dir := initDataDirNamed(t, "sallyport.localhost")
	s, ln := serveTestCloud(t, Config{DataDir: dir, Listen: "127.0.0.1:0", MaxConnsPerSource: 3}, nil)
	addr := ln.Addr().String()
	// handshake opens a TLS connection from the loopback address from and
	// reports whether the cloud served it.
	handshake := func(from string) (*tls.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		raw, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		c := tls.Client(raw, &tls.Config{ServerName: "sallyport.localhost", InsecureSkipVerify: true}) // #nosec: the test counts connections, not certificates
		if err := c.Handshake(); err != nil {
			raw.Close()
			return nil, err
		}
		raw.SetDeadline(time.Time{})
		return c, nil
	}
	var held []*tls.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := range 3 {
		c, err := handshake("127.0.0.1")
		if err != nil {
			t.Fatalf("connection %d of 3 from 127.0.0.1: %v", i+1, err)
		}
		held = append(held, c)
	}
	if c, err := handshake("127.0.0.1"); err == nil {
		c.Close()
		t.Fatal("a 4th connection from 127.0.0.1 was served, want it closed (the limit is 3)")
	}
	other, err := handshake("127.0.0.2")
	if err != nil {
		t.Fatalf("a connection from another source (127.0.0.2) was refused: %v", err)
	}
	other.Close()
	held[0].Close()
	held = held[1:]
	l := s.connLimit.Load()
	deadline := time.Now().Add(10 * time.Second)
	for l.openFrom("127.0.0.1") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("127.0.0.1 still holds %d connections after closing one, want 2", l.openFrom("127.0.0.1"))
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	c, err := handshake("127.0.0.1")
	if err != nil {
		t.Fatalf("after a connection closed, a new one from 127.0.0.1 was refused: %v", err)
	}
	held = append(held, c)
}
