package cloud

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/dnstest"
)

// freeAddr is a loopback address of network where nothing listens.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDiagnoseNetworkApp: the diagnosis of a tcp or udp application probes
// each internal address that names one host through the real connector:
// a TCP connect, a DNS answer, and names what failed and what to do.
func TestDiagnoseNetworkApp(t *testing.T) {
	prev := netProbeDNS
	t.Cleanup(func() { netProbeDNS = prev })
	netProbeDNS = func(string) bool { return true } // the test's DNS servers are not on port 53

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	refused, silent := freeAddr(t, "tcp"), freeAddr(t, "udp")
	dnsSrv := dnstest.Start(t)

	env := startInProcess(t, "http://127.0.0.1:1/")
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	for _, a := range []api.CreateAppRequest{
		{Name: "db", Type: "tcp", InternalAddresses: []string{ln.Addr().String(), refused, "10.1.0.0/24:22"}},
		{Name: "dns", Type: "udp", InternalAddresses: []string{dnsSrv.Addr(), silent}},
	} {
		if rec, eb := call(t, env.srv, "POST", "/apps", tok, a); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", a.Name, rec.Code, eb.Error.Message)
		}
	}
	diagnose := func(app string) api.AppDiagnosis {
		t.Helper()
		rec, eb := call(t, env.srv, "GET", "/apps/"+app+"/diagnose", tok, nil)
		if rec.Code != 200 {
			t.Fatalf("diagnose %s: %d %s", app, rec.Code, eb.Error.Message)
		}
		var d api.AppDiagnosis
		if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	probeOf := func(d api.AppDiagnosis, dest string) api.NetworkProbe {
		for _, p := range d.NetworkProbes {
			if p.Destination == dest {
				return p
			}
		}
		return api.NetworkProbe{Code: "absent"}
	}
	// The connector learns of the new applications on its tunnel: wait
	// until it serves them.
	var db, dnsD api.AppDiagnosis
	deadline := time.Now().Add(15 * time.Second)
	for {
		db, dnsD = diagnose("db"), diagnose("dns")
		if probeOf(db, ln.Addr().String()).OK && probeOf(dnsD, dnsSrv.Addr()).OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the probes did not pass within 15 s: %+v %+v", db.NetworkProbes, dnsD.NetworkProbes)
		}
		time.Sleep(20 * time.Millisecond)
	}

	tests := []struct {
		name     string
		d        api.AppDiagnosis
		dest     string
		ok       bool
		code     string
		says     string
		findings string // in the findings ("" when the probe passed)
	}{
		{"tcp, a listening service", db, ln.Addr().String(), true, "", "The connector connected to " + ln.Addr().String(), ""},
		{"tcp, nothing listens", db, refused, false, "refused", "refused", "listens on port"},
		{"udp, a DNS server", dnsD, dnsSrv.Addr(), true, "", "The DNS server answered a query for . NS through the connector", ""},
		{"udp, no DNS server", dnsD, silent, false, "no_dns_answer", "no answer came within 3s", "check that a DNS server answers on " + silent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := probeOf(tt.d, tt.dest)
			if p.OK != tt.ok || p.Code != tt.code || !strings.Contains(p.Message, tt.says) || p.Connector == "" {
				t.Fatalf("probe of %s = %+v, want ok %v, code %q, saying %q", tt.dest, p, tt.ok, tt.code, tt.says)
			}
			joined := strings.Join(tt.d.Findings, "\n")
			if tt.findings != "" && (!strings.Contains(joined, "The probe of "+tt.dest+" through connector "+p.Connector) || !strings.Contains(joined, tt.findings)) {
				t.Errorf("findings = %q, want the failing %s with %q", joined, tt.dest, tt.findings)
			}
			if tt.findings == "" && strings.Contains(joined, "The probe of "+tt.dest) {
				t.Errorf("findings = %q name %s, which passed", joined, tt.dest)
			}
		})
	}
	if len(db.NotProbed) != 1 || db.NotProbed[0] != "10.1.0.0/24:22: a range" {
		t.Errorf("not probed = %q, want the range", db.NotProbed)
	}
	if len(db.Probes) != 0 {
		t.Errorf("a network application got web test requests: %+v", db.Probes)
	}
}
