package main

import (
	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/admincli"
	"github.com/sallyport/sallyport/internal/api"
)

func newUserGroupCmd() *cobra.Command {
	c := group("user-group", "Manage user groups, the groups of users that applications are assigned to (not connector groups)")
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a user group (Global Administrators only)", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.CreateUserGroup(cmd.Context(), output(cmd), args[0])
		}),
	}
	list := &cobra.Command{
		Use: "list", Short: "List user groups with their member counts", Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, _ []string) error {
			return c.ListUserGroups(cmd.Context(), output(cmd))
		}),
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show a user group and its members", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.ShowUserGroup(cmd.Context(), output(cmd), args[0])
		}),
	}
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a user group, its memberships and its assignments (Global Administrators only)", Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.DeleteUserGroup(cmd.Context(), output(cmd), args[0])
		}),
	}
	add := &cobra.Command{
		Use: "add-member NAME USER@DOMAIN", Short: "Add a user of your tenant to a user group (Global Administrators only)", Args: cobra.ExactArgs(2),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.AddUserGroupMember(cmd.Context(), output(cmd), args[0], args[1])
		}),
	}
	remove := &cobra.Command{
		Use: "remove-member NAME USER@DOMAIN", Short: "Remove a user from a user group (Global Administrators only)", Args: cobra.ExactArgs(2),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.RemoveUserGroupMember(cmd.Context(), output(cmd), args[0], args[1])
		}),
	}
	c.AddCommand(create, list, show, del, add, remove)
	return c
}

// newAssignCmds returns 'app assign' and 'app unassign'.
func newAssignCmds() []*cobra.Command {
	var in, out api.AssignRequest
	assign := &cobra.Command{
		Use:   "assign NAME (--user USER@DOMAIN | --user-group GROUP)",
		Short: "Assign a user or a user group to an application (enforced once the application uses pre-authentication at the cloud)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.Assign(cmd.Context(), output(cmd), args[0], in)
		}),
	}
	unassign := &cobra.Command{
		Use:   "unassign NAME (--user USER@DOMAIN | --user-group GROUP)",
		Short: "Remove the assignment of a user or a user group to an application",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admincli.Client, args []string) error {
			return c.Unassign(cmd.Context(), output(cmd), args[0], out)
		}),
	}
	for _, x := range []struct {
		cmd *cobra.Command
		req *api.AssignRequest
	}{{assign, &in}, {unassign, &out}} {
		x.cmd.Flags().StringVar(&x.req.User, "user", "", "a user of your tenant, USER@DOMAIN")
		x.cmd.Flags().StringVar(&x.req.UserGroup, "user-group", "", "a user group of your tenant")
		x.cmd.MarkFlagsOneRequired("user", "user-group")
		x.cmd.MarkFlagsMutuallyExclusive("user", "user-group")
	}
	return []*cobra.Command{assign, unassign}
}
