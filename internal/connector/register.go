package connector

import (
	"context"
	"fmt"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// RegisterOptions are the inputs of Register.
type RegisterOptions struct {
	CloudURL      string
	Dir           string
	User          string
	Password      string
	Token         string
	Group         string
	CAFile        string // pinned cloud CA, PEM
	CAFingerprint string // or its sha256: fingerprint
	Hostname      string
	Version       string
}

// Register creates a key pair on this machine, has the cloud sign a
// certificate for it with the administrator's credentials (or a
// registration token), and writes the state directory. Credentials are
// never written anywhere.
func Register(ctx context.Context, o RegisterOptions) (*Trust, error) {
	target, err := cloudlink.ParseURL(o.CloudURL)
	if err != nil {
		return nil, err
	}
	if o.Token == "" && (o.User == "" || o.Password == "") {
		return nil, problem.New(400, "no_credentials",
			"Connector registration needs credentials",
			"give --user and the password (--password-stdin, or type it when asked), or --token with a registration token")
	}
	ca, err := cloudlink.PinnedCA(ctx, target, o.CAFile, o.CAFingerprint, "sallyport connector register")
	if err != nil {
		return nil, err
	}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("sallyport-connector")
	if err != nil {
		return nil, err
	}
	req := api.RegisterRequest{
		User: o.User, Password: o.Password, Token: o.Token, Group: o.Group,
		CSR: string(csrPEM), Hostname: o.Hostname, Version: o.Version,
	}
	if prev, err := LoadState(o.Dir); err == nil && prev.Trust.CloudURL == target.URL {
		req.PreviousConnectorID = prev.Trust.ConnectorID
	}
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
	tr := Trust{
		FormatVersion: 1,
		ConnectorID:   resp.ConnectorID,
		TenantID:      resp.TenantID,
		Tenant:        resp.Tenant,
		Group:         resp.Group,
		CloudURL:      target.URL,
		Thumbprint:    pki.Thumbprint(cert),
		Serial:        pki.SerialHex(cert),
		CloudCAFile:   CloudCAFile,
		IssuedAt:      cert.NotBefore.Add(pki.Backdate).UTC(),
		ExpiresAt:     cert.NotAfter.UTC(),
		Source:        "registration",
	}
	if err := writeState(o.Dir, &tr, keyPEM, []byte(resp.Certificate), pki.EncodeCertPEM(ca.Raw)); err != nil {
		return nil, err
	}
	removeUnusedPairs(o.Dir, tr)
	return &tr, nil
}
