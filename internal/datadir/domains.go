package datadir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// tenantByDomain finds a tenant for the operator's commands.
func tenantByDomain(ctx context.Context, st store.Store, domain string) (store.Tenant, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	t, err := st.TenantByDomain(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return t, problem.Newf(http.StatusNotFound, "no_tenant", "give the tenant's primary domain, as 'cloud tenant add --tenant' was given",
			"There is no tenant %s in this cloud", tenancy.Truncate(domain, 120))
	}
	return t, err
}

// VouchDomain is the operator vouching for a tenant's domain ('cloud
// tenant domain add'): the claim is verified at once, by "operator". A
// pending claim of the tenant becomes verified.
func VouchDomain(ctx context.Context, dataDir string, st store.Store, tenant, domain string) (store.Domain, error) {
	settings, err := LoadSettings(dataDir)
	if err != nil {
		return store.Domain{}, err
	}
	t, err := tenantByDomain(ctx, st, tenant)
	if err != nil {
		return store.Domain{}, err
	}
	d, err := tenancy.CheckClaimable(ctx, st, settings.Name, t, domain, true)
	if err != nil {
		return store.Domain{}, err
	}
	now := time.Now().UTC()
	claim := store.Domain{TenantID: t.ID, Domain: d, Token: tenancy.NewDomainToken(), CreatedAt: now, VerifiedAt: now, VerifiedBy: "operator"}
	err = st.CreateDomain(ctx, claim)
	if errors.Is(err, store.ErrConflict) {
		if claim, err = st.VerifyDomain(ctx, t.ID, d, "operator", now); errors.Is(err, store.ErrConflict) {
			return claim, problem.Newf(http.StatusConflict, "domain_taken", "delete the other tenant's claim first", "%s is proven by another tenant", d)
		}
	}
	if err != nil {
		return claim, err
	}
	operatorEvent(dataDir, eventlog.DomainVouched, fmt.Sprintf("The operator vouched for the domain %s of %s", d, t.Domain), "tenant", t.Domain, "domain", d)
	return claim, nil
}

// TenantDomains lists a tenant's claims ('cloud tenant domain list').
func TenantDomains(ctx context.Context, st store.Store, tenant string) ([]store.Domain, error) {
	t, err := tenantByDomain(ctx, st, tenant)
	if err != nil {
		return nil, err
	}
	return st.ListDomains(ctx, t.ID)
}

// DeleteTenantDomain removes a tenant's claim ('cloud tenant domain
// delete'), refused while applications are published under it.
func DeleteTenantDomain(ctx context.Context, dataDir string, st store.Store, tenant, domain string) error {
	t, err := tenantByDomain(ctx, st, tenant)
	if err != nil {
		return err
	}
	d, err := tenancy.NormalizeDomain(domain)
	if err != nil {
		return err
	}
	if err := tenancy.DeleteDomain(ctx, st, t, d); err != nil {
		return err
	}
	operatorEvent(dataDir, eventlog.DomainDeleted, fmt.Sprintf("The operator deleted the domain %s of %s", d, t.Domain), "tenant", t.Domain, "domain", d)
	return nil
}

// operatorEvent writes an event of an operator command to the data
// directory's event log (best effort: the change is made either way).
func operatorEvent(dataDir string, id eventlog.ID, msg string, kv ...string) {
	if ev, err := eventlog.Open(eventlog.Config{Path: filepath.Join(dataDir, EventsFile), Source: "cloud"}); err == nil {
		ev.Event(id, msg, kv...)
		ev.Close()
	}
}
