package e2e

import (
	"slices"
	"testing"
)

// TestNetworkAppCLI: the admin CLI creates, lists, shows, updates and
// deletes network applications (tcp, udp) with their internal addresses,
// and refuses a web application's flags for them with one sentence.
func TestNetworkAppCLI(t *testing.T) {
	t.Parallel()
	c := initCloud(t)
	c.startServe(t)
	admin := c.admin
	c.login(t, admin, contosoAdmin, contosoPW)

	type netApp struct {
		Name              string   `json:"name"`
		Type              string   `json:"type"`
		Group             string   `json:"group"`
		ExternalURL       string   `json:"external_url"`
		InternalURL       string   `json:"internal_url"`
		InternalAddresses []string `json:"internal_addresses"`
		PreAuth           string   `json:"preauth"`
	}
	res := admin.ok(t, "", "admin", "app", "create", "db", "--type", "tcp", "--internal-address", "DB.corp:5432", "--internal-address", "10.1.0.0/24:5432")
	mustContain(t, "app create tcp", res.stdout, "Created the tcp application 'db' for db.corp:5432, 10.1.0.0/24:5432 (group 'Default')")
	var dns netApp
	admin.okJSON(t, &dns, "admin", "app", "create", "dns", "--type", "udp", "--internal-address", "dns.corp:53", "--json")
	if dns.Type != "udp" || !slices.Equal(dns.InternalAddresses, []string{"dns.corp:53"}) || dns.ExternalURL != "" || dns.InternalURL != "" || dns.PreAuth != "sallyport" {
		t.Errorf("app create dns --json = %+v", dns)
	}
	admin.ok(t, "", "admin", "app", "create", "wildcards", "--type", "tcp", "--internal-address", "*.corp.contoso.com:443", "--internal-address", "[fd00::/64]:1000-2000")

	admin.refused(t, "", []string{"admin", "app", "create", "x", "--type", "tcp"}, "A tcp application needs at least one internal address")
	admin.refused(t, "", []string{"admin", "app", "create", "x", "--type", "tcp", "--internal-address", "db.corp"}, `internal address "db.corp" has no port`)
	admin.refused(t, "", []string{"admin", "app", "create", "x", "--type", "tcp", "--internal-address", "db.corp:1", "--pre-auth", "passthrough"}, "A tcp application takes no passthrough pre-authentication")
	admin.refused(t, "", []string{"admin", "app", "create", "x", "--type", "udp", "--internal-address", "db.corp:1", "--internal-url", "http://db.corp/"}, "A udp application takes no internal URL")
	admin.refused(t, "", []string{"admin", "app", "create", "x", "--internal-address", "db.corp:1", "--internal-url", "http://db.corp/"}, "A web (http) application takes no internal addresses")
	admin.refused(t, "", []string{"admin", "app", "create", "x"}, "A web application needs --internal-url")
	admin.refused(t, "", []string{"admin", "app", "create", "x", "--type", "sctp", "--internal-address", "db.corp:1"}, `"sctp" is not an application type`)

	table := admin.ok(t, "", "admin", "app", "list").stdout
	mustContain(t, "app list", table, "TYPE", "INTERNAL URL OR ADDRESSES", "db.corp:5432 10.1.0.0/24:5432", "udp", "dns.corp:53")
	var list []netApp
	admin.okJSON(t, &list, "admin", "app", "list", "--json")
	if len(list) != 3 || list[0].Name != "db" || list[0].Type != "tcp" || len(list[0].InternalAddresses) != 2 {
		t.Errorf("app list --json = %+v", list)
	}
	table = admin.ok(t, "", "admin", "app", "show", "db").stdout
	mustContain(t, "app show", table, "Type:", "tcp", "Internal addresses (2):", "10.1.0.0/24:5432")

	res = admin.ok(t, "", "admin", "app", "update", "db", "--internal-address", "db2.corp:5432")
	mustContain(t, "app update", res.stdout, "Updated the tcp application 'db': db2.corp:5432 (group 'Default').")
	var shown struct {
		netApp
	}
	admin.okJSON(t, &shown, "admin", "app", "show", "db", "--json")
	if !slices.Equal(shown.InternalAddresses, []string{"db2.corp:5432"}) {
		t.Errorf("app show db --json after update = %+v", shown)
	}
	admin.refused(t, "", []string{"admin", "app", "update", "db", "--internal-url", "http://db.corp/"}, "A tcp application takes no internal URL")
	res = admin.ok(t, "", "admin", "app", "diagnose", "db")
	mustContain(t, "app diagnose", res.stdout, "Application 'db' (tcp): db2.corp:5432, group 'Default'", "Probes (each internal address through each connected connector: a TCP connect):", "none: no connector of the group is connected", "Group 'Default' has no connector, so every stream is refused")
	admin.ok(t, "", "admin", "app", "delete", "dns")
}
