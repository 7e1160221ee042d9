package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/admincli"
	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/problem"
)

func newAdminCmd() *cobra.Command {
	c := group("admin", "Administer a cloud over its admin API (sign in first with 'admin login')")
	c.PersistentFlags().Bool("json", false, "print JSON instead of tables")
	c.AddCommand(newLoginCmd(), newOverviewCmd(), newUserCmd(), newUserGroupCmd(), newGroupCmd(), newAppCmd(), newAdminConnectorCmd(), newTokenCmd(), newDomainCmd(), newRequestCmd(), newAdminTenantCmd())
	c.AddCommand(newIdpCmd())
	c.AddCommand(newAdminEventsCmd(), newAdminUpdatesCmd())
	return c
}

func output(cmd *cobra.Command) admincli.Output {
	j, _ := cmd.Flags().GetBool("json")
	return admincli.Output{W: cmd.OutOrStdout(), JSON: j}
}

// withClient runs f with a client from the saved sign-in profile.
func withClient(f func(cmd *cobra.Command, c *admincli.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		p, err := admincli.LoadProfile()
		if err != nil {
			return err
		}
		c, err := admincli.NewClient(p)
		if err != nil {
			return err
		}
		return f(cmd, c, args)
	}
}

func newLoginCmd() *cobra.Command {
	var o admincli.LoginOptions
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to a cloud and keep the token (0600) for later admin commands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd, pwStdin, "Password for "+o.User+": ")
			if err != nil {
				return err
			}
			o.Password = pw
			p, path, err := admincli.Login(cmd.Context(), o)
			if err != nil {
				return err
			}
			if output(cmd).JSON {
				return printJSON(cmd, struct {
					Cloud     string    `json:"cloud"`
					User      string    `json:"user"`
					Tenant    string    `json:"tenant"`
					ExpiresAt time.Time `json:"expires_at"`
					Profile   string    `json:"profile"`
				}{p.CloudURL, p.User, p.Tenant, p.ExpiresAt, path})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Signed in to %s as %s (tenant %s) until %s; profile saved in %s.\n",
				p.CloudURL, p.User, p.Tenant, p.ExpiresAt.Local().Format("2006-01-02 15:04"), path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.CloudURL, "cloud", "", "the cloud's URL, https://HOST[:PORT]")
	f.StringVar(&o.User, "user", "", "your user name, USER@DOMAIN")
	f.BoolVar(&pwStdin, "password-stdin", false, "read the password from standard input")
	f.StringVar(&o.CAFile, "ca-file", "", "the cloud's CA certificate (cloud-ca.pem) to pin")
	f.StringVar(&o.CAFingerprint, "ca-fingerprint", "", "or the cloud CA's fingerprint, sha256:HEX")
	cmd.MarkFlagRequired("cloud")
	cmd.MarkFlagRequired("user")
	cmd.MarkFlagsMutuallyExclusive("ca-file", "ca-fingerprint")
	return cmd
}

func newUserCmd() *cobra.Command {
	c := group("user", "Manage the users of your tenant")
	var role, email, display string
	var pwStdin bool
	create := &cobra.Command{
		Use:   "create USER@DOMAIN",
		Short: "Create a user (Global Administrators only)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			pw, err := readPassword(cmd, pwStdin, "Password for the new user "+args[0]+": ")
			if err != nil {
				return err
			}
			return c.CreateUser(cmd.Context(), output(cmd), api.CreateUserRequest{Name: args[0], Role: role, Password: pw, Email: email, DisplayName: display})
		}),
	}
	create.Flags().StringVar(&role, "role", "user", "global-admin, app-admin or user")
	create.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the new user's password from standard input")
	create.Flags().StringVar(&email, "email", "", "the user's email address, sent to backends (X-Sallyport-Email)")
	create.Flags().StringVar(&display, "display-name", "", "the user's full name, shown on sign-in pages and sent to backends")
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ListUsers(cmd.Context(), output(cmd))
		}),
	}
	show := &cobra.Command{
		Use: "show USER@DOMAIN", Short: "Show a user: role, email, status, second factor, user groups (Global Administrators only)", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.ShowUser(cmd.Context(), output(cmd), args[0])
		}),
	}
	del := &cobra.Command{
		Use: "delete USER@DOMAIN", Short: "Delete a user with its sessions, memberships and assignments (Global Administrators only)", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.DeleteUser(cmd.Context(), output(cmd), args[0])
		}),
	}
	action := func(use, short string) *cobra.Command {
		return &cobra.Command{
			Use: use + " USER@DOMAIN", Short: short, Args: cobra.ExactArgs(1),
			RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
				return c.UserAction(cmd.Context(), output(cmd), args[0], use)
			}),
		}
	}
	c.AddCommand(create, list, show, del,
		action("disable", "Disable a user: ends all its sessions, and it cannot sign in until enabled (Global Administrators only)"),
		action("enable", "Enable a disabled user again (Global Administrators only)"),
		action("reset-mfa", "Remove a user's second factor and end its sessions: it enrols again at its next sign-in (Global Administrators only)"))
	return c
}

