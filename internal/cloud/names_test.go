package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/dnstest"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/store/sqlite"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// newDNSTestServer is newTestServer whose domain proofs go to a real DNS
// server of the test.
func newDNSTestServer(t *testing.T) (*Server, *dnstest.Server) {
	t.Helper()
	z := dnstest.Start(t)
	s := newTestServer(t)
	s.resolver = txtResolver{addr: z.Addr()}
	return s, z
}

func tenantOf(t *testing.T, s *Server, domain string) store.Tenant {
	t.Helper()
	ten, err := s.store.TenantByDomain(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	return ten
}

func vouch(t *testing.T, s *Server, tenant, domain string) {
	t.Helper()
	if _, err := datadir.VouchDomain(context.Background(), s.cfg.DataDir, s.store, tenant, domain); err != nil {
		t.Fatalf("vouch %s for %s: %v", domain, tenant, err)
	}
}

// TestHostOwnership is issue 14 item 1's rule: a tenant publishes only its
// own default names X-LABEL.CLOUDNAME, or under a domain it proved (the
// most specific proven domain above the name being its own).
func TestHostOwnership(t *testing.T) {
	s := newTestServer(t)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := login(t, s, "admin@fabrikam.com", testPassword)
	vouch(t, s, "contoso.com", "apps.contoso.com")
	vouch(t, s, "fabrikam.com", "fabrikam.com")
	vouch(t, s, "contoso.com", "hr.fabrikam.net") // proven before its parent...
	vouch(t, s, "fabrikam.com", "fabrikam.net")   // ...which another tenant may prove: the child stays contoso's
	n := 0
	for _, tc := range []struct {
		tok, host, want string // want: the stored host, or an error code
	}{
		{contoso, "", "app-contoso.sallyport.test"},
		{contoso, "payroll-contoso.sallyport.test", "payroll-contoso.sallyport.test"},
		{contoso, "Pay-Roll-CONTOSO.sallyport.test.", "pay-roll-contoso.sallyport.test"},
		{contoso, "a-b-contoso.sallyport.test", "a-b-contoso.sallyport.test"},
		{contoso, "payroll-fabrikam.sallyport.test", "host_not_owned"}, // the issue's attack
		{contoso, "fabrikam-contoso.sallyport.test", "fabrikam-contoso.sallyport.test"},
		{contoso, "contoso.sallyport.test", "host_not_owned"},     // no X
		{contoso, "-contoso.sallyport.test", "bad_external_host"}, // not a DNS name
		{contoso, "payrollcontoso.sallyport.test", "host_not_owned"},
		{contoso, "a.payroll-contoso.sallyport.test", "host_not_owned"}, // two levels: not covered by *.CLOUDNAME
		{contoso, "sallyport.test", "bad_external_host"},
		{contoso, "intranet.fabrikam.com", "host_not_owned"},
		{contoso, "accounts.google.com", "host_not_owned"},
		{contoso, "contoso.com", "host_not_owned"}, // the login domain is not a publishing domain
		{contoso, "apps.contoso.com", "apps.contoso.com"},
		{contoso, "Web.Apps.Contoso.com.", "web.apps.contoso.com"},
		{contoso, "x.y.apps.contoso.com", "x.y.apps.contoso.com"},
		{contoso, "xapps.contoso.com", "host_not_owned"},
		{fabrikam, "payroll-fabrikam.sallyport.test", "payroll-fabrikam.sallyport.test"},
		{fabrikam, "payroll-contoso.sallyport.test", "app_exists"}, // refused as not owned before it could conflict
		{fabrikam, "intranet.fabrikam.com", "intranet.fabrikam.com"},
		{fabrikam, "web.apps.contoso.com", "host_not_owned"},
		{fabrikam, "www.fabrikam.net", "www.fabrikam.net"},
		{fabrikam, "x.hr.fabrikam.net", "host_not_owned"}, // under contoso's more specific proof
		{contoso, "x.hr.fabrikam.net", "x.hr.fabrikam.net"},
		{contoso, "www.fabrikam.net", "host_not_owned"},
	} {
		n++
		name := "app" + itoa(n)
		if tc.host == "" {
			name = "app"
		}
		rec, eb := call(t, s, "POST", "/apps", tc.tok, api.CreateAppRequest{Name: name, InternalURL: "http://intranet.corp:8080/", ExternalHost: tc.host})
		if tc.want == "app_exists" {
			tc.want = "host_not_owned"
		}
		if strings.Contains(tc.want, ".") {
			if rec.Code != 201 {
				t.Errorf("%s: %d %s %s", tc.host, rec.Code, eb.Error.Code, eb.Error.Message)
			} else if !strings.Contains(rec.Body.String(), `"external_host":"`+tc.want+`"`) {
				t.Errorf("%s: stored as %s", tc.host, rec.Body.String())
			}
			continue
		}
		if eb.Error.Code != tc.want {
			t.Errorf("%s: %d %q (%s), want %s", tc.host, rec.Code, eb.Error.Code, eb.Error.Message, tc.want)
		}
		if tc.want == "host_not_owned" && (rec.Code != 403 || eb.Error.Step == "" || strings.Contains(eb.Error.Message, "tenant contoso.com") ||
			strings.Contains(eb.Error.Message, "tenant fabrikam.com")) {
			t.Errorf("%s: %d %q / %q", tc.host, rec.Code, eb.Error.Message, eb.Error.Step)
		}
	}
	// The sentences say why and what to do.
	_, eb := call(t, s, "POST", "/apps", contoso, api.CreateAppRequest{Name: "g", InternalURL: "http://i.corp/", ExternalHost: "accounts.google.com"})
	if !strings.Contains(eb.Error.Message, "not under a domain contoso.com has proven") || !strings.Contains(eb.Error.Step, "sallyport admin domain add google.com") {
		t.Errorf("unproven domain: %q / %q", eb.Error.Message, eb.Error.Step)
	}
	_, eb = call(t, s, "POST", "/apps", contoso, api.CreateAppRequest{Name: "g", InternalURL: "http://i.corp/", ExternalHost: "payroll-fabrikam.sallyport.test"})
	if !strings.Contains(eb.Error.Message, "not one of contoso.com's default names, which end in -contoso.sallyport.test") {
		t.Errorf("other default name: %q", eb.Error.Message)
	}
	_, eb = call(t, s, "POST", "/apps", contoso, api.CreateAppRequest{Name: "g", InternalURL: "http://i.corp/", ExternalHost: "intranet.fabrikam.com"})
	if !strings.HasPrefix(eb.Error.Message, "The external host intranet.fabrikam.com is under fabrikam.com, which another tenant has proven;") {
		t.Errorf("another tenant's domain: %q", eb.Error.Message)
	}
	evs, err := eventlog.Read(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{2406}})
	if err != nil || len(evs) == 0 {
		t.Errorf("no event 2406 for refused hosts (%v)", err)
	}
}

