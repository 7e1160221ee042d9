package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

func (s *Server) apiDomain(d store.Domain) api.Domain {
	out := api.Domain{Domain: d.Domain, Status: "pending", VerifiedBy: d.VerifiedBy, TXTName: tenancy.TXTName(d.Domain), TXTValue: tenancy.TXTValue(d.Token),
		CreatedAt: d.CreatedAt, VerifiedAt: d.VerifiedAt}
	if d.Verified() {
		out.Status = "verified"
	}
	return out
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
	d, err := tenancy.CheckClaimable(ctx, s.store, s.settings.Name, p.Tenant, in.Domain, false)
	if err != nil {
		s.refusedDomain(p, in.Domain, err)
		return err
	}
	claim := store.Domain{TenantID: p.Tenant.ID, Domain: d, Token: tenancy.NewDomainToken(), CreatedAt: s.now().UTC()}
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
	s.events.Event(eventlog.DomainClaimRefused, fmt.Sprintf("A claim of the domain %s by %s was refused: %s", tenancy.Truncate(domain, 120), p.Tenant.Domain, pr.Error()),
		"tenant", p.Tenant.Domain, "domain", tenancy.Truncate(domain, 120), "code", pr.Code, "user", p.User.Name)
}

func (s *Server) handleVerifyDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	d, err := tenancy.NormalizeDomain(r.PathValue("domain"))
	if err != nil {
		return err
	}
	claim, err := s.store.DomainOf(ctx, p.Tenant.ID, d)
	if errors.Is(err, store.ErrNotFound) {
		return tenancy.NoDomain(p.Tenant, d)
	} else if err != nil {
		return err
	}
	if !claim.Verified() {
		if _, err := tenancy.CheckClaimable(ctx, s.store, s.settings.Name, p.Tenant, d, false); err != nil {
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
	d, err := tenancy.NormalizeDomain(r.PathValue("domain"))
	if err != nil {
		return err
	}
	if err := tenancy.DeleteDomain(ctx, s.store, p.Tenant, d); err != nil {
		return err
	}
	s.events.Event(eventlog.DomainDeleted, fmt.Sprintf("%s gave up the domain %s, by %s", p.Tenant.Domain, d, p.User.Name), "tenant", p.Tenant.Domain, "domain", d, "user", p.User.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
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
		if a.IsNetwork() {
			continue // no external host
		}
		t, ok := tenants[a.TenantID]
		if !ok {
			if t, err = s.store.TenantByID(ctx, a.TenantID); err != nil {
				return err
			}
			tenants[a.TenantID] = t
		}
		if _, err := tenancy.CheckHostOwned(ctx, s.store, s.settings.Name, t, a.ExternalHost); err != nil {
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
