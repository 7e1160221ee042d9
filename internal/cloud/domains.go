package cloud

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// newDomainToken returns the random value of a domain's TXT record.
func newDomainToken() string {
	b := make([]byte, 20)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// checkClaimable normalises raw and checks that tenant t may claim it: not
// a public suffix, not the cloud's name or under it, and neither it nor a
// domain above it proven by another tenant. owner, when true, lets the
// message name the other tenant (only the operator sees it).
func checkClaimable(ctx context.Context, st store.Store, cloudName string, t store.Tenant, raw string, operator bool) (string, error) {
	d, err := NormalizeDomain(raw)
	if err != nil {
		return "", err
	}
	if isPublicSuffix(d) {
		return "", problem.Newf(http.StatusBadRequest, "domain_public_suffix", "claim a domain registered under it, for example contoso."+d,
			"%s is a public suffix, under which anybody can register names, so no tenant can own it", d)
	}
	if underDomain(d, cloudName) {
		return "", problem.Newf(http.StatusBadRequest, "domain_cloud_name", fmt.Sprintf("publish under your default names (NAME-%s.%s) instead", t.Label, cloudName),
			"%s is the cloud's own name or under it, where every tenant has its default names", d)
	}
	v, err := provenOwner(ctx, st, d)
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

func (s *Server) apiDomain(d store.Domain) api.Domain {
	out := api.Domain{Domain: d.Domain, Status: "pending", VerifiedBy: d.VerifiedBy, TXTName: TXTName(d.Domain), TXTValue: TXTValue(d.Token),
		CreatedAt: d.CreatedAt, VerifiedAt: d.VerifiedAt}
	if d.Verified() {
		out.Status = "verified"
	}
	return out
}

func noDomain(t store.Tenant, d string) error {
	return problem.Newf(http.StatusNotFound, "no_domain", fmt.Sprintf("claim it first with 'sallyport admin domain add %s', or list the claims with 'sallyport admin domain list'", d),
		"%s has not claimed the domain %s", t.Domain, d)
}

func (s *Server) handleListDomains(w http.ResponseWriter, r *http.Request, p *principal) error {
	ds, err := s.store.ListDomains(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.Domain, 0, len(ds))
	for _, d := range ds {
		out = append(out, s.apiDomain(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in api.CreateDomainRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	ctx := r.Context()
	d, err := checkClaimable(ctx, s.store, s.settings.Name, p.Tenant, in.Domain, false)
	if err != nil {
		s.refusedDomain(p, in.Domain, err)
		return err
	}
	claim := store.Domain{TenantID: p.Tenant.ID, Domain: d, Token: newDomainToken(), CreatedAt: s.now().UTC()}
	if err := s.store.CreateDomain(ctx, claim); errors.Is(err, store.ErrConflict) {
		return problem.Newf(http.StatusConflict, "domain_exists", fmt.Sprintf("see its TXT record with 'sallyport admin domain list', and prove it with 'sallyport admin domain verify %s'", d),
			"%s has already claimed %s", p.Tenant.Domain, d)
	} else if err != nil {
		return err
	}
	s.events.Event(eventlog.DomainClaimed, fmt.Sprintf("%s claimed the domain %s (pending its DNS proof), by %s", p.Tenant.Domain, d, p.User.Name),
		"tenant", p.Tenant.Domain, "domain", d, "user", p.User.Name)
	writeJSON(w, http.StatusCreated, s.apiDomain(claim))
	return nil
}

// refusedDomain records a refused claim (event 2405).
func (s *Server) refusedDomain(p *principal, domain string, err error) {
	var pr *problem.Problem
	if !errors.As(err, &pr) {
		return
	}
	s.events.Event(eventlog.DomainClaimRefused, fmt.Sprintf("A claim of the domain %s by %s was refused: %s", truncate(domain, 120), p.Tenant.Domain, pr.Error()),
		"tenant", p.Tenant.Domain, "domain", truncate(domain, 120), "code", pr.Code, "user", p.User.Name)
}

func (s *Server) handleVerifyDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	d, err := NormalizeDomain(r.PathValue("domain"))
	if err != nil {
		return err
	}
	claim, err := s.store.DomainOf(ctx, p.Tenant.ID, d)
	if errors.Is(err, store.ErrNotFound) {
		return noDomain(p.Tenant, d)
	} else if err != nil {
		return err
	}
	if !claim.Verified() {
		if _, err := checkClaimable(ctx, s.store, s.settings.Name, p.Tenant, d, false); err != nil {
			s.events.Event(eventlog.DomainProofFailed, fmt.Sprintf("The proof of %s by %s failed: %v", d, p.Tenant.Domain, err), "tenant", p.Tenant.Domain, "domain", d)
			return err
		}
		if err := proveByDNS(ctx, s.resolver, claim); err != nil {
			s.events.Event(eventlog.DomainProofFailed, fmt.Sprintf("The proof of %s by %s failed: %v", d, p.Tenant.Domain, err), "tenant", p.Tenant.Domain, "domain", d)
			return err
		}
		claim, err = s.store.VerifyDomain(ctx, p.Tenant.ID, d, "dns", s.now().UTC())
		if errors.Is(err, store.ErrConflict) {
			err = problem.Newf(http.StatusConflict, "domain_taken", "if your organisation owns it, ask the cloud's operator to sort it out", "%s is proven by another tenant", d)
			s.events.Event(eventlog.DomainProofFailed, fmt.Sprintf("The proof of %s by %s failed: %v", d, p.Tenant.Domain, err), "tenant", p.Tenant.Domain, "domain", d)
			return err
		} else if err != nil {
			return err
		}
		s.events.Event(eventlog.DomainProven, fmt.Sprintf("%s proved the domain %s by its DNS TXT record, by %s", p.Tenant.Domain, d, p.User.Name),
			"tenant", p.Tenant.Domain, "domain", d, "user", p.User.Name)
	}
	writeJSON(w, http.StatusOK, s.apiDomain(claim))
	return nil
}

func (s *Server) handleDeleteDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	d, err := NormalizeDomain(r.PathValue("domain"))
	if err != nil {
		return err
	}
	if err := deleteDomain(ctx, s.store, p.Tenant, d); err != nil {
		return err
	}
	s.events.Event(eventlog.DomainDeleted, fmt.Sprintf("%s gave up the domain %s, by %s", p.Tenant.Domain, d, p.User.Name), "tenant", p.Tenant.Domain, "domain", d, "user", p.User.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteDomain removes t's claim of d, refusing while applications are
// published under it with d as their most specific proven domain.
func deleteDomain(ctx context.Context, st store.Store, t store.Tenant, d string) error {
	claim, err := st.DomainOf(ctx, t.ID, d)
	if errors.Is(err, store.ErrNotFound) {
		return noDomain(t, d)
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
			if !underDomain(a.ExternalHost, d) {
				continue
			}
			if v, err := provenOwner(ctx, st, a.ExternalHost); err == nil && v.Domain == d {
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

// tenantByDomain finds a tenant for the operator's commands.
func tenantByDomain(ctx context.Context, st store.Store, domain string) (store.Tenant, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	t, err := st.TenantByDomain(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return t, problem.Newf(http.StatusNotFound, "no_tenant", "give the tenant's primary domain, as 'cloud tenant add --tenant' was given",
			"There is no tenant %s in this cloud", truncate(domain, 120))
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
	d, err := checkClaimable(ctx, st, settings.Name, t, domain, true)
	if err != nil {
		return store.Domain{}, err
	}
	now := time.Now().UTC()
	claim := store.Domain{TenantID: t.ID, Domain: d, Token: newDomainToken(), CreatedAt: now, VerifiedAt: now, VerifiedBy: "operator"}
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
	d, err := NormalizeDomain(domain)
	if err != nil {
		return err
	}
	if err := deleteDomain(ctx, st, t, d); err != nil {
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

// warnUnownedHosts writes event 2410 for each application published on a
// host its tenant does not own under the current rules (made by an older
// version): it keeps working, but cannot be updated until it moves.
func (s *Server) warnUnownedHosts(ctx context.Context) error {
	apps, err := s.store.ListAllApps(ctx)
	if err != nil {
		return err
	}
	tenants := map[string]store.Tenant{}
	for _, a := range apps {
		t, ok := tenants[a.TenantID]
		if !ok {
			if t, err = s.store.TenantByID(ctx, a.TenantID); err != nil {
				return err
			}
			tenants[a.TenantID] = t
		}
		if _, err := checkHostOwned(ctx, s.store, s.settings.Name, t, a.ExternalHost); err != nil {
			var p *problem.Problem
			if !errors.As(err, &p) {
				return err
			}
			s.events.Event(eventlog.AppHostNotOwned, fmt.Sprintf("The application '%s' of %s is published at %s, which its tenant does not own: %s. It keeps working, but an administrator should publish it again under a default name or a proven domain ('sallyport admin domain add'), or the operator vouches for the domain ('sallyport cloud tenant domain add')",
				a.Name, t.Domain, a.ExternalHost, p.Error()), "app", a.Name, "tenant", t.Domain, "external_host", a.ExternalHost)
		}
	}
	return nil
}
