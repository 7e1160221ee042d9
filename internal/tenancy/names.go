package tenancy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// MaxLabelLength bounds a tenant label (the LABEL of APP-LABEL.CLOUDNAME).
const MaxLabelLength = 40

// ValidLabel reports whether l can be a tenant label: a DNS label of 1 to
// 40 lower-case letters, digits and hyphens, not starting or ending with a
// hyphen.
func ValidLabel(l string) bool {
	return len(l) <= MaxLabelLength && edge.ValidDNSName(l) && !strings.Contains(l, ".")
}

// labelsClash reports whether two tenant labels cannot both exist: equal,
// or one a hyphen-suffix of the other ("c" and "b-c" would both claim
// a-b-c.CLOUDNAME).
func labelsClash(a, b string) bool {
	return a == b || strings.HasSuffix(a, "-"+b) || strings.HasSuffix(b, "-"+a)
}

// CheckLabel returns the tenant label to use for domain: label, or by
// default the domain's first label. One that clashes with another
// tenant's label is refused, naming that tenant (only the operator runs
// this), so a default name belongs to at most one tenant.
func CheckLabel(ctx context.Context, st store.Store, domain, label string) (string, error) {
	given := label != ""
	if !given {
		label = strings.SplitN(domain, ".", 2)[0]
	}
	label = strings.ToLower(strings.TrimSpace(label))
	if !ValidLabel(label) {
		if !given {
			return "", problem.Newf(http.StatusBadRequest, "bad_label", "choose a label with --label, for example --label contoso",
				"The domain's first label %q cannot be the tenant's label in default host names (1 to %d lower-case letters, digits and hyphens)", Truncate(label, 80), MaxLabelLength)
		}
		return "", problem.Newf(http.StatusBadRequest, "bad_label", fmt.Sprintf("use 1 to %d lower-case letters, digits and hyphens, not starting or ending with a hyphen", MaxLabelLength),
			"%q is not a valid tenant label", Truncate(label, 80))
	}
	ts, err := st.ListTenants(ctx)
	if err != nil {
		return "", err
	}
	for _, t := range ts {
		if !labelsClash(label, t.Label) {
			continue
		}
		if label == t.Label {
			return "", problem.Newf(http.StatusConflict, "label_taken", "choose another label with --label, for example --label "+suggestLabel(domain),
				"The tenant %s already has the label '%s' (its default host names end in -%s)", t.Domain, t.Label, t.Label)
		}
		return "", problem.Newf(http.StatusConflict, "label_taken", "choose another label with --label, for example --label "+suggestLabel(domain),
			"The label '%s' clashes with the label '%s' of the tenant %s: one ends in a hyphen and the other, so some default host names would fit both", label, t.Label, t.Domain)
	}
	return label, nil
}

// suggestLabel proposes a label from the whole domain (only as a hint).
func suggestLabel(domain string) string {
	l := strings.ReplaceAll(domain, ".", "")
	if len(l) > MaxLabelLength {
		l = l[:MaxLabelLength]
	}
	return l
}

// NormalizeDomain checks a domain a tenant claims: a DNS name of at least
// two labels (lower case, no trailing dot), not an IP address.
func NormalizeDomain(raw string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(raw)), ".")
	if !edge.ValidDNSName(d) || !strings.Contains(d, ".") || net.ParseIP(d) != nil {
		return "", problem.Newf(http.StatusBadRequest, "bad_domain", "give a DNS domain, for example apps.contoso.com",
			"%q is not a valid domain name", Truncate(raw, 120))
	}
	return d, nil
}

// isPublicSuffix reports whether d is a public suffix (com, co.uk,
// github.io...), which nobody can prove to own for others.
func isPublicSuffix(d string) bool {
	ps, _ := publicsuffix.PublicSuffix(d)
	return ps == d
}

