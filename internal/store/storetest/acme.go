package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// acmeKeys is the ACME storage fixture: an account, two sites of one CA
// (one of them a prefix of the other's name: "a.example" and
// "a.example.org" are not under each other), a key with "_" and "%" (the
// wildcards of LIKE, which a prefix must not treat as such), and a lock
// file of a key's name beside the directory.
var acmeKeys = []string{
	"accounts/ca.example-dir/ops@contoso.com/ops@contoso.com.json",
	"accounts/ca.example-dir/ops@contoso.com/ops@contoso.com.key",
	"certificates/ca.example-dir/a.example.org/a.example.org.crt", // '.' sorts before '/'
	"certificates/ca.example-dir/a.example/a.example.crt",
	"certificates/ca.example-dir/a.example/a.example.json",
	"certificates/ca.example-dir/a.example/a.example.key",
	"certificates/ca.example-dir/wildcard_.b%x/wildcard_.b%x.crt",
	"certificates/ca.example-dir0",
}

// testACMEObjects checks the ACME key/value space: a round-trip of value,
// size and time (UTC, to the nanosecond), a replacement, listings and
// deletions by prefix on whole path components (never a LIKE pattern),
// and ErrNotFound for a missing key.
func testACMEObjects(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got := get(t, func() ([]store.ACMEObject, error) { return s.ListACMEObjects(ctx, "") }); got == nil || len(got) != 0 {
		t.Fatalf("ListACMEObjects on an empty store = %#v, want an empty list", got)
	}
	wantErr(t, "ACMEObject of a missing key", errOf(s.ACMEObject(ctx, acmeKeys[0])), store.ErrNotFound)
	paris := time.FixedZone("CET", 3600)
	for i, k := range acmeKeys {
		must(t, s.PutACMEObject(ctx, store.ACMEObject{Key: k, Value: []byte("value of " + k), Modified: at(i).In(paris)}))
	}
	k := acmeKeys[5]
	equal(t, "round-trip", get(t, func() (store.ACMEObject, error) { return s.ACMEObject(ctx, k) }),
		store.ACMEObject{Key: k, Value: []byte("value of " + k), Size: int64(len("value of " + k)), Modified: at(5)})
	bin := []byte{0, 1, 2, 0xff, '\n', 0}
	must(t, s.PutACMEObject(ctx, store.ACMEObject{Key: k, Value: bin, Modified: at(30)}))
	equal(t, "replaced", get(t, func() (store.ACMEObject, error) { return s.ACMEObject(ctx, k) }),
		store.ACMEObject{Key: k, Value: bin, Size: 6, Modified: at(30)})

	keysOf := func(prefix string) []string {
		t.Helper()
		out := []string{}
		for _, o := range get(t, func() ([]store.ACMEObject, error) { return s.ListACMEObjects(ctx, prefix) }) {
			if o.Value != nil {
				t.Errorf("ListACMEObjects(%q) gives the value of %s", prefix, o.Key)
			}
			if o.Modified.IsZero() || o.Size == 0 {
				t.Errorf("ListACMEObjects(%q): %s without its time or size: %+v", prefix, o.Key, o)
			}
			out = append(out, o.Key)
		}
		return out
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", acmeKeys},
		{"accounts", acmeKeys[:2]},
		{"certificates/ca.example-dir", acmeKeys[2:7]},
		{"certificates/ca.example-dir/a.example", acmeKeys[3:6]},
		{"certificates/ca.example-dir/a.example.org", acmeKeys[2:3]},
		{"certificates/ca.example-dir/a.example/a.example.key", acmeKeys[5:6]},
		{"certificates/ca.example-dir/wildcard_.b%x", acmeKeys[6:7]},
		{"certificates/ca.example-dir/wildcard", []string{}},
		{"certificates/ca.example-dir/a.", []string{}},
		{"certificates/ca", []string{}},
		{"ocsp", []string{}},
	} {
		equal(t, fmt.Sprintf("ListACMEObjects(%q)", tc.prefix), keysOf(tc.prefix), tc.want)
	}

	for _, tc := range []struct {
		prefix string
		n      int
		left   []string
	}{
		{"certificates/ca.example-dir/a.exam", 0, acmeKeys},
		{"certificates/ca.example-dir/a.example", 3, []string{acmeKeys[0], acmeKeys[1], acmeKeys[2], acmeKeys[6], acmeKeys[7]}},
		{"certificates/ca.example-dir/a.example", 0, []string{acmeKeys[0], acmeKeys[1], acmeKeys[2], acmeKeys[6], acmeKeys[7]}},
		{"accounts/ca.example-dir/ops@contoso.com/ops@contoso.com.key", 1, []string{acmeKeys[0], acmeKeys[2], acmeKeys[6], acmeKeys[7]}},
		{"certificates/ca.example-dir", 2, []string{acmeKeys[0], acmeKeys[7]}},
		{"certificates", 1, []string{acmeKeys[0]}},
		{"", 1, []string{}},
	} {
		n, err := s.DeleteACMEObjects(ctx, tc.prefix)
		must(t, err)
		if n != tc.n {
			t.Errorf("DeleteACMEObjects(%q) = %d, want %d", tc.prefix, n, tc.n)
		}
		equal(t, fmt.Sprintf("left after DeleteACMEObjects(%q)", tc.prefix), keysOf(""), tc.left)
	}
}

