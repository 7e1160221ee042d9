package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/admincli"
	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/problem"
)

// newIdpCmd is 'admin idp': the tenant's OpenID provider, where sign-in
// for its applications goes.
func newIdpCmd() *cobra.Command {
	c := group("idp", "Federate sign-in to your organisation's OpenID provider (Global Administrators only)")
	var in api.SetIdentityProviderRequest
	var secretFile, caFile, groupsClaim string
	set := &cobra.Command{
		Use:   "set",
		Short: "Set (or replace) the OpenID provider: the cloud checks its discovery document, then prints the redirect URI to register",
		Example: `  sallyport admin idp set --issuer https://login.contoso.com/realms/staff --client-id sallyport \
    --client-secret-file idp-secret.txt`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			secret, err := readOwnerOnlySecretFile(secretFile, "--client-secret-file")
			if err != nil {
				return err
			}
			in.ClientSecret = secret
			if caFile != "" {
				b, err := readSmallFile(caFile, "--ca-file", 256<<10)
				if err != nil {
					return err
				}
				in.CAPEM = string(b)
			}
			in.GroupsClaim = &groupsClaim
			return c.SetIdentityProvider(cmd.Context(), output(cmd), in)
		}),
	}
	f := set.Flags()
	f.StringVar(&in.Issuer, "issuer", "", "the provider's issuer URL, exactly as its discovery document names it")
	f.StringVar(&in.ClientID, "client-id", "", "the client registered at the provider for this cloud")
	f.StringVar(&secretFile, "client-secret-file", "", "file (mode 0600) holding the client's secret on its first line")
	f.StringVar(&caFile, "ca-file", "", "PEM certificates to trust for the provider's TLS, besides the system's")
	f.StringVar(&groupsClaim, "groups-claim", "groups", "the ID token claim whose groups become the user's user groups ('' for no mapping)")
	f.StringVar(&in.EmailClaim, "email-claim", "email", "the ID token claim holding the user's email address, their user name")
	for _, n := range []string{"issuer", "client-id", "client-secret-file"} {
		set.MarkFlagRequired(n)
	}
	show := &cobra.Command{
		Use: "show", Short: "Show the OpenID provider and the redirect URI (never the client secret)", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ShowIdentityProvider(cmd.Context(), output(cmd))
		}),
	}
	del := &cobra.Command{
		Use: "delete", Short: "Remove the OpenID provider: sign-in is with local accounts again", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.DeleteIdentityProvider(cmd.Context(), output(cmd))
		}),
	}
	c.AddCommand(set, show, del)
	return c
}

// readOwnerOnlySecretFile reads a secret's file (its first line), refusing
// one that others than its owner may read or write (except on Windows,
// where access is by ACL).
func readOwnerOnlySecretFile(path, flag string) (string, error) {
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", problem.Newf(400, "secret_file_mode", fmt.Sprintf("run 'chmod 600 %s' and the command again", path),
				"The secret file %s given to %s can be read or written by other users than its owner (mode %04o)", path, flag, fi.Mode().Perm())
		}
	}
	s, err := readSecretFile(path)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", problem.Newf(400, "secret_file", "put the secret on the file's first line",
			"The secret file %s given to %s is empty", path, flag)
	}
	return s, nil
}

// readSmallFile reads a file of at most max bytes.
func readSmallFile(path, flag string, max int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err == nil && fi.Size() > max {
		return nil, problem.Newf(400, "file_too_large", "give the right file", "The file %s given to %s is larger than %d KiB", path, flag, max>>10)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, problem.Newf(400, "file_unreadable", "give a readable file", "The file %s given to %s cannot be read (%v)", path, flag, err)
	}
	return b, nil
}