// TestHostOwnershipOnUpdate: an application made by an older version on a
// host its tenant does not own cannot be updated, and serve's start warns
// about it (event 2410) without deleting it.
func TestHostOwnershipOnUpdate(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	ten := tenantOf(t, s, "contoso.com")
	g, _ := s.store.GroupByName(ctx, ten.ID, tenancy.DefaultGroup)
	now := time.Now().UTC()
	for _, a := range []store.Application{
		{ID: "a_legacy", TenantID: ten.ID, Name: "legacy", GroupID: g.ID, ExternalHost: "accounts.google.com", InternalURL: "http://i.corp/", Timeout: "default", PreAuth: "passthrough", CreatedAt: now, UpdatedAt: now},
		{ID: "a_ok", TenantID: ten.ID, Name: "ok", GroupID: g.ID, ExternalHost: "ok-contoso.sallyport.test", InternalURL: "http://i.corp/", Timeout: "default", PreAuth: "passthrough", CreatedAt: now, UpdatedAt: now},
	} {
		if err := s.store.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	tok := login(t, s, "admin@contoso.com", testPassword)
	u := "http://other.corp/"
	if rec, eb := call(t, s, "PATCH", "/apps/legacy", tok, api.UpdateAppRequest{InternalURL: &u}); rec.Code != 403 || eb.Error.Code != "host_not_owned" {
		t.Errorf("update of an app on an unowned host: %d %s", rec.Code, eb.Error.Code)
	}
	if rec, eb := call(t, s, "PATCH", "/apps/ok", tok, api.UpdateAppRequest{InternalURL: &u}); rec.Code != 200 {
		t.Errorf("update of an app on its default name: %d %s", rec.Code, eb.Error.Message)
	}
	if err := s.warnUnownedHosts(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := eventlog.Read(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{2410}})
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Message, "'legacy' of contoso.com is published at accounts.google.com") ||
		!strings.Contains(evs[0].Message, "sallyport admin domain add") {
		t.Fatalf("events 2410 = %+v (%v)", evs, err)
	}
	if _, err := s.store.AppByName(ctx, ten.ID, "legacy"); err != nil {
		t.Errorf("the legacy app was removed: %v", err)
	}
}