// testACMELocks checks a lock's life: taken, refused to another owner
// while unexpired (the holder returned), extended by its owner, taken over
// once expired (a crashed holder blocks nobody for longer), released only
// by its owner, and names independent of each other.
func testACMELocks(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := store.ACMELock{Name: "issue_cert_a.example", Owner: "inst-a", ExpiresAt: at(10)}
	equal(t, "first take", get(t, func() (store.ACMELock, error) { return s.TakeACMELock(ctx, a, at(0)) }), a)

	b := store.ACMELock{Name: a.Name, Owner: "inst-b", ExpiresAt: at(11)}
	for _, now := range []time.Time{at(1), at(10).Add(-time.Nanosecond)} {
		got, err := s.TakeACMELock(ctx, b, now)
		wantErr(t, "another owner's take of a held lock", err, store.ErrConflict)
		equal(t, "the holder", got, a)
	}
	other := store.ACMELock{Name: "issue_cert_b.example", Owner: "inst-b", ExpiresAt: at(11)}
	equal(t, "another name", get(t, func() (store.ACMELock, error) { return s.TakeACMELock(ctx, other, at(1)) }), other)

	// The holder extends it: still refused to b past the first expiry.
	paris := time.FixedZone("CET", 3600)
	a2 := store.ACMELock{Name: a.Name, Owner: a.Owner, ExpiresAt: at(20).In(paris)}
	equal(t, "extended", get(t, func() (store.ACMELock, error) { return s.TakeACMELock(ctx, a2, at(9)) }),
		store.ACMELock{Name: a.Name, Owner: a.Owner, ExpiresAt: at(20)})
	if _, err := s.TakeACMELock(ctx, b, at(15)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("take of an extended lock = %v, want ErrConflict", err)
	}

	// Expired (its holder crashed): b takes it over, and a's late release
	// or refresh does not take it back.
	b.ExpiresAt = at(30)
	equal(t, "taken over", get(t, func() (store.ACMELock, error) { return s.TakeACMELock(ctx, b, at(20)) }), b)
	wantErr(t, "release by the previous holder", s.ReleaseACMELock(ctx, a.Name, a.Owner), store.ErrNotFound)
	if got, err := s.TakeACMELock(ctx, a2, at(21)); !errors.Is(err, store.ErrConflict) || got != b {
		t.Fatalf("refresh by the previous holder = %+v, %v; want b's lock and ErrConflict", got, err)
	}

	must(t, s.ReleaseACMELock(ctx, b.Name, b.Owner))
	wantErr(t, "second release", s.ReleaseACMELock(ctx, b.Name, b.Owner), store.ErrNotFound)
	wantErr(t, "release of a lock never taken", s.ReleaseACMELock(ctx, "never", "inst-a"), store.ErrNotFound)
	// Released: anyone takes it at once, however long it was to last.
	equal(t, "after release", get(t, func() (store.ACMELock, error) { return s.TakeACMELock(ctx, a, at(21)) }), a)
	equal(t, "the other name untouched", get(t, func() (store.ACMELock, error) { return s.TakeACMELock(ctx, other, at(2)) }), other)
}

// testACMELockRace: owners racing for one free lock, one wins.
func testACMELockRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	takeOnce(t, "owners got the lock", func(i int) error {
		_, err := s.TakeACMELock(ctx, store.ACMELock{Name: "issue_cert_race.example", Owner: fmt.Sprintf("inst-%d", i), ExpiresAt: at(5)}, at(1))
		return err
	})
}
