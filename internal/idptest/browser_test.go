package idptest_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sallyport/sallyport/internal/browsertest"
	"github.com/sallyport/sallyport/internal/idptest"
)

// TestBrowserSignIn: the two harnesses together, as the sign-in tests
// will use them. A real Chromium opens a small relying party's /start,
// which sends it to Hydra; Hydra's redirects through the login and
// consent app (and its own CSRF cookies) work in the browser, and the
// browser lands on the relying party's callback, which exchanges the code
// (PKCE), checks state and nonce, verifies the ID token and shows who
// signed in.
func TestBrowserSignIn(t *testing.T) {
	idp := idptest.Start(t, idptest.Options{})
	idp.SetUser(&idptest.User{Subject: "u-42", Email: "kay@example.test", Name: "Kay", Groups: []string{"staff", "ops"}})

	ctx, provider := discover(t, idp, nil)

	type pending struct{ verifier, nonce string }
	var (
		mu    sync.Mutex
		flows = map[string]pending{} // state → what the flow was started with
		conf  oauth2.Config
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		state, p := oauth2.GenerateVerifier(), pending{oauth2.GenerateVerifier(), oauth2.GenerateVerifier()}
		mu.Lock()
		flows[state] = p
		mu.Unlock()
		http.Redirect(w, r, conf.AuthCodeURL(state, oidc.Nonce(p.nonce), oauth2.S256ChallengeOption(p.verifier)), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		p, ok := flows[r.URL.Query().Get("state")]
		delete(flows, r.URL.Query().Get("state"))
		mu.Unlock()
		if !ok {
			http.Error(w, "unknown state", http.StatusBadRequest)
			return
		}
		tok, err := conf.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(p.verifier))
		if err != nil {
			http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, raw)
		if err != nil || idt.Nonce != p.nonce {
			http.Error(w, fmt.Sprintf("ID token refused (nonce %q): %v", idt.Nonce, err), http.StatusForbidden)
			return
		}
		var claims struct {
			Email  string   `json:"email"`
			Groups []string `json:"groups"`
		}
		idt.Claims(&claims)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>in</title><p>Signed in as %s (%s) in groups %s.</p>",
			html.EscapeString(idt.Subject), html.EscapeString(claims.Email), html.EscapeString(strings.Join(claims.Groups, ",")))
	})
	rp := httptest.NewServer(mux)
	defer rp.Close()
	cl := idp.CreateClient(t, rp.URL+"/callback")
	conf = oauth2.Config{ClientID: cl.ID, ClientSecret: cl.Secret, RedirectURL: rp.URL + "/callback",
		Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "groups"}}

	b := browsertest.Start(t, browsertest.Options{})
	b.Navigate(rp.URL + "/start")
	b.WaitText("Signed in as u-42 (kay@example.test) in groups staff,ops.")
	if loc := b.Location(); !strings.HasPrefix(loc, rp.URL+"/callback?") {
		t.Fatalf("the browser ended at %s, want the relying party's callback", loc)
	}
	if idp.Logins() != 1 {
		t.Fatalf("login app accepted %d sign-ins, want 1", idp.Logins())
	}
}
