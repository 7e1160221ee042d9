package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/cloudlink"
	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/release"
	"github.com/sallyport/sallyport/internal/service"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/version"
)

func newConnectorCmd() *cobra.Command {
	c := group("connector", "Register and run the connector on a machine inside the private network")
	c.AddCommand(newRegisterCmd(), newRunCmd(), newStatusCmd(), newRenewCmd(), newEventsCmd("dir", statedir.DefaultDir(), "connector"), newDiagCmd(), newDoctorCmd(), newProxyCmd(), newUpdateCmd(), newUpdaterCmd(), newInstallCmd(), newUninstallCmd())
	return c
}

func newRegisterCmd() *cobra.Command {
	var o connector.RegisterOptions
	var pwStdin bool
	var tokenFile, proxyURL string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register this machine's connector with the cloud (the private key never leaves it)",
		Example: `  printf '%s\n' "$PASSWORD" | sallyport connector register --cloud https://sallyport.example.com \
    --user admin@contoso.com --password-stdin --ca-file cloud-ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenFile != "" {
				tok, err := readSecretFile(tokenFile)
				if err != nil {
					return err
				}
				o.Token = tok
			}
			if o.Token == "" {
				o.Token = os.Getenv("SALLYPORT_REGISTRATION_TOKEN")
			}
			if o.Token == "" && o.User != "" {
				pw, err := readPassword(cmd, pwStdin, "Password for "+o.User+": ")
				if err != nil {
					return err
				}
				o.Password = pw
			}
			if err := statedir.CheckWritable(o.Dir); err != nil {
				return err // before anything reads the directory or asks the cloud
			}
			p, err := statedir.EffectiveProxy(o.Dir, proxyURL)
			if err != nil {
				return err
			}
			o.Proxy = p
			o.Hostname, _ = os.Hostname()
			o.Version = version.Version
			tr, err := connector.Register(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, struct {
					ConnectorID string    `json:"connector_id"`
					Tenant      string    `json:"tenant"`
					Group       string    `json:"group"`
					Thumbprint  string    `json:"thumbprint"`
					ExpiresAt   time.Time `json:"expires_at"`
					Dir         string    `json:"dir"`
				}{tr.ConnectorID, tr.Tenant, tr.Group, tr.Thumbprint, tr.ExpiresAt, o.Dir})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Registered connector %s in tenant %s, group '%s'.\n", tr.ConnectorID, tr.Tenant, tr.Group)
			fmt.Fprintf(cmd.OutOrStdout(), "Certificate thumbprint %s, valid until %s.\n", tr.Thumbprint, tr.ExpiresAt.Format(time.RFC3339))
			if pid, running := statedir.Running(o.Dir); running {
				fmt.Fprintf(cmd.OutOrStdout(), "State in %s. The connector running on it (process %d) takes the new certificate at its next connection.\n", o.Dir, pid)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "State in %s. Start it with: sallyport connector run --dir %s\n", o.Dir, o.Dir)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.CloudURL, "cloud", "", "the cloud's URL, https://HOST[:PORT]")
	f.StringVar(&o.Dir, "dir", statedir.DefaultDir(), "the connector's state directory")
	f.StringVar(&o.User, "user", "", "an administrator of your tenant, USER@DOMAIN (at least Application Administrator)")
	f.BoolVar(&pwStdin, "password-stdin", false, "read the password from standard input")
	f.StringVar(&o.Token, "token", "", "a registration token instead of a user and password (visible in the process list: prefer --token-file or SALLYPORT_REGISTRATION_TOKEN)")
	f.StringVar(&proxyURL, "proxy", "", "outbound proxy to the cloud, http://HOST:PORT (default: 'connector proxy set', else HTTPS_PROXY)")
	f.StringVar(&tokenFile, "token-file", "", "file holding a registration token on its first line")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&o.Group, "group", "", "connector group to join (default 'Default')")
	f.StringVar(&o.Tenant, "tenant", "", "the tenant (domain) to register into; refused unless it is the user's home tenant")
	f.StringVar(&o.CAFile, "ca-file", "", "the cloud's CA certificate (cloud-ca.pem) to pin")
	f.StringVar(&o.CAFingerprint, "ca-fingerprint", "", "or the cloud CA's fingerprint, sha256:HEX, as 'cloud init' printed it")
	cmd.MarkFlagRequired("cloud")
	cmd.MarkFlagsMutuallyExclusive("ca-file", "ca-fingerprint")
	cmd.MarkFlagsMutuallyExclusive("user", "token", "token-file")
	return cmd
}

func newRunCmd() *cobra.Command {
	var cfg connector.Config
	var clockOffset time.Duration
	var proxyURL string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the connector: keep tunnels to the cloud and serve its requests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = logger(cmd)
			cfg.Version = version.Version
			cfg.MetricsOptional = !cmd.Flags().Changed("metrics-listen")
			if proxyURL != "" {
				p, err := statedir.EffectiveProxy(cfg.Dir, proxyURL)
				if err != nil {
					return err
				}
				cfg.Proxy = p
			}
			if cfg.Tunnel.DrainTimeout == 0 {
				cfg.Tunnel.DrainTimeout = -1 // --drain-timeout 0: close at once
			}
			if cfg.TunnelVersion != 1 && cfg.TunnelVersion != 2 {
				return fmt.Errorf("--tunnel-version %d is not a tunnel protocol version: use 2 (the default) or 1", cfg.TunnelVersion)
			}
			if clockOffset != 0 {
				cfg.Now = func() time.Time { return time.Now().Add(clockOffset) }
			}
			c, err := connector.New(cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			lock, err := statedir.LockRun(cfg.Dir)
			if err != nil {
				return err
			}
			defer lock.Unlock()
			return service.RunService(cmd.Context(), "SallyportConnector", c.Run)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", statedir.DefaultDir(), "the connector's state directory")
	f.IntVar(&cfg.Connections, "connections", 2, "number of tunnel connections kept to the cloud (to each of its instances when it lists several)")
	f.StringVar(&proxyURL, "proxy", "", "outbound proxy to the cloud, http://HOST:PORT (default: 'connector proxy set', else HTTPS_PROXY)")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", connector.DefaultMetricsListen, "where to serve /metrics, /healthz and /ready ('' for nowhere; keep it on loopback)")
	f.DurationVar(&cfg.Tunnel.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long requests in flight may finish (no new ones are taken; 0: close at once)")
	f.IntVar(&cfg.TunnelVersion, "tunnel-version", 2, "tunnel protocol version to offer: 2 (requests relayed as HTTP/1.1 on multiplexed streams; an older cloud answers with 1) or 1 (HTTP/2 only)")
	f.DurationVar(&cfg.RenewCheckInterval, "renew-check-interval", 6*time.Hour, "how often the certificate's remaining life is checked")
	f.MarkHidden("renew-check-interval")
	f.DurationVar(&clockOffset, "test-clock-offset", 0, "test only: shift the connector's clock for certificate decisions")
	f.MarkHidden("test-clock-offset")
	return withConfig(cmd, "connector")
}

func newStatusCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the trust settings of this machine's connector",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := statedir.Load(dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st.Trust); err != nil {
					return err
				}
				return st.CheckValidity(time.Now())
			}
			t := st.Trust
			days := int(math.Round(time.Until(t.ExpiresAt).Hours() / 24))
			fmt.Fprintf(out, "Connector:    %s\nTenant:       %s (%s)\nGroup:        %s\nCloud:        %s\nThumbprint:   %s\nKey:          %s\nIssued:       %s (from %s)\nExpires:      %s (%d days left)\n",
				t.ConnectorID, t.Tenant, t.TenantID, t.Group, t.CloudURL, t.Thumbprint, t.KeyLocation,
				t.IssuedAt.Format(time.RFC3339), t.Source, t.ExpiresAt.Format(time.RFC3339), days)
			fmt.Fprintf(out, "Connection:   %s\n", connectionState(dir, t))
			if rs, fresh := statedir.ReadRunStatus(dir, time.Now()); fresh && rs.Listed > 0 {
				fmt.Fprintf(out, "Instances:    %s\n", rs.InstancesLine())
			}
			if t.ReleaseKey != "" {
				if k, err := release.ParsePublicKey([]byte(t.ReleaseKey)); err == nil {
					fmt.Fprintf(out, "Release key:  %s (the cloud's, from the registration; the updater checks updates against the key root pinned for it)\n", release.KeyID(k))
				}
			}
			return st.CheckValidity(time.Now())
		},
	}
	cmd.Flags().StringVar(&dir, "dir", statedir.DefaultDir(), "the connector's state directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// connectionState describes what the running connector last reported;
// its hints name the state directory given.
func connectionState(dir string, t statedir.Trust) string {
	rs, fresh := statedir.ReadRunStatus(dir, time.Now())
	switch {
	case !fresh && rs.Refusal != "" && rs.Serial == t.Serial:
		return fmt.Sprintf("stopped for good, the cloud refused it: %s; register this machine again with 'sallyport connector register --cloud %s --dir %s' if it should serve again",
			rs.Refusal, t.CloudURL, dir)
	case !fresh:
		return fmt.Sprintf("not running (start it with 'sallyport connector run --dir %s')", dir)
	case rs.TunnelsUp > 0:
		proto := ""
		if rs.TunnelProtocol > 0 {
			proto = fmt.Sprintf(" (tunnel protocol %d)", rs.TunnelProtocol)
		}
		return fmt.Sprintf("connected: %d of %d tunnels up%s, serving %d application(s), version %s (pid %d)", rs.TunnelsUp, rs.Connections*max(1, rs.Listed), proto, len(rs.Apps), rs.Version, rs.PID)
	case rs.LastError != "":
		return "running but not connected: " + rs.LastError
	default:
		return "running, connecting"
	}
}

func newRenewCmd() *cobra.Command {
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "renew",
		Short: "Renew the connector's certificate now (the running connector renews by itself when a third of its life remains)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := statedir.Load(dir)
			if err != nil {
				return err
			}
			if err := st.CheckValidity(time.Now()); err != nil {
				return err
			}
			if !force && !connector.NeedsRenewal(st, time.Now()) {
				fmt.Fprintf(cmd.OutOrStdout(), "The certificate is valid until %s and is not due for renewal yet; use --force to renew it now.\n", st.Trust.ExpiresAt.Format(time.RFC3339))
				return nil
			}
			ev, _ := eventlog.Open(eventlog.Config{Path: filepath.Join(dir, statedir.EventsFile), Source: "connector"})
			defer ev.Close()
			next, err := connector.Renew(cmd.Context(), st, (&cloudlink.Dialer{Proxy: st.Target.Proxy}).DialContext)
			if err != nil {
				ev.Event(eventlog.CertRenewalFailed, "Certificate renewal failed; the connector keeps its current certificate: "+problem.Public(err).Error())
				return err
			}
			ev.Event(eventlog.CertRenewed, "The connector's certificate was renewed by 'sallyport connector renew', valid until "+next.Trust.ExpiresAt.Format(time.RFC3339),
				"serial", next.Trust.Serial, "thumbprint", next.Trust.Thumbprint)
			fmt.Fprintf(cmd.OutOrStdout(), "Renewed the certificate of connector %s: thumbprint %s, valid until %s.\n",
				next.Trust.ConnectorID, next.Trust.Thumbprint, next.Trust.ExpiresAt.Format(time.RFC3339))
			if pid, running := statedir.Running(dir); running {
				fmt.Fprintf(cmd.OutOrStdout(), "The connector running on %s (process %d) takes it at its next connection.\n", dir, pid)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", statedir.DefaultDir(), "the connector's state directory")
	cmd.Flags().BoolVar(&force, "force", false, "renew even if the certificate is not due")
	return cmd
}
