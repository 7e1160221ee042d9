package console

import (
	"strings"
	"testing"
)

func TestParseLifetime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"30m", 1800, true}, {"24h", 86400, true}, {"7d", 7 * 86400, true}, {"1.5s", 2, true}, {"0d", 0, true},
		{"", 0, false}, {"forever", 0, false}, {"-1h", 0, false}, {"-1d", 0, false}, {"d", 0, false}, {"99999999999d", 0, false},
	} {
		got, err := parseLifetime(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseLifetime(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "such as 30m, 24h or 7d") {
			t.Errorf("parseLifetime(%q): %v does not say what to give", tc.in, err)
		}
	}
}

// FuzzParseLifetime: whatever a form sends, the parser answers without
// panicking, never a negative lifetime, and its refusal is one bounded
// sentence.
func FuzzParseLifetime(f *testing.F) {
	for _, s := range []string{"30m", "24h", "7d", "1h30m", "-1d", "9223372036854775807ns", "1e9h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sec, err := parseLifetime(s)
		if err == nil && sec < 0 {
			t.Fatalf("parseLifetime(%q) = %d", s, sec)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Fatalf("parseLifetime(%q): a refusal of %d bytes", s, len(err.Error()))
		}
	})
}
