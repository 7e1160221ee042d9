package main

import (
	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var o demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole Sallyport (cloud, two connectors, an internal app) in one process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Logger = quietLogger(cmd)
			o.Out = cmd.OutOrStdout()
			o.Command = demo.SelfCommand()
			return demo.Run(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "directory for the demo's state (default: a temporary one, removed at the end)")
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:8443", "address of the demo cloud (a free port is used if taken)")
	return cmd
}
