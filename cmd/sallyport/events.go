package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/spf13/cobra"
)

// newEventsCmd reads an event log: the connector's (dirFlag "dir") or
// the cloud's (dirFlag "data-dir").
func newEventsCmd(dirFlag, defaultDir, what string) *cobra.Command {
	return newEventsCmdIn(dirFlag, defaultDir, what, nil)
}

// newEventsCmdIn reads the event log in the directory resolve makes of
// the directory given (the updater's, beside the connector's state
// directory); nil resolve reads it in the directory given.
func newEventsCmdIn(dirFlag, defaultDir, what string, resolve func(string) string) *cobra.Command {
	var dir, level string
	var newest int
	var since time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read the " + what + "'s event log (like Get-EventLog -Newest N -EntryType Error)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newest < 0 {
				return problem.Newf(400, "bad_newest", "give a positive number, or leave --newest out for all", "--newest %d is not a number of events", newest)
			}
			if dir == "" {
				return problem.Newf(400, "no_dir", "give the directory with --"+dirFlag, "No %s directory was given", what)
			}
			f := eventlog.Filter{Newest: newest}
			if level != "" {
				l, err := eventlog.ParseLevel(level)
				if err != nil {
					return problem.Newf(400, "bad_level", "use error, warning or information", "The level %q is not an event level", level)
				}
				f.MinLevel = l
			}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			logDir := dir
			if resolve != nil {
				logDir = resolve(dir)
			}
			evs, err := eventlog.Read(filepath.Join(logDir, "events.jsonl"), f)
			if errors.Is(err, fs.ErrNotExist) {
				evs, err = nil, nil
				if !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "No events yet in %s.\n", logDir)
					return nil
				}
			}
			if err != nil {
				return problem.Newf(400, "events_unreadable", "run it as the service's user, or give the right --"+dirFlag,
					"The event log in %s cannot be read (%v)", dir, err)
			}
			if asJSON {
				return eventlog.FormatJSON(cmd.OutOrStdout(), evs)
			}
			return eventlog.FormatTable(cmd.OutOrStdout(), evs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, dirFlag, defaultDir, "the "+what+"'s directory")
	f.IntVar(&newest, "newest", 0, "only the N newest events (after the other filters)")
	f.StringVar(&level, "level", "", "only events of this level or worse: error, warning or information")
	f.DurationVar(&since, "since", 0, "only events of the last DURATION, e.g. 1h")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
