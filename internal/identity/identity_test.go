package identity

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/store/sqlite"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// t0 is the tests' start time (with nanoseconds: claims are whole seconds).
var t0 = time.Date(2026, 12, 4, 18, 30, 0, 123456789, time.UTC)

const cloudName = "sallyport.example.com"

// fixture is a store with two tenants and a Service on a test clock.
type fixture struct {
	st       store.Store
	clk      *clock
	svc      *Service
	contoso  store.Tenant
	fabrikam store.Tenant
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, clk: &clock{now: t0}}
	for _, label := range []string{"contoso", "fabrikam"} {
		id := "t_" + label
		ten := store.Tenant{ID: id, Domain: label + ".com", Label: label, CreatedAt: t0}
		err := st.CreateTenant(t.Context(), ten, store.TenantCA{TenantID: id, CertPEM: []byte("c"), KeyPEM: []byte("k")},
			store.Group{ID: "g_" + label, TenantID: id, Name: "Default", CreatedAt: t0},
			store.User{ID: "u_" + label, TenantID: id, Name: "admin@" + label + ".com", Role: store.RoleGlobalAdmin, CreatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		if label == "contoso" {
			f.contoso = ten
		} else {
			f.fabrikam = ten
		}
	}
	f.svc = f.service(t)
	return f
}

// service is another Service on the fixture's store and clock (another
// cloud instance).
func (f *fixture) service(t testing.TB) *Service {
	t.Helper()
	svc, err := New(Config{Store: f.st, CloudName: cloudName, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// jwksOf fetches a tenant's JWKS through the Handler.
func (f *fixture) jwksOf(t *testing.T, ten store.Tenant) jose.JSONWebKeySet {
	t.Helper()
	rec := f.get(t, "/t/"+ten.Label+JWKSSuffix)
	if rec.Code != 200 {
		t.Fatalf("JWKS of %s: %d %s", ten.Label, rec.Code, rec.Body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func (f *fixture) get(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	lookup := func(label string) (store.Tenant, bool) {
		for _, ten := range []store.Tenant{f.contoso, f.fabrikam} {
			if ten.Label == label {
				return ten, true
			}
		}
		return store.Tenant{}, false
	}
	writeErr := func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusNotFound)
	}
	rec := httptest.NewRecorder()
	f.svc.Handler(lookup, writeErr).ServeHTTP(rec, httptest.NewRequest("GET", "https://"+cloudName+path, nil))
	return rec
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// header decodes an assertion's protected header.
func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestMint: the assertion's header (alg ES256, typ JWT, kid the key's RFC
// 7638 thumbprint, published in the tenant's JWKS) and claims (issuer,
// audience, subject, the user's fields, whole-second times, a lifetime of
// 5 minutes, a fresh jti), verified with go-jose's jwt package against the
// JWKS; and what Mint refuses to sign.
func TestMint(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	wiki := App{ExternalHost: "wiki-contoso.sallyport.example.com"}
	tests := []struct {
		name       string
		tenant     store.Tenant
		app        App
		user       User
		wantGroups []string
		wantErr    bool
	}{
		{"groups", f.contoso, wiki, User{ID: "u_1", Name: "alice@contoso.com", Email: "alice@contoso.com", Groups: []string{"Sales", "Zürich team"}}, []string{"Sales", "Zürich team"}, false},
		{"no groups is an empty array", f.contoso, wiki, User{ID: "u_2", Name: "bob@contoso.com", Email: "bob@contoso.com"}, []string{}, false},
		{"another tenant", f.fabrikam, App{ExternalHost: "crm.fabrikam.com"}, User{ID: "u_3", Name: "eve@fabrikam.com", Email: "eve@fabrikam.com"}, []string{}, false},
		{"no user id", f.contoso, wiki, User{Name: "x"}, nil, true},
		{"no host", f.contoso, App{}, User{ID: "u_1"}, nil, true},
		{"no label", store.Tenant{ID: "t_contoso"}, wiki, User{ID: "u_1"}, nil, true},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := f.svc.Mint(ctx, tc.tenant, tc.app, tc.user)
			if tc.wantErr {
				if err == nil {
					t.Fatal("minted, want a refusal")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := header(t, tok)
			set := f.jwksOf(t, tc.tenant)
			if len(set.Keys) != 1 {
				t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
			}
			jwk := set.Keys[0]
			tp, _ := jwk.Thumbprint(crypto.SHA256)
			if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != jwk.KeyID || jwk.KeyID != base64.RawURLEncoding.EncodeToString(tp) {
				t.Errorf("header %v, JWKS key %s (thumbprint %x)", h, jwk.KeyID, tp)
			}
			if jwk.Algorithm != "ES256" || jwk.Use != "sig" || !jwk.IsPublic() {
				t.Errorf("JWKS key: alg %q use %q public %v", jwk.Algorithm, jwk.Use, jwk.IsPublic())
			}
			parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			var std jwt.Claims
			var c Claims
			var raw map[string]any
			if err := parsed.Claims(set, &std, &c, &raw); err != nil {
				t.Fatalf("verify with the JWKS: %v", err)
			}
			iss := "https://" + cloudName + "/t/" + tc.tenant.Label
			if err := std.ValidateWithLeeway(jwt.Expected{Issuer: iss, AnyAudience: jwt.Audience{"https://" + tc.app.ExternalHost}, Subject: tc.user.ID, Time: f.clk.Now()}, 0); err != nil {
				t.Errorf("claims %+v: %v", std, err)
			}
			iat := t0.Truncate(time.Second)
			if !std.IssuedAt.Time().Equal(iat) || !std.NotBefore.Time().Equal(iat) || !std.Expiry.Time().Equal(iat.Add(5*time.Minute)) {
				t.Errorf("iat %v nbf %v exp %v; want %v and 5 minutes later", std.IssuedAt.Time(), std.NotBefore.Time(), std.Expiry.Time(), iat)
			}
			if c.Email != tc.user.Email || c.Name != tc.user.Name || !slices.Equal(c.Groups, tc.wantGroups) || raw["groups"] == nil {
				t.Errorf("claims %+v (groups %v), want %+v", c, raw["groups"], tc.user)
			}
			if aud, ok := raw["aud"].(string); !ok || aud != "https://"+tc.app.ExternalHost {
				t.Errorf("aud = %v", raw["aud"])
			}
			if len(std.ID) < 20 || seen[std.ID] {
				t.Errorf("jti %q: short or seen before", std.ID)
			}
			seen[std.ID] = true
			if len(raw) != 10 {
				t.Errorf("claims %v: want exactly iss aud sub iat nbf exp jti email name groups", raw)
			}
		})
	}
	// One key per tenant, each its own.
	if a, b := kids(f.jwksOf(t, f.contoso)), kids(f.jwksOf(t, f.fabrikam)); len(a) != 1 || len(b) != 1 || a[0] == b[0] {
		t.Errorf("contoso's keys %v, fabrikam's %v: want one each, different", a, b)
	}
}

// TestFirstKeyOnce: instances and requests racing for a tenant's first
// key end with one key, which every assertion is signed with.
func TestFirstKeyOnce(t *testing.T) {
	f := newFixture(t)
	svcs := []*Service{f.svc, f.service(t), f.service(t)}
	toks := make([]string, 12)
	errs := make([]error, len(toks))
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() {
			toks[i], errs[i] = svcs[i%len(svcs)].Mint(t.Context(), f.contoso, App{ExternalHost: "a.example"}, User{ID: "u"})
		})
	}
	wg.Wait()
	keys, err := f.st.TenantSigningKeys(t.Context(), f.contoso.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys (%v), want 1", len(keys), err)
	}
	for i, tok := range toks {
		if errs[i] != nil {
			t.Fatalf("Mint %d: %v", i, errs[i])
		}
		if kid := header(t, tok)["kid"]; kid != keys[0].KID {
			t.Errorf("assertion %d signed with %v, want %s", i, kid, keys[0].KID)
		}
	}
}

// TestRotation walks a tenant's keys through 70 days on the test clock, a
// rotation pass every 6 hours (the cloud runs one a minute), minting an
// assertion and fetching the JWKS at each step. It checks the rules a
// backend relies on: the key of every assertion was in the JWKS at least
// PublishAhead (≥ 2× the lifetime) before it signed — but the first —,
// and every key stays in the JWKS at least RetainAfter (≥ 2× the
// lifetime) after its last assertion; keys rotate every 30 days, and at
// most two are published at once.
func TestRotation(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	p := DefaultPolicy()
	firstSeen := map[string]time.Time{}
	lastUsed := map[string]time.Time{}
	var signers []string
	started := map[string]time.Time{}
	const step = 6 * time.Hour
	for now := t0; now.Before(t0.Add(70 * 24 * time.Hour)); now = now.Add(step) {
		f.clk.Set(now)
		if err := f.svc.Rotate(ctx, f.contoso); err != nil {
			t.Fatal(err)
		}
		published := kids(f.jwksOf(t, f.contoso))
		if len(published) > 2 {
			t.Fatalf("%s: %d keys published", now.Sub(t0), len(published))
		}
		for _, k := range published {
			if _, ok := firstSeen[k]; !ok {
				firstSeen[k] = now
			}
		}
		for k, used := range lastUsed {
			if now.Sub(used) < p.RetainAfter && !slices.Contains(published, k) {
				t.Fatalf("%s: key %s, last used %s ago, is no longer published", now.Sub(t0), k, now.Sub(used))
			}
		}
		tok, err := f.svc.Mint(ctx, f.contoso, App{ExternalHost: "wiki.example"}, User{ID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		kid := header(t, tok)["kid"].(string)
		if !slices.Contains(published, kid) {
			t.Fatalf("%s: signed with %s, not in the JWKS %v", now.Sub(t0), kid, published)
		}
		if len(signers) == 0 || signers[len(signers)-1] != kid {
			signers = append(signers, kid)
			started[kid] = now
			if len(signers) > 1 && now.Sub(firstSeen[kid]) < p.PublishAhead {
				t.Fatalf("%s: key %s signs %s after it was first published, want at least %s", now.Sub(t0), kid, now.Sub(firstSeen[kid]), p.PublishAhead)
			}
		}
		lastUsed[kid] = now
	}
	// Three keys signed: days 0–30, 30–60, 60–70; the first is gone.
	if len(signers) != 3 {
		t.Fatalf("%d keys signed in 70 days, want 3 (rotation every 30 days)", len(signers))
	}
	stored, err := f.st.TenantSigningKeys(ctx, f.contoso.ID)
	if err != nil || len(stored) != 1 || stored[0].KID != signers[2] {
		t.Errorf("stored keys on day 70: %v, %v; want only the third (the second was retired on day 60)", stored, err)
	}
	for i, want := range []time.Duration{0, p.RotateEvery, 2 * p.RotateEvery} {
		if got := started[signers[i]].Sub(t0); got != want {
			t.Errorf("key %d signed from day %v, want %v", i+1, got.Hours()/24, want.Hours()/24)
		}
	}
	// The other tenant was never needed: it has no key.
	if keys, _ := f.st.TenantSigningKeys(ctx, f.fabrikam.ID); len(keys) != 0 {
		t.Errorf("fabrikam has %d keys without a need", len(keys))
	}
}

// TestRotationLate: a cloud that was down past the rotation date publishes
// the next key at once, and keeps signing with the current one until the
// publish-ahead period has passed (a backend's cached JWKS has it then);
// a second instance rotating at the same moment adds no second key.
func TestRotationLate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	p := DefaultPolicy()
	first, err := f.svc.Mint(ctx, f.contoso, App{ExternalHost: "w.example"}, User{ID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(45 * 24 * time.Hour)
	other := f.service(t)
	var wg sync.WaitGroup
	for _, s := range []*Service{f.svc, other} {
		wg.Go(func() {
			if err := s.Rotate(ctx, f.contoso); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := kids(f.jwksOf(t, f.contoso)); len(got) != 2 {
		t.Fatalf("published %v, want the current key and one successor", got)
	}
	steps := []struct {
		after time.Duration
		same  bool
	}{{0, true}, {p.PublishAhead - time.Second, true}, {time.Second, false}}
	for _, st := range steps {
		f.clk.Advance(st.after)
		for _, s := range []*Service{f.svc, other} {
			tok, err := s.Mint(ctx, f.contoso, App{ExternalHost: "w.example"}, User{ID: "u"})
			if err != nil {
				t.Fatal(err)
			}
			if same := header(t, tok)["kid"] == header(t, first)["kid"]; same != st.same {
				t.Errorf("%s after the late rotation: signed with the first key = %v, want %v", f.clk.Now().Sub(t0)-45*24*time.Hour, same, st.same)
			}
		}
	}
}

// TestPolicy: the rules between lifetime, publish-ahead, retention and
// rotation.
func TestPolicy(t *testing.T) {
	d := DefaultPolicy()
	if err := d.Validate(); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Policy)
		ok   bool
	}{
		{"default", func(*Policy) {}, true},
		{"lifetime above 5 minutes", func(p *Policy) { p.Lifetime = 6 * time.Minute }, false},
		{"no lifetime", func(p *Policy) { p.Lifetime = 0 }, false},
		{"publish-ahead below twice the lifetime", func(p *Policy) { p.PublishAhead = 2*p.Lifetime - time.Second }, false},
		{"publish-ahead twice the lifetime", func(p *Policy) { p.PublishAhead = 2 * p.Lifetime }, true},
		{"retention below twice the lifetime", func(p *Policy) { p.RetainAfter = 2*p.Lifetime - time.Second }, false},
		{"rotation within the publish-ahead", func(p *Policy) { p.RotateEvery = p.PublishAhead }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := d
			tc.edit(&p)
			if err := p.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestHandler: the JWKS and discovery documents are public and cacheable
// for at most 5 minutes and name the tenant's issuer; an unknown label,
// or another path, is the error writer's 404; a tenant's JWKS holds only
// public keys.
func TestHandler(t *testing.T) {
	f := newFixture(t)
	iss := "https://" + cloudName + "/t/contoso"
	rec := f.get(t, "/t/contoso"+DiscoverySuffix)
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "public, max-age=300" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("discovery: %d %v", rec.Code, rec.Header())
	}
	var disc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &disc); err != nil {
		t.Fatal(err)
	}
	if disc["issuer"] != iss || disc["jwks_uri"] != iss+JWKSSuffix || len(disc) != 5 {
		t.Errorf("discovery %v", disc)
	}
	if algs, _ := disc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "ES256" {
		t.Errorf("algorithms %v", disc["id_token_signing_alg_values_supported"])
	}
	rec = f.get(t, "/t/contoso"+JWKSSuffix)
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "public, max-age=300" {
		t.Fatalf("JWKS: %d %v", rec.Code, rec.Header())
	}
	if body := rec.Body.String(); strings.Contains(body, `"d"`) || !strings.Contains(body, `"kid"`) {
		t.Errorf("JWKS %s: want public keys only", body)
	}
	for _, path := range []string{"/t/nope" + JWKSSuffix, "/t/nope" + DiscoverySuffix, "/t/contoso/.well-known/other", "/t/" + f.contoso.ID + JWKSSuffix, "/t/contoso.com" + JWKSSuffix} {
		if rec := f.get(t, path); rec.Code != 404 || strings.Contains(rec.Body.String(), "t_") {
			t.Errorf("GET %s = %d %q, want 404 without internals", path, rec.Code, rec.Body)
		}
	}
}

// TestIssuerAndAudiencePort: a cloud not serving on 443 names its port in
// issuers and audiences, as its other URLs do.
func TestIssuerAndAudiencePort(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ port, iss, aud string }{
		{"", "https://" + cloudName + "/t/contoso", "https://wiki.example"},
		{"443", "https://" + cloudName + "/t/contoso", "https://wiki.example"},
		{"8443", "https://" + cloudName + ":8443/t/contoso", "https://wiki.example:8443"},
	} {
		svc, err := New(Config{Store: f.st, CloudName: cloudName, Port: tc.port, Now: f.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := svc.Mint(t.Context(), f.contoso, App{ExternalHost: "wiki.example"}, User{ID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		parsed, _ := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		var c jwt.Claims
		if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil {
			t.Fatal(err)
		}
		if c.Issuer != tc.iss || len(c.Audience) != 1 || c.Audience[0] != tc.aud || svc.DiscoveryOf("contoso").JWKSURI != tc.iss+JWKSSuffix {
			t.Errorf("port %q: iss %s aud %v", tc.port, c.Issuer, c.Audience)
		}
	}
}

// TestClockSetBack: a clock set back before the tenant's first key
// started still signs, with that key (it is published).
func TestClockSetBack(t *testing.T) {
	f := newFixture(t)
	first, err := f.svc.Mint(t.Context(), f.contoso, App{ExternalHost: "w.example"}, User{ID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(-time.Hour)
	again, err := f.svc.Mint(t.Context(), f.contoso, App{ExternalHost: "w.example"}, User{ID: "u"})
	if err != nil || header(t, again)["kid"] != header(t, first)["kid"] {
		t.Fatalf("minted %v with the clock an hour back: %v", header(t, again)["kid"], err)
	}
}

// FuzzHandlerPath: whatever the path, the handler answers 200 only for a
// known tenant's two documents, never with a private key, and never
// panics.
func FuzzHandlerPath(f *testing.F) {
	for _, p := range []string{"/t/contoso" + JWKSSuffix, "/t/contoso" + DiscoverySuffix, "/t/nope" + JWKSSuffix, "/t//.well-known/jwks.json",
		"/t/contoso/../fabrikam" + JWKSSuffix, "/t/%63ontoso" + JWKSSuffix, "/t/contoso" + JWKSSuffix + "/", "/t/contoso%2F.well-known" + JWKSSuffix} {
		f.Add(p)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, path string) {
		req, err := http.NewRequest("GET", "https://"+cloudName+"/", nil)
		if err != nil {
			t.Skip()
		}
		req.URL.Path, req.URL.RawPath = path, ""
		rec := httptest.NewRecorder()
		fx.svc.Handler(func(label string) (store.Tenant, bool) {
			if label == "contoso" {
				return fx.contoso, true
			}
			return store.Tenant{}, false
		}, func(w http.ResponseWriter, r *http.Request, err error) { http.Error(w, "not found", 404) }).ServeHTTP(rec, req)
		ok := path == "/t/contoso"+JWKSSuffix || path == "/t/contoso"+DiscoverySuffix
		if (rec.Code == 200) != ok {
			t.Fatalf("GET %q = %d", path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), `"d":`) {
			t.Fatalf("GET %q leaked a private key", path)
		}
	})
}
