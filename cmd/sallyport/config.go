package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sallyport/sallyport/internal/config"
)

// withConfig gives a service command --config FILE (default
// config.DefaultPath for name, which may be missing) and --print-config:
// before the command runs, the environment and the file fill in the flags
// the command line left unset (internal/config); --print-config prints the
// result and exits without starting. secretFiles are the flags naming a
// file with a secret (a private key): one the file or the environment
// names must be readable by its owner only.
func withConfig(cmd *cobra.Command, name string, secretFiles ...string) *cobra.Command {
	return withSharedConfig(cmd, name, nil, secretFiles...)
}

// withSharedConfig is withConfig for a command that reads another
// command's file (others: that command's flags): their keys are accepted
// and ignored.
func withSharedConfig(cmd *cobra.Command, name string, others *pflag.FlagSet, secretFiles ...string) *cobra.Command {
	var path string
	var printCfg bool
	var res *config.Result
	f := cmd.Flags()
	f.StringVar(&path, "config", config.DefaultPath(runtime.GOOS, name), "TOML configuration file whose keys are this command's long flag names (docs/config.md); the default file may be missing, one given must exist; '' reads none")
	f.BoolVar(&printCfg, "print-config", false, "print the effective settings, each with where it came from (flag, env, file:line, default), and exit without starting")
	for _, n := range secretFiles {
		config.MarkSecretFile(f, n)
	}
	run := cmd.RunE
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if printCfg {
			// A missing required setting is shown (empty), not refused.
			cmd.Flags().VisitAll(func(fl *pflag.Flag) { delete(fl.Annotations, cobra.BashCompOneRequiredFlag) })
		}
		var err error
		res, err = config.Apply(cmd.Flags(), config.Options{
			Command:  strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "),
			Path:     path,
			Explicit: cmd.Flags().Changed("config"),
			Skip:     []string{"config", "print-config"},
			Others:   otherKeys(others),
		})
		if err == nil && res.Unreadable && !printCfg {
			fmt.Fprintf(cmd.ErrOrStderr(), "sallyport: note: %s\n", res.FileNote())
		}
		return err
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if printCfg {
			return res.Print(cmd.OutOrStdout())
		}
		return run(cmd, args)
	}
	return cmd
}

// otherKeys are the keys of another command's flags (none for nil).
func otherKeys(fs *pflag.FlagSet) []string {
	if fs == nil {
		return nil
	}
	return config.Keys(fs, "config", "print-config")
}
