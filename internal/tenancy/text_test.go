package tenancy

import "testing"

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"abcd", 0, "…"},
	}
	for _, tc := range tests {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestDashIfEmpty(t *testing.T) {
	for in, want := range map[string]string{"": "-", "host": "host", "-": "-", " ": " "} {
		if got := DashIfEmpty(in); got != want {
			t.Errorf("DashIfEmpty(%q) = %q, want %q", in, got, want)
		}
	}
}
