package idptest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/sallyport/sallyport/internal/idptest"
	"github.com/sallyport/sallyport/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCodeFlow runs the authorization code flow with PKCE, state and
// nonce against a real Hydra, as a relying party built on go-oidc and
// x/oauth2 would, and verifies the ID token: issuer, audience, signature
// (through the provider's JWKS), the nonce and the claims the login app
// put in it. Then the refusals the next round's sign-in relies on: a token
// for another client, an expired one, a tampered signature, a nonce that
// is not the one sent, and a code exchanged without its PKCE verifier.
func TestCodeFlow(t *testing.T) {
	idp := idptest.Start(t, idptest.Options{})
	idp.SetUser(&idptest.User{Subject: "u-1001", Email: "ada@example.test", Name: "Ada Lovelace", Groups: []string{"engineering", "admins"}})
	const redirectURI = "http://127.0.0.1:1/callback" // never fetched: Authorize stops at it
	cl := idp.CreateClient(t, redirectURI)

	ctx, provider := discover(t, idp, nil)
	conf := oauth2.Config{
		ClientID: cl.ID, ClientSecret: cl.Secret, RedirectURL: redirectURI,
		Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile", "groups"},
	}

	// flow signs in once and returns the callback's code with the state
	// and verifier it was asked with.
	flow := func(nonce string) (code, verifier string) {
		t.Helper()
		state, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
		cb, err := idp.Authorize(ctx, conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), redirectURI)
		if err != nil {
			t.Fatal(err)
		}
		q := cb.Query()
		if e := q.Get("error"); e != "" {
			t.Fatalf("the provider answered %s: %s", e, q.Get("error_description"))
		}
		if q.Get("state") != state {
			t.Fatalf("callback state %q, sent %q", q.Get("state"), state)
		}
		return q.Get("code"), verifier
	}

	nonce := oauth2.GenerateVerifier()
	code, verifier := flow(nonce)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		t.Fatal("no id_token in the token response")
	}
	verifier2 := provider.Verifier(&oidc.Config{ClientID: cl.ID})
	idt, err := verifier2.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify the ID token: %v", err)
	}
	var claims struct {
		Email  string   `json:"email"`
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "u-1001" || idt.Issuer != idp.Issuer() || idt.Nonce != nonce ||
		claims.Email != "ada@example.test" || claims.Name != "Ada Lovelace" || !slices.Equal(claims.Groups, []string{"engineering", "admins"}) {
		t.Fatalf("ID token: sub %q iss %q nonce %q (sent %q), claims %+v", idt.Subject, idt.Issuer, idt.Nonce, nonce, claims)
	}
	if idp.Logins() != 1 {
		t.Fatalf("login app accepted %d sign-ins, want 1", idp.Logins())
	}

	// go-oidc compares the nonce only when told to: the relying party
	// checks idt.Nonce against the one it sent with this flow. A token
	// from another flow (the nonce an attacker's callback carries) fails
	// that check.
	code2, verifier3 := flow(oauth2.GenerateVerifier())
	tok2, err := conf.Exchange(ctx, code2, oauth2.VerifierOption(verifier3))
	if err != nil {
		t.Fatal(err)
	}
	other, err := verifier2.Verify(ctx, tok2.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	if other.Nonce == nonce || other.Nonce == "" {
		t.Fatalf("a second flow's token has nonce %q (first flow's %q): a replayed token would pass the nonce check", other.Nonce, nonce)
	}

	refusals := []struct {
		name string
		cfg  oidc.Config
		tok  string
		want string
	}{
		{"another client's audience", oidc.Config{ClientID: "another-client"}, raw, "audience"},
		{"expired", oidc.Config{ClientID: cl.ID, Now: func() time.Time { return time.Now().Add(24 * time.Hour) }}, raw, "expired"},
		{"tampered signature", oidc.Config{ClientID: cl.ID}, tamper(raw), "signature"},
		{"tampered payload", oidc.Config{ClientID: cl.ID}, swapPayload(raw, tok2.Extra("id_token").(string)), "signature"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			_, err := provider.Verifier(&c.cfg).Verify(ctx, c.tok)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify: %v, want an error about %q", err, c.want)
			}
		})
	}

	t.Run("code without its PKCE verifier", func(t *testing.T) {
		code, _ := flow(oauth2.GenerateVerifier())
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Fatal("a code was exchanged with the wrong PKCE verifier")
		}
	})
	t.Run("code used twice", func(t *testing.T) {
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("a code was exchanged twice")
		}
	})
	t.Run("no user: access_denied", func(t *testing.T) {
		idp.SetUser(nil)
		defer idp.SetUser(&idptest.User{Subject: "u-1001"})
		state := oauth2.GenerateVerifier()
		cb, err := idp.Authorize(ctx, conf.AuthCodeURL(state, oidc.Nonce(oauth2.GenerateVerifier()), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), redirectURI)
		if err != nil {
			t.Fatal(err)
		}
		if cb.Query().Get("error") != "access_denied" || cb.Query().Get("code") != "" || cb.Query().Get("state") != state {
			t.Fatalf("callback %s, want error=access_denied with the state and no code", cb)
		}
	})
}

