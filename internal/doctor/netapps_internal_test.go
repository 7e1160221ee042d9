package doctor

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// mapResolver resolves the names it holds, and fails the others as DNS
// does.
type mapResolver map[string]string

func (m mapResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if ip, ok := m[host]; ok {
		return []string{ip}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestCheckNetworkApp: a network application's step resolves each
// address that names one host and, for tcp, connects to its first port;
// ranges are not checked; each failure names the address.
func TestCheckNetworkApp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	open := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	closedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := strconv.Itoa(closedLn.Addr().(*net.TCPAddr).Port)
	closedLn.Close()
	dnsSrv := dnstest.Start(t)
	_, dnsP, _ := net.SplitHostPort(dnsSrv.Addr())
	silentPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, silent, _ := net.SplitHostPort(silentPC.LocalAddr().String())
	silentPC.Close()
	prev := isDNSPort
	t.Cleanup(func() { isDNSPort = prev })
	isDNSPort = func(p uint16) bool { // the test's DNS servers are not on port 53
		return strconv.Itoa(int(p)) == dnsP || strconv.Itoa(int(p)) == silent
	}
	r := &runner{o: Options{StepTimeout: 5 * time.Second, Resolver: mapResolver{"db.corp": "127.0.0.1", "dns.corp": "127.0.0.1"}}}
	for _, tc := range []struct {
		name   string
		app    tunnel.AppConfig
		status string
		found  []string
	}{
		{"tcp reachable", tunnel.AppConfig{Name: "db", Type: "tcp", Segments: []string{"db.corp:" + open, "127.0.0.1:" + open + "-" + open, "10.0.0.0/8:22", "*.corp:22"}},
			Pass, []string{"db.corp resolves to 127.0.0.1, and 127.0.0.1 accepts a TCP connection on port " + open, "127.0.0.1 is an IP address, and", "10.0.0.0/8:22, *.corp:22 not checked"}},
		{"tcp refused", tunnel.AppConfig{Name: "db", Type: "tcp", Segments: []string{"db.corp:" + closed}},
			Fail, []string{"The internal address db.corp:" + closed + " of application 'db' refused a TCP connection from this machine on port " + closed}},
		{"name unknown", tunnel.AppConfig{Name: "db", Type: "tcp", Segments: []string{"gone.corp:5432", "db.corp:" + open}},
			Fail, []string{"The internal address gone.corp:5432 of application 'db' does not resolve on this machine (no such host)", "accepts a TCP connection"}},
		{"udp resolves only", tunnel.AppConfig{Name: "dns", Type: "udp", Segments: []string{"dns.corp:53", "10.1.0.5:53"}},
			Pass, []string{"dns.corp resolves to 127.0.0.1", "10.1.0.5 is an IP address"}},
		{"udp, a DNS server answers", tunnel.AppConfig{Name: "dns", Type: "udp", Segments: []string{"dns.corp:" + dnsP, "127.0.0.1:" + dnsP}},
			Pass, []string{"dns.corp resolves to 127.0.0.1, and 127.0.0.1 answered a DNS query for dns.corp. A on port " + dnsP + " (NXDOMAIN, 0 record(s))", "127.0.0.1 is an IP address, and 127.0.0.1 answered a DNS query for . NS"}},
		{"udp, no DNS server", tunnel.AppConfig{Name: "dns", Type: "udp", Segments: []string{"dns.corp:" + dnsP, "127.0.0.1:" + silent + "-" + silent}},
			Fail, []string{"The internal address 127.0.0.1:" + silent + " of application 'dns'", "DNS query"}},
		{"unusable", tunnel.AppConfig{Name: "x", Type: "tcp", Segments: []string{"db.corp"}},
			Fail, []string{`The internal addresses of application 'x' are not usable: internal address "db.corp" has no port`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Step
			r.checkApp(t.Context(), &s, tc.app)
			if s.Status != tc.status {
				t.Errorf("status %s, want %s: %s", s.Status, tc.status, s.Found)
			}
			for _, w := range tc.found {
				if !strings.Contains(s.Found, w) {
					t.Errorf("found %q, want %q", s.Found, w)
				}
			}
			if (s.Status == Fail) != (s.Advice != "") {
				t.Errorf("advice %q with status %s", s.Advice, s.Status)
			}
		})
	}
}
