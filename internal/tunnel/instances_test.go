package tunnel

import (
	"strings"
	"testing"
)

func TestParseInstances(t *testing.T) {
	long := strings.Repeat("x", 65)
	var many strings.Builder
	many.WriteString(`{"instances":[`)
	for i := range MaxInstances + 1 {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString(`{"id":"i` + strings.Repeat("a", i) + `","advertise":"10.0.0.1:443"}`)
	}
	many.WriteString(`]}`)
	for _, tc := range []struct {
		name, in, err string
		n             int
	}{
		{"empty", `{"version":""}`, "", 0},
		{"two", `{"version":"v","self":"a","instances":[{"id":"a","advertise":"10.0.0.1:8443"},{"id":"b","advertise":"[::1]:443"}]}`, "", 2},
		{"not json", `{`, "not valid JSON", 0},
		{"no port", `{"instances":[{"id":"a","advertise":"10.0.0.1"}]}`, "not HOST:PORT", 0},
		{"bad port", `{"instances":[{"id":"a","advertise":"10.0.0.1:0"}]}`, "no valid port", 0},
		{"no host", `{"instances":[{"id":"a","advertise":":443"}]}`, "not HOST:PORT", 0},
		{"no id", `{"instances":[{"id":"","advertise":"h:443"}]}`, "empty id", 0},
		{"long id", `{"instances":[{"id":"` + long + `","advertise":"h:443"}]}`, "longer than", 0},
		{"long self", `{"self":"` + long + `"}`, "longer than", 0},
		{"twice", `{"instances":[{"id":"a","advertise":"h:443"},{"id":"a","advertise":"g:443"}]}`, "listed twice", 0},
		{"too many", many.String(), "more than 64", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseInstances(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Instances) != tc.n || m.Instances == nil {
				t.Fatalf("%d instances (%v), want %d", len(m.Instances), m.Instances, tc.n)
			}
		})
	}
}

func FuzzParseInstances(f *testing.F) {
	f.Add(`{"version":"v","self":"a","instances":[{"id":"a","advertise":"10.0.0.1:8443"}]}`)
	f.Add(`{"instances":[{"id":"a","advertise":"[::1]:1"}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseInstances(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(m.Instances) > MaxInstances {
			t.Fatalf("%d instances accepted", len(m.Instances))
		}
		for _, i := range m.Instances {
			if i.ID == "" || checkAdvertise(i.Advertise) != nil {
				t.Fatalf("bad entry accepted: %+v", i)
			}
		}
	})
}
