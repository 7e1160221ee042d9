package e2e

import (
	"path/filepath"
	"testing"
)

// TestSignInAgain: signing in again, as the "no longer valid" refusal
// advises, needs only --cloud and --user: the CA pinned in the profile is
// reused; registering a connector again reuses the CA pinned in its state
// directory (issue 20, defect 2). A first contact still needs a pin.
func TestSignInAgain(t *testing.T) {
	t.Parallel()
	c := startCloud(t)

	r := newRunner(t, "again")
	r.refused(t, contosoPW+"\n", []string{"admin", "login", "--cloud", c.url, "--user", contosoAdmin, "--password-stdin"},
		"does not trust yet")
	c.login(t, r, contosoAdmin, contosoPW)
	res := r.ok(t, contosoPW+"\n", "admin", "login", "--cloud", c.url, "--user", contosoAdmin, "--password-stdin")
	mustContain(t, "second login output", res.stdout, "Signed in to "+c.url+" as admin@contoso.com")
	var apps []apiApp
	r.okJSON(t, &apps, "admin", "app", "list", "--json")

	dir := filepath.Join(r.dir, "connector")
	first := c.mustRegister(t, r, dir, contosoAdmin, contosoPW)
	again, res := c.register(t, r, dir, contosoAdmin, contosoPW, []string{}...)
	if res.code != 0 || again.id != first.id {
		t.Fatalf("registering again without a pin: connector %q, want %q:\n%s", again.id, first.id, res)
	}
	other := newRunner(t, "fresh")
	_, res = c.register(t, other, filepath.Join(other.dir, "connector"), contosoAdmin, contosoPW, []string{}...)
	checkRefusal(t, res, "does not trust yet")
}