func newAdminTenantCmd() *cobra.Command {
	c := group("tenant", "Show and change your tenant's sign-in settings")
	show := &cobra.Command{
		Use: "show", Short: "Show the tenant's sign-in settings, defaults included (Global Administrators only)", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ShowTenant(cmd.Context(), output(cmd))
		}),
	}
	var mfa bool
	var lifetime, idle string
	set := &cobra.Command{
		Use:   "set",
		Short: "Change the tenant's sign-in settings; the others stay (Global Administrators only)",
		Example: `  sallyport admin tenant set --require-mfa
  sallyport admin tenant set --session-lifetime 8h --session-idle 30m
  sallyport admin tenant set --session-lifetime default`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			var in api.UpdateTenantSettingsRequest
			if cmd.Flags().Changed("require-mfa") {
				in.RequireMFA = &mfa
			}
			if cmd.Flags().Changed("session-lifetime") {
				in.SessionLifetime = &lifetime
			}
			if cmd.Flags().Changed("session-idle") {
				in.SessionIdle = &idle
			}
			if in == (api.UpdateTenantSettingsRequest{}) {
				return problem.New(400, "nothing_to_change", "give --require-mfa, --session-lifetime or --session-idle", "No setting was given to change")
			}
			return c.SetTenant(cmd.Context(), output(cmd), in)
		}),
	}
	f := set.Flags()
	f.BoolVar(&mfa, "require-mfa", false, "every local user must sign in with a second factor (TOTP), enrolling at the next sign-in")
	f.StringVar(&lifetime, "session-lifetime", "", "how long a sign-in lasts at most, 5m to 720h, or 'default' (12h)")
	f.StringVar(&idle, "session-idle", "", "end a session unused this long, 1m to the lifetime, or 'default' (1h)")
	c.AddCommand(show, set)
	return c
}

func newGroupCmd() *cobra.Command {
	c := group("group", "Manage connector groups")
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a connector group", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.CreateGroup(cmd.Context(), output(cmd), args[0])
		}),
	}
	list := &cobra.Command{
		Use: "list", Short: "List connector groups with their connectors and applications", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ListGroups(cmd.Context(), output(cmd))
		}),
	}
	rename := &cobra.Command{
		Use: "rename NAME NEW-NAME", Short: "Rename a connector group", Args: cobra.ExactArgs(2),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.RenameGroup(cmd.Context(), output(cmd), args[0], args[1])
		}),
	}
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a connector group no application or connector uses", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.DeleteGroup(cmd.Context(), output(cmd), args[0])
		}),
	}
	c.AddCommand(create, list, rename, del)
	return c
}

