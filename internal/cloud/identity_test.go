package cloud

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/identity"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
)

// identityCloud is a cloud serving on loopback (no connector), with the
// tenants contoso.com and fabrikam.com, on a test clock, and an HTTPS
// client that pins its CA and reaches every name at its listener.
type identityCloud struct {
	srv      *Server
	dir      string
	clk      *clock
	client   *http.Client
	contoso  store.Tenant
	fabrikam store.Tenant
}

func startIdentityCloud(t *testing.T) *identityCloud {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.localhost", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", Now: clk.Now, RefreshInterval: 20 * time.Millisecond, KeyCheckInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := datadir.AddTenant(ctx, s.store, "fabrikam.com", "", "admin@fabrikam.com", testPassword); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ln := serveLive(t, s)
	roots := x509.NewCertPool()
	roots.AddCert(cloudCA(t, dir))
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}
	t.Cleanup(tr.CloseIdleConnections)
	ic := &identityCloud{srv: s, dir: dir, clk: clk, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	ic.contoso, _ = s.store.TenantByDomain(ctx, "contoso.com")
	ic.fabrikam, _ = s.store.TenantByDomain(ctx, "fabrikam.com")
	return ic
}

// get fetches a URL over the cloud's real listener.
func (ic *identityCloud) get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := ic.client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func (ic *identityCloud) mint(t *testing.T, ten store.Tenant, host string) string {
	t.Helper()
	tok, err := ic.srv.Identity().Mint(t.Context(), ten, identity.App{ExternalHost: host},
		identity.User{ID: "u_alice", Name: "alice@" + ten.Domain, Email: "alice@" + ten.Domain, Groups: []string{"Sales", "Admins"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// withAssertion is a backend's view of a request carrying tok.
func withAssertion(tok string) *http.Request {
	r, _ := http.NewRequest("GET", "https://wiki-contoso.sallyport.localhost/", nil)
	r.Header.Set("Sallyport-Assertion", tok)
	return r
}

const wikiHost = "wiki-contoso.sallyport.localhost"

// TestIdentityOverHTTPS: the JWKS and discovery document of a tenant,
// fetched over the cloud's real HTTPS listener at its own name, verify a
// minted assertion with docs/identity.md's backend (go-jose's jwt package)
// and, separately, with the standard library alone (the JWK's x and y,
// ECDSA over SHA-256). Refused: another audience, an expired assertion, a
// signature by another tenant's key, a changed claim, alg none. Unknown
// issuers are a 404 that says nothing of tenants.
func TestIdentityOverHTTPS(t *testing.T) {
	ic := startIdentityCloud(t)
	const issuer = "https://sallyport.localhost/t/contoso"

	resp, body := ic.get(t, issuer+"/.well-known/openid-configuration")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=300" {
		t.Fatalf("discovery: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	var disc identity.Discovery
	if err := json.Unmarshal(body, &disc); err != nil || disc.Issuer != issuer || disc.JWKSURI != issuer+"/.well-known/jwks.json" {
		t.Fatalf("discovery %s (%v)", body, err)
	}
	for _, url := range []string{"https://sallyport.localhost/t/nope/.well-known/jwks.json", "https://sallyport.localhost/t/" + ic.contoso.ID + "/.well-known/jwks.json",
		"https://sallyport.localhost/t/contoso/.well-known/other", "https://" + wikiHost + "/t/contoso/.well-known/jwks.json"} {
		resp, body := ic.get(t, url)
		if resp.StatusCode != 404 || strings.Contains(string(body), ic.contoso.ID) || strings.Contains(string(body), "contoso.com") {
			t.Errorf("GET %s = %d %s, want a 404 without internals", url, resp.StatusCode, body)
		}
	}

	good := ic.mint(t, ic.contoso, wikiHost)
	keys := &AssertionKeys{Issuer: issuer, Client: ic.client}
	user, err := keys.Verify(withAssertion(good), "https://"+wikiHost)
	if err != nil {
		t.Fatalf("the backend refused a good assertion: %v", err)
	}
	if user.Email != "alice@contoso.com" || user.Name != "alice@contoso.com" || strings.Join(user.Groups, ",") != "Sales,Admins" {
		t.Errorf("asserted user %+v", user)
	}
	resp, body = ic.get(t, issuer+"/.well-known/jwks.json")
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}
	if err := verifyWithStdlib(body, good); err != nil {
		t.Errorf("the standard library does not verify the assertion: %v", err)
	}

	// An assertion minted 10 minutes ago (the cloud's clock set back).
	ic.clk.Advance(-10 * time.Minute)
	expired := ic.mint(t, ic.contoso, wikiHost)
	ic.clk.Advance(10 * time.Minute)
	// fabrikam's key signing contoso's claims, with contoso's kid or its own.
	fabKeys, err := ic.srv.store.TenantSigningKeys(t.Context(), ic.fabrikam.ID)
	if err != nil || len(fabKeys) != 0 {
		t.Fatalf("fabrikam has keys before its first need: %v %v", fabKeys, err)
	}
	fromFabrikam := ic.mint(t, ic.fabrikam, wikiHost)
	fabKeys, _ = ic.srv.store.TenantSigningKeys(t.Context(), ic.fabrikam.ID)
	contosoKID := header(t, good)["kid"].(string)
	forged := signWith(t, fabKeys[0].KeyPEM, contosoKID, claimsOf(t, good))
	forgedOwnKID := signWith(t, fabKeys[0].KeyPEM, fabKeys[0].KID, claimsOf(t, good))
	parts := strings.Split(good, ".")
	changed := claimsOf(t, good)
	changed["groups"] = []string{"Admins", "Sales", "Finance"}
	cj, _ := json.Marshal(changed)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(cj) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."

	tests := []struct {
		name     string
		tok      string
		audience string
		stdlibOK bool // the signature itself is good
	}{
		{"another application's audience", good, "https://crm-contoso.sallyport.localhost", true},
		{"expired", expired, "https://" + wikiHost, true},
		{"fabrikam's assertion", fromFabrikam, "https://" + wikiHost, false},
		{"fabrikam's key under contoso's kid", forged, "https://" + wikiHost, false},
		{"fabrikam's key under its own kid", forgedOwnKID, "https://" + wikiHost, false},
		{"a claim changed", tampered, "https://" + wikiHost, false},
		{"alg none", none, "https://" + wikiHost, false},
		{"no assertion", "", "https://" + wikiHost, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if u, err := keys.Verify(withAssertion(tc.tok), tc.audience); err == nil {
				t.Errorf("the backend accepted it: %+v", u)
			}
			if err := verifyWithStdlib(body, tc.tok); (err == nil) != tc.stdlibOK {
				t.Errorf("standard library verification: %v, want the signature good = %v", err, tc.stdlibOK)
			}
		})
	}
}

// TestIdentityKeysWrapped: the tenants' signing keys are stored wrapped
// by the key-encryption key — the database files hold neither a PEM nor
// the DER of any of them — and a wrapped key copied into another tenant's
// row does not unwrap there.
func TestIdentityKeysWrapped(t *testing.T) {
	ic := startIdentityCloud(t)
	ctx := t.Context()
	ic.mint(t, ic.contoso, wikiHost)
	ic.mint(t, ic.fabrikam, "crm-fabrikam.sallyport.localhost")
	db := rawDB(t, ic.dir)
	rows, err := db.Query(`SELECT tenant_id, kid, key_pem FROM tenant_signing_keys`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][]byte{}
	for rows.Next() {
		var ten, kid string
		var v []byte
		if err := rows.Scan(&ten, &kid, &v); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(v), wrappedPrefix) {
			t.Errorf("the key %s of %s is stored as %.30q, not wrapped", kid, ten, v)
		}
		stored[ten] = v
	}
	rows.Close()
	if len(stored) != 2 {
		t.Fatalf("signing keys of %d tenants in the database, want 2", len(stored))
	}
	secrets := map[string][]byte{}
	for _, ten := range []store.Tenant{ic.contoso, ic.fabrikam} {
		keys, err := ic.srv.store.TenantSigningKeys(ctx, ten.ID)
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys of %s: %v %v", ten.Domain, keys, err)
		}
		secrets["signing key of "+ten.Domain] = keyDER(t, keys[0].KeyPEM)
	}
	noKeysInStore(t, ic.dir, secrets)
	if _, err := db.Exec(`UPDATE tenant_signing_keys SET key_pem = ? WHERE tenant_id = ?`, stored[ic.contoso.ID], ic.fabrikam.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.srv.store.TenantSigningKeys(ctx, ic.fabrikam.ID); err == nil || !strings.Contains(err.Error(), "moved from another row") {
		t.Errorf("contoso's wrapped key in fabrikam's row: err = %v, want a failure to unwrap", err)
	}
}

// TestIdentityRotationInMaintain: the cloud's maintain loop rotates the
// keys on its clock: after 29 days the next key is in the JWKS served
// over HTTPS while the current one still signs; a day later the new one
// signs, and a backend that fetched the JWKS before verifies it.
func TestIdentityRotationInMaintain(t *testing.T) {
	ic := startIdentityCloud(t)
	const issuer = "https://sallyport.localhost/t/contoso"
	first := header(t, ic.mint(t, ic.contoso, wikiHost))["kid"].(string)
	pass := func() {
		t.Helper()
		n := ic.srv.keyPasses.Load()
		if !testnet.Eventually(10*time.Second, func() bool { return ic.srv.keyPasses.Load() >= n+2 }) {
			t.Fatal("the maintain loop did not rotate")
		}
	}
	ic.clk.Advance(29*24*time.Hour + time.Minute)
	pass()
	_, body := ic.get(t, issuer+"/.well-known/jwks.json")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS after 29 days: %s (%v), want two keys", body, err)
	}
	if kid := header(t, ic.mint(t, ic.contoso, wikiHost))["kid"]; kid != first {
		t.Fatalf("signed with %v on day 29, want the first key %s still", kid, first)
	}
	ic.clk.Advance(24 * time.Hour)
	pass()
	tok := ic.mint(t, ic.contoso, wikiHost)
	if kid := header(t, tok)["kid"]; kid == first {
		t.Fatal("the first key still signs on day 30")
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := parsed.Claims(set, &claims); err != nil {
		t.Fatalf("the JWKS fetched a day before does not verify the new key's assertion: %v", err)
	}
	if err := claims.Validate(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{"https://" + wikiHost}, Time: ic.clk.Now()}); err != nil {
		t.Error(err)
	}
}

// TestIdentityDocBackend: docs/identity.md's backend is the code that
// TestIdentityOverHTTPS runs (identitydoc_test.go between its markers),
// verbatim, so the doc cannot rot.
func TestIdentityDocBackend(t *testing.T) {
	src, err := os.ReadFile("identitydoc_test.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)// doc:begin\n(.*?)\n// doc:end`).FindSubmatch(src)
	if m == nil {
		t.Fatal("identitydoc_test.go has no doc:begin/doc:end markers")
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "identity.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := "```go\npackage main\n\n" + strings.TrimSpace(string(m[1])) + "\n```"
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/identity.md does not hold the backend of identitydoc_test.go verbatim; its code block must be:\n%s", want)
	}
}

// header decodes a JWT's protected header.
func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	return jwtPart(t, tok, 0)
}

// claimsOf decodes a JWT's claims without verifying them.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	return jwtPart(t, tok, 1)
}

