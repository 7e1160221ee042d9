package statedir

import (
	"slices"
	"testing"
)

func TestInstancesLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rs      RunStatus
		line    string
		missing []string
	}{
		{"single instance", RunStatus{TunnelsUp: 2}, "", nil},
		{"all connected", RunStatus{Listed: 2, Instances: []RunInstance{{"a", "10.0.0.1:443", 2}, {"b", "10.0.0.2:443", 2}}},
			"2 of 2 cloud instance(s) connected: a at 10.0.0.1:443 (2 tunnel(s)), b at 10.0.0.2:443 (2 tunnel(s))", nil},
		{"one missing, bootstrap up", RunStatus{Listed: 2, Instances: []RunInstance{{"a", "10.0.0.1:443", 0}, {"b", "10.0.0.2:443", 0}, {"", "", 2}}},
			"0 of 2 cloud instance(s) connected: a at 10.0.0.1:443 (0 tunnel(s)), b at 10.0.0.2:443 (0 tunnel(s)), through the cloud's name (2 tunnel(s))",
			[]string{"a at 10.0.0.1:443", "b at 10.0.0.2:443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rs.InstancesLine(); got != tc.line {
				t.Errorf("line %q, want %q", got, tc.line)
			}
			if got := tc.rs.InstancesMissing(); !slices.Equal(got, tc.missing) {
				t.Errorf("missing %q, want %q", got, tc.missing)
			}
		})
	}
}
