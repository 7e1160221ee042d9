package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
)

// withTestACME turns ACME on for s without an ACME server: certmagic's
// file storage in a temporary directory, an issuer that is never asked
// for anything (the tests put certificates in the storage themselves).
func withTestACME(t *testing.T, s *Server) *acmeManager {
	t.Helper()
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		Logger:           zap.NewNop(),
	})
	t.Cleanup(cache.Stop)
	cfg = certmagic.New(cache, certmagic.Config{Storage: &certmagic.FileStorage{Path: filepath.Join(t.TempDir(), acmeDir)}, Logger: zap.NewNop()})
	issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{CA: "https://acme.invalid/directory", Email: "ops@contoso.com", Agreed: true, Logger: zap.NewNop()})
	cfg.Issuers = []certmagic.Issuer{issuer}
	s.acme = &acmeManager{cfg: cfg, issuer: issuer, tlsPort: 443}
	return s.acme
}

// storeACMECert puts a certificate for host, valid for validity, where
// certmagic keeps the ones it obtained.
func storeACMECert(t *testing.T, m *acmeManager, ca *pki.CA, host string, validity time.Duration) *x509.Certificate {
	t.Helper()
	c, err := ca.IssueServer([]string{host}, validity)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pki.EncodeCertPEM(der)...)
	}
	if err := m.cfg.Storage.Store(context.Background(), certmagic.StorageKeys.SiteCert(m.issuer.IssuerKey(), host), chain); err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func keyPEM(t *testing.T, c *tls.Certificate) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestAppCertificate: the app answer's certificate section follows the
// rule the handshake follows (an app's own > ACME > --edge-cert > the
// cloud CA), and for ACME says valid, pending or failed with the CA's
// message; the handshake presents the certificate the answer names.
func TestAppCertificate(t *testing.T) {
	s := newTestServer(t)
	tok := login(t, s, "admin@contoso.com", testPassword)
	other, err := pki.NewCA("test public CA", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	host := func(app string) string { return app + "-contoso.sallyport.test" }
	own, err := other.IssueServer([]string{host("own")}, 10*24*time.Hour) // within the overview's 14 days
	if err != nil {
		t.Fatal(err)
	}
	edgeCert, err := other.IssueServer([]string{host("edged")}, 20*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.edgeCert = edgeCert
	m := withTestACME(t, s)
	for _, name := range []string{"own", "edged", "acmed", "failing", "plain"} {
		req := api.CreateAppRequest{Name: name, InternalURL: "http://127.0.0.1:1"}
		if name == "own" {
			req.CertPEM, req.KeyPEM = string(pki.EncodeCertPEM(own.Certificate[0])), string(keyPEM(t, own))
		}
		if rec, eb := call(t, s, "POST", "/apps", tok, req); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", name, rec.Code, eb.Error.Message)
		}
	}
	acmeLeaf := storeACMECert(t, m, other, host("acmed"), 60*24*time.Hour)
	rateLimited := acme.Problem{Type: acme.ProblemTypeRateLimited, Status: 429,
		Detail: "too many certificates already issued for \"sallyport.test\". Retry after 2026-12-06T00:00:00Z"}
	if err := s.acmeEvent(context.Background(), "cert_failed", map[string]any{"identifier": host("failing"), "renewal": false, "error": rateLimited}); err != nil {
		t.Fatal(err)
	}

	serverLeaf := s.serverCert().Leaf
	for _, tc := range []struct {
		app, source, acme string
		notAfter          time.Time
		handshake         bool // the handshake is checked (ACME's would need the key in storage)
	}{
		{"own", api.CertSourceApp, "", own.Leaf.NotAfter, true},
		{"acmed", api.CertSourceACME, api.ACMEValid, acmeLeaf.NotAfter, false},
		{"edged", api.CertSourceEdge, api.ACMEPending, edgeCert.Leaf.NotAfter, false},
		{"failing", api.CertSourceCloudCA, api.ACMEFailed, serverLeaf.NotAfter, false},
		{"plain", api.CertSourceCloudCA, api.ACMEPending, serverLeaf.NotAfter, false},
	} {
		t.Run(tc.app, func(t *testing.T) {
			d := getJSON[api.AppDetail](t, s, tok, "/apps/"+tc.app)
			c := d.Certificate
			if c.Source != tc.source || !c.NotAfter.Equal(tc.notAfter.UTC()) {
				t.Errorf("certificate %s until %s, want %s until %s", c.Source, c.NotAfter, tc.source, tc.notAfter.UTC())
			}
			if tc.source != api.CertSourceCloudCA && !slices.Equal(c.Names, []string{host(tc.app)}) {
				t.Errorf("names %v, want [%s]", c.Names, host(tc.app))
			}
			if c.Issuer == "" || c.DaysLeft != daysLeft(tc.notAfter, s.now()) {
				t.Errorf("issuer %q, %d days left", c.Issuer, c.DaysLeft)
			}
			switch {
			case tc.acme == "" && c.ACME != nil:
				t.Errorf("ACME %+v for an app with its own certificate", *c.ACME)
			case tc.acme != "" && (c.ACME == nil || c.ACME.State != tc.acme):
				t.Errorf("ACME %+v, want %s", c.ACME, tc.acme)
			}
			if tc.handshake {
				got, _ := s.certificateFor(&tls.ClientHelloInfo{ServerName: host(tc.app)})
				if !got.Leaf.Equal(own.Leaf) {
					t.Errorf("the handshake presents %v, the answer says %s", got.Leaf.Subject, tc.source)
				}
			}
		})
	}

	failed := getJSON[api.AppDetail](t, s, tok, "/apps/failing").Certificate.ACME
	if failed.Cause != "rate_limit" || failed.Error != rateLimited.Detail || !strings.Contains(failed.Message, "rate limit") || failed.Step == "" {
		t.Errorf("the failure is told as %+v", *failed)
	}
	evs, err := eventlog.Read(filepath.Join(s.cfg.DataDir, datadir.EventsFile), eventlog.Filter{IDs: []eventlog.ID{eventlog.ACMECertFailed}})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events 2986: %v (%v)", evs, err)
	}
	if ev := evs[0]; ev.Fields["cause"] != "rate_limit" || !strings.Contains(ev.Message, "Retry after") || !strings.Contains(ev.Message, "staging") {
		t.Errorf("event 2986: %s %v", ev.Message, ev.Fields)
	}

	// The overview flags the app whose certificate ends within 14 days,
	// from the same answer.
	ov := getJSON[api.Overview](t, s, tok, "/overview")
	var flagged []string
	for _, a := range ov.Attention {
		if a.Kind == api.AttentionCertExpiring {
			flagged = append(flagged, a.Link)
		}
	}
	if !slices.Equal(flagged, []string{"/admin/apps/own"}) {
		t.Errorf("certificates flagged: %v, want only the app 'own' (10 days left)", flagged)
	}
}