// jwtPart decodes part i of a JWT (0 the header, 1 the claims).
func jwtPart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	var v map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err == nil {
		err = json.Unmarshal(raw, &v)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signWith signs claims with a PEM key under kid, as a forger holding
// that key would.
func signWith(t *testing.T, keyPEM []byte, kid string, claims map[string]any) string {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// verifyWithStdlib checks tok's ES256 signature against the key of its
// kid in jwksJSON with the standard library alone: no JOSE library reads
// the key set or the signature.
func verifyWithStdlib(jwksJSON []byte, tok string) error {
	var set struct {
		Keys []struct{ Kty, Crv, Kid, Alg, X, Y string }
	}
	if err := json.Unmarshal(jwksJSON, &set); err != nil {
		return err
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errorString("not three parts")
	}
	var h struct{ Alg, Kid string }
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &h) != nil || h.Alg != "ES256" {
		return errorString("header not ES256")
	}
	for _, k := range set.Keys {
		if k.Kid != h.Kid || k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" {
			continue
		}
		x, err1 := base64.RawURLEncoding.DecodeString(k.X)
		y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
		sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
		if err1 != nil || err2 != nil || err3 != nil || len(sig) != 64 {
			return errorString("bad encoding")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return err
		}
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil
		}
		return errorString("signature does not verify")
	}
	return errorString("no key " + h.Kid)
}

type errorString string

func (e errorString) Error() string { return string(e) }
