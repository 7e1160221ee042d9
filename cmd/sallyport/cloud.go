package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/cloud"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/edge"
)

func newCloudCmd() *cobra.Command {
	c := group("cloud", "Run and set up the cloud service")
	c.AddCommand(newCloudInitCmd(), newCloudServeCmd(), newCloudTenantCmd(), newCloudStoreCmd(), newEventsCmd("data-dir", "", "cloud service"), newCloudReleaseCmd(), newCloudInstanceCmd(), newCloudDoctorCmd())
	return c
}

func newCloudInitCmd() *cobra.Command {
	var o datadir.InitOptions
	var pwFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new cloud: data directory, CAs, first tenant and its Global Administrator",
		Example: `  sallyport cloud init --data-dir /var/lib/sallyport/cloud --name sallyport.example.com \
    --tenant contoso.com --admin admin@contoso.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pwFile != "" {
				pw, err := readSecretFile(pwFile)
				if err != nil {
					return err
				}
				o.AdminPassword = pw
			}
			res, err := datadir.Init(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, struct {
					Name          string `json:"name"`
					DataDir       string `json:"data_dir"`
					Tenant        string `json:"tenant"`
					Admin         string `json:"admin"`
					AdminPassword string `json:"admin_password,omitempty"`
					CAFile        string `json:"ca_file"`
					CAFingerprint string `json:"ca_fingerprint"`
					ReleaseKeyID  string `json:"release_key_id"`
					KEKFile       string `json:"kek_file"`
				}{o.Name, o.DataDir, o.Tenant, o.Admin, map[bool]string{true: res.AdminPassword}[res.GeneratedPassword],
					res.CACertPath, res.CAFingerprint, res.ReleaseKeyID, filepath.Join(o.DataDir, datadir.KEKFile)})
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created the cloud %s in %s.\n", o.Name, o.DataDir)
			if o.Store != "" {
				fmt.Fprintf(out, "Store: %s\n", o.Store)
			}
			fmt.Fprintf(out, "Tenant %s with connector group 'Default'; Global Administrator %s.\n", o.Tenant, o.Admin)
			if res.GeneratedPassword {
				fmt.Fprintf(out, "Administrator password (shown once): %s\n", res.AdminPassword)
			}
			fmt.Fprintf(out, "Cloud CA certificate: %s\n", res.CACertPath)
			fmt.Fprintf(out, "Cloud CA fingerprint: %s\n", res.CAFingerprint)
			fmt.Fprintf(out, "Connectors and admin clients pin it with --ca-file %s or --ca-fingerprint %s\n", res.CACertPath, res.CAFingerprint)
			fmt.Fprintf(out, "Release key %s (connectors pin it at registration; publish builds with 'sallyport cloud release publish')\n", res.ReleaseKeyID)
			fmt.Fprintf(out, "Key-encryption key: %s (back it up apart from the store; every instance sharing the store needs it)\n", filepath.Join(o.DataDir, datadir.KEKFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "directory for the cloud's state (must not exist or be empty)")
	f.StringVar(&o.Name, "name", "", "DNS name of the cloud, e.g. sallyport.example.com")
	f.StringVar(&o.Tenant, "tenant", "", "domain of the first tenant, e.g. contoso.com")
	f.StringVar(&o.Admin, "admin", "", "first Global Administrator, USER@DOMAIN of the tenant")
	f.StringVar(&o.Label, "label", "", "the tenant's label in default host names NAME-LABEL.CLOUDNAME (default: the domain's first label)")
	f.StringVar(&pwFile, "admin-password-file", "", "file holding the administrator's password (default: generate and print one)")
	f.BoolVar(&asJSON, "json", false, "print JSON (the generated password, if any, is its admin_password)")
	f.StringVar(&o.Store, "store", "", "the store: sqlite: (default, store.db in the data directory) or postgres://USER@HOST:PORT/DATABASE without a password")
	f.StringVar(&o.StorePasswordFile, "store-password-file", "", "file (mode 0600) holding the PostgreSQL password, read at every start (default: PGPASSWORD or ~/.pgpass)")
	f.StringVar(&o.ReleasePublicKeyFile, "release-public-key", "", "public half of a release key kept offline (from 'cloud release keygen'); default: create a release key in the data directory")
	for _, n := range []string{"data-dir", "name", "tenant", "admin"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newCloudServeCmd() *cobra.Command {
	var cfg cloud.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve connectors, the admin API and applications on one TLS port",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = logger(cmd)
			srv, err := cloud.NewContext(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			if cfg.BackendTimeoutOverride > 0 {
				cfg.Logger.Warn("test-only setting: every backend application timeout is overridden", "timeout", cfg.BackendTimeoutOverride)
			}
			ln, err := srv.Listen()
			if err != nil {
				return err
			}
			if cfg.AccessLog != "" {
				// SIGHUP reopens the access log (after logrotate moved it).
				hup := make(chan os.Signal, 1)
				signal.Notify(hup, syscall.SIGHUP)
				defer func() {
					signal.Stop(hup)
					close(hup)
				}()
				go func() {
					for range hup {
						if err := srv.ReopenAccessLog(); err != nil {
							cfg.Logger.Warn("reopening the access log failed; still writing to the old file", "error", err.Error())
						}
					}
				}()
			}
			return srv.Serve(cmd.Context(), ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "", "the cloud's data directory (made by 'cloud init')")
	f.StringVar(&cfg.Listen, "listen", ":443", "TLS address for connectors, the admin API and applications")
	f.StringVar(&cfg.EdgeCertFile, "edge-cert", "", "PEM certificate chain the edge presents for the hosts it covers (e.g. *.NAME)")
	f.StringVar(&cfg.EdgeKeyFile, "edge-key", "", "PEM key of --edge-cert")
	f.StringVar(&cfg.ACMEEmail, "acme-email", "", "turn ACME on: published hosts get certificates from --acme-ca, on demand; this address gets the CA's notices (default: off)")
	f.StringVar(&cfg.ACMECA, "acme-ca", "", "ACME directory URL (default: Let's Encrypt's production directory)")
	f.StringVar(&cfg.ACMECARootFile, "acme-ca-root", "", "PEM root certificate to trust for the ACME server's HTTPS (a private ACME server's)")
	f.StringVar(&cfg.HTTPListen, "http-listen", "", "plain HTTP address with ACME on: HTTP-01 answers and a 308 to https, nothing else (default :80 with --acme-email)")
	f.StringVar(&cfg.DNSResolver, "dns-resolver", "", "HOST:PORT of the DNS server that tenants' domain proofs (TXT records) are looked up at (default: the system's resolver)")
	f.DurationVar(&cfg.InactiveAfter, "inactive-after", 2*time.Minute, "a connector without heartbeat for this long is shown inactive")
	f.DurationVar(&cfg.RemoveInactiveAfter, "remove-inactive-after", 240*time.Hour, "remove (and revoke) connectors inactive for this long")
	f.DurationVar(&cfg.FailoverTimeout, "failover-timeout", 3*time.Second, "a tunnel that stops answering for this long is taken out of rotation")
	f.StringVar(&cfg.AccessLog, "access-log", "", "append a JSON line for each application request to this file ('-': standard output; default: off); SIGHUP reopens it")
	f.IntVar(&cfg.AccessLogSample, "access-log-sample", 1, "log one in N ordinary answers (status below 500, no Sallyport error page; 0 or 1: all); failures are always logged")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address for /metrics, /healthz and /ready in plain HTTP, e.g. 127.0.0.1:9464 (default: off)")
	f.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 10*time.Second, "on SIGINT or SIGTERM, how long requests in flight may finish before the tunnels close")
	f.DurationVar(&cfg.ConnectorCertLifetime, "connector-cert-lifetime", 0, "lifetime of new connector certificates (default from cloud.json: 2160h, 90 days)")
	f.IntVar(&cfg.ConnectorLimit, "connector-limit", 1000, "most requests one connector serves at once; beyond it, other connectors or 503")
	f.Float64Var(&cfg.AccessRate, "access-rate", 20, "private access streams one user may open per second (a burst of twice that, at least 40); more are refused (rate_limited)")
	f.DurationVar(&cfg.TunnelCheckInterval, "tunnel-check-interval", 10*time.Second, "how often live tunnels are checked for an expired, revoked or replaced certificate (and closed)")
	f.IntVar(&cfg.MaxTunnelsPerConnector, "max-tunnels-per-connector", 20, "most tunnel connections one connector may hold; beyond it, refused (too_many_tunnels) and retried by the connector")
	f.IntVar(&cfg.MaxConnsPerSource, "max-conns-per-source", 1024, "most connections one client address (IPv6: its /64) may hold open on the cloud's port; beyond it, closed before the TLS handshake")
	f.IntVar(&cfg.MaxHandshakes, "max-handshakes", 0, "most TLS handshakes in progress at once on the cloud's port; a connection that finds none free within 250 ms is closed before its handshake (default 64 per CPU)")
	lim, def := &cfg.EdgeLimits, edge.DefaultLimits
	f.IntVar(&lim.MaxHeaderCount, "max-header-count", def.MaxHeaderCount, "most request header fields the edge accepts (more: 431)")
	f.IntVar(&lim.MaxHeaderBytes, "max-header-bytes", def.MaxHeaderBytes, fmt.Sprintf("most bytes of request header names and values the edge accepts, at most %d (more: 431)", edge.MaxHeaderBytesCeiling))
	f.IntVar(&lim.MaxURLLength, "max-url-length", def.MaxURLLength, "longest request path and query the edge accepts (longer: 414)")
	f.Float64Var(&lim.AppRate, "app-rate", def.AppRate, "requests per second the edge accepts for one application (more: 429)")
	f.IntVar(&lim.AppBurst, "app-burst", 0, fmt.Sprintf("requests one application may get at once before --app-rate applies (default twice --app-rate, %d with the default rate)", def.AppBurst))
	f.Float64Var(&lim.TenantRate, "tenant-rate", def.TenantRate, "requests per second the edge accepts for all the applications of one tenant (more: 429)")
	f.IntVar(&lim.TenantBurst, "tenant-burst", 0, fmt.Sprintf("requests one tenant may get at once before --tenant-rate applies (default twice --tenant-rate, %d with the default rate)", def.TenantBurst))
	f.StringVar(&cfg.Advertise, "advertise", "", "HOST:PORT at which connectors reach this instance directly, when several instances share one PostgreSQL store (default: none, a single instance)")
	f.StringVar(&cfg.Store, "store", "", "the store, in place of the one cloud.json names: sqlite: or postgres://USER@HOST:PORT/DATABASE without a password (also SALLYPORT_STORE)")
	f.StringVar(&cfg.StorePasswordFile, "store-password-file", "", "file (mode 0600) holding the PostgreSQL password, in place of cloud.json's (default: cloud.json's, else PGPASSWORD or ~/.pgpass)")
	f.DurationVar(&cfg.StoreWait, "store-wait", 2*time.Minute, "when the store cannot be reached at start, keep retrying for this long before giving up (0: give up at once)")
	f.DurationVar(&cfg.InstanceBeat, "test-instance-beat", 0, "test only: how often this instance writes its heartbeat in the store (default 2s)")
	f.MarkHidden("test-instance-beat")
	f.DurationVar(&cfg.BackendTimeoutOverride, "test-backend-timeout", 0, "test only: replace every application's backend timeout")
	f.MarkHidden("test-backend-timeout")
	cmd.MarkFlagRequired("data-dir")
	return withConfig(cmd, "cloud", "edge-key")
}

func newCloudTenantCmd() *cobra.Command {
	c := group("tenant", "Operator commands on tenants (run on the cloud machine)")
	var dataDir, tenant, label, admin, pwFile string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a tenant with its Default group and a Global Administrator (safe while serve runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			settings, err := datadir.LoadSettings(dataDir)
			if err != nil {
				return err
			}
			st, err := datadir.OpenStore(dataDir, settings)
			if err != nil {
				return err
			}
			defer st.Close()
			pw := ""
			if pwFile != "" {
				if pw, err = readSecretFile(pwFile); err != nil {
					return err
				}
			}
			res, err := datadir.AddTenant(cmd.Context(), st, tenant, label, admin, pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added tenant %s (id %s) with connector group 'Default' and Global Administrator %s.\n", tenant, res.TenantID, admin)
			if res.GeneratedPassword {
				fmt.Fprintf(cmd.OutOrStdout(), "Administrator password (shown once): %s\n", res.AdminPassword)
			}
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&dataDir, "data-dir", "", "the cloud's data directory")
	f.StringVar(&tenant, "tenant", "", "domain of the new tenant, e.g. fabrikam.com")
	f.StringVar(&admin, "admin", "", "its first Global Administrator, USER@DOMAIN")
	f.StringVar(&label, "label", "", "the tenant's label in default host names NAME-LABEL.CLOUDNAME, unique in the cloud (default: the domain's first label)")
	f.StringVar(&pwFile, "admin-password-file", "", "file holding the administrator's password (default: generate and print one)")
	for _, n := range []string{"data-dir", "tenant", "admin"} {
		add.MarkFlagRequired(n)
	}
	c.AddCommand(add, newCloudTenantDomainCmd())
	return c
}