func newAppCmd() *cobra.Command {
	c := group("app", "Publish and manage applications")
	var in api.CreateAppRequest
	var certFile, keyFile string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Publish an internal URL, or create a network application (tcp, udp) for private access, through a connector group",
		Example: `  sallyport admin app create web --internal-url http://intranet.corp:8080/ --group Default
  sallyport admin app create erp --internal-url https://erp.corp/ --external-host erp.contoso.com --timeout long
  sallyport admin app create db --type tcp --internal-address db.corp:5432
  sallyport admin app create ssh --type tcp --internal-address 10.1.0.0/24:22 --internal-address '*.lab.corp:22'
  sallyport admin app create dns --type udp --internal-address dns.corp:53`,
		Args: cobra.ExactArgs(1),
		// The command line is checked before the sign-in is read: a
		// usage error is told as such, signed in or not.
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if in.Type != "tcp" && in.Type != "udp" && in.InternalURL == "" && len(in.InternalAddresses) == 0 {
				return errors.New(`required flag(s) "internal-url" not set (A web application needs --internal-url; a network application takes --type tcp or udp with --internal-address HOST:PORT)`)
			}
			return nil
		},
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			in.Name = args[0]
			if in.Type == "tcp" || in.Type == "udp" {
				// A network application: the web defaults do not apply.
				if !cmd.Flags().Changed("timeout") {
					in.Timeout = ""
				}
				if !cmd.Flags().Changed("pre-auth") {
					in.PreAuth = ""
				}
			} else if in.InternalURL == "" && len(in.InternalAddresses) == 0 {
				return problem.New(400, "missing_internal_url", "give --internal-url URL, or --type tcp (or udp) with --internal-address HOST:PORT for a network application",
					"A web application needs --internal-url")
			}
			if (certFile == "") != (keyFile == "") {
				return problem.New(400, "bad_certificate", "give both or neither", "Only one of --cert-file and --key-file was given")
			}
			if certFile != "" {
				cert, err1 := os.ReadFile(certFile)
				key, err2 := os.ReadFile(keyFile)
				if err1 != nil || err2 != nil {
					return problem.Newf(400, "bad_certificate", "check the paths", "The certificate or key file cannot be read (%v)", firstErr(err1, err2))
				}
				in.CertPEM, in.KeyPEM = string(cert), string(key)
			}
			return c.CreateApp(cmd.Context(), output(cmd), in)
		}),
	}
	cf := create.Flags()
	cf.StringVar(&in.InternalURL, "internal-url", "", "URL of the application as the connector's machine reaches it (web applications)")
	cf.StringVar(&in.Type, "type", "http", "http (a web application), or tcp or udp (a network application of private access, with --internal-address)")
	cf.StringArrayVar(&in.InternalAddresses, "internal-address", nil, "a network application's destination, HOST:PORT or HOST:LOW-HIGH with HOST a name, *.DOMAIN, an IP address or a CIDR prefix (repeat for more, at most 64)")
	cf.StringVar(&in.Group, "group", "", "connector group that serves it (default 'Default')")
	cf.StringVar(&in.ExternalHost, "external-host", "", "external host name: one ending in -TENANTLABEL.CLOUDNAME, or under a domain the tenant proved ('admin domain add'); default NAME-TENANTLABEL.CLOUDNAME")
	cf.StringVar(&in.Timeout, "timeout", "default", "backend application timeout: default (85 s) or long (180 s)")
	cf.StringVar(&in.BackendProxy, "backend-proxy", "", "forward proxy the connector sends this application's requests through, http://HOST:PORT")
	cf.BoolVar(&in.Affinity, "affinity", false, "session affinity: keep each browser on one connector of the group (cookie)")
	cf.StringVar(&certFile, "cert-file", "", "PEM certificate for the external host (default: the cloud's certificate, which covers only the default names NAME-TENANTLABEL.CLOUDNAME)")
	cf.BoolVar(&in.DetailedErrors, "detailed-errors", false, "error pages show the internal detail (internal URL, connector) to anyone, for the app's developers")
	cf.StringVar(&keyFile, "key-file", "", "PEM key of --cert-file")
	cf.BoolVar(&in.KeepAuthorization, "keep-authorization", false, "send a signed-in client's access token (Authorization: Bearer) on to the backend; by default the edge removes it")
	cf.StringVar(&in.Description, "description", "", "a short text for users, shown under the application's tile in My Apps (up to 200 printable characters)")
	cf.StringVar(&in.PreAuth, "pre-auth", "sallyport", "pre-authentication: sallyport (users sign in at the cloud; only assigned users get through) or passthrough (anyone who knows the URL reaches the application)")

	var up api.UpdateAppRequest
	var upURL, upGroup, upTimeout string
	var upAffinity bool
	var upBackendProxy string
	var upDetailed bool
	var upPreAuth string
	var upKeepAuth bool
	var upDescription string
	var upAddresses []string
	update := &cobra.Command{
		Use: "update NAME", Short: "Change an application's internal URL or internal addresses, group, timeout, session affinity, backend proxy, error pages, pre-authentication or description", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			if cmd.Flags().Changed("internal-address") {
				up.InternalAddresses = &upAddresses
			}
			if cmd.Flags().Changed("internal-url") {
				up.InternalURL = &upURL
			}
			if cmd.Flags().Changed("group") {
				up.Group = &upGroup
			}
			if cmd.Flags().Changed("timeout") {
				up.Timeout = &upTimeout
			}
			if cmd.Flags().Changed("affinity") {
				up.Affinity = &upAffinity
			}
			if cmd.Flags().Changed("backend-proxy") {
				up.BackendProxy = &upBackendProxy
			}
			if cmd.Flags().Changed("detailed-errors") {
				up.DetailedErrors = &upDetailed
			}
			if cmd.Flags().Changed("pre-auth") {
				up.PreAuth = &upPreAuth
			}
			if cmd.Flags().Changed("keep-authorization") {
				up.KeepAuthorization = &upKeepAuth
			}
			if cmd.Flags().Changed("description") {
				up.Description = &upDescription
			}
			return c.UpdateApp(cmd.Context(), output(cmd), args[0], up)
		}),
	}
	update.Flags().StringVar(&upURL, "internal-url", "", "new internal URL")
	update.Flags().StringArrayVar(&upAddresses, "internal-address", nil, "a network application's new internal addresses, HOST:PORT (repeat for more): they replace the list")
	update.Flags().StringVar(&upGroup, "group", "", "new connector group")
	update.Flags().StringVar(&upTimeout, "timeout", "", "default (85 s) or long (180 s)")
	update.Flags().StringVar(&upBackendProxy, "backend-proxy", "", "forward proxy for the backend, http://HOST:PORT ('' to remove)")
	update.Flags().BoolVar(&upAffinity, "affinity", false, "session affinity on (--affinity) or off (--affinity=false)")
	update.Flags().BoolVar(&upDetailed, "detailed-errors", false, "detailed error pages on (--detailed-errors) or off (--detailed-errors=false)")
	update.Flags().BoolVar(&upKeepAuth, "keep-authorization", false, "send a client's access token on to the backend (--keep-authorization) or remove it (--keep-authorization=false)")
	update.Flags().StringVar(&upDescription, "description", "", "new text under the application's tile in My Apps ('' to remove)")
	update.Flags().StringVar(&upPreAuth, "pre-auth", "", "sallyport (sign-in at the cloud, assigned users only) or passthrough (anyone who knows the URL); default: unchanged")

	list := &cobra.Command{
		Use: "list", Short: "List applications", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ListApps(cmd.Context(), output(cmd))
		}),
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show one application and its assignments", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.ShowApp(cmd.Context(), output(cmd), args[0])
		}),
	}
	del := &cobra.Command{
		Use: "delete NAME", Short: "Stop publishing an application", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.DeleteApp(cmd.Context(), output(cmd), args[0])
		}),
	}
	diagnose := &cobra.Command{
		Use: "diagnose NAME", Short: "Show an application's group, its connectors' health and its recent errors", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.DiagnoseApp(cmd.Context(), output(cmd), args[0])
		}),
	}
	c.AddCommand(create, update, list, show, del, diagnose)
	c.AddCommand(newAssignCmds()...)
	return c
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func newAdminConnectorCmd() *cobra.Command {
	c := group("connector", "List, inspect and remove connectors")
	list := &cobra.Command{
		Use: "list", Short: "List connectors with status, group, version and certificate expiry", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ListConnectors(cmd.Context(), output(cmd))
		}),
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show one connector", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.ShowConnector(cmd.Context(), output(cmd), args[0])
		}),
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "Remove a connector now: revoke its certificate and close its connections", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.DeleteConnector(cmd.Context(), output(cmd), args[0])
		}),
	}
	var group string
	move := &cobra.Command{
		Use: "move ID --group GROUP", Short: "Move a connector to another group without registering it again", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.MoveConnector(cmd.Context(), output(cmd), args[0], group)
		}),
	}
	move.Flags().StringVar(&group, "group", "", "the group to move it to")
	move.MarkFlagRequired("group")
	c.AddCommand(list, show, del, move)
	return c
}

