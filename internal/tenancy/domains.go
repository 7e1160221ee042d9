package tenancy

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// Domain proof by DNS: the tenant creates a TXT record named
// _sallyport.DOMAIN with the value sallyport-verify=TOKEN.
const (
	txtPrefix      = "_sallyport."
	txtValuePrefix = "sallyport-verify="
)

// TXTName is the name of the record that proves domain.
func TXTName(domain string) string { return txtPrefix + domain }

// TXTValue is the value the record must hold.
func TXTValue(token string) string { return txtValuePrefix + token }

// NewDomainToken returns the random value of a domain's TXT record.
func NewDomainToken() string {
	b := make([]byte, 20)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// CheckClaimable normalises raw and checks that tenant t may claim it: not
// a public suffix, not the cloud's name or under it, and neither it nor a
// domain above it proven by another tenant. owner, when true, lets the
// message name the other tenant (only the operator sees it).
func CheckClaimable(ctx context.Context, st store.Store, cloudName string, t store.Tenant, raw string, operator bool) (string, error) {
	d, err := NormalizeDomain(raw)
	if err != nil {
		return "", err
	}
	if isPublicSuffix(d) {
		return "", problem.Newf(http.StatusBadRequest, "domain_public_suffix", "claim a domain registered under it, for example contoso."+d,
			"%s is a public suffix, under which anybody can register names, so no tenant can own it", d)
	}
	if UnderDomain(d, cloudName) {
		return "", problem.Newf(http.StatusBadRequest, "domain_cloud_name", fmt.Sprintf("publish under your default names (NAME-%s.%s) instead", t.Label, cloudName),
			"%s is the cloud's own name or under it, where every tenant has its default names", d)
	}
	v, err := ProvenOwner(ctx, st, d)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if err == nil && v.TenantID != t.ID {
		who := "another tenant"
		if operator {
			if o, err := st.TenantByID(ctx, v.TenantID); err == nil {
				who = "the tenant " + o.Domain
			}
		}
		step := "if your organisation owns it, ask the cloud's operator to sort it out"
		if v.Domain == d {
			return "", problem.Newf(http.StatusConflict, "domain_taken", step, "%s is proven by %s", d, who)
		}
		return "", problem.Newf(http.StatusConflict, "domain_taken", step, "%s is under %s, which is proven by %s", d, v.Domain, who)
	}
	return d, nil
}

func NoDomain(t store.Tenant, d string) error {
	return problem.Newf(http.StatusNotFound, "no_domain", fmt.Sprintf("claim it first with 'sallyport admin domain add %s', or list the claims with 'sallyport admin domain list'", d),
		"%s has not claimed the domain %s", t.Domain, d)
}

// DeleteDomain removes t's claim of d, refusing while applications are
// published under it with d as their most specific proven domain.
func DeleteDomain(ctx context.Context, st store.Store, t store.Tenant, d string) error {
	claim, err := st.DomainOf(ctx, t.ID, d)
	if errors.Is(err, store.ErrNotFound) {
		return NoDomain(t, d)
	} else if err != nil {
		return err
	}
	if claim.Verified() {
		apps, err := st.ListApps(ctx, t.ID)
		if err != nil {
			return err
		}
		var using []string
		for _, a := range apps {
			if !UnderDomain(a.ExternalHost, d) {
				continue
			}
			if v, err := ProvenOwner(ctx, st, a.ExternalHost); err == nil && v.Domain == d {
				using = append(using, "'"+a.Name+"' ("+a.ExternalHost+")")
			}
		}
		if len(using) > 0 {
			sort.Strings(using)
			return problem.Newf(http.StatusConflict, "domain_in_use", "delete those applications first with 'sallyport admin app delete NAME'",
				"The domain %s cannot be deleted while applications are published under it: %s", d, strings.Join(using, ", "))
		}
	}
	return st.DeleteDomain(ctx, t.ID, d)
}
