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

// ListUserGroups prints the tenant's user groups with their member counts.
func (c *Client) ListUserGroups(ctx context.Context, o Output) error {
	var gs []api.UserGroup
	if err := c.Do(ctx, http.MethodGet, "/user-groups", nil, &gs); err != nil {
		return err
	}
	return o.Emit(gs, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NAME\tMEMBERS\tCREATED")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", g.Name, g.MemberCount, when(g.CreatedAt))
		}
	})
}

// ShowUserGroup prints a user group and its members.
func (c *Client) ShowUserGroup(ctx context.Context, o Output, name string) error {
	var g api.UserGroup
	if err := c.Do(ctx, http.MethodGet, "/user-groups/"+url.PathEscape(name), nil, &g); err != nil {
		return err
	}
	return o.Emit(g, func(tw *tabwriter.Writer) { printUserGroup(tw, g) })
}

func printUserGroup(tw *tabwriter.Writer, g api.UserGroup) {
	fmt.Fprintf(tw, "User group:\t%s\n", g.Name)
	fmt.Fprintf(tw, "ID:\t%s\n", g.ID)
	fmt.Fprintf(tw, "Created:\t%s\n", when(g.CreatedAt))
	fmt.Fprintf(tw, "Members (%d):\t%s\n", g.MemberCount, dash(strings.Join(g.Members, ", ")))
}

// CreateUserGroup creates a user group.
func (c *Client) CreateUserGroup(ctx context.Context, o Output, name string) error {
	var g api.UserGroup
	if err := c.Do(ctx, http.MethodPost, "/user-groups", api.CreateUserGroupRequest{Name: name}, &g); err != nil {
		return err
	}
	return o.Emit(g, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Created user group '%s'.\n", g.Name) })
}

// DeleteUserGroup deletes a user group.
func (c *Client) DeleteUserGroup(ctx context.Context, o Output, name string) error {
	if err := c.Do(ctx, http.MethodDelete, "/user-groups/"+url.PathEscape(name), nil, nil); err != nil {
		return err
	}
	return o.Emit(map[string]string{"deleted": name}, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Deleted user group '%s' with its memberships and assignments.\n", name)
	})
}

// AddUserGroupMember adds a user to a user group.
func (c *Client) AddUserGroupMember(ctx context.Context, o Output, group, user string) error {
	var g api.UserGroup
	if err := c.Do(ctx, http.MethodPost, "/user-groups/"+url.PathEscape(group)+"/members", api.AddMemberRequest{User: user}, &g); err != nil {
		return err
	}
	return o.Emit(g, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Added %s to user group '%s' (%d member%s).\n", strings.ToLower(strings.TrimSpace(user)), g.Name, g.MemberCount, plural(g.MemberCount))
	})
}

// RemoveUserGroupMember removes a user from a user group.
func (c *Client) RemoveUserGroupMember(ctx context.Context, o Output, group, user string) error {
	var g api.UserGroup
	if err := c.Do(ctx, http.MethodDelete, "/user-groups/"+url.PathEscape(group)+"/members/"+url.PathEscape(user), nil, &g); err != nil {
		return err
	}
	return o.Emit(g, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Removed %s from user group '%s' (%d member%s).\n", strings.ToLower(strings.TrimSpace(user)), g.Name, g.MemberCount, plural(g.MemberCount))
	})
}

// Assign assigns a user or a user group to an application and prints
// whether the assignment is enforced yet.
func (c *Client) Assign(ctx context.Context, o Output, app string, in api.AssignRequest) error {
	var a api.Assignment
	if err := c.Do(ctx, http.MethodPost, "/apps/"+url.PathEscape(app)+"/assignments", in, &a); err != nil {
		return err
	}
	return o.Emit(a, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Assigned %s to '%s'.\n", assigneeText(a), app)
		if a.Note != "" {
			fmt.Fprintf(tw, "Note: %s.\n", a.Note)
		}
	})
}

// Unassign removes the assignment of a user or a user group.
func (c *Client) Unassign(ctx context.Context, o Output, app string, in api.AssignRequest) error {
	path := "/apps/" + url.PathEscape(app) + "/assignments/"
	a := api.Assignment{Kind: "user", Name: in.User}
	if in.UserGroup != "" {
		path += "user-groups/" + url.PathEscape(in.UserGroup)
		a = api.Assignment{Kind: "user-group", Name: in.UserGroup}
	} else {
		path += "users/" + url.PathEscape(in.User)
	}
	if err := c.Do(ctx, http.MethodDelete, path, nil, nil); err != nil {
		return err
	}
	return o.Emit(map[string]string{"app": app, "unassigned": a.Name, "kind": a.Kind}, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Unassigned %s from '%s'.\n", assigneeText(a), app)
	})
}

// assigneeText names an assignment's user or user group in a sentence.
func assigneeText(a api.Assignment) string {
	if a.Kind == "user-group" {
		return "user group '" + a.Name + "'"
	}
	return "user " + a.Name
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
