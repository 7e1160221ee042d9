package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/admincli"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/store"
)

// newDomainCmd is 'admin domain': the domains a tenant proves it owns to
// publish applications under them.
func newDomainCmd() *cobra.Command {
	c := group("domain", "Prove the domains the tenant publishes applications under (DNS TXT record)")
	add := &cobra.Command{
		Use: "add DOMAIN", Short: "Claim a domain and print the DNS TXT record that proves it", Args: cobra.ExactArgs(1),
		Example: "  sallyport admin domain add apps.contoso.com",
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.AddDomain(cmd.Context(), output(cmd), args[0])
		}),
	}
	verify := &cobra.Command{
		Use: "verify DOMAIN", Short: "Look up the domain's TXT record and mark it proven", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.VerifyDomain(cmd.Context(), output(cmd), args[0])
		}),
	}
	list := &cobra.Command{
		Use: "list", Short: "List the tenant's domains: status, how and when proven", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ListDomains(cmd.Context(), output(cmd))
		}),
	}
	del := &cobra.Command{
		Use: "delete DOMAIN", Short: "Give up a domain no application is published under", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.DeleteDomain(cmd.Context(), output(cmd), args[0])
		}),
	}
	c.AddCommand(add, verify, list, del)
	return c
}

// newCloudTenantDomainCmd is 'cloud tenant domain': the operator vouches
// for a tenant's domain, using the data directory.
func newCloudTenantDomainCmd() *cobra.Command {
	c := group("domain", "The operator vouches for tenants' domains (run on the cloud machine)")
	var dataDir, tenant, domain string
	var asJSON bool
	withStore := func(f func(cmd *cobra.Command, st store.Store) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			settings, err := datadir.LoadSettings(dataDir)
			if err != nil {
				return err
			}
			st, err := datadir.OpenStore(dataDir, settings)
			if err != nil {
				return err
			}
			defer st.Close()
			return f(cmd, st)
		}
	}
	add := &cobra.Command{
		Use: "add", Short: "Vouch for a tenant's domain: proven at once, without a DNS record (safe while serve runs)", Args: cobra.NoArgs,
		Example: "  sallyport cloud tenant domain add --data-dir /var/lib/sallyport/cloud --tenant contoso.com --domain apps.contoso.com",
		RunE: withStore(func(cmd *cobra.Command, st store.Store) error {
			d, err := datadir.VouchDomain(cmd.Context(), dataDir, st, tenant, domain)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "The tenant %s may now publish applications under %s (vouched for by the operator).\n", tenant, d.Domain)
			return nil
		}),
	}
	list := &cobra.Command{
		Use: "list", Short: "List a tenant's domains", Args: cobra.NoArgs,
		RunE: withStore(func(cmd *cobra.Command, st store.Store) error {
			ds, err := datadir.TenantDomains(cmd.Context(), st, tenant)
			if err != nil {
				return err
			}
			type row struct {
				Domain     string    `json:"domain"`
				Status     string    `json:"status"`
				VerifiedBy string    `json:"verified_by,omitempty"`
				CreatedAt  time.Time `json:"created_at"`
				VerifiedAt time.Time `json:"verified_at,omitzero"`
			}
			rows := make([]row, 0, len(ds))
			for _, d := range ds {
				r := row{Domain: d.Domain, Status: "pending", VerifiedBy: d.VerifiedBy, CreatedAt: d.CreatedAt, VerifiedAt: d.VerifiedAt}
				if d.Verified() {
					r.Status = "verified"
				}
				rows = append(rows, r)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DOMAIN\tSTATUS\tHOW\tWHEN")
			for _, r := range rows {
				how, at := r.VerifiedBy, r.VerifiedAt
				if r.Status != "verified" {
					how, at = "-", r.CreatedAt
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Domain, r.Status, how, at.Local().Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		}),
	}
	del := &cobra.Command{
		Use: "delete", Short: "Remove a tenant's domain no application is published under", Args: cobra.NoArgs,
		RunE: withStore(func(cmd *cobra.Command, st store.Store) error {
			if err := datadir.DeleteTenantDomain(cmd.Context(), dataDir, st, tenant, domain); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed the domain %s of %s.\n", domain, tenant)
			return nil
		}),
	}
	for _, cmd := range []*cobra.Command{add, list, del} {
		f := cmd.Flags()
		f.StringVar(&dataDir, "data-dir", "", "the cloud's data directory")
		f.StringVar(&tenant, "tenant", "", "the tenant's primary domain, e.g. contoso.com")
		cmd.MarkFlagRequired("data-dir")
		cmd.MarkFlagRequired("tenant")
	}
	for _, cmd := range []*cobra.Command{add, del} {
		cmd.Flags().StringVar(&domain, "domain", "", "the domain, e.g. apps.contoso.com")
		cmd.MarkFlagRequired("domain")
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(add, list, del)
	return c
}
