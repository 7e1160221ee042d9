package connector

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
)

// RegisterOptions are the inputs of Register.
type RegisterOptions struct {
	CloudURL      string
	Dir           string
	User          string
	Password      string
	Token         string
	Group         string
	Tenant        string           // expected tenant (domain); must be the user's home tenant
	Proxy         *cloudlink.Proxy // outbound proxy to the cloud; nil for the state directory's settings or HTTPS_PROXY
	CAFile        string           // pinned cloud CA, PEM
	CAFingerprint string           // or its sha256: fingerprint
	Hostname      string
	Version       string
}

// Register creates a key pair on this machine, has the cloud sign a
// certificate for it with the administrator's credentials (or a
// registration token), and writes the state directory. Credentials are
// never written anywhere. Every step goes to the registration log; a
// failure names it and is recorded as event 1002.
func Register(ctx context.Context, o RegisterOptions) (*statedir.Trust, error) {
	logPath, log, closeLog := openRegisterLog(o.Dir)
	defer closeLog()
	log.Info("registration started", "cloud", o.CloudURL, "dir", o.Dir, "user", o.User, "token", o.Token != "", "group", o.Group,
		"ca_file", o.CAFile, "ca_fingerprint", o.CAFingerprint, "hostname", o.Hostname, "version", o.Version)
	tr, err := register(ctx, o, log)
	ev, evErr := eventlog.Open(eventlog.Config{Path: filepath.Join(o.Dir, statedir.EventsFile), Source: "registration"})
	if evErr == nil {
		defer ev.Close()
	}
	if err != nil {
		p := problem.Public(err)
		log.Error("registration failed", "code", p.Code, "error", p.Error())
		msg := p.Error()
		if !strings.HasPrefix(msg, "Connector registration failed") {
			msg = "Connector registration failed: " + msg
		}
		ev.Event(eventlog.RegistrationFailed, msg, "code", p.Code, "cloud", o.CloudURL)
		q := *p
		if logPath != "" {
			q.Step = strings.TrimSuffix(q.Step, ".") + "; every step is in the registration log " + logPath
		}
		return nil, &q
	}
	log.Info("registration succeeded", "connector_id", tr.ConnectorID, "tenant", tr.Tenant, "group", tr.Group, "thumbprint", tr.Thumbprint)
	ev.Event(eventlog.Registered, fmt.Sprintf("The connector was registered with the cloud %s: connector %s in tenant %s, group '%s'", tr.CloudURL, tr.ConnectorID, tr.Tenant, tr.Group),
		"thumbprint", tr.Thumbprint)
	return tr, nil
}

// openRegisterLog opens the registration log in dir (created 0700 if
// needed), or in the temporary directory when dir cannot be written.
func openRegisterLog(dir string) (string, *slog.Logger, func()) {
	try := func(d string) (*os.File, string) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, ""
		}
		p := filepath.Join(d, statedir.RegisterLogFile)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, ""
		}
		return f, p
	}
	f, p := try(dir)
	if f == nil {
		f, p = try(filepath.Join(os.TempDir(), "sallyport-register"))
	}
	if f == nil {
		return "", slog.New(slog.DiscardHandler), func() {}
	}
	return p, slog.New(slog.NewTextHandler(f, nil)), func() { f.Close() }
}

