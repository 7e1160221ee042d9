package admincli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sallyport/sallyport/internal/api"
)

// Output writes results as tables (default) or JSON.
type Output struct {
	W    io.Writer
	JSON bool
}

// Emit writes v as JSON, or calls table to print it.
func (o Output) Emit(v any, table func(tw *tabwriter.Writer)) error {
	if o.JSON {
		enc := json.NewEncoder(o.W)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(o.W, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// ListUsers prints the tenant's users.
func (c *Client) ListUsers(ctx context.Context, o Output) error {
	var us []api.User
	if err := c.Do(ctx, http.MethodGet, "/users", nil, &us); err != nil {
		return err
	}
	return o.Emit(us, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, when(u.CreatedAt))
		}
	})
}

// CreateUser creates a user.
func (c *Client) CreateUser(ctx context.Context, o Output, in api.CreateUserRequest) error {
	var u api.User
	if err := c.Do(ctx, http.MethodPost, "/users", in, &u); err != nil {
		return err
	}
	return o.Emit(u, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Created user %s with role %s.\n", u.Name, u.Role) })
}

// ListGroups prints the connector groups.
func (c *Client) ListGroups(ctx context.Context, o Output) error {
	var gs []api.Group
	if err := c.Do(ctx, http.MethodGet, "/groups", nil, &gs); err != nil {
		return err
	}
	return o.Emit(gs, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NAME\tCONNECTORS\tACTIVE\tAPPS")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", g.Name, g.Connectors, g.ActiveConnectors, g.Apps)
		}
	})
}