// tamper changes one character of the signature.
func tamper(jwt string) string {
	b := []byte(jwt)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// swapPayload puts b's claims under a's header and signature.
func swapPayload(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pb[1] + "." + pa[2]
}

// TestTLSIssuer: with a certificate, the provider's public endpoint is
// HTTPS and its issuer https://127.0.0.1:PORT/; a relying party that
// trusts the CA (as `admin idp set --ca-file` will) discovers it and
// verifies its tokens, and one that does not is refused at discovery.
func TestTLSIssuer(t *testing.T) {
	ca := testnet.NewCA(t)
	certPEM, keyPEM := ca.PEM(t, "127.0.0.1")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	idp := idptest.Start(t, idptest.Options{CertPEM: certPEM, KeyPEM: keyPEM, RootCAs: roots})
	if !strings.HasPrefix(idp.Issuer(), "https://127.0.0.1:") {
		t.Fatalf("issuer %s, want https://127.0.0.1:PORT/", idp.Issuer())
	}
	idp.SetUser(&idptest.User{Subject: "u-7", Email: "grace@example.test", Groups: []string{"ops"}})
	const redirectURI = "https://127.0.0.1:1/callback"
	cl := idp.CreateClient(t, redirectURI)

	stranger := &http.Transport{Proxy: nil}
	t.Cleanup(stranger.CloseIdleConnections)
	if _, err := oidc.NewProvider(oidc.ClientContext(t.Context(), &http.Client{Transport: stranger}), idp.Issuer()); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("discovery without the CA: %v, want a certificate error", err)
	}

	ctx, provider := discover(t, idp, roots)
	conf := oauth2.Config{ClientID: cl.ID, ClientSecret: cl.Secret, RedirectURL: redirectURI,
		Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email"}}
	state, verifier, nonce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	cb, err := idp.Authorize(ctx, conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Query().Get("state") != state {
		t.Fatalf("callback %s: state not %q", cb, state)
	}
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: cl.ID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Groups []string `json:"groups"`
	}
	if err := idt.Claims(&claims); err != nil || idt.Subject != "u-7" || idt.Nonce != nonce || !slices.Equal(claims.Groups, []string{"ops"}) {
		t.Fatalf("ID token: sub %q nonce %q groups %v (%v)", idt.Subject, idt.Nonce, claims.Groups, err)
	}
}

// discover is a relying party's view of idp: a context (cancelled at
// cleanup, 60 s at most) whose HTTP client trusts roots (nil: the
// system's), and the provider found through discovery with it.
func discover(t *testing.T, idp *idptest.Provider, roots *x509.CertPool) (context.Context, *oidc.Provider) {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	ctx = oidc.ClientContext(ctx, &http.Client{Transport: tr})
	provider, err := oidc.NewProvider(ctx, idp.Issuer())
	if err != nil {
		t.Fatalf("discovery at %s: %v", idp.Issuer(), err)
	}
	return ctx, provider
}
