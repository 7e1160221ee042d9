package cloud

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/testnet"
)

// TestACMEStorage: certmagic's key/value semantics over the store —
// values round-trip (private keys wrapped in the store), directories are
// implied by the keys under them, missing keys are fs.ErrNotExist, Delete
// removes a whole directory and a missing key is no error; keys and values
// beyond the limits are refused.
func TestACMEStorage(t *testing.T) {
	s := newTestServer(t)
	clk := &clock{now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	a := newACMEStorage(s.store, "inst-a", clk.Now, s.log, s.events)
	ctx := t.Context()
	site := "certificates/acme-v02.example-directory/web-contoso.sallyport.test/"
	files := map[string]string{
		site + "web-contoso.sallyport.test.crt":                          "-----BEGIN CERTIFICATE-----\n",
		site + "web-contoso.sallyport.test.key":                          "-----BEGIN EC PRIVATE KEY-----\nsecret\n",
		site + "web-contoso.sallyport.test.json":                         `{"sans":["web-contoso.sallyport.test"]}`,
		"acme/acme-v02.example-directory/users/ops@contoso.com/ops.json": "{}",
		"acme/acme-v02.example-directory/users/ops@contoso.com/ops.key":  "-----BEGIN EC PRIVATE KEY-----\naccount\n",
	}
	for k, v := range files {
		if err := a.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	for k, v := range files {
		if got, err := a.Load(ctx, k); err != nil || string(got) != v {
			t.Errorf("Load(%s) = %q, %v", k, got, err)
		}
	}
	// A private key reaches the store only wrapped.
	raw := rawDB(t, s.cfg.DataDir)
	var stored []byte
	if err := raw.QueryRow(`SELECT value FROM acme_objects WHERE key = ?`, site+"web-contoso.sallyport.test.key").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte("secret")) || !bytes.HasPrefix(stored, []byte("sallyport-kek-v1:")) {
		t.Errorf("the certificate's key is stored as %q, want it wrapped", stored)
	}

	for _, tc := range []struct {
		prefix    string
		recursive bool
		want      []string
	}{
		{"certificates", false, []string{"certificates/acme-v02.example-directory"}},
		{"certificates/acme-v02.example-directory", false, []string{strings.TrimSuffix(site, "/")}},
		{strings.TrimSuffix(site, "/"), false, []string{site + "web-contoso.sallyport.test.crt", site + "web-contoso.sallyport.test.json", site + "web-contoso.sallyport.test.key"}},
		{"acme", true, []string{"acme/acme-v02.example-directory", "acme/acme-v02.example-directory/users", "acme/acme-v02.example-directory/users/ops@contoso.com",
			"acme/acme-v02.example-directory/users/ops@contoso.com/ops.json", "acme/acme-v02.example-directory/users/ops@contoso.com/ops.key"}},
		{"", false, []string{"acme", "certificates"}},
		{site + "web-contoso.sallyport.test.crt", false, nil}, // a value has nothing under it
	} {
		got, err := a.List(ctx, tc.prefix, tc.recursive)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q, %v) = %q, %v; want %q", tc.prefix, tc.recursive, got, err, tc.want)
		}
	}
	if _, err := a.List(ctx, "ocsp", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing directory = %v, want fs.ErrNotExist", err)
	}

	info, err := a.Stat(ctx, site+"web-contoso.sallyport.test.key")
	if want := (certmagic.KeyInfo{Key: site + "web-contoso.sallyport.test.key", Modified: clk.Now().Add(-time.Minute), Size: int64(len(files[site+"web-contoso.sallyport.test.key"])), IsTerminal: true}); err != nil || info != want {
		t.Errorf("Stat of a value = %+v, %v; want %+v", info, err, want)
	}
	if info, err := a.Stat(ctx, "certificates"); err != nil || info.IsTerminal || info.Key != "certificates" {
		t.Errorf("Stat of a directory = %+v, %v", info, err)
	}
	for _, k := range []string{"certificates/other", "certificate"} {
		if _, err := a.Stat(ctx, k); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s) = %v, want fs.ErrNotExist", k, err)
		}
		if _, err := a.Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%s) = %v, want fs.ErrNotExist", k, err)
		}
		if a.Exists(ctx, k) {
			t.Errorf("Exists(%s) = true", k)
		}
	}
	if !a.Exists(ctx, "certificates") || !a.Exists(ctx, site+"web-contoso.sallyport.test.crt") {
		t.Error("Exists is false for a directory or a value")
	}

	if err := a.Delete(ctx, strings.TrimSuffix(site, "/")); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, strings.TrimSuffix(site, "/")); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
	if got, err := a.List(ctx, "", true); err != nil || slices.ContainsFunc(got, func(k string) bool { return strings.HasPrefix(k, "certificates") }) {
		t.Errorf("after deleting the site: %q, %v", got, err)
	}

	for _, tc := range []struct {
		name, key string
		size      int
	}{
		{"empty key", "", 1},
		{"leading slash", "/etc/passwd", 1},
		{"trailing slash", "certificates/", 1},
		{"double slash", "certificates//a", 1},
		{"control byte", "certificates/a\nb", 1},
		{"non-ASCII", "certificates/é", 1},
		{"key too long", strings.Repeat("a", maxACMEKey+1), 1},
		{"value too large", "certificates/big", maxACMEValue + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.Store(ctx, tc.key, make([]byte, tc.size)); err == nil {
				t.Errorf("Store(%.40q, %d bytes) succeeded", tc.key, tc.size)
			}
		})
	}
	if err := a.Store(ctx, strings.Repeat("a", maxACMEKey), make([]byte, maxACMEValue)); err != nil {
		t.Errorf("Store at the limits: %v", err)
	}
}

