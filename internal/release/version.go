package release

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a semantic version (semver.org 2.0.0); build metadata is kept
// but not compared.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string // dot-separated pre-release identifiers
	Build               string
}

var reSemver = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// ParseVersion reads "MAJOR.MINOR.PATCH[-PRE][+BUILD]" (a leading "v" is
// accepted).
func ParseVersion(s string) (Version, error) {
	if len(s) > 64 {
		return Version{}, fmt.Errorf("the version %.64q... is longer than 64 characters", s)
	}
	m := reSemver.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("the version %q is not a semantic version MAJOR.MINOR.PATCH (for example 1.4.0)", s)
	}
	var v Version
	var err error
	for i, p := range []*uint64{&v.Major, &v.Minor, &v.Patch} {
		if *p, err = strconv.ParseUint(m[i+1], 10, 64); err != nil {
			return Version{}, fmt.Errorf("the version %q has a number too large", s)
		}
	}
	if m[4] != "" {
		v.Pre = strings.Split(m[4], ".")
	}
	v.Build = m[5]
	return v, nil
}

// String writes v back without a leading "v".
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

// Compare returns -1, 0 or +1 as v is older than, as old as, or newer than w.
func (v Version) Compare(w Version) int {
	for _, d := range [][2]uint64{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(v.Pre) == 0 && len(w.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1 // a release is newer than its pre-releases
	case len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		a, b := v.Pre[i], w.Pre[i]
		an, bn := numeric(a), numeric(b)
		switch {
		case an && bn:
			// Numeric identifiers have no size limit (semver.org item 9),
			// so compare them as digit strings rather than as uint64:
			// without leading zeros the longer one is the larger.
			a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
			if len(a) != len(b) {
				if len(a) < len(b) {
					return -1
				}
				return 1
			}
			if c := strings.Compare(a, b); c != 0 {
				return c
			}
		case an:
			return -1 // numeric identifiers sort before alphanumeric ones
		case bn:
			return 1
		default:
			if c := strings.Compare(a, b); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(v.Pre) < len(w.Pre):
		return -1
	case len(v.Pre) > len(w.Pre):
		return 1
	}
	return 0
}

// numeric reports whether the pre-release identifier s is made of digits
// only.
func numeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Choose picks the release to install over installed from verified
// manifests: the newest newer one, or with auto the newest newer major
// release. skip lists versions not to pick (auto only: builds that were
// rolled back here). ok is false when there is nothing to install.
func Choose(installed Version, available []Manifest, auto bool, skip map[string]bool) (Manifest, bool) {
	var best Manifest
	var bestV Version
	found := false
	for _, m := range available {
		v, err := ParseVersion(m.Version)
		if err != nil || v.Compare(installed) <= 0 {
			continue
		}
		if auto && (!m.Major || skip[v.String()]) {
			continue
		}
		if !found || v.Compare(bestV) > 0 {
			best, bestV, found = m, v, true
		}
	}
	return best, found
}
