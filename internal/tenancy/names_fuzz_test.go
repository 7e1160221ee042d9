package tenancy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sallyport/sallyport/internal/edge"
)

// FuzzNameRules checks the invariants the host ownership rule rests on:
// two labels that may coexist never share a default name, and domain
// normalisation is idempotent and yields what the edge routes by.
func FuzzNameRules(f *testing.F) {
	for _, s := range [][3]string{
		{"c", "b-c", "a-b-c.sallyport.test"},
		{"contoso", "contoso-org", "web-contoso-org.sallyport.test"},
		{"contoso", "fabrikam", "payroll-fabrikam.sallyport.test"},
		{"x", "y", "Intranet.Contoso.COM."},
	} {
		f.Add(s[0], s[1], s[2])
	}
	const cloudName = "sallyport.test"
	f.Fuzz(func(t *testing.T, l1, l2, host string) {
		if ValidLabel(l1) && ValidLabel(l2) && !labelsClash(l1, l2) {
			if h, ok := edge.NormalizeHost(host); ok && IsDefaultName(h, cloudName, l1) && IsDefaultName(h, cloudName, l2) {
				t.Fatalf("%s is a default name of both %q and %q, which do not clash", h, l1, l2)
			}
		}
		if labelsClash(l1, l2) != labelsClash(l2, l1) {
			t.Fatalf("labelsClash(%q, %q) is not symmetric", l1, l2)
		}
		d, err := NormalizeDomain(host)
		if err != nil {
			return
		}
		if d2, err := NormalizeDomain(d); err != nil || d2 != d {
			t.Fatalf("NormalizeDomain(%q) = %q, then %q (%v)", host, d, d2, err)
		}
		if h, ok := edge.NormalizeHost(d); !ok || h != d {
			t.Fatalf("NormalizeDomain(%q) = %q, which the edge routes as %q", host, d, h)
		}
		for _, p := range parents(d) {
			if !UnderDomain(d, p) || !strings.Contains(p, ".") {
				t.Fatalf("parents(%q) gave %q", d, p)
			}
		}
	})
}

// FuzzGroupNames checks the group name rules on any input: connector
// group and user group names accept exactly the same names; an accepted
// name is accepted again unchanged (what the store keeps is what a later
// command finds); and it is never longer than MaxGroupNameLength runes.
func FuzzGroupNames(f *testing.F) {
	for _, s := range []string{"Default", "Zu\u0308rich", " lead", "a/b", "", "bad\xff", "東京", "Branch Office 2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		g, gerr := CheckGroupName(raw)
		u, uerr := CheckUserGroupName(raw)
		if (gerr == nil) != (uerr == nil) || g != u {
			t.Fatalf("%q: connector group rule gives %q, %v; user group rule %q, %v", raw, g, gerr, u, uerr)
		}
		if uerr != nil {
			return
		}
		if again, err := CheckUserGroupName(u); err != nil || again != u {
			t.Fatalf("CheckUserGroupName(%q) = %q, then %q, %v", raw, u, again, err)
		}
		if n := utf8.RuneCountInString(u); n == 0 || n > MaxGroupNameLength {
			t.Fatalf("CheckUserGroupName(%q) accepted %d runes", raw, n)
		}
	})
}