// TestClassifyACME: every RFC 8555 §6.7 problem a failed order brings
// is told with its cause and a step; the CA's detail is kept.
func TestClassifyACME(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string // the problem document, as the CA sends it
		kind string
	}{
		{"dns", `{"type":"urn:ietf:params:acme:error:dns","detail":"DNS problem: NXDOMAIN looking up A for web.example.com - check that a DNS record exists for this domain","status":400}`, "dns"},
		{"unauthorized (another server answered)", `{"type":"urn:ietf:params:acme:error:unauthorized","detail":"203.0.113.7: Invalid response from http://web.example.com/.well-known/acme-challenge/x: 404","status":403}`, "dns"},
		{"incorrect response", `{"type":"urn:ietf:params:acme:error:incorrectResponse","detail":"The key authorization file from the server did not match this challenge","status":403}`, "dns"},
		{"connection (port 80 closed)", `{"type":"urn:ietf:params:acme:error:connection","detail":"203.0.113.7: Fetching http://web.example.com/.well-known/acme-challenge/x: Connection refused","status":400}`, "unreachable"},
		{"tls", `{"type":"urn:ietf:params:acme:error:tls","detail":"203.0.113.7: remote error: tls: no application protocol","status":400}`, "unreachable"},
		{"rate limit", `{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many failed authorizations recently","status":429}`, "rate_limit"},
		{"caa", `{"type":"urn:ietf:params:acme:error:caa","detail":"CAA record for example.com prevents issuance","status":403}`, "caa"},
		{"account unknown", `{"type":"urn:ietf:params:acme:error:accountDoesNotExist","detail":"No account exists with the provided key","status":400}`, "account"},
		{"contact refused", `{"type":"urn:ietf:params:acme:error:invalidContact","detail":"Error creating new account :: invalid contact domain. Contact emails @example.com are forbidden","status":400}`, "account"},
		{"terms", `{"type":"urn:ietf:params:acme:error:userActionRequired","detail":"Terms of service have changed","instance":"https://ca.example/tos","status":403}`, "account"},
		{"eab", `{"type":"urn:ietf:params:acme:error:externalAccountRequired","detail":"external account binding required","status":400}`, "account"},
		{"rejected", `{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Cannot issue for \"web.sallyport.localhost\": Domain name does not end with a valid public suffix","status":400}`, "rejected"},
		{"server", `{"type":"urn:ietf:params:acme:error:serverInternal","detail":"internal error","status":500}`, "ca"},
		{"compound", `{"type":"urn:ietf:params:acme:error:compound","detail":"Cannot issue for 2 identifiers","status":400,"subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids","identifier":{"type":"dns","value":"a.example.com"}}]}`, "caa"},
		{"unknown type", `{"type":"urn:ietf:params:acme:error:badCSR","detail":"CSR is unacceptable","status":400}`, "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p acme.Problem
			if err := json.Unmarshal([]byte(tc.doc), &p); err != nil {
				t.Fatal(err)
			}
			// certmagic wraps the problem in its own words.
			c := classifyACME(fmt.Errorf("[web.example.com] Obtain: solving challenge: %w", p))
			if c.Kind != tc.kind {
				t.Errorf("kind %q, want %q", c.Kind, tc.kind)
			}
			want := p.Detail
			if len(p.Subproblems) > 0 {
				want = p.Subproblems[0].Detail
			}
			if c.Detail != want || c.Why == "" || c.Step == "" {
				t.Errorf("told as %+v", c)
			}
			msg := acmeFailureSentence("web.example.com", c, false)
			if !strings.HasPrefix(msg, "No ACME certificate could be obtained for web.example.com: ") || !strings.Contains(msg, want) {
				t.Errorf("sentence %q", msg)
			}
		})
	}
	if c := classifyACME(fmt.Errorf("fetching the directory: %w", &url.Error{Op: "Get", URL: "https://acme.invalid/directory", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}})); c.Kind != "ca" {
		t.Errorf("a network error reaching the CA: %q, want ca", c.Kind)
	}
}
