package clouddoctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/goleak"

	"github.com/sallyport/sallyport/internal/cloud"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	cloudName = "cloud.doctor.test"
	acmeCA    = "https://acme.doctor.test/directory"
	acmeEmail = "ops@contoso.com"
)

func pemChain(c *tls.Certificate) []byte {
	var out []byte
	for _, der := range c.Certificate {
		out = append(out, pki.EncodeCertPEM(der)...)
	}
	return out
}

// fixture is a real data directory (cloud init) holding an application
// with its own certificate (valid 30 days), an edge certificate (60 days),
// an ACME certificate (20 days) and account, and a TLS listener that
// answers as the cloud with a certificate of its CA.
type fixture struct {
	dir, edgeFile, listen string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "cloud")
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: cloudName, Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: "correct horse battery staple 1"}); err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("test public CA", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(host string, days int) *tls.Certificate {
		c, err := other.IssueServer([]string{host}, time.Duration(days)*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	settings, err := datadir.LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := datadir.OpenStore(dir, settings)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts, err := st.ListTenants(ctx)
	if err != nil || len(ts) != 1 {
		t.Fatalf("tenants %v, %v", ts, err)
	}
	gs, err := st.ListGroups(ctx, ts[0].ID)
	if err != nil || len(gs) == 0 {
		t.Fatalf("groups %v, %v", gs, err)
	}
	own := issue("own.contoso.com", 30)
	keyDER, err := x509.MarshalPKCS8PrivateKey(own.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, a := range []store.Application{
		{ID: "a-own", Name: "own", ExternalHost: "own.contoso.com", CertPEM: pemChain(own), KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{ID: "a-web", Name: "web", ExternalHost: "web-contoso." + cloudName},
	} {
		a.TenantID, a.GroupID, a.InternalURL, a.Timeout, a.PreAuth, a.CreatedAt, a.UpdatedAt = ts[0].ID, gs[0].ID, "http://127.0.0.1:1/", "default", "sallyport", now, now
		if err := st.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	edgeFile := filepath.Join(t.TempDir(), "edge.pem")
	if err := os.WriteFile(edgeFile, pemChain(issue("*.contoso.com", 60)), 0o600); err != nil {
		t.Fatal(err)
	}

	acme := cloud.ACMEStorage(dir, st)
	issuerKey := (&certmagic.ACMEIssuer{CA: acmeCA}).IssuerKey()
	for host, days := range map[string]int{"web-contoso." + cloudName: 20, "gone-contoso." + cloudName: 5} {
		if err := acme.Store(ctx, certmagic.StorageKeys.SiteCert(issuerKey, host), pemChain(issue(host, days))); err != nil {
			t.Fatal(err)
		}
	}
	account := `{"status":"valid","contact":["mailto:` + acmeEmail + `"],"location":"https://acme.doctor.test/acct/1"}`
	if err := acme.Store(ctx, "acme/"+certmagic.StorageKeys.Safe(issuerKey)+"/users/"+acmeEmail+"/ops.json", []byte(account)); err != nil {
		t.Fatal(err)
	}

	// The event log: web's order failed; gone's failed, then succeeded.
	events, err := eventlog.Open(eventlog.Config{Path: filepath.Join(dir, datadir.EventsFile), Source: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		id   eventlog.ID
		host string
	}{{eventlog.ACMECertFailed, "web-contoso." + cloudName}, {eventlog.ACMECertFailed, "gone-contoso." + cloudName}, {eventlog.ACMECertObtained, "gone-contoso." + cloudName}} {
		events.Event(e.id, "order of "+e.host, "host", e.host)
	}
	events.Close()

	// The cloud's TLS port: a certificate of the cloud CA for its name.
	caCert, err := os.ReadFile(filepath.Join(dir, datadir.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(filepath.Join(dir, datadir.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.IssueServer([]string{cloudName}, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*server}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return fixture{dir: dir, edgeFile: edgeFile, listen: ln.Addr().String()}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestChecks: the steps on a real data directory, at several dates: a
// certificate under 14 days warns, an expired one fails; a stopped
// cloud's port fails with what to do; ACME off checks no ACME.
func TestChecks(t *testing.T) {
	f := newFixture(t)
	web := "cert acme web-contoso." + cloudName
	gone := "cert acme gone-contoso." + cloudName
	day := 24 * time.Hour
	for _, tc := range []struct {
		name    string
		later   time.Duration
		stopped bool
		noACME  bool
		want    map[string]string
		verdict string
	}{
		{"today", 0, false, false, map[string]string{"settings": Pass, "store": Pass, "tls-port": Pass, "http-port": Fail, "cert cloud-ca": Pass,
			"cert edge": Pass, "cert app own.contoso.com": Pass, web: Pass, gone: Pass, "acme-account": Pass, "acme-orders": Warn}, Failed},
		{"in 10 days: the ACME certificate warns", 10 * day, false, true, map[string]string{"cert app own.contoso.com": Pass, "cert edge": Pass}, Healthy},
		{"in 10 days, ACME on", 10 * day, false, false, map[string]string{web: Warn, gone: Pass, "cert app own.contoso.com": Pass, "acme-orders": Pass}, Failed},
		{"in 25 days: ACME expired, the app's warns", 25 * day, false, false, map[string]string{web: Fail, "cert app own.contoso.com": Warn, "cert edge": Pass}, Failed},
		{"in 61 days: all expired", 61 * day, false, true, map[string]string{"cert app own.contoso.com": Fail, "cert edge": Fail, "cert cloud-ca": Pass}, Failed},
		{"stopped", 0, true, true, map[string]string{"tls-port": Fail, "store": Pass}, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{DataDir: f.dir, Listen: f.listen, HTTPListen: closedAddr(t), EdgeCertFile: f.edgeFile, ACMEEmail: acmeEmail, ACMECA: acmeCA,
				Now: func() time.Time { return time.Now().Add(tc.later) }}
			if tc.stopped {
				o.Listen = closedAddr(t)
			}
			if tc.noACME {
				o.ACMEEmail = ""
			}
			rep := Run(context.Background(), o)
			got := map[string]Step{}
			for _, s := range rep.Steps {
				got[s.ID] = s
				if (s.Status == Warn || s.Status == Fail) && (s.Found == "" || s.Advice == "") {
					t.Errorf("%s %s without what was found and what to do: %+v", s.ID, s.Status, s)
				}
			}
			for id, want := range tc.want {
				if s, ok := got[id]; !ok || s.Status != want {
					t.Errorf("%s: %s (%s), want %s", id, s.Status, s.Found, want)
				}
			}
			if tc.noACME {
				for id := range got {
					if strings.Contains(id, "acme") || id == "http-port" {
						t.Errorf("ACME is off but %s was checked", id)
					}
				}
			}
			if tc.verdict == Healthy && rep.Verdict == Failed || tc.verdict == Failed && rep.Verdict != Failed {
				t.Errorf("verdict %s, want %s", rep.Verdict, tc.verdict)
			}
			if (rep.Err("x") != nil) != (rep.Verdict == Failed) {
				t.Errorf("Err %v with verdict %s", rep.Err("x"), rep.Verdict)
			}
			if s, ok := got["acme-orders"]; ok && tc.later == 0 && (!strings.Contains(s.Found, "order of web-") || strings.Contains(s.Found, "gone-")) {
				t.Errorf("acme-orders found %q, want web's failure only (gone's certificate was obtained since)", s.Found)
			}
			if tc.stopped && !strings.Contains(got["tls-port"].Found, "not running") {
				t.Errorf("a stopped cloud is told as %q", got["tls-port"].Found)
			}
		})
	}
}

// TestOutputs: the table names every step; the JSON has the documented
// fields.
func TestOutputs(t *testing.T) {
	f := newFixture(t)
	rep := Run(context.Background(), Options{DataDir: f.dir, Listen: f.listen})
	var table, js bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Steps {
		if !strings.Contains(table.String(), strings.ToUpper(s.Status)+"  "+s.ID+"  ") {
			t.Errorf("the table lacks step %s:\n%s", s.ID, table.String())
		}
	}
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cloud", "data_dir", "steps", "verdict", "started"} {
		if _, ok := back[k]; !ok {
			t.Errorf("the JSON lacks %q", k)
		}
	}
	if rep.Verdict != Healthy {
		t.Errorf("verdict %s on a healthy cloud without ACME:\n%s", rep.Verdict, table.String())
	}
}