// UnderDomain reports whether host is domain or a name under it.
func UnderDomain(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// parents returns name and each domain above it, longest first, down to
// two labels ("a.b.c.d" → a.b.c.d, b.c.d, c.d).
func parents(name string) []string {
	var out []string
	for strings.Count(name, ".") >= 1 {
		out = append(out, name)
		name = name[strings.IndexByte(name, '.')+1:]
	}
	return out
}

// ProvenOwner returns the verified claim that governs name: the most
// specific verified domain equal to or above it, whatever its tenant, or
// ErrNotFound.
func ProvenOwner(ctx context.Context, st store.Store, name string) (store.Domain, error) {
	for _, d := range parents(name) {
		v, err := st.VerifiedDomain(ctx, d)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return v, err
		}
	}
	return store.Domain{}, store.ErrNotFound
}

// IsDefaultName reports whether host is one of label's default names:
// X-LABEL.CLOUDNAME, X a non-empty run of letters, digits and hyphens,
// exactly one level under the cloud's name (what *.CLOUDNAME covers).
func IsDefaultName(host, cloudName, label string) bool {
	rest, ok := strings.CutSuffix(host, "."+cloudName)
	if !ok || strings.Contains(rest, ".") {
		return false
	}
	x, own := strings.CutSuffix(rest, "-"+label)
	return own && x != ""
}

// HostKind is how a tenant owns an external host.
type HostKind int

const (
	HostDefault HostKind = iota // X-LABEL.CLOUDNAME, covered by the server certificate
	HostProven                  // under a domain the tenant has proven
)

// CheckHostOwned applies the host ownership rule: a tenant may publish
// X-LABEL.CLOUDNAME with its own label (one level under the cloud's name),
// or a name equal to or under a domain it has proven (the most specific
// proven domain above the name must be its own). Everything else is
// refused with host_not_owned.
func CheckHostOwned(ctx context.Context, st store.Store, cloudName string, t store.Tenant, host string) (HostKind, error) {
	defaultStep := fmt.Sprintf("use a name ending in -%s.%s (leave --external-host out for NAME-%s.%s)", t.Label, cloudName, t.Label, cloudName)
	if strings.HasSuffix(host, "."+cloudName) {
		if IsDefaultName(host, cloudName, t.Label) {
			return HostDefault, nil
		}
		return 0, problem.Newf(http.StatusForbidden, "host_not_owned", defaultStep,
			"The external host %s is under the cloud's name but is not one of %s's default names, which end in -%s.%s", host, t.Domain, t.Label, cloudName)
	}
	d, err := ProvenOwner(ctx, st, host)
	switch {
	case err == nil && d.TenantID == t.ID:
		return HostProven, nil
	case err == nil:
		return 0, problem.Newf(http.StatusForbidden, "host_not_owned", "choose a name under a domain your tenant has proven ('sallyport admin domain list'), or "+defaultStep,
			"The external host %s is under %s, which another tenant has proven", host, d.Domain)
	case !errors.Is(err, store.ErrNotFound):
		return 0, err
	}
	claim := host
	if etld1, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
		claim = etld1
	}
	if ds, err := st.ListDomains(ctx, t.ID); err == nil {
		for _, d := range ds {
			if !d.Verified() && UnderDomain(host, d.Domain) {
				return 0, problem.Newf(http.StatusForbidden, "host_not_owned",
					fmt.Sprintf("create its TXT record %s with the value %s and run 'sallyport admin domain verify %s'", TXTName(d.Domain), TXTValue(d.Token), d.Domain),
					"The external host %s is under %s, which %s has claimed but not proven yet", host, d.Domain, t.Domain)
			}
		}
	}
	return 0, problem.Newf(http.StatusForbidden, "host_not_owned",
		fmt.Sprintf("prove the domain first with 'sallyport admin domain add %s' (then 'admin domain verify'), or %s", claim, defaultStep),
		"The external host %s is not under a domain %s has proven", host, t.Domain)
}

// DefaultGroup is the group every tenant has and new connectors join.
const DefaultGroup = "Default"

// NewID returns a random id with a kind prefix, e.g. "c_3f9a...".
func NewID(kind string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return fmt.Sprintf("%s_%x", kind, b)
}
