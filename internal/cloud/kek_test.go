package cloud

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store/sqlite"
)

// rawDB opens the data directory's SQLite file directly, as someone with
// a copy of the database (and not of the data directory) would.
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, datadir.StoreFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// storedKeys returns every key column of the store as stored.
func storedKeys(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	db := rawDB(t, dir)
	out := map[string][]byte{}
	for _, q := range []string{
		`SELECT 'tenant-ca:' || tenant_id, key_pem FROM tenant_cas`,
		`SELECT 'app:' || name, key_pem FROM applications WHERE key_pem IS NOT NULL`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			var v []byte
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			out[k] = v
		}
		rows.Close()
	}
	return out
}

// keyDER is the PKCS#8 DER of the private key in keyPEM.
func keyDER(t *testing.T, keyPEM []byte) []byte {
	t.Helper()
	k, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestStoreKeysWrapped: after init, 'cloud tenant add' and an application
// published with its own certificate, the database files hold no private
// key (no PEM, no DER), every key column is wrapped, and the cloud still
// issues connector certificates (registration) and serves the
// application's certificate.
func TestStoreKeysWrapped(t *testing.T) {
	lc := startLiveCloud(t, Config{}, 1, 1) // registration signed with the unwrapped tenant CA
	s, ctx := lc.srv, context.Background()
	if fi, err := os.Stat(filepath.Join(lc.dir, datadir.KEKFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s after init: %v, %v; want a 0600 file", datadir.KEKFile, fi, err)
	}
	// 'cloud tenant add' opens the store on its own.
	other, err := datadir.OpenStore(lc.dir, s.settings)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := datadir.AddTenant(ctx, other, "fabrikam.com", "", "admin@fabrikam.com", testPassword); err != nil {
		t.Fatal(err)
	}
	other.Close()

	host := "web-contoso.sallyport.localhost"
	edgeCA, err := pki.NewCA("test edge CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	appCert, err := edgeCA.IssueServer([]string{host}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	appKeyDER, err := x509.MarshalPKCS8PrivateKey(appCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	appKeyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: appKeyDER})
	tok := login(t, s, "admin@contoso.com", testPassword)
	if rec, eb := call(t, s, "POST", "/apps", tok, api.CreateAppRequest{Name: "web", InternalURL: "http://127.0.0.1:1",
		CertPEM: string(pki.EncodeCertPEM(appCert.Certificate[0])), KeyPEM: string(appKeyPEM)}); rec.Code != 201 {
		t.Fatalf("create app: %d %s", rec.Code, eb.Error.Message)
	}
	// An update keeps the certificate and its key wrapped.
	timeout := "long"
	if rec, eb := call(t, s, "PATCH", "/apps/web", tok, api.UpdateAppRequest{Timeout: &timeout}); rec.Code != 200 {
		t.Fatalf("update app: %d %s", rec.Code, eb.Error.Message)
	}

	// The keys, as the cloud reads them, for the byte search.
	secrets := map[string][]byte{"app key": appKeyDER}
	tenants, _ := s.store.ListTenants(ctx)
	if len(tenants) != 2 {
		t.Fatalf("%d tenants, want 2", len(tenants))
	}
	for _, ten := range tenants {
		ca, err := s.store.TenantCA(ctx, ten.ID)
		if err != nil {
			t.Fatalf("tenant CA of %s: %v", ten.Domain, err)
		}
		secrets["CA key of "+ten.Domain] = keyDER(t, ca.KeyPEM)
	}

	cols := storedKeys(t, lc.dir)
	if len(cols) != 3 {
		t.Fatalf("key columns %v, want 2 tenant CAs and 1 application", len(cols))
	}
	for k, v := range cols {
		if !strings.HasPrefix(string(v), wrappedPrefix) {
			t.Errorf("%s is stored as %.40q, not wrapped", k, v)
		}
	}
	noKeysInStore(t, lc.dir, secrets)

	// The edge still presents the application's own certificate.
	conn, err := tls.Dial("tcp", lc.addr, &tls.Config{ServerName: host, InsecureSkipVerify: true}) // #nosec: the test compares the certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, appCert.Certificate[0]) {
		t.Error("the edge does not present the application's certificate")
	}
}

// TestWrappedKeyBoundToRow: a wrapped key copied into another row (another
// tenant's CA) does not unwrap there.
func TestWrappedKeyBoundToRow(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	contoso, _ := s.store.TenantByDomain(ctx, "contoso.com")
	fabrikam, _ := s.store.TenantByDomain(ctx, "fabrikam.com")
	cols := storedKeys(t, s.cfg.DataDir)
	db := rawDB(t, s.cfg.DataDir)
	if _, err := db.Exec(`UPDATE tenant_cas SET key_pem = ? WHERE tenant_id = ?`, cols["tenant-ca:"+contoso.ID], fabrikam.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.TenantCA(ctx, contoso.ID); err != nil {
		t.Errorf("contoso's own key: %v", err)
	}
	_, err := s.store.TenantCA(ctx, fabrikam.ID)
	if err == nil || !strings.Contains(err.Error(), "moved from another row") {
		t.Errorf("contoso's wrapped key in fabrikam's row: err = %v, want a failure to unwrap", err)
	}
}

// TestKEKOldDataDir: a data directory from before the key-encryption key
// (plaintext keys, no KEK file) gets one at 'cloud serve', its keys are
// wrapped in place once (event 2800), and it works as before. A missing
// KEK file while wrapped keys exist is refused with one sentence.
func TestKEKOldDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	// Make it an old data directory: keys in plaintext, no KEK file.
	settings, _ := datadir.LoadSettings(dir)
	st, err := datadir.OpenStore(dir, settings)
	if err != nil {
		t.Fatal(err)
	}
	ten, _ := st.TenantByDomain(ctx, "contoso.com")
	ca, err := st.TenantCA(ctx, ten.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := sqlite.Open(filepath.Join(dir, datadir.StoreFile)) // the store itself, without the key-encryption key
	if err := raw.SetTenantCAKey(ctx, ten.ID, ca.KeyPEM); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	st.Close()
	if err := os.Remove(filepath.Join(dir, datadir.KEKFile)); err != nil {
		t.Fatal(err)
	}
	if v := storedKeys(t, dir)["tenant-ca:"+ten.ID]; !bytes.Contains(v, []byte("PRIVATE KEY")) {
		t.Fatal("the old data directory's key is not in plaintext")
	}

	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if v := storedKeys(t, dir)["tenant-ca:"+ten.ID]; !strings.HasPrefix(string(v), wrappedPrefix) {
		t.Errorf("after serve the key is stored as %.40q, not wrapped", v)
	}
	if got, err := s.store.TenantCA(ctx, ten.ID); err != nil || !bytes.Equal(got.KeyPEM, ca.KeyPEM) {
		t.Errorf("the wrapped key reads back as another (%v)", err)
	}
	s.Close()
	evs := (&liveCloud{dir: dir}).events(t, 2800)
	if len(evs) != 1 || !strings.Contains(evs[0].Message, datadir.KEKFile) {
		t.Errorf("events 2800: %+v, want one naming %s", evs, datadir.KEKFile)
	}
	// Again: nothing left to wrap, no second event.
	s, err = New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if evs := (&liveCloud{dir: dir}).events(t, 2800); len(evs) != 1 {
		t.Errorf("%d events 2800 after a second start, want 1", len(evs))
	}

	// The KEK file lost, wrapped keys in the store: a clear refusal.
	if err := os.Remove(filepath.Join(dir, datadir.KEKFile)); err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	p, ok := problem.As(err)
	if !ok || p.Code != "kek_missing" || !strings.Contains(p.Error(), "restore") || strings.Contains(p.Error(), "\n") {
		t.Fatalf("New without the KEK file = %v, want kek_missing saying to restore it", err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.KEKFile)); err == nil {
		t.Error("a new KEK file was made while wrapped keys exist")
	}
}

// wrappedPrefix marks a wrapped key in the store (datadir's format,
// checked from outside).
const wrappedPrefix = "sallyport-kek-v1:"

// noKeysInStore: no file of the store in dir (the database, its WAL and
// shared memory) holds a PEM private key, or any of secrets (what → DER).
func noKeysInStore(t *testing.T, dir string, secrets map[string][]byte) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, datadir.StoreFile+"*"))
	if len(files) == 0 {
		t.Fatal("no database file")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a PEM private key", filepath.Base(f))
		}
		for what, der := range secrets {
			if bytes.Contains(raw, der) {
				t.Errorf("%s holds the %s in DER", filepath.Base(f), what)
			}
		}
	}
}
