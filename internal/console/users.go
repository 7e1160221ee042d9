package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
)

// roleNames are the roles a user can have, as the API names them, with
// their titles.
var roleNames = []struct{ Value, Title string }{
	{"user", "User"}, {"app-admin", "Application Administrator"}, {"global-admin", "Global Administrator"},
}

// usersView is the data of the users list.
type usersView struct {
	Users []api.User
}

// usersPage lists the tenant's users.
func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, u User) error {
	var v usersView
	if err := c.Call(r, u, http.MethodGet, "/users", nil, &v.Users); err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "users", "users", v)
	return nil
}

// userForm is the new-user form: what was typed, never the password.
type userForm struct {
	Name, Role, Email, DisplayName string
}

// newUserView is the data of the new-user page.
type newUserView struct {
	Form  userForm
	Roles []struct{ Value, Title string }
	Error string
}

// newUserPage is the form that creates a user.
func (c *Console) newUserPage(w http.ResponseWriter, r *http.Request, u User) error {
	c.render(w, r, u, http.StatusOK, "usernew", "users", newUserView{Form: userForm{Role: "user"}, Roles: roleNames})
	return nil
}

// createUser creates a user with the password typed (POST /admin/users).
func (c *Console) createUser(w http.ResponseWriter, r *http.Request, u User) error {
	f := userForm{Name: strings.TrimSpace(r.PostForm.Get("name")), Role: r.PostForm.Get("role"),
		Email: strings.TrimSpace(r.PostForm.Get("email")), DisplayName: strings.TrimSpace(r.PostForm.Get("display_name"))}
	in := api.CreateUserRequest{Name: f.Name, Role: f.Role, Password: r.PostForm.Get("password"), Email: f.Email, DisplayName: f.DisplayName}
	var nu api.User
	if err := c.Call(r, u, http.MethodPost, "/users", in, &nu); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		c.render(w, r, u, ae.Status, "usernew", "users", newUserView{Form: f, Roles: roleNames, Error: ae.Message})
		return nil
	}
	return c.done(w, r, Prefix+"/users/"+url.PathEscape(nu.Name), fmt.Sprintf("Created the user %s (%s): give them their password yourself; it is not shown again.", nu.Name, roleTitle(nu.Role)))
}

// roleTitle is a role as the pages name it.
func roleTitle(role string) string { return User{Role: role}.RoleTitle() }

// userView is the data of a user's page.
type userView struct {
	User  api.UserDetail
	Role  string
	Error string // the API's sentence when it refused an action
}

// showUser renders the page of the user of r's path, with errMsg.
func (c *Console) showUser(w http.ResponseWriter, r *http.Request, u User, status int, errMsg string) error {
	v := userView{Error: errMsg}
	if err := c.Call(r, u, http.MethodGet, "/users/"+url.PathEscape(r.PathValue("name")), nil, &v.User); err != nil {
		return err
	}
	v.Role = roleTitle(v.User.Role)
	c.render(w, r, u, status, "user", "users", v)
	return nil
}

// userPage shows a user with its actions.
func (c *Console) userPage(w http.ResponseWriter, r *http.Request, u User) error {
	return c.showUser(w, r, u, http.StatusOK, "")
}

// userAction disables, enables or resets the second factor of a user
// (POST /admin/users/{name}/{action}).
func (c *Console) userAction(w http.ResponseWriter, r *http.Request, u User) error {
	name, action := r.PathValue("name"), r.PathValue("action")
	done := map[string]string{"disable": "Disabled", "enable": "Enabled", "reset-mfa": "Reset the second factor of"}[action]
	if done == "" {
		return &APIError{Status: http.StatusNotFound, Code: "not_found",
			Message: "A user can be disabled, enabled or have their second factor reset: open the user's page and use its buttons."}
	}
	var d api.UserDetail
	if err := c.Call(r, u, http.MethodPost, "/users/"+url.PathEscape(name)+"/"+action, nil, &d); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showUser(w, r, u, ae.Status, ae.Message)
	}
	msg := fmt.Sprintf("%s the user %s", done, d.Name)
	if action != "enable" {
		msg += fmt.Sprintf(" (%s ended)", countOf(d.SessionsEnded, "session"))
	}
	msg += "."
	if d.Note != "" {
		msg += " " + strings.ToUpper(d.Note[:1]) + strings.TrimSuffix(d.Note[1:], ".") + "."
	}
	return c.done(w, r, Prefix+"/users/"+url.PathEscape(d.Name), msg)
}

// deleteUserPage asks for confirmation before a user is deleted.
func (c *Console) deleteUserPage(w http.ResponseWriter, r *http.Request, u User) error {
	var d api.UserDetail
	if err := c.Call(r, u, http.MethodGet, "/users/"+url.PathEscape(r.PathValue("name")), nil, &d); err != nil {
		return err
	}
	p := Prefix + "/users/" + url.PathEscape(d.Name)
	c.render(w, r, u, http.StatusOK, "confirm-action", "users", actionConfirm{
		Heading: "Delete user " + d.Name,
		What:    fmt.Sprintf("%s is signed out everywhere and deleted with their API tokens, their memberships of user groups (%d) and their assignments; this cannot be undone.", d.Name, len(d.UserGroups)),
		Action:  p + "/delete", Button: "Delete " + d.Name, Back: p})
	return nil
}

