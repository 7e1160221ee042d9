package main

import (
	"bytes"
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/doctor"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/statedir"
)

// The diagnostics bundle ('connector diag') carries the doctor's report.
func init() {
	doctorJSON = func(ctx context.Context, dir string) ([]byte, error) {
		var buf bytes.Buffer
		err := doctor.WriteJSON(&buf, doctor.Run(ctx, doctor.Options{Dir: dir}))
		return buf.Bytes(), err
	}
}

func newDoctorCmd() *cobra.Command {
	var o doctor.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Walk the troubleshooting flowchart: state, DNS, TCP, TLS, registration, clock, group, applications, events",
		Long: `Run from the connector's machine, 'doctor' checks, step by step, what an
administrator would check by hand: the trust certificate, name resolution of
the cloud, the TCP port (the telnet test), the TLS handshake (version, TLS
inspection), registration and group at the cloud, the clock, and for each
application of the group whether its internal URL loads from this machine and
how fast, against its timeout; then the event log's errors of the last hour.

Each step prints PASS, WARN, FAIL or SKIP with what it checked, what it found
and what to do. The exit code is 0 when no step failed (warnings allowed).
docs/doctor.md describes the steps and the --json format.`,
		Example: `  sallyport connector doctor
  sallyport connector doctor --app web --timeout 30s
  sallyport connector doctor --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.StepTimeout <= 0 || o.StepTimeout > 10*time.Minute {
				return problem.Newf(400, "bad_timeout", "give a duration from 1ms to 10m, for example --timeout 5s",
					"The step timeout %s is out of range", o.StepTimeout)
			}
			rep := doctor.Run(cmd.Context(), o)
			out := cmd.OutOrStdout()
			var err error
			if asJSON {
				err = doctor.WriteJSON(out, rep)
			} else {
				err = doctor.WriteTable(out, rep)
			}
			if err != nil {
				return err
			}
			if ctxErr := cmd.Context().Err(); ctxErr != nil {
				return ctxErr
			}
			where := "see the advice above"
			if asJSON {
				where = "see each step's advice in the report"
			}
			return rep.Err(where)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", statedir.DefaultDir(), "the connector's state directory")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.StringVar(&o.App, "app", "", "check only this application of the group")
	f.DurationVar(&o.StepTimeout, "timeout", doctor.DefaultStepTimeout, "time limit of each step")
	return cmd
}
