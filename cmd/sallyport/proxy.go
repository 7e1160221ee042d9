package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/statedir"
)

func newProxyCmd() *cobra.Command {
	c := group("proxy", "Set the outbound HTTP proxy the connector reaches the cloud through")
	var dir, user, noProxy string
	var pwStdin bool
	set := &cobra.Command{
		Use:   "set URL",
		Short: "Use an HTTP(S) CONNECT proxy for every connection to the cloud (saved 0600 in connector.json)",
		Example: `  sallyport connector proxy set http://proxy.corp:3128
  printf '%s\n' "$PROXY_PASSWORD" | sallyport connector proxy set http://proxy.corp:3128 --user svc-sallyport --password-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw := ""
			if user != "" {
				var err error
				if pw, err = readPassword(cmd, pwStdin, "Password of proxy user "+user+": "); err != nil {
					return err
				}
			}
			p, err := cloudlink.ParseProxy(args[0], user, pw, noProxy, statedir.SettingsFile)
			if err != nil {
				return err
			}
			s, err := statedir.LoadSettings(dir)
			if err != nil {
				return err
			}
			s.Proxy = &statedir.ProxySettings{URL: p.URL.String(), Username: p.Username, Password: p.Password, NoProxy: noProxy}
			if err := statedir.SaveSettings(dir, s); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "The connector in %s reaches the cloud through %s from now on (a running connector applies it at its next connection).\n", dir, p)
			return nil
		},
	}
	set.Flags().StringVar(&user, "user", "", "proxy user name (Basic authentication)")
	set.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the proxy password from standard input")
	set.Flags().StringVar(&noProxy, "no-proxy", "", "hosts, domains (.corp) and CIDRs to reach directly, comma-separated")
	show := &cobra.Command{
		Use: "show", Short: "Show the proxy in use (never its password)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := statedir.EffectiveProxy(dir, "")
			if err != nil {
				return err
			}
			if p == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "No proxy: the connector connects to the cloud directly.")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Proxy: %s (from %s)\n", p, p.Source)
			if p.NoProxy != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Direct for: %s\n", p.NoProxy)
			}
			return nil
		},
	}
	clear := &cobra.Command{
		Use: "clear", Short: "Stop using the saved proxy (HTTPS_PROXY still applies if set)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := statedir.LoadSettings(dir)
			if err != nil {
				return err
			}
			s.Proxy = nil
			if err := statedir.SaveSettings(dir, s); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "The saved proxy is cleared.")
			return nil
		},
	}
	for _, sc := range []*cobra.Command{set, show, clear} {
		sc.Flags().StringVar(&dir, "dir", statedir.DefaultDir(), "the connector's state directory")
		c.AddCommand(sc)
	}
	return c
}
