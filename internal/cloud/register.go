package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

// handleRegister signs a connector certificate. The request is authorised
// either by a user who is at least an Application Administrator of their
// home tenant (the connector joins that tenant), or by a registration
// token (the connector joins the token's tenant and group).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if err := s.register(w, r); err != nil {
		// 429s are not logged one by one (a flood would fill the log):
		// events 2600-2602 tell of the backoffs and the full queue.
		if p, ok := problem.As(err); ok && p.Status < 500 && p.Status != http.StatusTooManyRequests {
			s.events.Event(eventlog.RegistrationRefused, "A connector registration was refused: "+p.Error(), "address", r.RemoteAddr, "code", p.Code)
		}
		s.writeError(w, r, err)
	}
}

// registrant is who authorised a registration, and where it goes.
type registrant struct {
	tenant store.Tenant
	group  store.Group
	// groupChosen: the group was named (--group, or by the token); else a
	// reused identity keeps its own group.
	groupChosen bool
	user        string                   // the user, or the token's creator
	token       *store.RegistrationToken // the token used, if any
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	src := sourceOf(r.RemoteAddr)
	if err := s.signin.admit(src); err != nil {
		return err
	}
	var in api.RegisterRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	ctx := r.Context()
	var a registrant
	var err error
	if in.Token != "" {
		a, err = s.tokenRegistrant(ctx, &in)
	} else {
		a, err = s.passwordRegistrant(ctx, src, &in)
	}
	if err != nil {
		return err
	}
	t, g := a.tenant, a.group
	if want := strings.ToLower(strings.TrimSpace(in.Tenant)); want != "" && want != t.Domain {
		return problem.Newf(http.StatusForbidden, "not_home_tenant",
			fmt.Sprintf("register with an administrator of %s (a user name ending in @%s); guests of a tenant cannot register connectors for it", tenancy.Truncate(want, 100), tenancy.Truncate(want, 100)),
			"Connector registration failed: a connector is always registered in the home tenant of the user who registers it, and %s belongs to %s, not %s",
			a.user, t.Domain, tenancy.Truncate(want, 100))
	}
	csr, err := pki.ParseCSR([]byte(in.CSR))
	if err != nil {
		return problem.Newf(http.StatusBadRequest, "bad_csr", "run register again with this version of sallyport",
			"Connector registration failed: the certificate signing request was refused (%v)", err)
	}
	ca, err := s.tenantCA(ctx, t.ID)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	rec := store.Connector{ID: tenancy.NewID("c"), TenantID: t.ID, GroupID: g.ID, CreatedAt: now}
	reused := false
	if in.PreviousConnectorID != "" {
		// With a token, only an identity of the token's own group is
		// taken over: a token holder must not replace (and so revoke)
		// connectors of other groups.
		if prev, err := s.store.ConnectorByID(ctx, t.ID, in.PreviousConnectorID); err == nil && (a.token == nil || prev.GroupID == g.ID) {
			rec, reused = prev, true
			if a.groupChosen {
				rec.GroupID = g.ID
			}
		}
	}
	notAfter := now.Add(time.Duration(s.settings.ConnectorCertLifetime))
	der, err := ca.SignConnector(csr, pki.ConnectorIdentity{TenantID: t.ID, ConnectorID: rec.ID}, now.Add(-pki.Backdate), notAfter)
	if err != nil {
		return err
	}
	cert, err := pki.ParseCertPEM(pki.EncodeCertPEM(der))
	if err != nil {
		return err
	}
	if a.token != nil {
		// The use is counted last before the connector is recorded, so
		// that a request refused above costs the token nothing.
		used, err := s.store.UseRegistrationToken(ctx, a.token.Hash, now)
		if err != nil {
			return tokenRefusal(used, err)
		}
		a.token = &used
	}
	rec.Hostname = tenancy.Truncate(strings.TrimSpace(in.Hostname), 255)
	rec.Version = tenancy.Truncate(in.Version, 64)
	rec.CertSerial, rec.CertThumbprint, rec.CertNotAfter = pki.SerialHex(cert), pki.Thumbprint(cert), cert.NotAfter
	if reused {
		err = s.replaceConnectorCert(r, rec)
	} else {
		err = s.store.CreateConnector(ctx, rec)
	}
	if err != nil {
		return err
	}
	groupName := g.Name
	if reused && !a.groupChosen {
		if pg, err := s.store.GroupByID(ctx, t.ID, rec.GroupID); err == nil {
			groupName = pg.Name
		}
	}
	attrs := []any{"connector", rec.ID, "tenant", t.Domain, "group", groupName, "by", a.user, "hostname", rec.Hostname, "reused_identity", reused}
	if tok := a.token; tok != nil {
		attrs = append(attrs, "via", "registration token", "token", tok.ID, "token_uses", usesText(tok.Uses, tok.MaxUses))
	}
	kv := make([]string, 0, len(attrs))
	for _, x := range attrs {
		kv = append(kv, fmt.Sprint(x))
	}
	s.events.Event(eventlog.ConnectorRegistered, fmt.Sprintf("Connector %s (%s) was registered in %s, group '%s', by %s", rec.ID, tenancy.DashIfEmpty(rec.Hostname), t.Domain, groupName, a.user), kv...)
	writeJSON(w, http.StatusCreated, api.RegisterResponse{
		ConnectorID: rec.ID, TenantID: t.ID, Tenant: t.Domain, Group: groupName,
		Certificate: string(pki.EncodeCertPEM(der)), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, Reused: reused,
		ReleaseKey: release.EncodePublicKey(s.releasePub),
	})
	return nil
}

