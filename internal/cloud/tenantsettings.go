package cloud

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// effectiveSessionTimes are a tenant's session lifetime and idle timeout,
// the defaults where it set none.
func effectiveSessionTimes(ts store.TenantSettings) (lifetime, idle time.Duration) {
	lifetime, idle = ts.SessionLifetime, ts.SessionIdle
	if lifetime == 0 {
		lifetime = api.DefaultSessionLifetime
	}
	if idle == 0 {
		idle = api.DefaultSessionIdle
	}
	return lifetime, min(idle, lifetime)
}

// apiTenantSettings is ts as the API shows it, the defaults filled in.
func apiTenantSettings(t store.Tenant, ts store.TenantSettings) api.TenantSettings {
	lifetime, idle := effectiveSessionTimes(ts)
	return api.TenantSettings{
		Tenant: t.Domain, RequireMFA: ts.RequireMFA,
		SessionLifetime: lifetime.String(), SessionLifetimeSeconds: int64(lifetime / time.Second), SessionLifetimeDefault: ts.SessionLifetime == 0,
		SessionIdle: idle.String(), SessionIdleSeconds: int64(idle / time.Second), SessionIdleDefault: ts.SessionIdle == 0,
		UpdatedAt: ts.UpdatedAt,
	}
}

// handleGetTenantSettings shows the caller's tenant's sign-in settings
// (GET /tenant).
func (s *Server) handleGetTenantSettings(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireGlobalAdmin(p, "the tenant's settings"); err != nil {
		return err
	}
	ts, err := s.store.TenantSettings(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiTenantSettings(p.Tenant, ts))
	return nil
}

// parseSetting reads a duration setting: "default" is 0.
func parseSetting(what, raw string) (time.Duration, error) {
	raw = strings.TrimSpace(raw)
	if raw == "default" {
		return 0, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		return 0, problem.Newf(http.StatusBadRequest, "bad_duration", "give a duration such as 8h or 90m (a week is 168h), or 'default'",
			"The %s %q is not a duration", what, tenancy.Truncate(raw, 40))
	}
	return d, nil
}

// handleUpdateTenantSettings changes the caller's tenant's sign-in
// settings (PATCH /tenant); absent fields stay.
func (s *Server) handleUpdateTenantSettings(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	if err := requireGlobalAdmin(p, "the tenant's settings"); err != nil {
		return err
	}
	var in api.UpdateTenantSettingsRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	ts, err := s.store.TenantSettings(ctx, p.Tenant.ID)
	if err != nil {
		return err
	}
	ts.TenantID = p.Tenant.ID
	if in.RequireMFA != nil {
		ts.RequireMFA = *in.RequireMFA
	}
	if in.SessionLifetime != nil {
		if ts.SessionLifetime, err = parseSetting("session lifetime", *in.SessionLifetime); err != nil {
			return err
		}
	}
	if in.SessionIdle != nil {
		if ts.SessionIdle, err = parseSetting("session idle timeout", *in.SessionIdle); err != nil {
			return err
		}
	}
	if err := checkSessionTimes(ts); err != nil {
		return err
	}
	ts.UpdatedAt = s.now().UTC()
	if err := s.store.SetTenantSettings(ctx, ts); errors.Is(err, store.ErrNotFound) {
		return problem.Newf(http.StatusNotFound, "no_tenant", "ask the cloud's operator", "The tenant %s was deleted meanwhile", p.Tenant.Domain)
	} else if err != nil {
		return err
	}
	if err := s.directoryChanged(ctx); err != nil {
		return err
	}
	out := apiTenantSettings(p.Tenant, ts)
	s.events.Event(eventlog.TenantSettingsChanged, fmt.Sprintf("The sign-in settings of %s were changed by %s: MFA required %t, session lifetime %s, idle timeout %s", p.Tenant.Domain, p.User.Name, out.RequireMFA, out.SessionLifetime, out.SessionIdle),
		"tenant", p.Tenant.Domain, "require_mfa", fmt.Sprint(out.RequireMFA), "session_lifetime", out.SessionLifetime, "session_idle", out.SessionIdle, "user", p.User.Name)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// checkSessionTimes refuses a lifetime outside 5 minutes to 30 days, or
// an idle timeout below a minute or above the lifetime.
func checkSessionTimes(ts store.TenantSettings) error {
	if l := ts.SessionLifetime; l != 0 && (l < api.MinSessionLifetime || l > api.MaxSessionLifetime) {
		return problem.Newf(http.StatusBadRequest, "bad_session_lifetime", "give a lifetime from 5m to 720h (30 days), or 'default' (12h)",
			"The session lifetime %s is out of range", l)
	}
	lifetime, _ := effectiveSessionTimes(ts)
	if i := ts.SessionIdle; i != 0 && (i < api.MinSessionIdle || i > lifetime) {
		return problem.Newf(http.StatusBadRequest, "bad_session_idle", fmt.Sprintf("give an idle timeout from 1m to the session lifetime (%s), or 'default' (1h)", lifetime),
			"The session idle timeout %s is out of range", i)
	}
	return nil
}
