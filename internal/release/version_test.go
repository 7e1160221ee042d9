package release

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mustVersion(t *testing.T, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatalf("ParseVersion(%q): %v", s, err)
	}
	return v
}

func TestParseVersionValid(t *testing.T) {
	tests := []struct {
		in     string
		want   Version
		string string // String(); "" means the input
	}{
		{"1.2.3", Version{Major: 1, Minor: 2, Patch: 3}, ""},
		{"v1.2.3", Version{Major: 1, Minor: 2, Patch: 3}, "1.2.3"},
		{"0.0.0", Version{}, ""},
		{"1.0.0-rc.1", Version{Major: 1, Pre: []string{"rc", "1"}}, ""},
		{"1.0.0-alpha+build.5", Version{Major: 1, Pre: []string{"alpha"}, Build: "build.5"}, ""},
		{"0.1.0-dev", Version{Minor: 1, Pre: []string{"dev"}}, ""},
		{"v0.1.0-dev", Version{Minor: 1, Pre: []string{"dev"}}, "0.1.0-dev"},
		{"10.20.30", Version{Major: 10, Minor: 20, Patch: 30}, ""},
		{"1.2.3+build", Version{Major: 1, Minor: 2, Patch: 3, Build: "build"}, ""},
		{"1.2.3+001", Version{Major: 1, Minor: 2, Patch: 3, Build: "001"}, ""}, // build identifiers may have leading zeros
		{"1.2.3-0", Version{Major: 1, Minor: 2, Patch: 3, Pre: []string{"0"}}, ""},
		{"1.2.3-0a", Version{Major: 1, Minor: 2, Patch: 3, Pre: []string{"0a"}}, ""},
		{"1.2.3-01a", Version{Major: 1, Minor: 2, Patch: 3, Pre: []string{"01a"}}, ""}, // alphanumeric, so leading zero allowed
		{"1.2.3---", Version{Major: 1, Minor: 2, Patch: 3, Pre: []string{"--"}}, ""},
		{"1.0.0-x-y-z.--", Version{Major: 1, Pre: []string{"x-y-z", "--"}}, ""},
		{"1.0.0-alpha.beta.1+exp.sha.5114f85", Version{Major: 1, Pre: []string{"alpha", "beta", "1"}, Build: "exp.sha.5114f85"}, ""},
		{"1.0.0+21AF26D3----117B344092BD", Version{Major: 1, Build: "21AF26D3----117B344092BD"}, ""},
		{"18446744073709551615.18446744073709551615.18446744073709551615",
			Version{Major: 1<<64 - 1, Minor: 1<<64 - 1, Patch: 1<<64 - 1}, ""},
		{"1.0.0-" + strings.Repeat("a", 58), Version{Major: 1, Pre: []string{strings.Repeat("a", 58)}}, ""}, // exactly 64
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := ParseVersion(tt.in)
			if err != nil {
				t.Fatalf("ParseVersion: %v", err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("ParseVersion = %#v, want %#v", v, tt.want)
			}
			want := tt.string
			if want == "" {
				want = tt.in
			}
			if got := v.String(); got != want {
				t.Fatalf("String() = %q, want %q", got, want)
			}
			back, err := ParseVersion(v.String())
			if err != nil {
				t.Fatalf("ParseVersion(String()): %v", err)
			}
			if !reflect.DeepEqual(back, v) || back.Compare(v) != 0 {
				t.Fatalf("String round trip = %#v, want %#v", back, v)
			}
		})
	}
}

func TestParseVersionInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"v",
		"1",
		"1.2",
		"1.2.3.4",
		"01.2.3",
		"1.02.3",
		"1.2.03",
		"00.0.0",
		"1.2.3-",
		"1.2.3+",
		"1.2.3-+",
		"1.2.3-01",
		"1.2.3-rc.01",
		"1.2.3-00",
		"1.2.3-rc..1",
		"1.2.3-rc.",
		"1.2.3-.rc",
		"1.2.3+build..5",
		"1.2.3+build.",
		"1.2.3-rc_1",
		"1.2.3-rc 1",
		"1.2.3-αβ",
		"1.2.3+ü",
		"V1.2.3",
		"vv1.2.3",
		"v 1.2.3",
		" 1.2.3",
		"1.2.3 ",
		"1.2.3\n",
		"\n1.2.3",
		"-1.2.3",
		"+1.2.3",
		"1.-2.3",
		"1.2.3.",
		"1..3",
		"a.b.c",
		"1.2.x",
		"１.2.3", // full-width digit
		"1.2.3\x00",
		"18446744073709551616.0.0", // 2^64
		"0.18446744073709551616.0",
		"0.0.18446744073709551616",
		"99999999999999999999999999.0.0",
		"1.0.0-" + strings.Repeat("a", 59),   // 65 characters
		"1.0.0+" + strings.Repeat("b", 1000), // far too long
		"v1.0.0-" + strings.Repeat("a", 58),  // 65 characters with the v
	} {
		t.Run(in, func(t *testing.T) {
			if v, err := ParseVersion(in); err == nil {
				t.Fatalf("ParseVersion(%q) = %#v, want an error", in, v)
			}
		})
	}
}

