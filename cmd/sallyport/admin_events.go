package main

import (
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/admincli"
	"github.com/sallyport/sallyport/internal/api"
)

func newAdminEventsCmd() *cobra.Command {
	var level, id, since, until, connector, app, requestID string
	var limit int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read your organisation's events in the cloud's event log, newest first",
		Example: `  sallyport admin events --level warning --since 1h
  sallyport admin events --id 2700 --app web
  sallyport admin events --request-id 3b1f0c8e2a9d4e7f6a5b4c3d`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"level": level, "id": id, "since": since, "until": until, "connector": connector, "app": app, "request_id": requestID} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			return c.ListEvents(cmd.Context(), output(cmd), q)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&level, "level", "", "only events of this level or worse: error, warning or information")
	f.StringVar(&id, "id", "", "only these event ids, separated by commas (2700,2108)")
	f.StringVar(&since, "since", "", "only events since a duration back from now (1h) or a time in RFC 3339")
	f.StringVar(&until, "until", "", "only events until a duration back from now or a time in RFC 3339")
	f.StringVar(&connector, "connector", "", "only events naming this connector id")
	f.StringVar(&app, "app", "", "only events of this application")
	f.StringVar(&requestID, "request-id", "", "only events of this request id")
	f.IntVar(&limit, "limit", api.DefaultEventLimit, "the newest N events that pass the filters, 1 to 1000")
	return cmd
}

func newAdminUpdatesCmd() *cobra.Command {
	return &cobra.Command{
		Use: "updates", Short: "Show which connector runs what, the update turns, halted rollouts and published releases", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ShowUpdates(cmd.Context(), output(cmd))
		}),
	}
}
