package datadir

import (
	"bytes"
	"testing"
)

// TestKEKWrap: a wrapped key unwraps only with its key-encryption key and
// for its own row; a damaged value is refused; a plaintext value (a data
// directory not migrated yet) passes through; nothing is wrapped twice.
func TestKEKWrap(t *testing.T) {
	k1, _ := newKEK(bytes.Repeat([]byte{1}, 32))
	k2, _ := newKEK(bytes.Repeat([]byte{2}, 32))
	plain := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
	w := k1.wrap(plain, tenantCAPurpose("t_a"))
	if !isWrapped(w) || bytes.Contains(w, []byte("secret")) {
		t.Fatalf("wrapped value %q", w)
	}
	if again := k1.wrap(w, tenantCAPurpose("t_a")); !bytes.Equal(again, w) {
		t.Error("a wrapped value was wrapped again")
	}
	if w2 := k1.wrap(plain, tenantCAPurpose("t_a")); bytes.Equal(w2, w) {
		t.Error("two wraps of one key are equal: the nonce is not random")
	}
	damaged := append([]byte(nil), w...)
	damaged[len(damaged)-3] ^= 'A' ^ 'B'
	tests := []struct {
		name    string
		k       *kek
		stored  []byte
		purpose string
		want    []byte // nil: an error
	}{
		{"own row", k1, w, tenantCAPurpose("t_a"), plain},
		{"another tenant's row", k1, w, tenantCAPurpose("t_b"), nil},
		{"an application's row", k1, w, appCertPurpose("t_a", "a_1"), nil},
		{"a signing key's row", k1, w, signingKeyPurpose("t_a", "kid"), nil},
		{"signing key, own row", k1, k1.wrap(plain, signingKeyPurpose("t_a", "kid1")), signingKeyPurpose("t_a", "kid1"), plain},
		{"signing key, another kid", k1, k1.wrap(plain, signingKeyPurpose("t_a", "kid1")), signingKeyPurpose("t_a", "kid2"), nil},
		{"signing key, another tenant", k1, k1.wrap(plain, signingKeyPurpose("t_a", "kid1")), signingKeyPurpose("t_b", "kid1"), nil},
		{"another KEK", k2, w, tenantCAPurpose("t_a"), nil},
		{"damaged", k1, damaged, tenantCAPurpose("t_a"), nil},
		{"truncated", k1, []byte(kekPrefix + "AAAA"), tenantCAPurpose("t_a"), nil},
		{"not base64", k1, []byte(kekPrefix + "!!"), tenantCAPurpose("t_a"), nil},
		{"plaintext of an old data directory", k1, plain, tenantCAPurpose("t_a"), plain},
		{"empty (no custom certificate)", k1, nil, appCertPurpose("t_a", "a_1"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.k.unwrap(tc.stored, tc.purpose)
			switch {
			case tc.want == nil && len(tc.stored) == 0:
				if err != nil || len(got) != 0 {
					t.Errorf("unwrap(empty) = %q, %v", got, err)
				}
			case tc.want == nil:
				if err == nil {
					t.Errorf("unwrap = %q, want an error", got)
				}
			case err != nil || !bytes.Equal(got, tc.want):
				t.Errorf("unwrap = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := newKEK(make([]byte, 16)); err == nil {
		t.Error("a 16-byte KEK was accepted")
	}
}
