package doctor

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/cloudlink"
)

// TestLoopRule pins down what "resolves back to the cloud" means: the
// cloud's name or address AND its port is a loop; the address alone is a
// warning, except on loopback, where it is a test or demo machine.
func TestLoopRule(t *testing.T) {
	ips := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	public, _ := cloudlink.ParseURL("https://sallyport.example.com")
	local, _ := cloudlink.ParseURL("https://sallyport.localhost:8443")
	tests := []struct {
		name     string
		host     string
		appIPs   []netip.Addr
		port     string
		cloud    cloudlink.Target
		cloudIPs []netip.Addr
		status   string
		found    string
	}{
		{"other address", "intranet.corp", ips("10.0.0.5"), "80", public, ips("203.0.113.7"), Pass, "none of its addresses is the cloud's (203.0.113.7)"},
		{"cloud address and port", "intranet.corp", ips("10.0.0.5", "203.0.113.7"), "443", public, ips("203.0.113.7"), Fail, "is the cloud's address 203.0.113.7 on the cloud's port 443"},
		{"cloud name and port", "Sallyport.Example.com.", ips("198.51.100.1"), "443", public, ips("203.0.113.7"), Fail, "is the cloud's own name sallyport.example.com"},
		{"cloud address, other port", "intranet.corp", ips("203.0.113.7"), "8080", public, ips("203.0.113.7"), Warn, "if that port leads to the cloud, even by a redirect, requests loop"},
		{"loopback, cloud port", "localhost", ips("127.0.0.1", "::1"), "8443", local, ips("127.0.0.1"), Fail, "on the cloud's port 8443"},
		{"loopback, other port", "127.0.0.1", ips("127.0.0.1"), "9000", local, ips("127.0.0.1"), Pass, "not a loop"},
		{"other loopback address, cloud port", "127.0.0.2", ips("127.0.0.2"), "8443", local, ips("127.0.0.1"), Pass, "none of its addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, found, advice := loopCheck("web", tt.host, tt.appIPs, tt.port, tt.cloud, tt.cloudIPs)
			if status != tt.status || !strings.Contains(found, tt.found) {
				t.Errorf("loopCheck = %s %q, want %s containing %q", status, found, tt.status, tt.found)
			}
			if (status == Fail || status == Warn) && !strings.Contains(advice, "sallyport admin app update web --internal-url") {
				t.Errorf("advice %q", advice)
			}
		})
	}
}