// TestACMEStorageLocks: of two instances on one store, the second waits
// while the first holds a lock and gets it once released; a task of the
// same instance waits too; a lock whose holder crashed (not extended) is
// taken over once expired; a held lock is extended while held, so a
// holder working longer than its lifetime keeps it; closing releases
// what is held.
func TestACMEStorageLocks(t *testing.T) {
	s := newTestServer(t)
	clk := &clock{now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	newStorage := func(id string) *acmeStorage {
		a := newACMEStorage(s.store, id, clk.Now, s.log, s.events)
		a.poll = 5 * time.Millisecond
		a.ttl = time.Hour // the refresh does not run (see below for one that does)
		t.Cleanup(a.close)
		return a
	}
	a, b := newStorage("inst-a"), newStorage("inst-b")
	ctx := t.Context()
	const name = "issue_cert_web-contoso.sallyport.test"

	if err := a.Lock(ctx, name); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*acmeStorage{a, b} {
		if ok, err := st.TryLock(ctx, name); ok || err != nil {
			t.Fatalf("TryLock of a held lock by %s = %v, %v; want false", st.self, ok, err)
		}
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, name) }()
	select {
	case err := <-got:
		t.Fatalf("b's Lock returned while a holds the lock: %v", err)
	default:
	}
	if err := a.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := testnet.RecvWithin(t, "b's Lock", got); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}

	// A lock cancelled while waiting.
	if err := a.Lock(ctx, name); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- b.Lock(cctx, name) }()
	cancel()
	if err := testnet.RecvWithin(t, "b's cancelled Lock", got); !errors.Is(err, context.Canceled) {
		t.Fatalf("b's cancelled Lock = %v, want context.Canceled", err)
	}
	a.Unlock(ctx, name)

	// A crashed holder: its row stays, nobody extends it.
	crashed := store.ACMELock{Name: name, Owner: "inst-crashed/1", ExpiresAt: clk.Now().Add(acmeLockTTL)}
	if _, err := s.store.TakeACMELock(ctx, crashed, clk.Now()); err != nil {
		t.Fatal(err)
	}
	go func() { got <- b.Lock(ctx, name) }()
	select {
	case err := <-got:
		t.Fatalf("b's Lock returned while a crashed holder's lock is unexpired: %v", err)
	default:
	}
	clk.Advance(acmeLockTTL)
	if err := testnet.RecvWithin(t, "b's Lock after the crashed holder's expiry", got); err != nil {
		t.Fatal(err)
	}
	b.Unlock(ctx, name)

	// Closing releases what is held: another instance takes it at once,
	// and the closed storage takes nothing more.
	if err := a.Lock(ctx, name); err != nil {
		t.Fatal(err)
	}
	a.close()
	if ok, err := b.TryLock(ctx, name); !ok || err != nil {
		t.Fatalf("TryLock after the holder closed = %v, %v", ok, err)
	}
	if ok, err := a.TryLock(ctx, "other"); ok || err == nil {
		t.Errorf("TryLock on a closed storage = %v, %v; want an error", ok, err)
	}
	b.Unlock(ctx, name)
}

