package admincli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/sallyport/sallyport/internal/api"
)

// ListDomains prints the tenant's domains.
func (c *Client) ListDomains(ctx context.Context, o Output) error {
	var ds []api.Domain
	if err := c.Do(ctx, http.MethodGet, "/domains", nil, &ds); err != nil {
		return err
	}
	return o.Emit(ds, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "DOMAIN\tSTATUS\tHOW\tWHEN")
		for _, d := range ds {
			how, at := dash(d.VerifiedBy), when(d.VerifiedAt)
			if d.Status != "verified" {
				how, at = "TXT "+d.TXTName+" = "+d.TXTValue, when(d.CreatedAt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Domain, d.Status, how, at)
		}
	})
}

// AddDomain claims a domain and prints the TXT record that proves it.
func (c *Client) AddDomain(ctx context.Context, o Output, domain string) error {
	var d api.Domain
	if err := c.Do(ctx, http.MethodPost, "/domains", api.CreateDomainRequest{Domain: domain}, &d); err != nil {
		return err
	}
	return o.Emit(d, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Claimed %s. Prove it by creating this DNS record, then run 'sallyport admin domain verify %s':\n", d.Domain, d.Domain)
		fmt.Fprintf(tw, "  Name:\t%s\n  Type:\tTXT\n  Value:\t%s\n", d.TXTName, d.TXTValue)
	})
}

// VerifyDomain checks a claimed domain's TXT record.
func (c *Client) VerifyDomain(ctx context.Context, o Output, domain string) error {
	var d api.Domain
	if err := c.Do(ctx, http.MethodPost, "/domains/"+url.PathEscape(domain)+"/verify", nil, &d); err != nil {
		return err
	}
	return o.Emit(d, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "%s is proven (%s): applications may be published under it with --external-host.\n", d.Domain, d.VerifiedBy)
	})
}

// DeleteDomain gives up a domain.
func (c *Client) DeleteDomain(ctx context.Context, o Output, domain string) error {
	if err := c.Do(ctx, http.MethodDelete, "/domains/"+url.PathEscape(domain), nil, nil); err != nil {
		return err
	}
	return o.Emit(map[string]string{"deleted": domain}, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Deleted the domain %s.\n", domain) })
}
