// Package admincli is the client side of 'sallyport admin': the saved
// sign-in profile (cloud URL, pinned cloud CA, token; 0600 in the user's
// config directory), the calls to the admin API, and their output as
// tables or JSON. It must not import the cloud's packages.
package admincli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// Profile is what 'admin login' saves for later commands.
type Profile struct {
	CloudURL  string    `json:"cloud_url"`
	CAPEM     string    `json:"ca_pem"`
	Token     string    `json:"token"`
	User      string    `json:"user"`
	Tenant    string    `json:"tenant"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ProfilePath is where the profile lives: $SALLYPORT_ADMIN_PROFILE, or
// sallyport/admin.json in the user's config directory.
func ProfilePath() (string, error) {
	if p := os.Getenv("SALLYPORT_ADMIN_PROFILE"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", problem.New(400, "no_config_dir", "set HOME (or XDG_CONFIG_HOME), or SALLYPORT_ADMIN_PROFILE to a file path", "This user has no configuration directory to keep the sign-in in")
	}
	return filepath.Join(dir, "sallyport", "admin.json"), nil
}

// LoadProfile reads the saved profile.
func LoadProfile() (*Profile, error) {
	path, err := ProfilePath()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, problem.New(401, "not_signed_in", "run 'sallyport admin login --cloud https://CLOUD --user USER@DOMAIN --ca-file cloud-ca.pem' first", "You are not signed in to a Sallyport cloud")
	}
	if err != nil {
		return nil, problem.Newf(400, "profile_unreadable", "check its permissions, or sign in again with 'sallyport admin login'", "The sign-in profile %s cannot be read (%v)", path, err)
	}
	var p Profile
	if err := json.Unmarshal(raw, &p); err != nil || p.Token == "" {
		return nil, problem.Newf(400, "profile_damaged", "sign in again with 'sallyport admin login'", "The sign-in profile %s is damaged", path)
	}
	return &p, nil
}

// Save writes the profile with mode 0600.
func (p *Profile) Save() (string, error) {
	path, err := ProfilePath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", problem.Newf(400, "profile_unwritable", "check the directory's permissions", "The directory for the sign-in profile %s cannot be created (%v)", path, err)
	}
	js, _ := json.MarshalIndent(p, "", "  ")
	if err := pki.WriteFileAtomic(path, append(js, '\n'), 0o600); err != nil {
		return "", problem.Newf(400, "profile_unwritable", "check the directory's permissions", "The sign-in profile %s cannot be written (%v)", path, err)
	}
	return path, nil
}

// Client calls the admin API with a profile.
type Client struct {
	p      *Profile
	target cloudlink.Target
	ca     *x509.Certificate
}

// NewClient prepares a client from a profile.
func NewClient(p *Profile) (*Client, error) {
	t, err := cloudlink.ParseURL(p.CloudURL)
	if err != nil {
		return nil, err
	}
	if t.Proxy, err = cloudlink.ProxyFromEnvironment(); err != nil {
		return nil, err
	}
	ca, err := pki.ParseCertPEM([]byte(p.CAPEM))
	if err != nil {
		return nil, problem.New(400, "profile_damaged", "sign in again with 'sallyport admin login'", "The pinned cloud CA in the sign-in profile is damaged")
	}
	return &Client{p: p, target: t, ca: ca}, nil
}

// Do performs one API call.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	hc := cloudlink.HTTPClient(c.target, c.ca)
	defer hc.CloseIdleConnections()
	err := cloudlink.DoJSON(ctx, hc, c.target, method, api.Prefix+path, c.p.Token, in, out)
	if p, ok := problem.As(err); ok && (p.Code == "unauthenticated" || p.Code == "token_expired") {
		return problem.Newf(401, p.Code, fmt.Sprintf("sign in again with 'sallyport admin login --cloud %s --user %s'", c.p.CloudURL, c.p.User),
			"Your sign-in to %s is no longer valid", c.p.CloudURL)
	}
	return err
}

// LoginOptions are the inputs of Login.
type LoginOptions struct {
	CloudURL, User, Password, CAFile, CAFingerprint string
}

// Login signs in, pinning the cloud CA, and saves the profile.
func Login(ctx context.Context, o LoginOptions) (*Profile, string, error) {
	t, err := cloudlink.ParseURL(o.CloudURL)
	if err != nil {
		return nil, "", err
	}
	if t.Proxy, err = cloudlink.ProxyFromEnvironment(); err != nil {
		return nil, "", err
	}
	ca := savedCA(t.URL)
	if ca == nil || o.CAFile != "" || o.CAFingerprint != "" {
		if ca, err = cloudlink.PinnedCA(ctx, t, o.CAFile, o.CAFingerprint, "sallyport admin login"); err != nil {
			return nil, "", err
		}
	}
	hc := cloudlink.HTTPClient(t, ca)
	defer hc.CloseIdleConnections()
	var resp api.LoginResponse
	if err := cloudlink.PostJSON(ctx, hc, t, api.Prefix+"/login", api.LoginRequest{User: o.User, Password: o.Password}, &resp); err != nil {
		return nil, "", err
	}
	p := &Profile{CloudURL: t.URL, CAPEM: string(pki.EncodeCertPEM(ca.Raw)), Token: resp.Token, User: resp.User, Tenant: resp.Tenant, ExpiresAt: resp.ExpiresAt}
	path, err := p.Save()
	return p, path, err
}

// savedCA returns the cloud CA pinned in the saved profile when the
// profile is for the cloud at url, or nil. Signing in again (an expired
// token) reuses it: only a first contact needs --ca-file or
// --ca-fingerprint (issue 20, defect 2).
func savedCA(url string) *x509.Certificate {
	path, err := ProfilePath()
	if err != nil {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var p Profile
	if json.Unmarshal(raw, &p) != nil || p.CloudURL != url {
		return nil
	}
	ca, err := pki.ParseCertPEM([]byte(p.CAPEM))
	if err != nil {
		return nil
	}
	return ca
}