// CreateGroup creates a connector group.
func (c *Client) CreateGroup(ctx context.Context, o Output, name string) error {
	var g api.Group
	if err := c.Do(ctx, http.MethodPost, "/groups", api.CreateGroupRequest{Name: name}, &g); err != nil {
		return err
	}
	return o.Emit(g, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Created connector group '%s'.\n", g.Name) })
}

// RenameGroup renames a connector group.
func (c *Client) RenameGroup(ctx context.Context, o Output, name, newName string) error {
	var g api.Group
	if err := c.Do(ctx, http.MethodPatch, "/groups/"+url.PathEscape(name), api.UpdateGroupRequest{Name: newName}, &g); err != nil {
		return err
	}
	return o.Emit(g, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Renamed connector group '%s' to '%s'.\n", name, g.Name) })
}

// DeleteGroup deletes a connector group.
func (c *Client) DeleteGroup(ctx context.Context, o Output, name string) error {
	if err := c.Do(ctx, http.MethodDelete, "/groups/"+url.PathEscape(name), nil, nil); err != nil {
		return err
	}
	return o.Emit(map[string]string{"deleted": name}, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Deleted connector group '%s'.\n", name) })
}

// MoveConnector assigns a connector to another group.
func (c *Client) MoveConnector(ctx context.Context, o Output, id, group string) error {
	var x api.Connector
	if err := c.Do(ctx, http.MethodPost, "/connectors/"+url.PathEscape(id)+"/move", api.MoveConnectorRequest{Group: group}, &x); err != nil {
		return err
	}
	return o.Emit(x, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Moved connector %s to group '%s'.\n", x.ID, x.Group) })
}

// CreateApp publishes an application.
func (c *Client) CreateApp(ctx context.Context, o Output, in api.CreateAppRequest) error {
	var a api.App
	if err := c.Do(ctx, http.MethodPost, "/apps", in, &a); err != nil {
		return err
	}
	return o.Emit(a, func(tw *tabwriter.Writer) {
		if isNetworkApp(a) {
			fmt.Fprintf(tw, "Created the %s application '%s' for %s (group '%s'): assigned users reach it with 'sallyport access'.\n", a.Type, a.Name, strings.Join(a.InternalAddresses, ", "), a.Group)
		} else {
			fmt.Fprintf(tw, "Published '%s': %s → %s (group '%s', timeout %s).\n", a.Name, a.ExternalURL, a.InternalURL, a.Group, a.Timeout)
		}
		if a.Note != "" {
			fmt.Fprintf(tw, "Note: %s.\n", a.Note)
		}
		if a.PublicNote != "" {
			fmt.Fprintf(tw, "Note: %s.\n", a.PublicNote)
		}
	})
}

// UpdateApp changes an application.
func (c *Client) UpdateApp(ctx context.Context, o Output, name string, in api.UpdateAppRequest) error {
	var a api.App
	if err := c.Do(ctx, http.MethodPatch, "/apps/"+url.PathEscape(name), in, &a); err != nil {
		return err
	}
	return o.Emit(a, func(tw *tabwriter.Writer) {
		if isNetworkApp(a) {
			fmt.Fprintf(tw, "Updated the %s application '%s': %s (group '%s').\n", a.Type, a.Name, strings.Join(a.InternalAddresses, ", "), a.Group)
		} else {
			fmt.Fprintf(tw, "Updated '%s': %s → %s (group '%s', timeout %s).\n", a.Name, a.ExternalURL, a.InternalURL, a.Group, a.Timeout)
		}
		if a.Note != "" {
			fmt.Fprintf(tw, "Note: %s.\n", a.Note)
		}
		if a.PublicNote != "" {
			fmt.Fprintf(tw, "Note: %s.\n", a.PublicNote)
		}
	})
}

// ListApps prints the applications.
func (c *Client) ListApps(ctx context.Context, o Output) error {
	var as []api.App
	if err := c.Do(ctx, http.MethodGet, "/apps", nil, &as); err != nil {
		return err
	}
	return o.Emit(as, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NAME\tTYPE\tEXTERNAL URL\tINTERNAL URL OR ADDRESSES\tGROUP\tTIMEOUT")
		for _, a := range as {
			if isNetworkApp(a) {
				fmt.Fprintf(tw, "%s\t%s\t-\t%s\t%s\t-\n", a.Name, a.Type, strings.Join(a.InternalAddresses, " "), a.Group)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, appType(a), a.ExternalURL, a.InternalURL, a.Group, a.Timeout)
		}
	})
}

// ShowApp prints one application with its assignments.
func (c *Client) ShowApp(ctx context.Context, o Output, name string) error {
	var d api.AppDetail
	if err := c.Do(ctx, http.MethodGet, "/apps/"+url.PathEscape(name), nil, &d); err != nil {
		return err
	}
	a := d.App
	return o.Emit(d, func(tw *tabwriter.Writer) {
		rows := [][2]string{{"Name", a.Name}, {"ID", a.ID}, {"Type", appType(a)}, {"External URL", a.ExternalURL}, {"Internal URL", a.InternalURL},
			{"Connector group", a.Group}, {"Backend timeout", a.Timeout}, {"Pre-authentication", a.PreAuth},
			{"Session affinity", fmt.Sprint(a.Affinity)}, {"Backend proxy", dash(a.BackendProxy)},
			{"Detailed error pages", fmt.Sprint(a.DetailedErrors)},
			{"Bearer to backend", fmt.Sprint(a.KeepAuthorization)}, {"Description", dash(a.Description)},
			{"Created", when(a.CreatedAt)}, {"Updated", when(a.UpdatedAt)}}
		rows = append(rows, certificateRows(d.Certificate)...)
		if isNetworkApp(a) {
			rows = [][2]string{{"Name", a.Name}, {"ID", a.ID}, {"Type", a.Type}, {"Connector group", a.Group},
				{"Pre-authentication", a.PreAuth + " (always: signed-in, assigned users only)"}, {"Description", dash(a.Description)},
				{"Created", when(a.CreatedAt)}, {"Updated", when(a.UpdatedAt)}}
		}
		for _, r := range rows {
			fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
		}
		for i, x := range a.InternalAddresses {
			label := ""
			if i == 0 {
				label = fmt.Sprintf("Internal addresses (%d):", len(a.InternalAddresses))
			}
			fmt.Fprintf(tw, "%s\t%s\n", label, x)
		}
		if len(d.Assignments) == 0 {
			fmt.Fprintln(tw, "Assignments:\tnone")
		}
		for i, x := range d.Assignments {
			label := ""
			if i == 0 {
				label = fmt.Sprintf("Assignments (%d):", len(d.Assignments))
			}
			fmt.Fprintf(tw, "%s\t%s\n", label, assigneeText(x))
		}
		if d.AssignmentsNote != "" {
			fmt.Fprintf(tw, "Note: %s.\n", d.AssignmentsNote)
		}
		if m := d.Certificate.ACME; m != nil && m.Message != "" {
			fmt.Fprintf(tw, "Note: %s.\n", m.Message)
		}
	})
}

// isNetworkApp reports whether a is a network application (tcp, udp).
func isNetworkApp(a api.App) bool { return a.Type == "tcp" || a.Type == "udp" }

// appType is a's type ("http" from a cloud that predates types).
func appType(a api.App) string {
	if a.Type == "" {
		return "http"
	}
	return a.Type
}

// certificateRows are the certificate lines of 'app show'.
func certificateRows(c api.AppCertificate) [][2]string {
	rows := [][2]string{{"Certificate", c.SourceText()}, {"Certificate names", strings.Join(c.Names, ", ")},
		{"Certificate issuer", dash(c.Issuer)}, {"Certificate expires", c.ExpiryText()}}
	if c.ACME != nil {
		state := c.ACME.State
		if c.ACME.Cause != "" {
			state += ", last order failed (" + c.ACME.Cause + ") at " + when(c.ACME.FailedAt)
		}
		rows = append(rows, [2]string{"ACME", state})
	}
	return rows
}

// DeleteApp removes an application.
func (c *Client) DeleteApp(ctx context.Context, o Output, name string) error {
	if err := c.Do(ctx, http.MethodDelete, "/apps/"+url.PathEscape(name), nil, nil); err != nil {
		return err
	}
	return o.Emit(map[string]string{"deleted": name}, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Deleted application '%s'.\n", name) })
}

// ListConnectors prints the connectors.
func (c *Client) ListConnectors(ctx context.Context, o Output) error {
	var cs []api.Connector
	if err := c.Do(ctx, http.MethodGet, "/connectors", nil, &cs); err != nil {
		return err
	}
	return o.Emit(cs, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tSTATUS\tGROUP\tHOST NAME\tVERSION\tADDRESS\tINSTANCES\tTUNNELS\tIN FLIGHT\tCERT EXPIRES\tLAST SEEN")
		for _, x := range cs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", x.ID, x.Status, x.Group, dash(x.Hostname), dash(x.Version),
				dash(x.Address), x.Instances, x.Tunnels, x.InFlight, when(x.CertExpiresAt), when(x.LastSeenAt))
		}
	})
}

// ShowConnector prints one connector.
func (c *Client) ShowConnector(ctx context.Context, o Output, id string) error {
	var x api.Connector
	if err := c.Do(ctx, http.MethodGet, "/connectors/"+url.PathEscape(id), nil, &x); err != nil {
		return err
	}
	return o.Emit(x, func(tw *tabwriter.Writer) {
		rows := [][2]string{{"ID", x.ID}, {"Status", x.Status}, {"Group", x.Group}, {"Host name", dash(x.Hostname)},
			{"Version", dash(x.Version)}, {"Address", dash(x.Address)}, {"Cloud instances", instancesText(x)}, {"Tunnels", tunnelsText(x)},
			{"In flight", fmt.Sprint(x.InFlight)}, {"Certificate expires", when(x.CertExpiresAt)},
			{"Last seen", when(x.LastSeenAt)}, {"Registered", when(x.CreatedAt)}}
		for _, r := range rows {
			fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
		}
	})
}

// instancesText is the count of cloud instances a connector holds
// tunnels to, with each when the cloud runs several.
func instancesText(x api.Connector) string {
	if len(x.ConnectedInstances) == 0 {
		return fmt.Sprint(x.Instances)
	}
	parts := make([]string, 0, len(x.ConnectedInstances))
	for _, in := range x.ConnectedInstances {
		id := dash(in.ID)
		if in.Advertise != "" {
			id += " at " + in.Advertise
		}
		parts = append(parts, fmt.Sprintf("%s (%d tunnel(s))", id, in.Tunnels))
	}
	return fmt.Sprintf("%d: %s", x.Instances, strings.Join(parts, ", "))
}

// DeleteConnector removes a connector and revokes its certificate.
func (c *Client) DeleteConnector(ctx context.Context, o Output, id string) error {
	if err := c.Do(ctx, http.MethodDelete, "/connectors/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	return o.Emit(map[string]string{"deleted": id}, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Deleted connector %s; its certificate is revoked and its connections are closed.\n", id)
	})
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// DiagnoseApp prints what the cloud knows about an application's health.
func (c *Client) DiagnoseApp(ctx context.Context, o Output, name string) error {
	var d api.AppDiagnosis
	if err := c.Do(ctx, http.MethodGet, "/apps/"+url.PathEscape(name)+"/diagnose", nil, &d); err != nil {
		return err
	}
	return o.Emit(d, func(tw *tabwriter.Writer) {
		if isNetworkApp(d.App) {
			fmt.Fprintf(tw, "Application '%s' (%s): %s, group '%s'\n\n", d.App.Name, d.App.Type, strings.Join(d.App.InternalAddresses, ", "), d.App.Group)
		} else {
			fmt.Fprintf(tw, "Application '%s': %s → %s, group '%s', timeout %s\n\n", d.App.Name, d.App.ExternalURL, d.App.InternalURL, d.App.Group, d.App.Timeout)
		}
		fmt.Fprintf(tw, "Connectors of group '%s':\n", d.App.Group)
		if len(d.Connectors) == 0 {
			fmt.Fprintln(tw, "  none")
		} else {
			fmt.Fprintln(tw, "  ID\tSTATUS\tHOST NAME\tTUNNELS\tIN FLIGHT\tLAST SEEN")
			for _, x := range d.Connectors {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%s\n", x.ID, x.Status, dash(x.Hostname), x.Tunnels, x.InFlight, when(x.LastSeenAt))
			}
		}
		if isNetworkApp(d.App) {
			networkProbesText(tw, d)
		} else {
			fmt.Fprintln(tw, "\nTest requests (GET / of the internal URL through each connected connector):")
		}
		if !isNetworkApp(d.App) && len(d.Probes) == 0 {
			fmt.Fprintln(tw, "  none: no connector of the group is connected")
		}
		for _, p := range d.Probes {
			if p.OK {
				fmt.Fprintf(tw, "  %s\tanswered %d in %d ms\n", p.Connector, p.Status, p.Millis)
			} else {
				fmt.Fprintf(tw, "  %s\tFAILED %s\trequest id %s\n  \t%s\n", p.Connector, p.Code, p.RequestID, p.Message)
			}
		}
		fmt.Fprintf(tw, "\nRecent errors (%d):\n", len(d.RecentErrors))
		for i := len(d.RecentErrors) - 1; i >= 0 && i >= len(d.RecentErrors)-5; i-- {
			e := d.RecentErrors[i]
			by := ""
			if e.Connector != "" {
				by = " · connector " + e.Connector
			}
			fmt.Fprintf(tw, "  %s\t%d %s\trequest id %s%s\n  \t%s\n", when(e.Time), e.Status, e.Code, e.RequestID, by, e.Message)
		}
		fmt.Fprintln(tw)
		if len(d.Findings) == 0 {
			fmt.Fprintln(tw, "Findings: none; the application looks healthy.")
		}
		for _, f := range d.Findings {
			fmt.Fprintf(tw, "Finding: %s.\n", f)
		}
	})
}

