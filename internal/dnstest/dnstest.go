// Package dnstest runs a small, real DNS server on 127.0.0.1 (UDP and TCP)
// for tests: it serves the TXT records a test sets and answers NXDOMAIN
// for every other name, as a zone's authoritative server would.
//
// It is for tests only: nothing outside _test.go files imports it.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TCPOnlyPrefix: a name starting with it is answered over UDP with the
// truncated bit and no records, so a resolver must ask again over TCP.
const TCPOnlyPrefix = "tcp-only."

// Server is a running DNS server. Its methods may be called from any
// goroutine.
type Server struct {
	addr    string
	mu      sync.Mutex
	records map[string][]string // fully qualified name, lower case → TXT values
	a       map[string]net.IP   // fully qualified name, lower case → IPv4 address
}

// Start starts a server on a free port of 127.0.0.1, the same port for UDP
// and TCP; it stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	z := &Server{records: map[string][]string{}, a: map[string]net.IP{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Skipf("the TCP port of the DNS server's UDP port is taken: %v", err)
	}
	z.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(z.serve)
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
	return z
}

// Addr is the server's HOST:PORT (UDP and TCP).
func (z *Server) Addr() string { return z.addr }

// SetTXT makes name answer with these TXT values (none: an empty answer).
func (z *Server) SetTXT(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.records[dns.Fqdn(strings.ToLower(name))] = values
}

// SetA makes name answer an A query with ip (an IPv4 address) and an
// AAAA query with no records.
func (z *Server) SetA(name string, ip net.IP) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.a[dns.Fqdn(strings.ToLower(name))] = ip.To4()
}

func (z *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	z.mu.Lock()
	vals, ok := z.records[strings.ToLower(q.Name)]
	ip, hasA := z.a[strings.ToLower(q.Name)]
	z.mu.Unlock()
	ok = ok || hasA
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	if strings.HasPrefix(strings.ToLower(q.Name), TCPOnlyPrefix) && w.RemoteAddr().Network() == "udp" {
		m.Truncated = true
		vals = nil
	}
	if q.Qtype == dns.TypeA && hasA {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip})
	}
	if q.Qtype == dns.TypeTXT {
		for _, v := range vals {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
		}
	}
	w.WriteMsg(m)
}
