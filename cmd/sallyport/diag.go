package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/connector"
	"github.com/sallyport/sallyport/internal/diag"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/updater"
)

// doctorJSON runs the doctor on a state directory and returns its JSON
// report; set by the doctor command's file.
var doctorJSON func(ctx context.Context, dir string) ([]byte, error)

func newDiagCmd() *cobra.Command {
	var dir, out, metrics string
	cmd := &cobra.Command{
		Use:   "diag --out FILE.zip",
		Short: "Write a diagnostics bundle for support: version, trust settings, doctor report, events, metrics — never a key, token or password",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(filepath.Join(dir, statedir.TrustFile)); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s holds no registration; the bundle will say so\n", dir)
			}
			o := diag.Options{Dir: dir, UpdaterDir: updater.DefaultDir(dir), MetricsURL: metrics}
			if doctorJSON != nil {
				o.Doctor = func(ctx context.Context) ([]byte, error) { return doctorJSON(ctx, dir) }
			}
			var buf bytes.Buffer
			names, err := diag.Write(cmd.Context(), &buf, o)
			if err != nil {
				return err
			}
			if err := pki.WriteFileAtomic(out, buf.Bytes(), 0o600); err != nil {
				return problem.Newf(400, "diag_unwritable", "choose another --out path", "The bundle %s cannot be written (%v)", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s (%d files, %d bytes): %v\n", out, len(names), buf.Len(), names)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", statedir.DefaultDir(), "the connector's state directory")
	f.StringVar(&out, "out", "", "the zip file to write")
	f.StringVar(&metrics, "metrics-url", "http://"+connector.DefaultMetricsListen, "the running connector's metrics endpoint ('' to skip)")
	cmd.MarkFlagRequired("out")
	return cmd
}
