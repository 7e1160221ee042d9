package admincli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/sallyport/sallyport/internal/api"
)

// yesNo is a boolean in a table.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ShowUser prints a user with its second factor and user groups.
func (c *Client) ShowUser(ctx context.Context, o Output, name string) error {
	var d api.UserDetail
	if err := c.Do(ctx, http.MethodGet, "/users/"+url.PathEscape(name), nil, &d); err != nil {
		return err
	}
	return o.Emit(d, func(tw *tabwriter.Writer) { printUser(tw, d) })
}

func printUser(tw *tabwriter.Writer, d api.UserDetail) {
	mfa := yesNo(d.MFAEnrolled)
	if d.MFAEnrolled && !d.MFAEnrolledAt.IsZero() {
		mfa += ", since " + when(d.MFAEnrolledAt)
	}
	ext := d.External
	if ext == "" {
		ext = "none (a local account)"
	}
	rows := [][2]string{{"User", d.Name}, {"ID", d.ID}, {"Role", d.Role}, {"Email", dash(d.Email)}, {"Display name", dash(d.DisplayName)},
		{"Disabled", yesNo(d.Disabled)}, {"MFA enrolled", mfa}, {"External identity", ext},
		{fmt.Sprintf("User groups (%d)", len(d.UserGroups)), dash(strings.Join(d.UserGroups, ", "))}, {"Created", when(d.CreatedAt)}}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
}

// DeleteUser deletes a user with its sessions, memberships and assignments.
func (c *Client) DeleteUser(ctx context.Context, o Output, name string) error {
	if err := c.Do(ctx, http.MethodDelete, "/users/"+url.PathEscape(name), nil, nil); err != nil {
		return err
	}
	return o.Emit(map[string]string{"deleted": name}, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Deleted user %s with its sessions, memberships of user groups and assignments.\n", strings.ToLower(strings.TrimSpace(name)))
	})
}

// UserAction disables, enables or resets the second factor of a user
// (action "disable", "enable" or "reset-mfa") and prints what the user
// sees next.
func (c *Client) UserAction(ctx context.Context, o Output, name, action string) error {
	var d api.UserDetail
	if err := c.Do(ctx, http.MethodPost, "/users/"+url.PathEscape(name)+"/"+action, nil, &d); err != nil {
		return err
	}
	done := map[string]string{"disable": "Disabled", "enable": "Enabled", "reset-mfa": "Reset the second factor of"}[action]
	return o.Emit(d, func(tw *tabwriter.Writer) {
		ended := ""
		if action != "enable" {
			ended = fmt.Sprintf(" (%d session%s ended)", d.SessionsEnded, plural(d.SessionsEnded))
		}
		fmt.Fprintf(tw, "%s user %s%s.\n", done, d.Name, ended)
		if d.Note != "" {
			fmt.Fprintf(tw, "%s.\n", upperFirst(d.Note))
		}
	})
}

// upperFirst capitalises the first letter of an ASCII sentence.
func upperFirst(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// ShowTenant prints the tenant's sign-in settings.
func (c *Client) ShowTenant(ctx context.Context, o Output) error {
	var ts api.TenantSettings
	if err := c.Do(ctx, http.MethodGet, "/tenant", nil, &ts); err != nil {
		return err
	}
	return o.Emit(ts, func(tw *tabwriter.Writer) { printTenant(tw, ts) })
}

// SetTenant changes the tenant's sign-in settings.
func (c *Client) SetTenant(ctx context.Context, o Output, in api.UpdateTenantSettingsRequest) error {
	var ts api.TenantSettings
	if err := c.Do(ctx, http.MethodPatch, "/tenant", in, &ts); err != nil {
		return err
	}
	return o.Emit(ts, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Updated the sign-in settings of %s.\n", ts.Tenant)
		printTenant(tw, ts)
	})
}

func printTenant(tw *tabwriter.Writer, ts api.TenantSettings) {
	def := func(v string, d bool) string {
		if d {
			return v + " (default)"
		}
		return v
	}
	rows := [][2]string{{"Tenant", ts.Tenant}, {"MFA required", yesNo(ts.RequireMFA)},
		{"Session lifetime", def(shortDuration(ts.SessionLifetime), ts.SessionLifetimeDefault)},
		{"Session idle timeout", def(shortDuration(ts.SessionIdle), ts.SessionIdleDefault)}}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
}

// shortDuration drops the zero minutes and seconds of a Go duration:
// "12h0m0s" is "12h", "1h30m0s" is "1h30m".
func shortDuration(d string) string {
	if strings.HasSuffix(d, "m0s") {
		d = strings.TrimSuffix(d, "0s")
	}
	if strings.HasSuffix(d, "h0m") {
		d = strings.TrimSuffix(d, "0m")
	}
	return d
}