// passwordRegistrant authorises a registration by a user's name and
// password: at least Application Administrator of the home tenant.
func (s *Server) passwordRegistrant(ctx context.Context, src string, in *api.RegisterRequest) (registrant, error) {
	u, t, err := s.checkPassword(ctx, src, in.User, in.Password)
	if err != nil {
		if p, ok := problem.As(err); ok && p.Code == "bad_credentials" {
			return registrant{}, problem.New(http.StatusUnauthorized, "bad_credentials",
				"check both and run register again; the user name is the full name@domain of your organisation, for example admin@contoso.com", "Connector registration failed: the user name or password is wrong")
		}
		return registrant{}, err
	}
	if u.Disabled {
		return registrant{}, userDisabled(u, t)
	}
	if !u.Role.CanManage() {
		return registrant{}, problem.Newf(http.StatusForbidden, "registration_denied",
			"register with an account that has at least the Application Administrator role in "+t.Domain+", or ask a Global Administrator to grant it",
			"Connector registration failed: the registration request was denied because %s is a %s of %s, not an Application Administrator",
			u.Name, roleTitle(u.Role), t.Domain)
	}
	g, err := s.groupByName(ctx, t, in.Group)
	if err != nil {
		return registrant{}, err
	}
	return registrant{tenant: t, group: g, groupChosen: in.Group != "", user: u.Name}, nil
}

// replaceConnectorCert gives an existing connector a new certificate: the
// old one is revoked, the row keeps its id, group and history.
func (s *Server) replaceConnectorCert(r *http.Request, rec store.Connector) error {
	ctx := r.Context()
	old, err := s.store.ConnectorByID(ctx, rec.TenantID, rec.ID)
	if err != nil {
		return err
	}
	if err := s.store.DeleteConnector(ctx, rec.TenantID, rec.ID, "replaced by re-registration", s.now().UTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rec.CreatedAt, rec.LastSeenAt, rec.LastAddress = old.CreatedAt, old.LastSeenAt, old.LastAddress
	// A renewal in progress is over: only the new certificate is accepted.
	rec.PreviousSerial = ""
	if err := s.store.CreateConnector(ctx, rec); err != nil {
		return err
	}
	s.registry.disconnect(rec.ID)
	return nil
}
