package admincli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/sallyport/sallyport/internal/api"
)

// ListEvents prints the tenant's events that pass q (GET /events: the
// API checks the filters), newest first.
func (c *Client) ListEvents(ctx context.Context, o Output, q url.Values) error {
	path := "/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l api.EventList
	if err := c.Do(ctx, http.MethodGet, path, nil, &l); err != nil {
		return err
	}
	return o.Emit(l, func(tw *tabwriter.Writer) {
		if len(l.Events) == 0 {
			fmt.Fprintln(tw, "No event of your organisation passes these filters.")
			return
		}
		fmt.Fprintln(tw, "TIME\tLEVEL\tID\tMESSAGE\tDETAILS")
		for _, ev := range l.Events {
			keys := make([]string, 0, len(ev.Fields))
			for k := range ev.Fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var details []string
			for _, k := range keys {
				details = append(details, k+"="+ev.Fields[k])
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", ev.Time.Local().Format("2006-01-02 15:04:05"), ev.Level, ev.ID,
				oneLine(ev.Message), dash(oneLine(strings.Join(details, " "))))
		}
		if l.More {
			fmt.Fprintf(tw, "Only the newest %d events are shown: narrow the filters or raise --limit (at most %d).\n", len(l.Events), api.MaxEventLimit)
		}
	})
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace(s)
}

// ShowUpdates prints which connector runs what, the update turns, the
// halted rollouts and the published releases (GET /updates).
func (c *Client) ShowUpdates(ctx context.Context, o Output) error {
	var u api.Updates
	if err := c.Do(ctx, http.MethodGet, "/updates", nil, &u); err != nil {
		return err
	}
	return o.Emit(u, func(tw *tabwriter.Writer) {
		if len(u.Connectors) == 0 {
			fmt.Fprintln(tw, "No connector is registered yet.")
		} else {
			fmt.Fprintln(tw, "CONNECTOR\tHOST NAME\tGROUP\tSTATUS\tVERSION\tUPDATE")
			for _, x := range u.Connectors {
				state := x.State
				if x.Latest != "" && x.State != "up to date" && x.State != "unknown version" {
					state += " (" + x.Latest + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, dash(x.Hostname), x.Group, x.Status, dash(x.Version), state)
			}
		}
		fmt.Fprintln(tw)
		if len(u.Turns) == 0 {
			fmt.Fprintln(tw, "No group is updating.")
		} else {
			fmt.Fprintln(tw, "GROUP\tUPDATING\tVERSION\tTAKEN\tLEASE")
			for _, x := range u.Turns {
				lease := "until " + when(x.ExpiresAt)
				if x.Expired {
					lease = "ended " + when(x.ExpiresAt)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Group, x.ConnectorID, x.Version, when(x.TakenAt), lease)
			}
		}
		fmt.Fprintln(tw)
		if len(u.Halts) == 0 {
			fmt.Fprintln(tw, "No rollout is halted.")
		} else {
			fmt.Fprintln(tw, "GROUP\tHALTED RELEASE\tROLLED BACK BY\tWHEN")
			for _, x := range u.Halts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Group, x.Version, x.ConnectorID, when(x.HaltedAt))
			}
		}
		fmt.Fprintln(tw)
		if len(u.Releases) == 0 {
			fmt.Fprintln(tw, "No release is published yet.")
			return
		}
		fmt.Fprintln(tw, "RELEASE\tPLATFORM\tTYPE\tPUBLISHED\tHALTED IN")
		for _, x := range u.Releases {
			kind := "minor"
			if x.Major {
				kind = "major"
			}
			fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\n", x.Version, x.OS, x.Arch, kind, when(x.PublishedAt), dash(strings.Join(x.HaltedIn, ", ")))
		}
	})
}