// semverOrder is the precedence example of semver.org 2.0.0 (item 11),
// extended on both ends; every entry is newer than all before it.
var semverOrder = []string{
	"0.0.0",
	"0.0.1-alpha",
	"0.0.1",
	"0.1.0",
	"0.9.0",
	"0.10.0",
	"1.0.0-0",
	"1.0.0-2",
	"1.0.0-10",
	"1.0.0-18446744073709551615",
	"1.0.0-18446744073709551616", // numeric beyond uint64 is still numeric
	"1.0.0-99999999999999999999",
	"1.0.0-100000000000000000000",
	"1.0.0--",
	"1.0.0-Z",
	"1.0.0-alpha",
	"1.0.0-alpha.1",
	"1.0.0-alpha.beta",
	"1.0.0-beta",
	"1.0.0-beta.2",
	"1.0.0-beta.11",
	"1.0.0-beta.11.0",
	"1.0.0-beta.a",
	"1.0.0-rc.1",
	"1.0.0",
	"2.0.0",
	"2.1.0",
	"2.1.1",
	"2.1.10",
	"10.0.0",
	"18446744073709551615.0.0",
}

func TestCompareSemverPrecedence(t *testing.T) {
	vs := make([]Version, len(semverOrder))
	for i, s := range semverOrder {
		vs[i] = mustVersion(t, s)
	}
	for i := range vs {
		for j := range vs {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := vs[i].Compare(vs[j]); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", semverOrder[i], semverOrder[j], got, want)
			}
		}
	}

	// Sorting any permutation gives the same order.
	shuffled := slices.Clone(vs)
	slices.Reverse(shuffled)
	shuffled[0], shuffled[len(shuffled)/2] = shuffled[len(shuffled)/2], shuffled[0]
	slices.SortFunc(shuffled, Version.Compare)
	for i := range shuffled {
		if got := shuffled[i].String(); got != semverOrder[i] {
			t.Fatalf("sorted[%d] = %s, want %s", i, got, semverOrder[i])
		}
	}
}

func TestCompareSpecExample(t *testing.T) {
	// Exactly the list of semver.org 2.0.0 item 11, every pair.
	order := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",
	}
	for i := range order {
		for j := i + 1; j < len(order); j++ {
			a, b := mustVersion(t, order[i]), mustVersion(t, order[j])
			if a.Compare(b) != -1 || b.Compare(a) != 1 {
				t.Errorf("%s vs %s: Compare = %d / %d, want -1 / 1", order[i], order[j], a.Compare(b), b.Compare(a))
			}
		}
		if v := mustVersion(t, order[i]); v.Compare(v) != 0 {
			t.Errorf("%s.Compare(itself) = %d", order[i], v.Compare(v))
		}
	}
}

func TestCompareIgnoresBuildAndPrefix(t *testing.T) {
	for _, pair := range [][2]string{
		{"1.0.0", "1.0.0+build.1"},
		{"1.0.0+a", "1.0.0+b"},
		{"1.0.0+build.2", "1.0.0+build.11"},
		{"1.0.0-rc.1", "1.0.0-rc.1+exp.sha.5114f85"},
		{"1.0.0", "v1.0.0"},
		{"v1.0.0-rc.1+x", "1.0.0-rc.1+y"},
	} {
		a, b := mustVersion(t, pair[0]), mustVersion(t, pair[1])
		if a.Compare(b) != 0 || b.Compare(a) != 0 {
			t.Errorf("%s vs %s: Compare = %d / %d, want 0", pair[0], pair[1], a.Compare(b), b.Compare(a))
		}
	}
	// Build metadata does not hide a real difference.
	if a, b := mustVersion(t, "1.0.0+zzz"), mustVersion(t, "1.0.1+aaa"); a.Compare(b) != -1 {
		t.Errorf("1.0.0+zzz.Compare(1.0.1+aaa) = %d, want -1", a.Compare(b))
	}
}

