package cloud

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/idptest"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
)

// fakeIdP is a small OpenID provider for the refusals a real one cannot
// be made to produce (a token for another audience, expired, signed by
// another key, with another nonce): discovery, JWKS and a token endpoint
// that checks the client's secret and the PKCE verifier, then answers the
// ID token the test shaped for the code.
type fakeIdP struct {
	srv    *httptest.Server
	issuer string
	caPEM  []byte
	key    *ecdsa.PrivateKey
	other  *ecdsa.PrivateKey // signs "bad signature" tokens under key's kid

	mu    sync.Mutex
	codes map[string]fakeCode
}

// fakeCode is what the token endpoint answers for one code.
type fakeCode struct {
	challenge string         // the PKCE challenge the authorization request carried
	claims    map[string]any // the ID token's claims
	badSig    bool
}

const (
	fakeClientID     = "sallyport-test"
	fakeClientSecret = "s3cret-of-the-client"
)

func startFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	ca := testnet.NewCA(t)
	f := &fakeIdP{codes: map[string]fakeCode{}, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})}
	var err error
	if f.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if f.other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Cert(t, "127.0.0.1")}}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL + "/"
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": f.issuer, "authorization_endpoint": f.srv.URL + "/authorize", "token_endpoint": f.srv.URL + "/token",
			"jwks_uri": f.srv.URL + "/jwks", "response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
			"scopes_supported": []string{"openid", "email", "profile", "groups"}, "id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "authorization_code" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if id == "" { // client_secret_post
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		f.mu.Lock()
		c, ok := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		f.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if id != fakeClientID || secret != fakeClientSecret || !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		key := f.key
		if c.badSig {
			key = f.other
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": signES256(t, key, "k1", c.claims)})
	})
	return f
}

func signES256(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Error(err)
		return ""
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Error(err)
	}
	return tok
}