// networkProbesText prints a network application's probes: one line per
// connector and internal address, then the addresses not probed.
func networkProbesText(tw *tabwriter.Writer, d api.AppDiagnosis) {
	how := "a TCP connect"
	if d.App.Type == "udp" {
		how = "the name resolved and a socket opened; a DNS query on port 53"
	}
	fmt.Fprintf(tw, "\nProbes (each internal address through each connected connector: %s):\n", how)
	connected := 0
	for _, x := range d.Connectors {
		if x.Tunnels > 0 {
			connected++
		}
	}
	switch {
	case len(d.NetworkProbes) > 0:
	case connected == 0:
		fmt.Fprintln(tw, "  none: no connector of the group is connected")
	case len(d.NotProbed) > 0:
		fmt.Fprintln(tw, "  none: no internal address names one host or one address")
	default:
		fmt.Fprintln(tw, "  none this time (the application was just changed): run the diagnosis again")
	}
	for _, p := range d.NetworkProbes {
		if p.OK {
			fmt.Fprintf(tw, "  %s\t%s\tok in %d ms\n  \t\t%s\n", p.Connector, p.Destination, p.Millis, p.Message)
		} else {
			fmt.Fprintf(tw, "  %s\t%s\tFAILED %s in %d ms\n  \t\t%s\n", p.Connector, p.Destination, p.Code, p.Millis, p.Message)
		}
	}
	for _, n := range d.NotProbed {
		fmt.Fprintf(tw, "  not probed: %s\n", n)
	}
}

