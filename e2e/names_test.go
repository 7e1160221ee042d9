package e2e

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/dnstest"
)

// TestHostNamesAreOwned reproduces issue 14 item 1 with the real binary:
// contoso's administrator cannot publish fabrikam's default name, a name
// under fabrikam's domain, or accounts.google.com; the edge never presents
// a certificate for a name it was not given one for; domains are proven
// by a DNS TXT record served by a real DNS server; labels are unique.
func TestHostNamesAreOwned(t *testing.T) {
	z := dnstest.Start(t)
	c := startCloud(t, "--dns-resolver", z.Addr())
	admin := c.admin

	fab := c.addFabrikam(t)

	t.Run("contoso cannot publish others' names", func(t *testing.T) {
		for _, tc := range []struct{ host, want string }{
			{"payroll-fabrikam." + cloudName, "is not one of contoso.com's default names, which end in -contoso." + cloudName},
			{"intranet.fabrikam.com", "is not under a domain contoso.com has proven; prove the domain first with 'sallyport admin domain add fabrikam.com'"},
			{"accounts.google.com", "is not under a domain contoso.com has proven; prove the domain first with 'sallyport admin domain add google.com'"},
		} {
			admin.refused(t, "", []string{"admin", "app", "create", "payroll", "--internal-url", "http://payroll.corp/", "--external-host", tc.host},
				"The external host "+tc.host, tc.want)
		}
		// fabrikam publishes its own default name.
		a := c.publish(t, fab, "payroll", "http://payroll.fabrikam.corp/")
		if a.ExternalHost != "payroll-fabrikam."+cloudName {
			t.Errorf("fabrikam's payroll is at %s", a.ExternalHost)
		}
	})

	t.Run("no certificate for names nobody gave one for", func(t *testing.T) {
		for _, sni := range []string{"accounts.google.com", "intranet.fabrikam.com"} {
			conn, err := tls.Dial("tcp", "127.0.0.1:"+c.port, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("handshake with SNI %s: %v", sni, err)
			}
			leaf := conn.ConnectionState().PeerCertificates[0]
			conn.Close()
			if leaf.VerifyHostname(sni) == nil {
				t.Errorf("the edge presented a certificate for %s (names %v)", sni, leaf.DNSNames)
			}
			// A client that trusts the cloud CA refuses the handshake.
			if conn, err := tls.Dial("tcp", "127.0.0.1:"+c.port, &tls.Config{ServerName: sni, RootCAs: c.pool}); err == nil {
				conn.Close()
				t.Errorf("a client trusting the cloud CA accepted the handshake for %s", sni)
			}
		}
	})

	t.Run("domain proof by DNS", func(t *testing.T) {
		const domain = "intranet.contoso.org"
		var d struct {
			Domain   string `json:"domain"`
			Status   string `json:"status"`
			TXTName  string `json:"txt_name"`
			TXTValue string `json:"txt_value"`
		}
		admin.okJSON(t, &d, "admin", "domain", "add", "Intranet.Contoso.org.", "--json")
		if d.Domain != domain || d.Status != "pending" || d.TXTName != "_sallyport."+domain || !strings.HasPrefix(d.TXTValue, "sallyport-verify=") {
			t.Fatalf("domain add = %+v", d)
		}
		// A pending claim by another tenant does not block contoso.
		fab.ok(t, "", "admin", "domain", "add", domain)
		admin.refused(t, "", []string{"admin", "domain", "verify", domain}, "No TXT record _sallyport."+domain+" was found", d.TXTValue)
		admin.refused(t, "", []string{"admin", "app", "create", "hr", "--internal-url", "http://hr.corp/", "--external-host", "hr." + domain},
			"is under "+domain+", which contoso.com has claimed but not proven yet", "sallyport admin domain verify "+domain)
		z.SetTXT("_sallyport."+domain, "sallyport-verify=something-else")
		admin.refused(t, "", []string{"admin", "domain", "verify", domain}, `holds "sallyport-verify=something-else" instead of the expected `+d.TXTValue)
		z.SetTXT("_sallyport."+domain, d.TXTValue)
		res := admin.ok(t, "", "admin", "domain", "verify", domain)
		mustContain(t, "domain verify", res.stdout, domain+" is proven (dns)")
		res = admin.ok(t, "", "admin", "app", "create", "hr", "--internal-url", "http://hr.corp/", "--external-host", "hr."+domain)
		mustContain(t, "app create on a proven domain", res.stdout, "Published 'hr': https://hr."+domain+":"+c.port+"/",
			"Note: Browsers will not trust https://hr."+domain+"/ until it has a certificate for that name: publish it with --cert-file and --key-file")
		res = admin.ok(t, "", "admin", "domain", "list")
		mustContain(t, "domain list", res.stdout, "DOMAIN", "STATUS", domain, "verified", "dns")

		// fabrikam's pending claim now fails, and it cannot claim the
		// domain or a name under it; contoso is not named.
		for _, args := range [][]string{{"admin", "domain", "verify", domain}, {"admin", "domain", "add", "x." + domain}} {
			res := fab.refused(t, "", args, "proven by another tenant")
			if strings.Contains(res.stderr, "contoso.com") {
				t.Errorf("the refusal names the other tenant: %s", res.stderr)
			}
		}
		fab.refused(t, "", []string{"admin", "app", "create", "hr", "--internal-url", "http://hr.corp/", "--external-host", "www." + domain},
			"is under "+domain+", which another tenant has proven")
		admin.refused(t, "", []string{"admin", "domain", "delete", domain}, "cannot be deleted while applications are published under it: 'hr' (hr."+domain+")")
	})

	t.Run("operator vouches", func(t *testing.T) {
		res := admin.ok(t, "", "cloud", "tenant", "domain", "add", "--data-dir", c.dataDir, "--tenant", "fabrikam.com", "--domain", "fabrikam.com")
		mustContain(t, "tenant domain add", res.stdout, "fabrikam.com may now publish applications under fabrikam.com")
		a := c.publish(t, fab, "intranet", "http://intranet.corp/", "--external-host", "intranet.fabrikam.com")
		if a.ExternalHost != "intranet.fabrikam.com" {
			t.Errorf("intranet is at %s", a.ExternalHost)
		}
		res = admin.ok(t, "", "cloud", "tenant", "domain", "list", "--data-dir", c.dataDir, "--tenant", "fabrikam.com")
		mustContain(t, "tenant domain list", res.stdout, "fabrikam.com", "verified", "operator", "intranet.contoso.org", "pending")
		admin.refused(t, "", []string{"cloud", "tenant", "domain", "add", "--data-dir", c.dataDir, "--tenant", contoso, "--domain", "com"}, `"com" is not a valid domain name`)
		admin.refused(t, "", []string{"cloud", "tenant", "domain", "add", "--data-dir", c.dataDir, "--tenant", contoso, "--domain", "co.uk"}, "co.uk is a public suffix")
		admin.refused(t, "", []string{"cloud", "tenant", "domain", "add", "--data-dir", c.dataDir, "--tenant", contoso, "--domain", "www.fabrikam.com"},
			"www.fabrikam.com is under fabrikam.com, which is proven by the tenant fabrikam.com")
	})

	t.Run("labels are unique", func(t *testing.T) {
		pw := filepath.Join(t.TempDir(), "pw")
		writeFile(t, pw, "contoso-org-admin-password\n", 0o600)
		admin.refused(t, "", []string{"cloud", "tenant", "add", "--data-dir", c.dataDir, "--tenant", "contoso.org", "--admin", "admin@contoso.org", "--admin-password-file", pw},
			"The tenant contoso.com already has the label 'contoso'", "--label")
		admin.refused(t, "", []string{"cloud", "tenant", "add", "--data-dir", c.dataDir, "--tenant", "contoso.org", "--admin", "admin@contoso.org", "--admin-password-file", pw, "--label", "org-contoso"},
			"clashes with the label 'contoso' of the tenant contoso.com")
		res := admin.ok(t, "", "cloud", "tenant", "add", "--data-dir", c.dataDir, "--tenant", "contoso.org", "--admin", "admin@contoso.org", "--admin-password-file", pw, "--label", "contosoorg")
		mustContain(t, "tenant add --label", res.stdout, "Added tenant contoso.org")
	})
}