// TestACMEStorageLockExtended: a lock held longer than its lifetime is
// extended by its holder (on the real clock), so another instance does
// not take it over; once it stops being extended (the holder lost it), it
// is event 2988.
func TestACMEStorageLockExtended(t *testing.T) {
	s := newTestServer(t)
	a := newACMEStorage(s.store, "inst-a", time.Now, s.log, s.events)
	a.ttl = 300 * time.Millisecond
	t.Cleanup(a.close)
	ctx := t.Context()
	const name = "issue_cert_slow.example"
	start := time.Now()
	if err := a.Lock(ctx, name); err != nil {
		t.Fatal(err)
	}
	probe := store.ACMELock{Name: name, Owner: "inst-b/1", ExpiresAt: time.Now().Add(time.Hour)}
	testnet.WaitUntil(t, "a's lock extended past its first expiry, still a's", func() bool {
		holder, err := s.store.TakeACMELock(ctx, probe, start.Add(a.ttl))
		if err == nil {
			t.Fatal("b took the lock a holds and extends")
		}
		return errors.Is(err, store.ErrConflict) && holder.ExpiresAt.After(start.Add(2*a.ttl))
	})

	// Taken over behind a's back (its extension came too late): a says
	// so, and stops extending it.
	if _, err := s.store.TakeACMELock(ctx, probe, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testnet.WaitUntil(t, "event 2988", func() bool { return len(eventsOf(t, s, eventlog.ACMELockLost)) == 1 })
	if err := a.Unlock(ctx, name); err != nil {
		t.Errorf("Unlock of a lock taken over = %v, want nil", err)
	}
	if holder, err := s.store.TakeACMELock(ctx, store.ACMELock{Name: name, Owner: "inst-c/1", ExpiresAt: time.Now()}, time.Now()); !errors.Is(err, store.ErrConflict) || holder.Owner != probe.Owner {
		t.Errorf("after a's Unlock the lock is %+v, %v; want still b's", holder, err)
	}
}

// TestACMEImportDir: the previous version's DATADIR/acme is moved into
// the store once (lock files left out, a key the store already holds
// kept, the keys wrapped), the directory renamed acme.imported, event
// 2987; a cloud without one imports nothing.
func TestACMEImportDir(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	dir := filepath.Join(s.cfg.DataDir, acmeDir)
	site := "certificates/ca-dir/web-contoso.sallyport.test/web-contoso.sallyport.test"
	for name, v := range map[string]string{
		site + ".crt":                       "old cert",
		site + ".key":                       "old key",
		"acme/ca-dir/users/ops/ops.json":    "account",
		"locks/issue_cert_web.lock":         `{"created":"2026-01-01T00:00:00Z"}`,
		"certificates/ca-dir/kept/kept.crt": "old kept",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		testnet.WriteFile(t, p, v, 0o600)
	}
	a := newACMEStorage(s.store, "inst-a", s.now, s.log, s.events)
	if err := a.Store(ctx, "certificates/ca-dir/kept/kept.crt", []byte("newer")); err != nil {
		t.Fatal(err)
	}
	s.importACMEDir(ctx, a)

	for k, want := range map[string]string{site + ".crt": "old cert", site + ".key": "old key", "acme/ca-dir/users/ops/ops.json": "account",
		"certificates/ca-dir/kept/kept.crt": "newer"} {
		if got, err := a.Load(ctx, k); err != nil || string(got) != want {
			t.Errorf("Load(%s) = %q, %v; want %q", k, got, err, want)
		}
	}
	if a.Exists(ctx, "locks") {
		t.Error("the lock files were imported")
	}
	var stored []byte
	if err := rawDB(t, s.cfg.DataDir).QueryRow(`SELECT value FROM acme_objects WHERE key = ?`, site+".key").Scan(&stored); err != nil || !bytes.HasPrefix(stored, []byte("sallyport-kek-v1:")) {
		t.Errorf("the imported key is stored as %q, %v; want it wrapped", stored, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still there (%v)", dir, err)
	}
	if _, err := os.Stat(dir + ".imported"); err != nil {
		t.Error(err)
	}
	evs := eventsOf(t, s, eventlog.ACMEStorageImported)
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "(3 files)") {
		t.Fatalf("events 2987 = %+v, want one naming 3 files", evs)
	}
	s.importACMEDir(ctx, a) // nothing left: no second event
	if n := len(eventsOf(t, s, eventlog.ACMEStorageImported)); n != 1 {
		t.Errorf("a second start wrote %d events 2987", n)
	}
}