func newTokenCmd() *cobra.Command {
	c := group("token", "Create, list and revoke registration tokens (connector registration without a password)")
	var in api.CreateRegistrationTokenRequest
	var expires string
	var uses int
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a registration token for a connector group (shown once)",
		Long: `Create a registration token: 'sallyport connector register --token-file FILE' then registers a
connector in the token's group without any user name or password (unattended installs).
The token is printed once and only its hash is kept. It allows one registration and lives
24 hours unless --uses and --expires say otherwise (at most 30 days).`,
		Example: `  sallyport admin token create --group Branch
  sallyport admin token create --group Default --expires 7d --uses 20
  sallyport admin token create --group Default --expires 2h --uses 0   # any number of uses for 2 hours`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			sec, err := admincli.ParseLifetime(expires)
			if err != nil {
				return err
			}
			in.ExpiresInSeconds, in.MaxUses = &sec, &uses
			return c.CreateToken(cmd.Context(), output(cmd), in)
		}),
	}
	cf := create.Flags()
	cf.StringVar(&in.Group, "group", "", "connector group the registered connectors join (default 'Default')")
	cf.StringVar(&expires, "expires", "24h", "lifetime: a duration such as 30m, 24h or 7d; at most 30d")
	cf.IntVar(&uses, "uses", api.DefaultTokenMaxUses, "registrations it allows, 1 to 10000; 0 for any number until it expires")
	list := &cobra.Command{
		Use: "list", Short: "List registration tokens with their group, expiry, uses and state (never the tokens)", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ListTokens(cmd.Context(), output(cmd))
		}),
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a registration token now", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.RevokeToken(cmd.Context(), output(cmd), args[0])
		}),
	}
	c.AddCommand(create, list, revoke)
	return c
}

func newOverviewCmd() *cobra.Command {
	return &cobra.Command{
		Use: "overview", Short: "Print what needs attention, the connectors by group and the applications' health of the last hour", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.Overview(cmd.Context(), output(cmd))
		}),
	}
}

func newRequestCmd() *cobra.Command {
	c := group("request", "Look into requests the edge answered with an error page")
	show := &cobra.Command{
		Use: "show REQUEST-ID", Short: "Print the whole story of one failed request (the id on its error page)", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.ShowRequest(cmd.Context(), output(cmd), args[0])
		}),
	}
	c.AddCommand(show)
	return c
}
