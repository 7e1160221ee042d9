package e2e

import (
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
)

// TestNetworkAppDiagnose: with the real binary, a cloud and a connector,
// 'admin app diagnose' of a tcp application probes each internal address
// through the connector — a listening service passes, a closed port fails
// with its next step, a range is not probed — and of a udp application
// the connector resolves and opens a socket. (The DNS answer on port 53
// is tested in internal/cloud, with a DNS server on another port.)
func TestNetworkAppDiagnose(t *testing.T) {
	t.Parallel()
	pc := startPreauthCloud(t)
	be, _ := url.Parse(pc.backend.url)
	pc.admin.ok(t, "", "admin", "app", "create", "db", "--type", "tcp", "--internal-address", be.Host,
		"--internal-address", "127.0.0.1:1", "--internal-address", "10.1.0.0/24:22")
	pc.admin.ok(t, "", "admin", "app", "create", "resolver", "--type", "udp", "--internal-address", "localhost:5353")

	// The connector learns of new applications on its tunnel: wait until
	// the probe of the listening backend passes.
	probe := func(d api.AppDiagnosis, dest string) api.NetworkProbe {
		for _, p := range d.NetworkProbes {
			if p.Destination == dest {
				return p
			}
		}
		return api.NetworkProbe{}
	}
	var db, udp api.AppDiagnosis
	if !eventually(30*time.Second, func() bool {
		db, udp = api.AppDiagnosis{}, api.AppDiagnosis{}
		pc.admin.okJSON(t, &db, "admin", "app", "diagnose", "db", "--json")
		pc.admin.okJSON(t, &udp, "admin", "app", "diagnose", "resolver", "--json")
		return probe(db, be.Host).OK && probe(udp, "localhost:5353").OK
	}) {
		t.Fatalf("the probes did not pass within 30 s: %+v; %+v", db.NetworkProbes, udp.NetworkProbes)
	}
	tests := []struct {
		name       string
		p          api.NetworkProbe
		ok         bool
		code, says string
	}{
		{"a listening service", probe(db, be.Host), true, "", "The connector connected to " + be.Host},
		{"a closed port", probe(db, "127.0.0.1:1"), false, "refused", "refused the connection"},
		{"udp: resolved, a socket", probe(udp, "localhost:5353"), true, "", "The connector resolved localhost and opened a UDP socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.p.OK != tt.ok || tt.p.Code != tt.code || !strings.Contains(tt.p.Message, tt.says) || tt.p.Connector == "" {
				t.Errorf("probe %+v, want ok %v, code %q, saying %q", tt.p, tt.ok, tt.code, tt.says)
			}
		})
	}
	if len(db.NotProbed) != 1 || db.NotProbed[0] != "10.1.0.0/24:22: a range" {
		t.Errorf("not probed: %q", db.NotProbed)
	}

	res := pc.admin.ok(t, "", "admin", "app", "diagnose", "db")
	_, port, _ := net.SplitHostPort(be.Host)
	mustContain(t, "app diagnose db", res.stdout, "Probes (each internal address through each connected connector: a TCP connect):",
		be.Host, "ok in", "127.0.0.1:1", "FAILED refused", "not probed: 10.1.0.0/24:22: a range",
		"Finding: The probe of 127.0.0.1:1 through connector", "check that the service at 127.0.0.1 runs and listens on port 1")
	if strings.Contains(res.stdout, "The probe of "+be.Host) || strings.Contains(res.stdout, "listens on port "+port) {
		t.Errorf("a finding names the address that passed:\n%s", res.stdout)
	}
}