// TestNoOnDemandCertificates: a TLS client asking for a name the cloud
// serves an application at but has no certificate for gets the server
// certificate (a name mismatch), never one the cloud CA issued for it.
func TestNoOnDemandCertificates(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	ten := tenantOf(t, s, "contoso.com")
	g, _ := s.store.GroupByName(ctx, ten.ID, tenancy.DefaultGroup)
	now := time.Now().UTC()
	if err := s.store.CreateApp(ctx, store.Application{ID: "a_g", TenantID: ten.ID, Name: "g", GroupID: g.ID, ExternalHost: "accounts.google.com",
		InternalURL: "http://i.corp/", Timeout: "default", PreAuth: "passthrough", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"accounts.google.com", "web-contoso.sallyport.test", "sallyport.test", "unknown.example"} {
		c, err := s.certificateFor(&tls.ClientHelloInfo{ServerName: name, SupportedVersions: []uint16{tls.VersionTLS13},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		if c != s.serverCert() {
			t.Errorf("%s: got a certificate for %v, want the server certificate", name, leaf.DNSNames)
		}
		if name == "accounts.google.com" && leaf.VerifyHostname(name) == nil {
			t.Errorf("the edge presented a certificate for %s", name)
		}
	}
}

func TestLabels(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		existing      []string // domain=label
		domain, label string
		want          string // the label, or an error code
		sentence      string
	}{
		{nil, "contoso.com", "", "contoso", ""},
		{nil, "Contoso.COM", "Ctso", "ctso", ""},
		{[]string{"contoso.com=contoso"}, "contoso.org", "", "label_taken", "The tenant contoso.com already has the label 'contoso'"},
		{[]string{"contoso.com=contoso"}, "contoso-org.net", "", "contoso-org", ""},
		{[]string{"contoso.com=contoso", "contoso-org.net=contoso-org"}, "contoso.org", "contoso-org", "label_taken", "The tenant contoso-org.net already has the label 'contoso-org'"},
		{[]string{"contoso.com=contoso"}, "contoso.org", "corg", "corg", ""},
		{[]string{"c.com=c"}, "bc.com", "b-c", "label_taken", "clashes with the label 'c' of the tenant c.com"},
		{[]string{"bc.com=b-c"}, "c.com", "", "label_taken", "clashes with the label 'b-c' of the tenant bc.com"},
		{[]string{"bc.com=b-c"}, "bc.org", "bc", "bc", ""},
		{[]string{"bc.com=b-c"}, "x.org", "a-b-c", "label_taken", ""},
		{[]string{"c.com=c"}, "c2.com", "c-", "bad_label", ""},
		{nil, "contoso.com", "con_toso", "bad_label", ""},
		{nil, "contoso.com", strings.Repeat("a", 41), "bad_label", ""},
		{nil, strings.Repeat("a", 41) + ".com", "", "bad_label", "choose a label with --label"},
	} {
		t.Run(tc.domain+"/"+tc.label, func(t *testing.T) {
			s := newTestServerBare(t)
			for _, e := range tc.existing {
				d, l, _ := strings.Cut(e, "=")
				if _, err := datadir.AddTenant(ctx, s.store, d, l, "admin@"+d, testPassword); err != nil {
					t.Fatal(err)
				}
			}
			_, err := datadir.AddTenant(ctx, s.store, tc.domain, tc.label, "admin@"+strings.ToLower(tc.domain), testPassword)
			if strings.HasPrefix(tc.want, "bad_") || strings.HasPrefix(tc.want, "label_") {
				if err == nil || !strings.Contains(problemCode(err), tc.want) || !strings.Contains(err.Error(), tc.sentence) {
					t.Fatalf("AddTenant = %v, want %s %q", err, tc.want, tc.sentence)
				}
				if tc.want == "label_taken" && !strings.Contains(err.Error(), "--label") {
					t.Errorf("no --label step: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ten, _ := s.store.TenantByDomain(ctx, strings.ToLower(tc.domain))
			if ten.Label != tc.want {
				t.Errorf("label = %q, want %q", ten.Label, tc.want)
			}
		})
	}
}

// TestDomainProof claims and proves domains against a real DNS server.
func TestDomainProof(t *testing.T) {
	s, z := newDNSTestServer(t)
	contoso := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := login(t, s, "admin@fabrikam.com", testPassword)

	// Claims a tenant cannot make.
	for _, tc := range []struct{ domain, code, sentence string }{
		{"com", "bad_domain", ""},
		{"co.uk", "domain_public_suffix", "co.uk is a public suffix"},
		{"github.io", "domain_public_suffix", ""},
		{"sallyport.test", "domain_cloud_name", ""},
		{"apps.sallyport.test", "domain_cloud_name", ""},
		{"not a domain", "bad_domain", ""},
		{"10.0.0.1", "bad_domain", ""},
	} {
		rec, eb := call(t, s, "POST", "/domains", contoso, api.CreateDomainRequest{Domain: tc.domain})
		if eb.Error.Code != tc.code || !strings.Contains(eb.Error.Message, tc.sentence) {
			t.Errorf("add %s: %d %s %q, want %s", tc.domain, rec.Code, eb.Error.Code, eb.Error.Message, tc.code)
		}
	}

	// A squatter's pending claim does not block the owner.
	if rec, eb := call(t, s, "POST", "/domains", fabrikam, api.CreateDomainRequest{Domain: "apps.contoso.com"}); rec.Code != 201 {
		t.Fatalf("squat: %d %s", rec.Code, eb.Error.Message)
	}
	rec, eb := call(t, s, "POST", "/domains", contoso, api.CreateDomainRequest{Domain: "Apps.Contoso.COM."})
	if rec.Code != 201 {
		t.Fatalf("add: %d %s", rec.Code, eb.Error.Message)
	}
	var d api.Domain
	decodeJSON(t, rec.Body.Bytes(), &d)
	if d.Domain != "apps.contoso.com" || d.Status != "pending" || d.TXTName != "_sallyport.apps.contoso.com" || !strings.HasPrefix(d.TXTValue, "sallyport-verify=") || len(d.TXTValue) < 40 {
		t.Fatalf("claim = %+v", d)
	}
	if _, eb := call(t, s, "POST", "/domains", contoso, api.CreateDomainRequest{Domain: "apps.contoso.com"}); eb.Error.Code != "domain_exists" {
		t.Errorf("claim twice: %s", eb.Error.Code)
	}
	verify := func(tok, domain string) (int, api.ErrorBody) {
		rec, eb := call(t, s, "POST", "/domains/"+domain+"/verify", tok, nil)
		return rec.Code, eb
	}
	// Not published yet, then a wrong value, then the right one.
	if code, eb := verify(contoso, "apps.contoso.com"); code != 409 || eb.Error.Code != "domain_txt_missing" ||
		!strings.HasPrefix(eb.Error.Message, "No TXT record _sallyport.apps.contoso.com was found, so apps.contoso.com is not proven;") || !strings.Contains(eb.Error.Step, d.TXTValue) {
		t.Errorf("verify without record: %d %s %q / %q", code, eb.Error.Code, eb.Error.Message, eb.Error.Step)
	}
	z.SetTXT("_sallyport.apps.contoso.com", "sallyport-verify=wrong", "v=spf1 -all")
	if code, eb := verify(contoso, "apps.contoso.com"); code != 409 || eb.Error.Code != "domain_txt_mismatch" ||
		!strings.Contains(eb.Error.Message, `holds "sallyport-verify=wrong", "v=spf1 -all" instead of the expected `+d.TXTValue) {
		t.Errorf("verify with another value: %d %s %q", code, eb.Error.Code, eb.Error.Message)
	}
	// Only the owner's token proves it: the squatter's record is not there.
	z.SetTXT("_sallyport.apps.contoso.com", "v=spf1 -all", d.TXTValue)
	if code, eb := verify(fabrikam, "apps.contoso.com"); code != 409 || eb.Error.Code != "domain_txt_mismatch" {
		t.Errorf("squatter verify: %d %s", code, eb.Error.Code)
	}
	if code, eb := verify(contoso, "apps.contoso.com"); code != 200 {
		t.Fatalf("verify: %d %s %s", code, eb.Error.Code, eb.Error.Message)
	}
	// The squatter's claim can no longer be verified, and nobody else may
	// claim the domain or a name under it; the message does not name contoso.
	if code, eb := verify(fabrikam, "apps.contoso.com"); code != 409 || eb.Error.Code != "domain_taken" || strings.Contains(eb.Error.Message, "tenant contoso.com") {
		t.Errorf("squatter verify after the owner: %d %s %q", code, eb.Error.Code, eb.Error.Message)
	}
	for _, dom := range []string{"apps.contoso.com", "hr.apps.contoso.com"} {
		rec, eb := call(t, s, "POST", "/domains", fabrikam, api.CreateDomainRequest{Domain: dom})
		if rec.Code != 409 || eb.Error.Code != "domain_taken" || !strings.Contains(eb.Error.Message, "another tenant") {
			t.Errorf("fabrikam add %s: %d %s %q", dom, rec.Code, eb.Error.Code, eb.Error.Message)
		}
	}
	// Publish under it: works, with a note about the certificate.
	rec, eb = call(t, s, "POST", "/apps", contoso, api.CreateAppRequest{Name: "hr", InternalURL: "http://hr.corp/", ExternalHost: "hr.apps.contoso.com"})
	if rec.Code != 201 || !strings.Contains(rec.Body.String(), "Browsers will not trust https://hr.apps.contoso.com/ until it has a certificate") {
		t.Fatalf("publish under the proven domain: %d %s %s", rec.Code, eb.Error.Message, rec.Body.String())
	}
	// Delete is refused while the app uses it.
	if rec, eb := call(t, s, "DELETE", "/domains/apps.contoso.com", contoso, nil); rec.Code != 409 || eb.Error.Code != "domain_in_use" ||
		!strings.Contains(eb.Error.Message, "'hr' (hr.apps.contoso.com)") {
		t.Errorf("delete in use: %d %s %q", rec.Code, eb.Error.Code, eb.Error.Message)
	}
	call(t, s, "DELETE", "/apps/hr", contoso, nil)
	if rec, eb := call(t, s, "DELETE", "/domains/apps.contoso.com", contoso, nil); rec.Code != 204 {
		t.Errorf("delete: %d %s", rec.Code, eb.Error.Message)
	}
	// A user (not an administrator) may list but not claim.
	rec, _ = call(t, s, "GET", "/domains", fabrikam, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"status":"pending"`) {
		t.Errorf("list: %d %s", rec.Code, rec.Body.String())
	}
	evs, _ := eventlog.Read(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{2400, 2401, 2403, 2404, 2405}})
	seen := map[eventlog.ID]bool{}
	for _, e := range evs {
		seen[e.ID] = true
	}
	for _, id := range []eventlog.ID{2400, 2401, 2403, 2404, 2405} {
		if !seen[id] {
			t.Errorf("no event %d", id)
		}
	}
}

// TestDNSUnreachable: a resolver that does not answer is told apart.
func TestDNSUnreachable(t *testing.T) {
	s := newTestServer(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.resolver = txtResolver{addr: pc.LocalAddr().String()}
	pc.Close() // nothing answers there any more
	tok := login(t, s, "admin@contoso.com", testPassword)
	call(t, s, "POST", "/domains", tok, api.CreateDomainRequest{Domain: "apps.contoso.com"})
	rec, eb := call(t, s, "POST", "/domains/apps.contoso.com/verify", tok, nil)
	if rec.Code != 503 || eb.Error.Code != "dns_unreachable" || !strings.Contains(eb.Error.Message, s.resolver.addr) {
		t.Errorf("verify with a dead resolver: %d %s %q", rec.Code, eb.Error.Code, eb.Error.Message)
	}
}

func TestOperatorDomains(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	vouch(t, s, "contoso.com", "contoso.example")
	_, err := datadir.VouchDomain(ctx, s.cfg.DataDir, s.store, "fabrikam.com", "www.contoso.example")
	if err == nil || err.Error() != "www.contoso.example is under contoso.example, which is proven by the tenant contoso.com; if your organisation owns it, ask the cloud's operator to sort it out." {
		t.Errorf("vouch under another tenant's domain: %v", err)
	}
	if _, err := datadir.VouchDomain(ctx, s.cfg.DataDir, s.store, "nobody.com", "x.example"); problemCode(err) != "no_tenant" {
		t.Errorf("vouch for an unknown tenant: %v", err)
	}
	// A pending claim of the tenant becomes verified.
	tok := login(t, s, "admin@fabrikam.com", testPassword)
	call(t, s, "POST", "/domains", tok, api.CreateDomainRequest{Domain: "fabrikam.example"})
	vouch(t, s, "fabrikam.com", "fabrikam.example")
	ds, err := datadir.TenantDomains(ctx, s.store, "fabrikam.com")
	if err != nil || len(ds) != 1 || !ds[0].Verified() || ds[0].VerifiedBy != "operator" {
		t.Fatalf("domains = %+v (%v)", ds, err)
	}
	if err := datadir.DeleteTenantDomain(ctx, s.cfg.DataDir, s.store, "fabrikam.com", "fabrikam.example"); err != nil {
		t.Fatal(err)
	}
	if err := datadir.DeleteTenantDomain(ctx, s.cfg.DataDir, s.store, "fabrikam.com", "fabrikam.example"); problemCode(err) != "no_domain" {
		t.Errorf("delete twice: %v", err)
	}
	evs, err := eventlog.Read(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{2402, 2403}})
	if err != nil || len(evs) != 3 || evs[0].Message != "The operator vouched for the domain contoso.example of contoso.com" ||
		evs[2].Message != "The operator deleted the domain fabrikam.example of fabrikam.com" {
		t.Errorf("operator events = %+v (%v)", evs, err)
	}
}

// bareStore is an empty store with no tenant.
type bareStore struct{ store store.Store }

func newTestServerBare(t *testing.T) bareStore {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return bareStore{st}
}

func problemCode(err error) string {
	if p, ok := problem.As(err); ok {
		return p.Code
	}
	return ""
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// TestInitCANameConstrained: a new data directory's cloud CA may only sign
// the cloud's name and names under it.
func TestInitCANameConstrained(t *testing.T) {
	s := newTestServer(t)
	ca, err := loadCloudCA(s.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.PermittedDNSDomainsCritical || len(ca.Cert.PermittedDNSDomains) != 1 || ca.Cert.PermittedDNSDomains[0] != "sallyport.test" {
		t.Fatalf("cloud CA constraints: critical %v, permitted %v", ca.Cert.PermittedDNSDomainsCritical, ca.Cert.PermittedDNSDomains)
	}
	forged, err := ca.IssueServer([]string{"accounts.google.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forged.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "accounts.google.com"}); err == nil {
		t.Fatal("a certificate for accounts.google.com from the cloud CA verifies")
	}
	if _, err := s.serverCert().Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "web-contoso.sallyport.test"}); err != nil {
		t.Fatalf("the server certificate does not verify: %v", err)
	}
}

// TestLookupTXT: a truncated UDP answer is asked again over TCP, and at
// most 4 KiB of TXT data is considered.
func TestLookupTXT(t *testing.T) {
	z := dnstest.Start(t)
	r := txtResolver{addr: z.Addr()}
	ctx := context.Background()
	z.SetTXT("tcp-only.example", "sallyport-verify=over-tcp")
	if vals, err := r.LookupTXT(ctx, "tcp-only.example"); err != nil || len(vals) != 1 || vals[0] != "sallyport-verify=over-tcp" {
		t.Errorf("over TCP: %q, %v", vals, err)
	}
	var many []string
	for i := range 40 {
		many = append(many, strings.Repeat(string(rune('a'+i%26)), 200))
	}
	z.SetTXT("tcp-only.many.example", many...)
	vals, err := r.LookupTXT(ctx, "tcp-only.many.example")
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	if err != nil || n > maxTXTBytes || len(vals) != maxTXTBytes/200 {
		t.Errorf("40 values of 200 bytes: kept %d values, %d bytes (%v)", len(vals), n, err)
	}
	if _, err := r.LookupTXT(ctx, "absent.example"); err != errNoTXT {
		t.Errorf("absent name: %v", err)
	}
}
