package e2e

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/idptest"
	"github.com/sallyport/sallyport/internal/testnet"
)

// TestIdentityProviderCommands runs 'admin idp' through the real binary:
// a secret file others may read is refused before anything is sent; an
// issuer the cloud cannot reach is one sentence saying what failed and
// what to do, and nothing is set; against a real provider (Ory Hydra over
// TLS with a private CA, --ca-file) set prints the redirect URI to
// register, show never prints the secret, delete goes back to local
// accounts.
func TestIdentityProviderCommands(t *testing.T) {
	t.Parallel()
	c := startCloud(t)
	admin := c.admin
	dir := t.TempDir()
	open := filepath.Join(dir, "open-secret.txt")
	writeFile(t, open, "not-the-real-secret\n", 0o644)
	admin.refused(t, "", []string{"admin", "idp", "set", "--issuer", "https://127.0.0.1:1/", "--client-id", "sallyport", "--client-secret-file", open},
		"can be read or written by other users than its owner (mode 0644)", "run 'chmod 600 "+open+"'")
	secret := filepath.Join(dir, "idp-secret.txt")
	writeFile(t, secret, "not-the-real-secret\n", 0o600)
	admin.refused(t, "", []string{"admin", "idp", "set", "--issuer", "https://127.0.0.1:1/", "--client-id", "sallyport", "--client-secret-file", secret},
		"sallyport: The identity provider's discovery document https://127.0.0.1:1/.well-known/openid-configuration could not be read (the connection was refused); check the issuer URL, and that the cloud's machine reaches it (DNS, firewall, proxy), then run the command again.")
	admin.refused(t, "", []string{"admin", "idp", "show"}, "contoso.com has no identity provider")

	ca := testnet.NewCA(t)
	certPEM, keyPEM := ca.PEM(t, "127.0.0.1")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	idp := idptest.Start(t, idptest.Options{CertPEM: certPEM, KeyPEM: keyPEM, RootCAs: roots})
	redirectURI := c.url + "/signin/oidc/callback"
	cl := idp.CreateClient(t, redirectURI)
	writeFile(t, secret, cl.Secret+"\n", 0o600)
	caFile := filepath.Join(dir, "idp-ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})), 0o644)

	set := []string{"admin", "idp", "set", "--issuer", idp.Issuer(), "--client-id", cl.ID, "--client-secret-file", secret}
	admin.refused(t, "", set, "(its TLS certificate is not signed by a trusted CA); give the CA that signs the provider's certificate with --ca-file.")
	out := admin.ok(t, "", append(set, "--ca-file", caFile)...).stdout
	mustContain(t, "idp set", out, "Sign-in for your tenant's applications now goes to "+idp.Issuer(),
		"Register this redirect URI for the client at the provider: "+redirectURI)

	show := admin.ok(t, "", "admin", "idp", "show").stdout
	mustContain(t, "idp show", show, idp.Issuer(), cl.ID, redirectURI, "(set; never shown)", "groups", "testnet CA")
	var js map[string]any
	raw := admin.ok(t, "", "admin", "idp", "show", "--json").stdout
	if err := json.Unmarshal([]byte(raw), &js); err != nil || js["redirect_uri"] != redirectURI {
		t.Errorf("idp show --json: %v\n%s", err, raw)
	}
	if strings.Contains(show+raw, cl.Secret) {
		t.Errorf("idp show printed the client secret:\n%s\n%s", show, raw)
	}
	mustContain(t, "idp delete", admin.ok(t, "", "admin", "idp", "delete").stdout, "Removed the identity provider: your users sign in with local accounts again.")
	admin.refused(t, "", []string{"admin", "idp", "delete"}, "contoso.com has no identity provider")
}