func TestChoose(t *testing.T) {
	type rel struct {
		version string
		major   bool
	}
	tests := []struct {
		name      string
		installed string
		available []rel
		auto      bool
		skip      map[string]bool
		want      string // "" for nothing to install
	}{
		{"nil list", "1.0.0", nil, false, nil, ""},
		{"nil list auto", "1.0.0", nil, true, nil, ""},
		{"nothing newer", "1.4.0", []rel{{"1.3.0", true}, {"1.4.0", true}, {"1.4.0-rc.1", true}, {"1.4.0+rebuild", true}}, false, nil, ""},
		{"nothing newer auto", "1.4.0", []rel{{"1.3.0", true}, {"1.4.0", true}, {"1.4.0-rc.1", true}}, true, nil, ""},
		{"newest minor on request", "1.0.0", []rel{{"1.1.0", false}, {"1.3.0", false}, {"1.2.0", true}}, false, nil, "1.3.0"},
		{"newest major on request", "1.0.0", []rel{{"1.1.0", false}, {"2.0.0", true}, {"1.2.0", false}}, false, nil, "2.0.0"},
		{"only majors in auto mode", "1.0.0", []rel{{"1.1.0", false}, {"1.3.0", false}, {"1.2.0", true}}, true, nil, "1.2.0"},
		{"no major in auto mode", "1.0.0", []rel{{"1.1.0", false}, {"1.3.0", false}}, true, nil, ""},
		{"newest of several majors in auto mode", "1.0.0", []rel{{"1.5.0", true}, {"1.10.0", true}, {"1.9.0", true}, {"1.11.0", false}}, true, nil, "1.10.0"},
		{"skip honoured in auto mode", "1.0.0", []rel{{"1.2.0", true}, {"1.3.0", true}}, true, map[string]bool{"1.3.0": true}, "1.2.0"},
		{"skip everything in auto mode", "1.0.0", []rel{{"1.2.0", true}, {"1.3.0", true}}, true, map[string]bool{"1.2.0": true, "1.3.0": true}, ""},
		{"skip ignored on request", "1.0.0", []rel{{"1.2.0", true}, {"1.3.0", true}}, false, map[string]bool{"1.3.0": true}, "1.3.0"},
		{"skip matches the canonical form", "1.0.0", []rel{{"1.2.0", true}, {"v1.3.0", true}}, true, map[string]bool{"1.3.0": true}, "1.2.0"},
		{"skip of another version", "1.0.0", []rel{{"1.2.0", true}, {"1.3.0", true}}, true, map[string]bool{"1.1.0": true}, "1.3.0"},
		{"older versions ignored", "2.0.0", []rel{{"1.9.0", true}, {"2.0.0-rc.1", true}, {"0.1.0", true}}, false, nil, ""},
		{"older versions ignored, newer patch taken", "2.0.0", []rel{{"1.9.0", true}, {"2.0.1", true}, {"0.1.0", true}}, true, nil, "2.0.1"},
		{"numeric ordering, not lexical", "1.2.0", []rel{{"1.9.0", true}, {"1.10.0", true}}, true, nil, "1.10.0"},
		{"release newer than installed pre-release", "1.0.0-rc.1", []rel{{"1.0.0", true}, {"0.9.0", true}}, true, nil, "1.0.0"},
		{"invalid versions ignored", "1.0.0", []rel{{"garbage", true}, {"9.9", true}, {"01.0.0", true}, {"", true}, {"1.5.0", true}, {"2.0.0-01", true}}, false, nil, "1.5.0"},
		{"only invalid versions", "1.0.0", []rel{{"latest", true}, {"99999999999999999999.0.0", true}}, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			installed := mustVersion(t, tt.installed)
			var available []Manifest
			for _, r := range tt.available {
				m := validManifest()
				m.Version, m.Major = r.version, r.major
				available = append(available, m)
			}
			// The answer does not depend on the order of the list.
			for _, order := range []string{"as given", "reversed"} {
				list := slices.Clone(available)
				if order == "reversed" {
					slices.Reverse(list)
				}
				got, ok := Choose(installed, list, tt.auto, tt.skip)
				if tt.want == "" {
					if ok {
						t.Fatalf("%s: Choose = %s (major %v), want nothing", order, got.Version, got.Major)
					}
					if (got != Manifest{}) {
						t.Fatalf("%s: Choose returned %+v with ok false", order, got)
					}
					continue
				}
				if !ok || got.Version != tt.want {
					t.Fatalf("%s: Choose = %q, %v, want %q", order, got.Version, ok, tt.want)
				}
				if tt.auto && !got.Major {
					t.Fatalf("%s: auto mode chose a non-major release %s", order, got.Version)
				}
			}
		})
	}
}

func TestChooseReturnsTheWholeManifest(t *testing.T) {
	a, b := validManifest(), validManifest()
	a.Version, b.Version = "1.1.0", "1.2.0"
	b.SHA256 = strings.Repeat("f", 64)
	b.Notes = "the one"
	got, ok := Choose(mustVersion(t, "1.0.0"), []Manifest{a, b}, false, nil)
	if !ok {
		t.Fatal("Choose found nothing")
	}
	sameManifest(t, got, b)
}
