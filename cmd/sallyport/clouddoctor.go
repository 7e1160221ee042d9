package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/clouddoctor"
	"github.com/sallyport/sallyport/internal/problem"
)

func newCloudDoctorCmd() *cobra.Command {
	var o clouddoctor.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the cloud on its machine: data directory, store, ports, certificates, ACME account",
		Long: `Run on the cloud's machine, 'cloud doctor' checks what 'cloud serve' needs and
holds: the data directory and its settings, the store (reachable, its schema
current), the TLS port (--listen) answering as this cloud, with ACME on the
plain HTTP port (--http-listen), every certificate the cloud holds (the cloud
CA's, --edge-cert, the applications' own, the ACME certificates in the ACME
storage: expired fails, less than 14 days warns), the ACME account and the
ACME orders that failed in the last 24 hours (events 2986).

It reads the same configuration file as 'cloud serve' (keys of 'cloud serve'
that it does not use are ignored), so run it with the service's --config.
It never orders a certificate. Each step prints PASS, WARN, FAIL or SKIP with
what it checked, what it found and what to do; the exit code is 0 when no step
failed. docs/doctor.md describes the steps and the --json format.`,
		Example: `  sallyport cloud doctor --data-dir /var/lib/sallyport/cloud
  sallyport cloud doctor --config /etc/sallyport/cloud.toml --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.StepTimeout <= 0 || o.StepTimeout > 10*time.Minute {
				return problem.Newf(400, "bad_timeout", "give a duration from 1ms to 10m, for example --timeout 5s",
					"The step timeout %s is out of range", o.StepTimeout)
			}
			rep := clouddoctor.Run(cmd.Context(), o)
			write := clouddoctor.WriteTable
			where := "see the advice above"
			if asJSON {
				write, where = clouddoctor.WriteJSON, "see each step's advice in the report"
			}
			if err := write(cmd.OutOrStdout(), rep); err != nil {
				return err
			}
			if err := cmd.Context().Err(); err != nil {
				return err
			}
			return rep.Err(where)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "the cloud's data directory (as 'cloud serve')")
	f.StringVar(&o.Store, "store", "", "the store, in place of the one cloud.json names (as 'cloud serve')")
	f.StringVar(&o.StorePasswordFile, "store-password-file", "", "file holding the PostgreSQL password (as 'cloud serve')")
	f.StringVar(&o.Listen, "listen", ":443", "the TLS address 'cloud serve' listens on")
	f.StringVar(&o.HTTPListen, "http-listen", "", "the plain HTTP address 'cloud serve' listens on with ACME (default :80)")
	f.StringVar(&o.EdgeCertFile, "edge-cert", "", "the edge certificate 'cloud serve' presents (checked for expiry)")
	f.StringVar(&o.ACMEEmail, "acme-email", "", "ACME is on (as 'cloud serve'): check the ACME certificates, account and HTTP port")
	f.StringVar(&o.ACMECA, "acme-ca", "", "the ACME directory URL (as 'cloud serve'; default Let's Encrypt's production directory)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.DurationVar(&o.StepTimeout, "timeout", clouddoctor.DefaultStepTimeout, "time limit of each step")
	cmd.MarkFlagRequired("data-dir")
	return withSharedConfig(cmd, "cloud", newCloudServeCmd().Flags())
}