func register(ctx context.Context, o RegisterOptions, log *slog.Logger) (*statedir.Trust, error) {
	target, err := cloudlink.ParseURL(o.CloudURL)
	if err != nil {
		return nil, err
	}
	if target.Proxy = o.Proxy; target.Proxy == nil {
		if target.Proxy, err = statedir.EffectiveProxy(o.Dir, ""); err != nil {
			return nil, err
		}
	}
	if target.Proxy != nil {
		log.Info("reaching the cloud through a proxy", "proxy", target.Proxy.String(), "from", target.Proxy.Source)
	}
	if o.Token == "" && (o.User == "" || o.Password == "") {
		return nil, problem.New(400, "no_credentials",
			"give --user and the password (--password-stdin, or type it when asked), or --token with a registration token", "Connector registration failed: no credentials were given")
	}
	// Everything that can fail on this machine is checked before the
	// cloud is asked: a registration the cloud made for a directory that
	// cannot hold it would leave a stray connector there (issue 20).
	if err := statedir.CheckWritable(o.Dir); err != nil {
		return nil, err
	}
	log.Info("the state directory is writable", "dir", o.Dir)
	log.Info("pinning the cloud CA", "url", target.URL)
	ca := statedir.PinnedCA(o.Dir, target.URL)
	if ca != nil && o.CAFile == "" && o.CAFingerprint == "" {
		log.Info("reusing the cloud CA pinned in the state directory", "file", filepath.Join(o.Dir, statedir.CloudCAFile))
	} else if ca, err = cloudlink.PinnedCA(ctx, target, o.CAFile, o.CAFingerprint, "sallyport connector register"); err != nil {
		return nil, err
	}
	log.Info("cloud CA pinned", "fingerprint", pki.Fingerprint(ca), "subject", ca.Subject.String())
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("sallyport-connector")
	if err != nil {
		return nil, err
	}
	log.Info("key pair and certificate signing request made on this machine", "key", "ECDSA P-256")
	req := api.RegisterRequest{
		User: o.User, Password: o.Password, Token: o.Token, Group: o.Group, Tenant: o.Tenant,
		CSR: string(csrPEM), Hostname: o.Hostname, Version: o.Version,
	}
	if prev, err := statedir.Load(o.Dir); err == nil && prev.Trust.CloudURL == target.URL {
		req.PreviousConnectorID = prev.Trust.ConnectorID
	}
	if req.PreviousConnectorID != "" {
		log.Info("this machine was registered before; asking to keep its identity", "connector_id", req.PreviousConnectorID)
	}
	log.Info("sending the registration request", "url", target.URL+api.Prefix+"/connectors/register")
	var resp api.RegisterResponse
	client := cloudlink.HTTPClient(target, ca)
	defer client.CloseIdleConnections()
	if err := cloudlink.PostJSON(ctx, client, target, api.Prefix+"/connectors/register", &req, &resp); err != nil {
		return nil, err
	}
	cert, err := pki.ParseCertPEM([]byte(resp.Certificate))
	if err != nil {
		return nil, fmt.Errorf("the cloud returned a certificate that does not parse: %w", err)
	}
	tr := statedir.Trust{
		FormatVersion: 1,
		ConnectorID:   resp.ConnectorID,
		TenantID:      resp.TenantID,
		Tenant:        resp.Tenant,
		Group:         resp.Group,
		CloudURL:      target.URL,
		Thumbprint:    pki.Thumbprint(cert),
		Serial:        pki.SerialHex(cert),
		CloudCAFile:   statedir.CloudCAFile,
		IssuedAt:      cert.NotBefore.Add(pki.Backdate).UTC(),
		ExpiresAt:     cert.NotAfter.UTC(),
		Source:        "registration",
		ReleaseKey:    resp.ReleaseKey,
	}
	if err := statedir.Write(o.Dir, &tr, keyPEM, []byte(resp.Certificate), pki.EncodeCertPEM(ca.Raw), stepHook); err != nil {
		return nil, undoRegistration(ctx, client, target, o, req.PreviousConnectorID, resp.ConnectorID, log, err)
	}
	statedir.RemoveUnusedPairs(o.Dir, tr)
	return &tr, nil
}

// undoRegistration deletes at the cloud a connector registered for a
// state directory that then could not be written, through the channel the
// registration used: the administrator's user and password. A
// registration token cannot delete connectors, and a re-registration that
// kept the machine's identity is not undone (the connector existed
// before): the error then names the connector for an administrator.
func undoRegistration(ctx context.Context, client *http.Client, target cloudlink.Target, o RegisterOptions, previousID, id string, log *slog.Logger, cause error) error {
	p := *problem.Public(cause)
	undone := false
	if id != previousID && o.User != "" && o.Password != "" {
		var login api.LoginResponse
		err := cloudlink.PostJSON(ctx, client, target, api.Prefix+"/login", &api.LoginRequest{User: o.User, Password: o.Password}, &login)
		if err == nil {
			err = cloudlink.DoJSON(ctx, client, target, http.MethodDelete, api.Prefix+"/connectors/"+id, login.Token, nil, nil)
		}
		if err != nil {
			log.Error("the connector registered at the cloud could not be deleted again", "connector_id", id, "error", problem.Public(err).Error())
		} else {
			log.Info("the connector registered at the cloud was deleted again", "connector_id", id)
			undone = true
		}
	}
	if undone {
		p.Message += fmt.Sprintf(", so the connector %s the cloud had registered was deleted again", id)
		return &p
	}
	log.Error("a connector stays registered at the cloud without a state directory", "connector_id", id)
	p.Message += fmt.Sprintf(", and the connector %s the cloud registered meanwhile stays there", id)
	p.Step = strings.TrimSuffix(p.Step, ".") + fmt.Sprintf("; have an administrator delete it with 'sallyport admin connector delete %s'", id)
	return &p
}
