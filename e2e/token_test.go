package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	tokenCreatedRe = regexp.MustCompile(`Created registration token (r_[0-9a-f]+) for connector group '([^']*)' of (\S+), valid until .* \(24 hours\), for 1 registration\.`)
	tokenLineRe    = regexp.MustCompile(`(?m)^(spr_[A-Za-z0-9_-]{43})$`)
)

// apiToken is a registration token in 'admin token ... --json' output.
type apiToken struct {
	ID        string    `json:"id"`
	Group     string    `json:"group"`
	CreatedBy string    `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	State     string    `json:"state"`
	RevokedBy string    `json:"revoked_by"`
	Token     string    `json:"token"`
}

// TestRegistrationTokens: an administrator creates a one-time token; a
// site registers a connector with it and no password, and the connector
// serves an application of the token's group. A second use, a revoked
// token and a token of another group are refused with their reasons.
func TestRegistrationTokens(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	admin := c.admin
	b := newBackend(t)
	admin.ok(t, "", "admin", "group", "create", "Branch")
	site := newRunner(t, "site") // the connector's machine: no sign-in, no password
	registerArgs := func(dir, token string, extra ...string) []string {
		return append([]string{"connector", "register", "--cloud", c.url, "--dir", dir, "--token", token, "--ca-fingerprint", c.fingerprint}, extra...)
	}

	res := admin.ok(t, "", "admin", "token", "create", "--group", "Branch")
	m := tokenCreatedRe.FindStringSubmatch(res.stdout)
	tm := tokenLineRe.FindStringSubmatch(res.stdout)
	if m == nil || tm == nil || m[2] != "Branch" || m[3] != contoso {
		t.Fatalf("token create output:\n%s", res)
	}
	id, token := m[1], tm[1]
	// issue 20 item 13: the printed command reads the token from a file,
	// never from the command line.
	printed := "sallyport connector register --cloud " + c.url + " --ca-fingerprint " + c.fingerprint + " --token-file sallyport-token"
	mustContain(t, "token create output", res.stdout, "shown only now", "cat > sallyport-token", printed)
	if strings.Contains(res.stdout, "--token "+token) || strings.Count(res.stdout, token) != 1 {
		t.Errorf("token create prints the token more than once or on a command line:\n%s", res.stdout)
	}

	// Register with the token alone, as printed, then serve.
	dir := filepath.Join(site.dir, "connector1")
	if err := os.WriteFile(filepath.Join(site.dir, "sallyport-token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(strings.TrimPrefix(printed, "sallyport "))
	args[len(args)-1] = filepath.Join(site.dir, "sallyport-token")
	res = site.ok(t, "", append(args, "--dir", dir)...)
	rm := registeredRe.FindStringSubmatch(res.stdout)
	if rm == nil || rm[2] != contoso || rm[3] != "Branch" {
		t.Fatalf("registration with a token:\n%s", res)
	}
	st := connectorState{dir: dir, id: rm[1], tenant: rm[2], group: rm[3]}
	noSecretIn(t, dir, token, "the registration token")
	web := c.publish(t, admin, "web", b.url, "--group", "Branch")
	c.runConnector(t, admin, st)
	if resp, body := c.get(t, web.ExternalHost, "/page"); resp.StatusCode != http.StatusOK || !strings.Contains(body, backendPage) {
		t.Fatalf("web through the token-registered connector: %d %s", resp.StatusCode, body)
	}
	mustContain(t, "cloud log", c.serve.out.String(), "connector="+st.id, "by="+contosoAdmin, "token="+id)

	// A one-time token works once.
	dir2 := filepath.Join(site.dir, "connector2")
	site.refused(t, "", registerArgs(dir2, token),
		"Connector registration failed: the registration token "+id+" is used up: it allowed 1 registration, which has been made",
		"sallyport admin token create")
	if _, err := os.Stat(filepath.Join(dir2, "trust.json")); err == nil {
		t.Errorf("a refused registration wrote %s", filepath.Join(dir2, "trust.json"))
	}

	// Listed with its use and state, never with the token.
	var ts []apiToken
	admin.okJSON(t, &ts, "admin", "token", "list", "--json")
	if len(ts) != 1 || ts[0].ID != id || ts[0].Group != "Branch" || ts[0].CreatedBy != contosoAdmin || ts[0].Uses != 1 ||
		ts[0].MaxUses != 1 || ts[0].State != "used_up" || ts[0].Token != "" {
		t.Errorf("token list --json = %+v", ts)
	}
	res = admin.ok(t, "", "admin", "token", "list")
	mustContain(t, "token list", res.stdout, "ID", "GROUP", "CREATED BY", "EXPIRES", "USES", "STATE", id, "Branch", contosoAdmin, "1/1", "used up")
	if strings.Contains(res.stdout, token) {
		t.Errorf("token list shows the token:\n%s", res)
	}

	// A token of Branch does not register into Default.
	var multi apiToken
	admin.okJSON(t, &multi, "admin", "token", "create", "--group", "Branch", "--expires", "7d", "--uses", "5", "--json")
	if !strings.HasPrefix(multi.Token, "spr_") || multi.MaxUses != 5 || time.Until(multi.ExpiresAt) < 6*24*time.Hour {
		t.Fatalf("token create --json = %+v", multi)
	}
	site.refused(t, "", registerArgs(filepath.Join(site.dir, "connector3"), multi.Token, "--group", "Default"),
		"the registration token "+multi.ID+" is for the connector group 'Branch', not 'Default'")

	// A revoked token is refused.
	res = admin.ok(t, "", "admin", "token", "revoke", multi.ID)
	mustContain(t, "token revoke output", res.stdout, "Revoked registration token "+multi.ID, "it can no longer register connectors")
	site.refused(t, "", registerArgs(filepath.Join(site.dir, "connector4"), multi.Token),
		"the registration token "+multi.ID+" was revoked on", "by "+contosoAdmin)

	// Lifetimes beyond the limit are refused at creation.
	admin.refused(t, "", []string{"admin", "token", "create", "--expires", "31d"}, "A registration token may live at most 30 days, not 31 days")
	admin.refused(t, "", []string{"admin", "token", "create", "--expires", "soon"}, `"soon" is not a token lifetime`)
}
