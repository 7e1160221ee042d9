package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/cloud"
	"github.com/sallyport/sallyport/internal/datadir"
)

// instanceJSON is one line of 'cloud instance list --json'.
type instanceJSON struct {
	ID          string    `json:"id"`
	Advertise   string    `json:"advertise"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	Alive       bool      `json:"alive"`
}

func newCloudInstanceCmd() *cobra.Command {
	c := group("instance", "Operator commands on the cloud's instances sharing one store (see docs/scale-out.md)")
	var dataDir string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the instances whose heartbeat is in the store, alive or silent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			settings, err := datadir.LoadSettings(dataDir)
			if err != nil {
				return err
			}
			st, err := datadir.OpenStore(dataDir, settings)
			if err != nil {
				return err
			}
			defer st.Close()
			ins, err := st.ListInstances(cmd.Context(), time.Time{})
			if err != nil {
				return err
			}
			now := time.Now()
			out := cmd.OutOrStdout()
			rows := make([]instanceJSON, 0, len(ins))
			for _, in := range ins {
				rows = append(rows, instanceJSON{ID: in.ID, Advertise: in.Advertise, StartedAt: in.StartedAt, HeartbeatAt: in.HeartbeatAt,
					Alive: now.Sub(in.HeartbeatAt) < cloud.InstanceGoneAfter})
			}
			if asJSON {
				js, _ := json.MarshalIndent(rows, "", "  ")
				fmt.Fprintln(out, string(js))
				return nil
			}
			if len(rows) == 0 {
				fmt.Fprintln(out, "No instance has written its heartbeat in this store: start one with 'sallyport cloud serve'.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INSTANCE\tADVERTISE\tSTATE\tSTARTED\tLAST HEARTBEAT")
			for _, r := range rows {
				state := "alive"
				if !r.Alive {
					state = "silent"
				}
				adv := r.Advertise
				if adv == "" {
					adv = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s ago)\n", r.ID, adv, state, r.StartedAt.Format(time.RFC3339),
					r.HeartbeatAt.Format(time.RFC3339), now.Sub(r.HeartbeatAt).Round(time.Second))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&dataDir, "data-dir", "", "the cloud's data directory (of any of its instances)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.MarkFlagRequired("data-dir")
	c.AddCommand(list)
	return c
}
