package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/datadir"
)

func newCloudStoreCmd() *cobra.Command {
	c := &cobra.Command{Use: "store", Short: "Move the cloud's store (SQLite to PostgreSQL)"}
	c.AddCommand(newCloudStoreCopyCmd())
	return c
}

func newCloudStoreCopyCmd() *cobra.Command {
	var o datadir.CopyOptions
	var from string
	cmd := &cobra.Command{
		Use:   "copy",
		Short: "Copy a stopped cloud's SQLite store into an empty PostgreSQL database",
		Example: `  PGPASSWORD=... sallyport cloud store copy --from sqlite:/var/lib/sallyport/cloud \
    --to postgres://sallyport@db.example.com:5432/sallyport --switch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := datadir.ParseSQLiteSource(from)
			if err != nil {
				return err
			}
			o.DataDir = dir
			counts, err := datadir.CopyStore(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Copied the store of %s to %s:\n", dir, o.To)
			for _, c := range counts {
				fmt.Fprintf(out, "  %-20s %d\n", c.Kind, c.N)
			}
			fmt.Fprintf(out, "Not copied (short-lived or made again by use, see docs/cli.md): %s.\n", strings.Join(datadir.NotCopied, ", "))
			if o.Switch {
				fmt.Fprintf(out, "The data directory %s now uses %s; start 'sallyport cloud serve --data-dir %s'.\n", dir, o.To, dir)
			} else {
				fmt.Fprintf(out, "The data directory still uses its SQLite store; run again on an empty database with --switch to move it.\n")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the source: sqlite:DIR, DIR a stopped cloud's data directory")
	f.StringVar(&o.To, "to", "", "the target: postgres://USER@HOST:PORT/DATABASE without a password, an empty database")
	f.StringVar(&o.ToPasswordFile, "to-password-file", "", "file (mode 0600) holding the target's password (default: PGPASSWORD or ~/.pgpass)")
	f.BoolVar(&o.Switch, "switch", false, "after the copy, point the data directory's settings at the target (without it they are left as they are)")
	for _, n := range []string{"from", "to"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}
