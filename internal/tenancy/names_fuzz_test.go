package tenancy

import (
	"strings"
	"testing"

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