// deleteUser deletes a user.
func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("name")
	if err := c.Call(r, u, http.MethodDelete, "/users/"+url.PathEscape(name), nil, nil); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showUser(w, r, u, ae.Status, ae.Message)
	}
	return c.done(w, r, Prefix+"/users", fmt.Sprintf("Deleted the user %s with their sessions, memberships of user groups and assignments.", strings.ToLower(name)))
}

// userGroupsView is the data of the user groups list.
type userGroupsView struct {
	Groups []api.UserGroup
	Name   string // typed in the create form
	Error  string
}

// userGroupsPage lists the user groups (Global Administrators only: the
// API refuses the others, and the page shows its sentence).
func (c *Console) userGroupsPage(w http.ResponseWriter, r *http.Request, u User) error {
	return c.showUserGroups(w, r, u, http.StatusOK, userGroupsView{})
}

func (c *Console) showUserGroups(w http.ResponseWriter, r *http.Request, u User, status int, v userGroupsView) error {
	if err := c.Call(r, u, http.MethodGet, "/user-groups", nil, &v.Groups); err != nil {
		return err
	}
	c.render(w, r, u, status, "usergroups", "user-groups", v)
	return nil
}

// createUserGroup creates a user group.
func (c *Console) createUserGroup(w http.ResponseWriter, r *http.Request, u User) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	var g api.UserGroup
	if err := c.Call(r, u, http.MethodPost, "/user-groups", api.CreateUserGroupRequest{Name: name}, &g); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showUserGroups(w, r, u, ae.Status, userGroupsView{Name: name, Error: ae.Message})
	}
	return c.done(w, r, Prefix+"/user-groups/"+url.PathEscape(g.Name), fmt.Sprintf("Created the user group '%s'.", g.Name))
}

// userGroupView is the data of a user group's page.
type userGroupView struct {
	Group api.UserGroup
	User  string // typed in the add form
	Error string
}

func (c *Console) showUserGroup(w http.ResponseWriter, r *http.Request, u User, status int, v userGroupView) error {
	if err := c.Call(r, u, http.MethodGet, "/user-groups/"+url.PathEscape(r.PathValue("name")), nil, &v.Group); err != nil {
		return err
	}
	c.render(w, r, u, status, "usergroup", "user-groups", v)
	return nil
}

// userGroupPage shows a user group with its members.
func (c *Console) userGroupPage(w http.ResponseWriter, r *http.Request, u User) error {
	return c.showUserGroup(w, r, u, http.StatusOK, userGroupView{})
}

// addMember adds a user to a user group.
func (c *Console) addMember(w http.ResponseWriter, r *http.Request, u User) error {
	name, user := r.PathValue("name"), strings.TrimSpace(r.PostForm.Get("user"))
	var g api.UserGroup
	if err := c.Call(r, u, http.MethodPost, "/user-groups/"+url.PathEscape(name)+"/members", api.AddMemberRequest{User: user}, &g); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showUserGroup(w, r, u, ae.Status, userGroupView{User: user, Error: ae.Message})
	}
	return c.done(w, r, Prefix+"/user-groups/"+url.PathEscape(g.Name), fmt.Sprintf("Added %s to the user group '%s' (%s).", strings.ToLower(user), g.Name, countOf(g.MemberCount, "member")))
}

// removeMember removes a user from a user group.
func (c *Console) removeMember(w http.ResponseWriter, r *http.Request, u User) error {
	name, user := r.PathValue("name"), r.PathValue("user")
	var g api.UserGroup
	if err := c.Call(r, u, http.MethodDelete, "/user-groups/"+url.PathEscape(name)+"/members/"+url.PathEscape(user), nil, &g); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showUserGroup(w, r, u, ae.Status, userGroupView{Error: ae.Message})
	}
	return c.done(w, r, Prefix+"/user-groups/"+url.PathEscape(g.Name), fmt.Sprintf("Removed %s from the user group '%s' (%s).", user, g.Name, countOf(g.MemberCount, "member")))
}

// deleteUserGroupPage asks for confirmation before a user group is
// deleted.
func (c *Console) deleteUserGroupPage(w http.ResponseWriter, r *http.Request, u User) error {
	var g api.UserGroup
	if err := c.Call(r, u, http.MethodGet, "/user-groups/"+url.PathEscape(r.PathValue("name")), nil, &g); err != nil {
		return err
	}
	p := Prefix + "/user-groups/" + url.PathEscape(g.Name)
	c.render(w, r, u, http.StatusOK, "confirm-action", "user-groups", actionConfirm{
		Heading: "Delete user group " + g.Name,
		What:    fmt.Sprintf("The user group '%s' is deleted with its memberships (%d) and its assignments: its members lose the applications they had only through it. The users stay.", g.Name, g.MemberCount),
		Action:  p + "/delete", Button: "Delete " + g.Name, Back: p})
	return nil
}

// deleteUserGroup deletes a user group.
func (c *Console) deleteUserGroup(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("name")
	if err := c.Call(r, u, http.MethodDelete, "/user-groups/"+url.PathEscape(name), nil, nil); err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/user-groups", fmt.Sprintf("Deleted the user group '%s' with its memberships and assignments.", name))
}
