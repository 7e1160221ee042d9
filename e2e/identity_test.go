package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestIdentityIssuer: a real 'cloud serve' publishes each tenant's issuer
// at its own name — the discovery document naming the issuer with the
// cloud's port, and the JWKS with the tenant's first key (made at this
// first fetch, event 2940) — publicly and cacheable for 5 minutes; an
// unknown label is a 404 that says nothing of tenants.
func TestIdentityIssuer(t *testing.T) {
	c := startCloud(t)
	issuer := "https://" + cloudName + ":" + c.port + "/t/contoso"

	resp, body := c.get(t, cloudName, "/t/contoso/.well-known/openid-configuration")
	var disc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &disc) != nil {
		t.Fatalf("discovery: %d %s", resp.StatusCode, body)
	}
	if disc.Issuer != issuer || disc.JWKSURI != issuer+"/.well-known/jwks.json" || len(disc.Algs) != 1 || disc.Algs[0] != "ES256" {
		t.Errorf("discovery %s, want the issuer %s", body, issuer)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("discovery Cache-Control = %q", cc)
	}

	resp, body = c.get(t, cloudName, "/t/contoso/.well-known/jwks.json")
	var set struct {
		Keys []struct{ Kty, Crv, Kid, Alg, Use, D string }
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &set) != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS: %d %s, want one key", resp.StatusCode, body)
	}
	if k := set.Keys[0]; k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Use != "sig" || len(k.Kid) != 43 || k.D != "" {
		t.Errorf("JWKS key %+v", k)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}
	// The same key at the next fetch.
	if _, again := c.get(t, cloudName, "/t/contoso/.well-known/jwks.json"); again != body {
		t.Errorf("the JWKS changed between two fetches:\n%s\n%s", body, again)
	}

	for _, path := range []string{"/t/fabrikam/.well-known/jwks.json", "/t/contoso.com/.well-known/openid-configuration"} {
		resp, body := c.get(t, cloudName, path)
		if resp.StatusCode != 404 || !strings.Contains(body, `"not_found"`) || strings.Contains(body, "contoso") {
			t.Errorf("GET %s = %d %s, want a 404 not_found without internals", path, resp.StatusCode, body)
		}
	}
	if ev := c.admin.ok(t, "", "cloud", "events", "--data-dir", c.dataDir).stdout; !strings.Contains(ev, "2940") || !strings.Contains(ev, set.Keys[0].Kid) {
		t.Errorf("cloud events has no 2940 naming the key %s:\n%s", set.Keys[0].Kid, ev)
	}
}
