package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/service"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/updater"
)

// updaterFlags are the flags 'connector update' and 'connector updater'
// share.
type updaterFlags struct {
	cfg updater.Config
}

func (f *updaterFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.cfg.Dir, "dir", statedir.DefaultDir(), "the connector's state directory")
	fs.StringVar(&f.cfg.UpdaterDir, "updater-dir", "", "the updater's own directory: its event log, state, locks and release key pin; keep it writable by root only (default: DIR-updater beside the state directory)")
	fs.StringVar(&f.cfg.Binary, "binary", "", "the sallyport binary the connector service runs (default: this one)")
	fs.StringVar(&f.cfg.Restart, "restart", "", "how to restart the connector: systemd:UNIT, windows:SERVICE or signal (SIGTERM to its pid; its supervisor restarts it) (default: the installed service, else signal)")
	fs.DurationVar(&f.cfg.ReadyTimeout, "ready-timeout", updater.DefaultReadyTimeout, "how long the new version has to report ready before it is rolled back")
	fs.StringVar(&f.cfg.ProxyURL, "proxy", "", "outbound proxy to the cloud (default: 'connector proxy set', else HTTPS_PROXY)")
	fs.StringVar(&f.cfg.ReleaseKeyFile, "release-key", "", "the cloud's release public key (its release.pub) to trust: pinned in the updater's directory in place of the key 'connector install' pinned (default: that pin)")
}

// open fills the defaults and makes the updater.
func (f *updaterFlags) open(cmd *cobra.Command) (*updater.Updater, error) {
	cfg := f.cfg
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err == nil {
			exe, err = filepath.EvalSymlinks(exe)
		}
		if err != nil {
			return nil, problem.Newf(400, "binary", "give the binary with --binary", "The path of this binary cannot be found (%v)", err)
		}
		cfg.Binary = exe
	}
	if cfg.Restart == "" {
		cfg.Restart = defaultRestart()
	}
	cfg.Logger = quietLogger(cmd)
	return updater.New(cfg)
}

// defaultRestart is the installed connector service, else signal.
func defaultRestart() string {
	switch runtime.GOOS {
	case "windows":
		return "windows:" + service.WindowsConnector
	case "linux":
		_, sd := os.Stat("/run/systemd/system")
		for _, dir := range []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"} {
			if _, err := os.Stat(filepath.Join(dir, service.ConnectorUnit)); err == nil && sd == nil {
				return "systemd:" + service.ConnectorUnit
			}
		}
	}
	return service.MethodSignal
}

func newUpdateCmd() *cobra.Command {
	var f updaterFlags
	var check, apply, asJSON bool
	var eventsUpdaterDir string
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Show the installed and available connector versions (--check), or install the newest now (--apply)",
		Example: `  sallyport connector update --check
  sudo sallyport connector update --apply`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check && apply {
				return problem.New(400, "bad_flags", "give one of them", "--check and --apply cannot be used together")
			}
			u, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer u.Close()
			out := cmd.OutOrStdout()
			if !apply {
				res, err := u.Check(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd, res)
				}
				fmt.Fprintf(out, "Installed: %s (%s/%s), release key %s\n", res.Installed, res.OS, res.Arch, res.KeyID)
				switch {
				case res.Newest == nil:
					fmt.Fprintln(out, "Available: nothing newer.")
				default:
					fmt.Fprintf(out, "Available: %s (%s)\n", res.Newest.Version, kindOf(res.Newest.Major))
					if res.NewestMajor != nil {
						fmt.Fprintf(out, "The updater installs %s on its own; 'sallyport connector update --apply' installs %s now.\n", res.NewestMajor.Version, res.Newest.Version)
					} else {
						fmt.Fprintf(out, "It is not installed automatically; install it with 'sallyport connector update --apply'.\n")
					}
				}
				for _, why := range res.Refused {
					fmt.Fprintln(out, "Refused: "+why)
				}
				return nil
			}
			res, err := u.Apply(cmd.Context(), false)
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(cmd, res); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(out, res.Message+".")
			}
			switch res.Outcome {
			case updater.RolledBack:
				return problem.New(500, "rolled_back", "read 'sallyport connector update events' and the connector's events", res.Message)
			case updater.TurnBusy, updater.LockBusy:
				return problem.New(409, "update_busy", "try again in a few minutes", res.Message)
			case updater.UpToDate:
				if len(res.Refused) > 0 {
					return problem.New(502, "release_refused", "ask the cloud's operator which release key signs its releases; 'sallyport connector update events' has the details", res.Refused[0])
				}
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&check, "check", false, "show the installed and available versions (the default)")
	cmd.Flags().BoolVar(&apply, "apply", false, "install the newest release now, major or not")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	events := newEventsCmdIn("dir", statedir.DefaultDir(), "updater", func(dir string) string {
		if eventsUpdaterDir != "" {
			return eventsUpdaterDir
		}
		return updater.DefaultDir(dir)
	})
	events.Flags().StringVar(&eventsUpdaterDir, "updater-dir", "", "the updater's directory (default: DIR-updater beside the state directory)")
	cmd.AddCommand(events)
	return cmd
}

func newUpdaterCmd() *cobra.Command {
	var f updaterFlags
	cmd := &cobra.Command{
		Use:   "updater",
		Short: "Run the updater service: install major releases on their own, one connector per group at a time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer u.Close()
			return service.RunService(cmd.Context(), service.WindowsUpdater, u.Run)
		},
	}
	f.add(cmd)
	cmd.Flags().DurationVar(&f.cfg.Interval, "interval", updater.DefaultInterval, "how often to check for releases (±10 % jitter)")
	return cmd
}

func kindOf(major bool) string {
	if major {
		return "major: installed automatically"
	}
	return "minor: installed on request"
}

func printJSON(cmd *cobra.Command, v any) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), string(js))
	return nil
}
