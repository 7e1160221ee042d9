// Command sallyport is the one binary of Sallyport: the cloud service, the
// connector, the admin CLI and the demo. This package only wires flags to
// the internal packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startCPUProfile()
	defer stopProfile()
	root := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "sallyport: "+describe(err))
		stop()
		stopProfile()
		os.Exit(1)
	}
}

// describe turns any error into the one sentence shown to the user.
func describe(err error) string {
	if p, ok := problem.As(err); ok {
		return p.Error()
	}
	if errors.Is(err, context.Canceled) {
		return "Interrupted before the command finished."
	}
	msg := err.Error()
	// cobra's own usage errors
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "invalid argument", "accepts ", "requires ", "flag needs an argument", "bad flag syntax", "if any flags in the group", "at least one of the flags in the group"} {
		if strings.HasPrefix(msg, prefix) {
			return usageSentence(msg)
		}
	}
	return fmt.Sprintf("The command failed: %s; run it again with --verbose for details.", msg)
}

func usageSentence(msg string) string {
	msg = strings.TrimSuffix(strings.TrimSpace(msg), ".")
	if i := strings.Index(msg, "\nRun '"); i >= 0 {
		msg = msg[:i]
	}
	return fmt.Sprintf("The command line is not valid: %s; run the command with --help to see its usage.", msg)
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "sallyport",
		Short: "Sallyport: a self-hosted application proxy with private network connectors",
		Long: `Sallyport publishes internal web apps through a cloud service and connectors that
dial out from private networks: nothing listens inbound at the site.

Start with 'sallyport demo', then see docs/cli.md.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version.Version,
	}
	root.SetVersionTemplate(version.String() + "\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return err })
	root.PersistentFlags().Bool("verbose", false, "log debug details to standard error")
	root.AddCommand(newVersionCmd(), newDemoCmd(), newCloudCmd(), newConnectorCmd(), newAdminCmd(), newAccessCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				js, err := json.MarshalIndent(version.Get(), "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(js))
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (what the updater reads from a new build before installing it)")
	return cmd
}