// oidcBrowser is a browser of env that reaches the cloud's names at its
// listener and everything else (the providers on 127.0.0.1) directly,
// trusting the cloud's CA and extraCA.
func (env *preauthEnv) oidcBrowser(t *testing.T, extraCA []byte) *browser {
	t.Helper()
	base := env.client.Transport.(*http.Transport)
	roots := base.TLSClientConfig.RootCAs.Clone()
	if len(extraCA) > 0 && !roots.AppendCertsFromPEM(extraCA) {
		t.Fatal("no CA in extraCA")
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, _, _ := net.SplitHostPort(addr); strings.HasSuffix(host, ".localhost") {
				return base.DialContext(ctx, network, addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}
	t.Cleanup(tr.CloseIdleConnections)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, c: &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// toProvider opens appURL and follows the cloud's redirects up to the
// first one that leaves the cloud: the provider's authorization URL.
func (b *browser) toProvider(appURL string) *url.URL {
	b.t.Helper()
	u := appURL
	for range 10 {
		resp, body := b.do("GET", u, nil)
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			b.t.Fatalf("GET %s: %s, not a redirect to the provider:\n%s", u, resp.Status, body)
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatal(err)
		}
		if !strings.HasSuffix(loc.Hostname(), ".localhost") {
			return loc
		}
		u = loc.String()
	}
	b.t.Fatal("too many redirects")
	return nil
}

// setIdP sets contoso's provider through the admin API.
func setIdP(t *testing.T, s *Server, tok string, in api.SetIdentityProviderRequest) api.IdentityProvider {
	t.Helper()
	rec, eb := call(t, s, "PUT", "/idp", tok, in)
	if rec.Code != 200 {
		t.Fatalf("PUT /idp: %d %s", rec.Code, eb.Error.Message)
	}
	var p api.IdentityProvider
	json.Unmarshal(rec.Body.Bytes(), &p)
	return p
}

// oidcEnv is the pre-authentication environment with a user group
// "Engineering" assigned to web, and contoso's provider set to issuer.
func startOIDCEnv(t *testing.T, in api.SetIdentityProviderRequest) (*preauthEnv, api.IdentityProvider) {
	t.Helper()
	env := startPreauth(t)
	logProviderFailures(t, env.srv)
	ctx := t.Context()
	g := store.UserGroup{ID: "ug_eng", TenantID: env.tenant.ID, Name: "Engineering", CreatedAt: time.Now()}
	if err := env.srv.store.CreateUserGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.store.CreateUserGroup(ctx, store.UserGroup{ID: "ug_fin", TenantID: env.tenant.ID, Name: "Finance", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.store.Assign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: env.web.ID, UserGroupID: g.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	p := setIdP(t, env.srv, login(t, env.srv, "admin@contoso.com", testPassword), in)
	return env, p
}

// groupNames are the names of u's user groups.
func groupNames(t *testing.T, s *Server, tenantID, userID string) []string {
	t.Helper()
	gs, err := s.store.UserGroupsOf(t.Context(), tenantID, userID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

// TestOIDCFakeProvider: the whole sign-in through the cloud's real
// listener against a provider the test controls: the authorization
// request carries state, nonce, PKCE S256 and the scopes; a good ID token
// makes the user just in time, maps the groups claim and reaches the
// application; then each refusal — another audience, expired, another
// key's signature, another sign-in's nonce, an unverified email, a name
// a local account holds, an email of another domain, the provider's
// error, a replayed state, a state from another browser, a disabled user
// — is a page with its sentence, and no user is made.
func TestOIDCFakeProvider(t *testing.T) {
	idp := startFakeIdP(t)
	env, prov := startOIDCEnv(t, api.SetIdentityProviderRequest{Issuer: idp.issuer, ClientID: fakeClientID, ClientSecret: fakeClientSecret, CAPEM: string(idp.caPEM)})
	if want := env.srv.origin(env.srv.settings.Name) + "/signin/oidc/callback"; prov.RedirectURI != want || !slices.Contains(prov.Scopes, "groups") {
		t.Fatalf("redirect URI %q (want %q), scopes %v", prov.RedirectURI, want, prov.Scopes)
	}
	st := env.srv.store

	// signIn runs one sign-in in b whose ID token has claims (changed by
	// shape), and returns the response at its end.
	signIn := func(b *browser, shape func(auth url.Values, claims map[string]any) (badSig bool)) (*http.Response, string, *url.URL) {
		t.Helper()
		auth := b.toProvider(env.webURL)
		q := auth.Query()
		if auth.Path != "/authorize" || q.Get("client_id") != fakeClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || q.Get("nonce") == "" || !strings.HasPrefix(q.Get("state"), "sps_") ||
			q.Get("scope") != "openid email profile groups" || q.Get("redirect_uri") != prov.RedirectURI {
			t.Fatalf("authorization request %s", auth)
		}
		now := time.Now()
		claims := map[string]any{"iss": idp.issuer, "sub": "s-1001", "aud": fakeClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"nonce": q.Get("nonce"), "email": "Ada@contoso.com", "email_verified": true, "name": "Ada Lovelace", "groups": []string{"engineering", "Admins"}}
		bad := false
		if shape != nil {
			bad = shape(q, claims)
		}
		code := "code-" + q.Get("state")[4:14]
		idp.mu.Lock()
		idp.codes[code] = fakeCode{challenge: q.Get("code_challenge"), claims: claims, badSig: bad}
		idp.mu.Unlock()
		cb, _ := url.Parse(prov.RedirectURI)
		cb.RawQuery = url.Values{"state": {q.Get("state")}, "code": {code}}.Encode()
		resp, body := b.follow(cb.String())
		return resp, body, cb
	}

	refusals := []struct {
		name   string
		shape  func(url.Values, map[string]any) bool
		status int
		want   string
	}{
		{"another audience", func(_ url.Values, c map[string]any) bool { c["aud"] = "another-client"; return false }, 401, "it was issued to another client"},
		{"expired", func(_ url.Values, c map[string]any) bool {
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-30*time.Minute).Unix()
			return false
		}, 401, "it has expired"},
		{"another key's signature", func(url.Values, map[string]any) bool { return true }, 401, "its signature does not verify"},
		{"another sign-in's nonce", func(_ url.Values, c map[string]any) bool { c["nonce"] = "nonce-of-another-sign-in"; return false }, 401, "it belongs to another sign-in"},
		{"another issuer", func(_ url.Values, c map[string]any) bool { c["iss"] = "https://evil.example/"; return false }, 401, "was refused"},
		{"unverified email", func(_ url.Values, c map[string]any) bool { c["email_verified"] = false; return false }, 403, "is not verified at the identity provider"},
		{"name of a local account", func(_ url.Values, c map[string]any) bool { c["email"] = "bob@contoso.com"; return false }, 409,
			"The user name bob@contoso.com is already taken by an account that did not come from this identity provider, and Sallyport never joins the two"},
		{"email of another domain", func(_ url.Values, c map[string]any) bool { c["email"] = "ada@example.org"; return false }, 403, "is not a user name of contoso.com"},
		{"no email", func(_ url.Values, c map[string]any) bool { delete(c, "email"); return false }, 403, "gave no email address"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			b := env.oidcBrowser(t, idp.caPEM)
			resp, body, _ := signIn(b, c.shape)
			if resp.StatusCode != c.status || !strings.Contains(body, c.want) {
				t.Fatalf("%s, want %d with %q:\n%s", resp.Status, c.status, c.want, body)
			}
			if u, err := st.UserByName(t.Context(), "ada@contoso.com"); err == nil {
				t.Fatalf("a user was made: %+v", u)
			}
		})
	}

	t.Run("provider's error", func(t *testing.T) {
		b := env.oidcBrowser(t, idp.caPEM)
		auth := b.toProvider(env.webURL)
		cb, _ := url.Parse(prov.RedirectURI)
		cb.RawQuery = url.Values{"state": {auth.Query().Get("state")}, "error": {"access_denied"}, "error_description": {"The user said no"}}.Encode()
		resp, body := b.follow(cb.String())
		if resp.StatusCode != 403 || !strings.Contains(body, "did not sign you in (access_denied: The user said no): try again") {
			t.Fatalf("%s:\n%s", resp.Status, body)
		}
	})

	// The good sign-in: the user is made, the groups mapped (Admins is no
	// user group: ignored), and the application reached.
	b := env.oidcBrowser(t, idp.caPEM)
	resp, body, cb := signIn(b, nil)
	h := backendSaw(t, resp, body)
	if h.Get("X-Sallyport-User") != "ada@contoso.com" || h.Get("X-Sallyport-Email") != "ada@contoso.com" || h.Get("X-Sallyport-Groups") != "Engineering" {
		t.Fatalf("backend saw user %q email %q groups %q", h.Get("X-Sallyport-User"), h.Get("X-Sallyport-Email"), h.Get("X-Sallyport-Groups"))
	}
	ada, err := st.UserByName(t.Context(), "ada@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	if ada.External != idp.issuer+"#s-1001" || ada.Role != store.RoleUser || ada.PasswordHash != "" || ada.DisplayName != "Ada Lovelace" || ada.TenantID != env.tenant.ID {
		t.Fatalf("user made: %+v", ada)
	}
	if g := groupNames(t, env.srv, env.tenant.ID, ada.ID); !slices.Equal(g, []string{"Engineering"}) {
		t.Fatalf("groups %v", g)
	}

	t.Run("replayed state", func(t *testing.T) {
		resp, body := b.follow(cb.String())
		if resp.StatusCode != 400 || !strings.Contains(body, "has expired, was finished already, or was started in another browser") {
			t.Fatalf("%s:\n%s", resp.Status, body)
		}
	})
	t.Run("state from another browser", func(t *testing.T) {
		mine := env.oidcBrowser(t, idp.caPEM)
		auth := mine.toProvider(env.webURL)
		cb, _ := url.Parse(prov.RedirectURI)
		cb.RawQuery = url.Values{"state": {auth.Query().Get("state")}, "code": {"whatever"}}.Encode()
		victim := env.oidcBrowser(t, idp.caPEM)
		resp, body := victim.follow(cb.String())
		if resp.StatusCode != 400 || !strings.Contains(body, "This sign-in was started in another browser") {
			t.Fatalf("%s:\n%s", resp.Status, body)
		}
	})
	t.Run("groups follow the claim", func(t *testing.T) {
		resp, body, _ := signIn(env.oidcBrowser(t, idp.caPEM), func(_ url.Values, c map[string]any) bool { c["groups"] = "finance"; return false })
		if resp.StatusCode != 403 || !strings.Contains(body, "ada@contoso.com") {
			t.Fatalf("with only Finance: %s, want the 403 page:\n%s", resp.Status, body)
		}
		if g := groupNames(t, env.srv, env.tenant.ID, ada.ID); !slices.Equal(g, []string{"Finance"}) {
			t.Fatalf("groups %v, want [Finance]", g)
		}
	})
	t.Run("disabled user", func(t *testing.T) {
		u, _ := st.UserByID(t.Context(), env.tenant.ID, ada.ID)
		u.Disabled = true
		if err := st.UpdateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		resp, body, _ := signIn(env.oidcBrowser(t, idp.caPEM), nil)
		if resp.StatusCode != 403 || !strings.Contains(body, "Your account ada@contoso.com is disabled") {
			t.Fatalf("%s:\n%s", resp.Status, body)
		}
	})
}

// TestIdentityProviderAPI: PUT, GET and DELETE /idp, for Global
// Administrators only; set reads the discovery document first and says in
// one sentence why it could not (refused, untrusted certificate, another
// issuer); the secret is never shown.
func TestIdentityProviderAPI(t *testing.T) {
	s := newTestServer(t)
	admin := login(t, s, "admin@contoso.com", testPassword)
	ops, bob := addOpsAndBob(t, s, admin)
	idp := startFakeIdP(t)
	good := api.SetIdentityProviderRequest{Issuer: idp.issuer, ClientID: fakeClientID, ClientSecret: fakeClientSecret, CAPEM: string(idp.caPEM)}
	with := func(f func(*api.SetIdentityProviderRequest)) api.SetIdentityProviderRequest {
		in := good
		f(&in)
		return in
	}
	refused := []struct {
		name   string
		tok    string
		in     api.SetIdentityProviderRequest
		status int
		code   string
		want   string
	}{
		{"app admin", ops, good, 403, "forbidden", "only a Global Administrator manages the identity provider"},
		{"user", bob, good, 403, "forbidden", "only a Global Administrator"},
		{"unreachable", admin, with(func(in *api.SetIdentityProviderRequest) { in.Issuer = "https://127.0.0.1:1/" }), 502, "idp_unreachable",
			"The identity provider's discovery document https://127.0.0.1:1/.well-known/openid-configuration could not be read (the connection was refused); check the issuer URL"},
		{"untrusted", admin, with(func(in *api.SetIdentityProviderRequest) { in.CAPEM = "" }), 502, "idp_unreachable",
			"(its TLS certificate is not signed by a trusted CA); give the CA that signs the provider's certificate with --ca-file."},
		{"another issuer", admin, with(func(in *api.SetIdentityProviderRequest) { in.Issuer = strings.TrimSuffix(idp.issuer, "/") }), 502, "idp_unreachable",
			"(its discovery document names the issuer " + idp.issuer + "); give --issuer exactly as the provider names itself"},
		{"plain http", admin, with(func(in *api.SetIdentityProviderRequest) { in.Issuer = "http://login.example.com/" }), 400, "bad_issuer", "must start with https://"},
		{"query", admin, with(func(in *api.SetIdentityProviderRequest) { in.Issuer += "?x=1" }), 400, "bad_issuer", "query"},
		{"no secret", admin, with(func(in *api.SetIdentityProviderRequest) { in.ClientSecret = "" }), 400, "bad_client_secret", "empty"},
		{"no client id", admin, with(func(in *api.SetIdentityProviderRequest) { in.ClientID = "" }), 400, "bad_client_id", "empty"},
		{"a key as CA", admin, with(func(in *api.SetIdentityProviderRequest) {
			in.CAPEM = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		}), 400, "bad_ca", "PRIVATE KEY block"},
		{"claim with a space", admin, with(func(in *api.SetIdentityProviderRequest) { in.EmailClaim = "e mail" }), 400, "bad_claim", "not a claim name"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			rec, eb := call(t, s, "PUT", "/idp", c.tok, c.in)
			if rec.Code != c.status || eb.Error.Code != c.code || !strings.Contains(eb.Error.Message, c.want) {
				t.Fatalf("%d %s %q, want %d %s with %q", rec.Code, eb.Error.Code, eb.Error.Message, c.status, c.code, c.want)
			}
			if strings.Count(eb.Error.Message, ". ") > 0 {
				t.Errorf("not one sentence: %q", eb.Error.Message)
			}
		})
	}
	if rec, eb := call(t, s, "GET", "/idp", admin, nil); rec.Code != 404 || eb.Error.Code != "no_idp" {
		t.Fatalf("GET before set: %d %s", rec.Code, eb.Error.Code)
	}
	if s.tenantHasProvider(tenantOf(t, s, "contoso.com").ID) {
		t.Fatal("a refused set left a provider")
	}

	empty := ""
	p := setIdP(t, s, admin, with(func(in *api.SetIdentityProviderRequest) { in.GroupsClaim = &empty }))
	if p.GroupsClaim != "" || p.EmailClaim != "email" || len(p.CASubjects) != 1 || p.RedirectURI != "https://sallyport.test/signin/oidc/callback" {
		t.Fatalf("set: %+v", p)
	}
	p = setIdP(t, s, admin, good)
	if p.GroupsClaim != "groups" {
		t.Fatalf("groups claim %q, want the default groups", p.GroupsClaim)
	}
	rec, _ := call(t, s, "GET", "/idp", admin, nil)
	if rec.Code != 200 || strings.Contains(rec.Body.String(), fakeClientSecret) || !strings.Contains(rec.Body.String(), `"redirect_uri"`) {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	contoso, fabrikam := tenantOf(t, s, "contoso.com"), tenantOf(t, s, "fabrikam.com")
	if !s.tenantHasProvider(contoso.ID) || s.tenantHasProvider(fabrikam.ID) {
		t.Fatal("tenantHasProvider: want contoso only")
	}
	stored, err := s.store.IdentityProviderOf(t.Context(), contoso.ID)
	if err != nil || string(stored.ClientSecret) != fakeClientSecret {
		t.Fatalf("stored secret: %v", err)
	}
	if rec, _ := call(t, s, "GET", "/idp", login(t, s, "admin@fabrikam.com", testPassword), nil); rec.Code != 404 {
		t.Fatalf("fabrikam sees %d", rec.Code)
	}
	if rec, _ := call(t, s, "DELETE", "/idp", ops, nil); rec.Code != 403 {
		t.Fatalf("app admin deletes: %d", rec.Code)
	}
	if rec, _ := call(t, s, "DELETE", "/idp", admin, nil); rec.Code != 204 {
		t.Fatalf("DELETE: %d", rec.Code)
	}
	if rec, _ := call(t, s, "DELETE", "/idp", admin, nil); rec.Code != 404 {
		t.Fatalf("DELETE again: %d", rec.Code)
	}
	if s.tenantHasProvider(contoso.ID) {
		t.Fatal("deleted provider still used")
	}

	// Set by another instance sharing the store: seen within the refresh
	// interval, without a store read per call.
	s.cfg.RefreshInterval = 20 * time.Millisecond
	if err := s.store.SetIdentityProvider(t.Context(), store.IdentityProvider{TenantID: fabrikam.ID, Issuer: idp.issuer, ClientID: "x",
		ClientSecret: []byte("y"), EmailClaim: "email", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	testnet.WaitUntil(t, "fabrikam's provider set in the store is seen", func() bool { return s.tenantHasProvider(fabrikam.ID) })
}

// TestOIDCHydra: sign-in against a real OpenID provider, Ory Hydra, over
// TLS with a private CA (--ca-file): authorization code flow with PKCE,
// state and nonce through Hydra's login and consent, the user made just in
// time with the groups claim mapped, the application reached with the
// identity headers; the callback replayed is refused; at the next sign-in
// the memberships follow the claim.
func TestOIDCHydra(t *testing.T) {
	idptest.Binary(t) // skipped without Hydra, except under CI=true
	ca := testnet.NewCA(t)
	certPEM, keyPEM := ca.PEM(t, "127.0.0.1")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	idp := idptest.Start(t, idptest.Options{CertPEM: certPEM, KeyPEM: keyPEM, RootCAs: roots})
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})

	env := startPreauth(t)
	logProviderFailures(t, env.srv)
	redirectURI := env.srv.redirectURI()
	cl := idp.CreateClient(t, redirectURI)
	ctx := t.Context()
	st := env.srv.store
	eng := store.UserGroup{ID: "ug_eng", TenantID: env.tenant.ID, Name: "engineering", CreatedAt: time.Now()}
	if err := st.CreateUserGroup(ctx, eng); err != nil {
		t.Fatal(err)
	}
	if err := st.Assign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: env.web.ID, UserGroupID: eng.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	prov := setIdP(t, env.srv, login(t, env.srv, "admin@contoso.com", testPassword),
		api.SetIdentityProviderRequest{Issuer: idp.Issuer(), ClientID: cl.ID, ClientSecret: cl.Secret, CAPEM: string(caPEM)})
	if prov.RedirectURI != redirectURI {
		t.Fatalf("redirect URI %q, want %q", prov.RedirectURI, redirectURI)
	}

	idp.SetUser(&idptest.User{Subject: "u-1001", Email: "Ada@contoso.com", Name: "Ada Lovelace", Groups: []string{"Engineering", "admins"}})
	b := env.oidcBrowser(t, caPEM)
	auth := b.toProvider(env.webURL)
	if q := auth.Query(); q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || !strings.HasPrefix(q.Get("state"), "sps_") {
		t.Fatalf("authorization request %s", auth)
	}
	cb, err := idp.Authorize(ctx, auth.String(), redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.follow(cb.String())
	h := backendSaw(t, resp, body)
	if h.Get("X-Sallyport-User") != "ada@contoso.com" || h.Get("X-Sallyport-Groups") != "engineering" {
		t.Fatalf("backend saw user %q groups %q", h.Get("X-Sallyport-User"), h.Get("X-Sallyport-Groups"))
	}
	ada, err := st.UserByName(ctx, "ada@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	if ada.External != idp.Issuer()+"#u-1001" || ada.DisplayName != "Ada Lovelace" || ada.Email != "ada@contoso.com" || ada.PasswordHash != "" {
		t.Fatalf("user made: %+v", ada)
	}

	// The same callback again: its state was taken.
	resp, body = b.follow(cb.String())
	if resp.StatusCode != 400 || !strings.Contains(body, "was finished already") {
		t.Fatalf("replayed callback: %s\n%s", resp.Status, body)
	}

	// Signed in again (another browser) without the group: removed, and
	// the application refuses.
	idp.SetUser(&idptest.User{Subject: "u-1001", Email: "ada@contoso.com", Name: "Ada Lovelace", Groups: []string{}})
	b2 := env.oidcBrowser(t, caPEM)
	cb, err = idp.Authorize(ctx, b2.toProvider(env.webURL).String(), redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	resp, body = b2.follow(cb.String())
	if resp.StatusCode != 403 || len(groupNames(t, env.srv, env.tenant.ID, ada.ID)) != 0 {
		t.Fatalf("without the group: %s, groups %v\n%s", resp.Status, groupNames(t, env.srv, env.tenant.ID, ada.ID), body)
	}
	if users, _ := st.ListUsers(ctx, env.tenant.ID); countExternal(users) != 1 {
		t.Fatalf("%d users of the provider, want 1", countExternal(users))
	}
}

// logProviderFailures logs the cloud's events 2930 (the detailed causes
// of failed sign-ins at a provider) when the test fails.
func logProviderFailures(t *testing.T, s *Server) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		raw, _ := os.ReadFile(filepath.Join(s.cfg.DataDir, datadir.EventsFile))
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, "2930") || strings.Contains(line, "2921") {
				t.Log(line)
			}
		}
	})
}

func countExternal(us []store.User) int {
	n := 0
	for _, u := range us {
		if u.External != "" {
			n++
		}
	}
	return n
}

// FuzzOIDCInput: whatever comes back to the callback (state, code,
// error, the binding cookie) is answered with a page, never a server
// error or a panic, and makes no user; the checks of an administrator's
// issuer, CA and claim names, and the reading of a groups claim, never
// panic either.
func FuzzOIDCInput(f *testing.F) {
	s := newTestServer(f)
	f.Add("sps_"+strings.Repeat("A", 43), "code", "", "", "https://login.example.com/", `{"groups":["a","b"]}`)
	f.Add("", "", "access_denied", "x", "http://127.0.0.1:1/", `{"groups":"a"}`)
	f.Add("sps_", "c", "e\x00\n", "\xff", "https://[::1", `{"groups":[1,{"a":2},null]}`)
	f.Fuzz(func(t *testing.T, state, code, errParam, cookie, issuer, claimsJSON string) {
		q := url.Values{"state": {state}, "code": {code}}
		if errParam != "" {
			q.Set("error", errParam)
		}
		req := httptest.NewRequest("GET", "https://"+s.settings.Name+OIDCCallbackPath+"?"+q.Encode(), nil)
		req.Header.Set("Cookie", bindCookie+"="+url.QueryEscape(cookie))
		rec := httptest.NewRecorder()
		s.route(rec, req)
		if rec.Code >= 500 || rec.Code < 400 {
			t.Fatalf("callback answered %d", rec.Code)
		}
		checkIssuer(issuer)
		checkCAPEM(issuer + claimsJSON)
		checkClaim("--groups-claim", code)
		var claims map[string]any
		if json.Unmarshal([]byte(claimsJSON), &claims) == nil {
			if gs, _ := groupsOf(claims, "groups"); len(gs) > maxGroupsClaim {
				t.Fatalf("%d groups", len(gs))
			}
		}
	})
}

// TestOIDCBreakGlass: with a provider, sign-in goes straight there, but
// local=1 shows the password form, and a local account with a password
// (the tenant's administrator) still gets in while the provider is down.
func TestOIDCBreakGlass(t *testing.T) {
	idp := startFakeIdP(t)
	env, _ := startOIDCEnv(t, api.SetIdentityProviderRequest{Issuer: idp.issuer, ClientID: fakeClientID, ClientSecret: fakeClientSecret, CAPEM: string(idp.caPEM)})
	if err := env.srv.store.Assign(t.Context(), store.Assignment{TenantID: env.tenant.ID, AppID: env.web.ID, UserID: env.bob.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := env.oidcBrowser(t, idp.caPEM)
	if auth := b.toProvider(env.webURL); auth.Hostname() == "sallyport.localhost" {
		t.Fatalf("sign-in did not go to the provider: %s", auth)
	}
	resp, _ := b.do("GET", env.webURL, nil)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path != "/signin" {
		t.Fatalf("anonymous: Location %q", resp.Header.Get("Location"))
	}
	rd := loc.Query().Get("rd")
	resp, page := b.do("GET", "https://sallyport.localhost/signin?rd="+url.QueryEscape(rd)+"&local=1", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `action="/signin"`) {
		t.Fatalf("local=1: %s, not the password form", resp.Status)
	}
	form := url.Values{"csrf": {csrfOf(t, page)}, "user": {"bob@contoso.com"}, "password": {testPassword}, "rd": {rd}}
	resp, _ = b.do("POST", "https://sallyport.localhost/signin", form)
	loc, _ = resp.Request.URL.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil {
		t.Fatalf("password sign-in with a provider set: %s", resp.Status)
	}
	resp, body := b.follow(loc.String())
	if h := backendSaw(t, resp, body); h.Get("X-Sallyport-User") != "bob@contoso.com" {
		t.Fatalf("backend saw %q", h.Get("X-Sallyport-User"))
	}
}
