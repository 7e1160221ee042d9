package cloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// acmeName is the ACME certificate of the cloud's own name, for browsers
// (sign-in, My Apps, the admin center). Unlike the published hosts' it is
// not on demand: it is ordered when the cloud starts and renewed by
// certmagic's background maintenance (which skips on-demand
// configurations, hence a configuration of its own on the same cache and
// storage). Clients that pin the cloud CA keep getting the cloud CA's
// certificate for the name: connectors by their tunnel and control ALPNs,
// the admin CLI, registration and fingerprint discovery by offering
// pki.PinnedCAALPN (docs/certificates.md).
type acmeName struct {
	cfg   *certmagic.Config
	cache *certmagic.Cache // shared with the published hosts' configuration
	name  string
}

// newACMEName makes the cloud name's certmagic configuration on cache,
// with the hosts' storage and issuer settings (tmpl, as given to their
// issuer).
func (s *Server) newACMEName(cache *certmagic.Cache, storage certmagic.Storage, tmpl certmagic.ACMEIssuer) *acmeName {
	n := &acmeName{name: s.settings.Name, cache: cache}
	n.cfg = certmagic.New(cache, certmagic.Config{
		Storage:            storage,
		Logger:             zap.NewNop(),
		OnEvent:            s.acmeNameEvent,
		RenewalWindowRatio: s.cfg.acmeRenewalRatio, // 0: certmagic's third of the lifetime
	})
	n.cfg.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(n.cfg, tmpl)}
	return n
}

// manage starts obtaining the name's certificate in the background (or
// loads it from storage); certmagic's maintenance renews it from then on.
// Until it is held, browsers get the cloud CA's certificate. ctx ends the
// attempts.
func (n *acmeName) manage(ctx context.Context) error {
	return n.cfg.ManageAsync(ctx, []string{n.name})
}

// covers reports whether a cached certificate is the cloud name's (for the
// cache to find its configuration).
func (n *acmeName) covers(c certmagic.Certificate) bool {
	return slices.Contains(c.Names, n.name)
}

// certificate is the name's ACME certificate, nil while none is held.
func (n *acmeName) certificate(hello *tls.ClientHelloInfo) *tls.Certificate {
	c, err := n.cfg.GetCertificate(hello)
	if err != nil {
		return nil
	}
	return c
}

// pinsCloudCA reports whether the client's hello asks for the cloud CA's
// certificate: a connector's tunnel or control connection, or a client
// offering pki.PinnedCAALPN.
func pinsCloudCA(hello *tls.ClientHelloInfo) bool {
	return slices.ContainsFunc(hello.SupportedProtos, func(p string) bool {
		return p == pki.PinnedCAALPN || p == tunnel.ALPN || p == tunnel.ALPN2 || p == tunnel.ControlALPN
	})
}

// nameCertificate is the certificate for the cloud's own name: the ACME
// one for browsers once it is held, else (and always for clients pinning
// the cloud CA) the cloud CA's.
func (s *Server) nameCertificate(hello *tls.ClientHelloInfo) *tls.Certificate {
	if n := s.acmeName.Load(); n != nil && !pinsCloudCA(hello) {
		if c := n.certificate(hello); c != nil {
			return c
		}
	}
	return s.serverCert()
}

// acmeNameEvent turns certmagic's events for the cloud's name into the
// cloud's.
func (s *Server) acmeNameEvent(_ context.Context, event string, data map[string]any) error {
	renewal, _ := data["renewal"].(bool)
	name := s.settings.Name
	switch event {
	case "cert_obtained":
		s.events.Event(eventlog.ACMENameCertObtained, fmt.Sprintf("An ACME certificate for the cloud's name %s was obtained from %v: browsers get it from now on, connectors and the admin CLI keep the cloud CA's", name, data["issuer"]),
			"host", name, "renewal", strconv.FormatBool(renewal))
	case "cert_failed":
		msg := fmt.Sprint(data["error"])
		if err, ok := data["error"].(error); ok {
			var p acme.Problem
			if errors.As(err, &p) {
				msg = p.Detail
			}
		}
		s.events.Event(eventlog.ACMENameCertFailed, fmt.Sprintf("No ACME certificate could be obtained for the cloud's name %s (%s): "+
			"check that %s resolves to this cloud and that its TLS port (and port 80 for HTTP-01) is reachable from the internet; "+
			"browsers get the certificate held so far, or the cloud CA's, meanwhile, and the cloud keeps trying", name, msg, name),
			"host", name, "renewal", strconv.FormatBool(renewal), "error", msg)
	}
	return nil
}

// forgetACMEHosts drops from the ACME cache the certificates of the hosts
// that lost their application (deleted, moved, or given their own
// certificate) between the route tables old and now: certmagic's
// maintenance would otherwise keep refreshing their OCSP staples and
// renew one its OCSP responder calls revoked — an order for a host no
// application uses. Their files stay in storage until they expire.
func (s *Server) forgetACMEHosts(old, now *routeTable) {
	n := s.acmeName.Load()
	if n == nil || old == nil {
		return
	}
	var gone []certmagic.SubjectIssuer
	for host := range old.byHost {
		if _, ok := now.byHost[host]; !ok || now.certs[host] != nil {
			gone = append(gone, certmagic.SubjectIssuer{Subject: host})
		}
	}
	if len(gone) > 0 {
		n.cache.RemoveManaged(gone)
	}
}
