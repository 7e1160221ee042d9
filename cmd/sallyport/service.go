package main

import (
	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/service"
)

func newInstallCmd() *cobra.Command {
	def := service.DefaultOptions()
	var o service.Options
	var noStart bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the connector and its updater as services (systemd units on Linux, Windows services), see docs/install.md",
		Long: `Install the connector as a service: on Linux the system user, the binary, the state
directory and two systemd units (sallyport-connector, sallyport-updater); on Windows two
services (SallyportConnector, SallyportUpdater). Needs root (Administrator on Windows).
It starts them when the connector is registered, else it prints how to register it.
Running it again updates the installation. See docs/install.md.`,
		Example: `  sudo sallyport connector install
  sudo sallyport connector install --user svc-sallyport --dir /srv/sallyport/connector --no-updater`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Start = !noStart
			return service.Install(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.StateDir, "dir", def.StateDir, "the connector's state directory")
	f.StringVar(&o.User, "user", def.User, "the account the connector runs as (Linux: a system user, created if missing)")
	f.StringVar(&o.Binary, "binary", def.Binary, "where to install the sallyport binary the services run")
	f.BoolVar(&o.NoUpdater, "no-updater", false, "do not install the updater service")
	f.StringVar(&o.ReleaseKeyFile, "release-key", "", "the cloud's release public key (its release.pub) for the updater to pin (default: the key of the connector's registration, if registered)")
	f.BoolVar(&noStart, "no-start", false, "do not start the services, even if the connector is registered")
	f.StringVar(&o.Root, "root", "", "write every file under this directory and run no system command (packaging and tests)")
	f.MarkHidden("root")
	return cmd
}

func newUninstallCmd() *cobra.Command {
	var o service.Options
	var purge bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop and remove the connector's services and the binary install copied (the state directory stays unless --purge)",
		Long: `Stop and remove the services 'connector install' made, and the binary it copied.
The state directory (the connector's registration) stays, and so does the user, unless
--purge. Paths not given are those recorded at install (/etc/sallyport/install.json on
Linux, %ProgramData%\Sallyport\install.json on Windows), else the defaults.`,
		Example: `  sudo sallyport connector uninstall
  sudo sallyport connector uninstall --purge`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return service.Uninstall(cmd.Context(), o, purge, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&purge, "purge", false, "also remove the state directory (the registration: the connector must be registered again) and the user install created")
	f.StringVar(&o.StateDir, "dir", "", "the connector's state directory (default: as installed)")
	f.StringVar(&o.User, "user", "", "the account the connector runs as (default: as installed)")
	f.StringVar(&o.Binary, "binary", "", "the installed binary (default: as installed)")
	f.StringVar(&o.Root, "root", "", "work on files under this directory and run no system command (packaging and tests)")
	f.MarkHidden("root")
	return cmd
}
