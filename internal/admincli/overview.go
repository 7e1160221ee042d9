package admincli

import (
	"context"
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/sallyport/sallyport/internal/api"
)

// Overview prints what the admin center's overview shows: what needs
// attention, the connectors by group, the applications' health over the
// last hour (as the cloud instance that answers saw it).
func (c *Client) Overview(ctx context.Context, o Output) error {
	var ov api.Overview
	if err := c.Do(ctx, http.MethodGet, "/overview", nil, &ov); err != nil {
		return err
	}
	return o.Emit(ov, func(tw *tabwriter.Writer) {
		if len(ov.Attention) == 0 {
			fmt.Fprintln(tw, "Nothing needs attention.")
		} else {
			fmt.Fprintln(tw, "Needs attention:")
			for _, a := range ov.Attention {
				fmt.Fprintf(tw, "- %s.\n", a.Message)
			}
		}
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "GROUP\tCONNECTOR\tSTATUS\tHOST NAME\tVERSION\tTUNNELS\tLAST SEEN\tREQUESTS (HOUR)\tERRORS")
		for _, g := range ov.Groups {
			if len(g.Connectors) == 0 {
				fmt.Fprintf(tw, "%s\t-\t\t\t\t\t\t\t\n", g.Name)
			}
			for _, x := range g.Connectors {
				var n, errs int
				for _, m := range x.Minutes {
					n, errs = n+m.Requests, errs+m.Errors
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\n", g.Name, x.ID, x.Status, dash(x.Hostname), dash(x.Version), x.Tunnels, when(x.LastSeenAt), n, errs)
			}
		}
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "APPLICATION\tGROUP\tHEALTH\tREQUESTS (HOUR)\tERRORS\tP95\tLAST ERROR")
		for _, a := range ov.Apps {
			p95 := "-"
			switch {
			case a.P95Over:
				p95 = fmt.Sprintf(">%dms", a.P95Millis)
			case a.Requests > 0:
				p95 = fmt.Sprintf("<=%dms", a.P95Millis)
			}
			last := "-"
			if e := a.LastError; e != nil {
				last = fmt.Sprintf("%s %d %s (request %s)", when(e.Time), e.Status, e.Code, e.RequestID)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", a.Name, a.Group, a.Health, a.Requests, a.Errors, p95, last)
		}
	})
}
