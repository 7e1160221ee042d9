package cloud

import (
	"strings"
	"testing"
)

// FuzzSigninInput: what a browser sends to the sign-in pages — a return
// URL, a device user code, a second factor code — never leads off the
// application's host, and the normalisations are stable.
func FuzzSigninInput(f *testing.F) {
	for _, s := range []string{"https://web-contoso.sallyport.localhost/a?b=1", "//evil.example", "/\\evil", "https://h/%2F%2Fx",
		"bcdf-ghjk", "BCDF GHJK", "abcde-fghij", "123456", "javascript:alert(1)", "\x00", "https://h/\t/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := localReturn(in)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") || strings.ContainsAny(got, "\r\n\t ") {
			t.Fatalf("localReturn(%q) = %q: not a path on the same host", in, got)
		}
		if localReturn("https://h"+got) != got {
			t.Fatalf("localReturn is not stable for %q: %q then %q", in, got, localReturn("https://h"+got))
		}
		if c := normalizeUserCode(in); c != "" {
			if len(c) != 9 || c[4] != '-' || normalizeUserCode(c) != c {
				t.Fatalf("normalizeUserCode(%q) = %q", in, c)
			}
		}
		if looksLikeRecoveryCode(in) {
			n := normalizeRecoveryCode(in)
			if normalizeRecoveryCode(n) != n || hashRecoveryCode(in) != hashRecoveryCode(n) {
				t.Fatalf("recovery code %q normalised to %q unstably", in, n)
			}
		}
	})
}