// tunnelsText is a connector's tunnel count with their protocol version.
func tunnelsText(x api.Connector) string {
	if x.TunnelProtocol == 0 {
		return fmt.Sprint(x.Tunnels)
	}
	return fmt.Sprintf("%d (protocol version %d)", x.Tunnels, x.TunnelProtocol)
}

// ShowRequest prints the story of one failed request.
func (c *Client) ShowRequest(ctx context.Context, o Output, id string) error {
	var st api.RequestStory
	if err := c.Do(ctx, http.MethodGet, "/requests/"+url.PathEscape(id), nil, &st); err != nil {
		return err
	}
	return o.Emit(st, func(tw *tabwriter.Writer) {
		var tried []string
		for _, x := range st.Connectors {
			s := x.ID
			if x.Hostname != "" {
				s += " (" + x.Hostname + ")"
			}
			if x.Answered {
				s += ", answered"
			}
			tried = append(tried, s)
		}
		source := "the edge"
		if st.Source == "connector" {
			source = "the connector"
		}
		page := "the public sentence"
		if st.DetailedPage {
			page = "the detailed sentence (--detailed-errors)"
		}
		rows := [][2]string{{"Request id", st.RequestID}, {"Time", st.Time.Local().Format("2006-01-02 15:04:05 MST")},
			{"Application", st.App}, {"Group", st.Group}, {"External host", st.ExternalHost}, {"Internal URL", st.InternalURL},
			{"Request", st.Method + " " + st.Host + st.Path}, {"Client", dash(st.Client)},
			{"Edge", st.Edge + "."}, {"Connectors tried", dash(strings.Join(tried, "; "))},
			{"Status", fmt.Sprintf("%d %s", st.Status, http.StatusText(st.Status))}, {"Code", st.Code},
			{"Message (from " + source + ")", st.Message}, {"Error page showed", page + ": " + st.PublicMessage}}
		for _, r := range rows {
			fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
		}
	})
}
