package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
)

// groupRow is a connector group with the applications that use it.
type groupRow struct {
	api.Group
	AppNames []string
}

// groupsView is the data of the groups page: the list and the create
// form (with what was typed and the API's refusal, if any).
type groupsView struct {
	Groups []groupRow
	Name   string
	Err    string
}

// groupRows lists the groups (GET /api/v1/groups) with the names of the
// applications of each (GET /api/v1/apps).
func (c *Console) groupRows(r *http.Request, u User) ([]groupRow, []api.App, error) {
	var gs []api.Group
	if err := c.Call(r, u, http.MethodGet, "/groups", nil, &gs); err != nil {
		return nil, nil, err
	}
	var apps []api.App
	if err := c.Call(r, u, http.MethodGet, "/apps", nil, &apps); err != nil {
		return nil, nil, err
	}
	rows := make([]groupRow, 0, len(gs))
	for _, g := range gs {
		row := groupRow{Group: g}
		for _, a := range apps {
			if a.Group == g.Name {
				row.AppNames = append(row.AppNames, a.Name)
			}
		}
		rows = append(rows, row)
	}
	return rows, apps, nil
}

// groupsPage lists the connector groups, with the form to create one.
func (c *Console) groupsPage(w http.ResponseWriter, r *http.Request, u User) error {
	return c.showGroups(w, r, u, http.StatusOK, "", "")
}

func (c *Console) showGroups(w http.ResponseWriter, r *http.Request, u User, status int, name, msg string) error {
	rows, _, err := c.groupRows(r, u)
	if err != nil {
		return err
	}
	c.render(w, r, u, status, "groups", "groups", groupsView{Groups: rows, Name: name, Err: msg})
	return nil
}

// createGroup creates a connector group (POST /api/v1/groups); a refusal
// is shown next to the form with the name typed.
func (c *Console) createGroup(w http.ResponseWriter, r *http.Request, u User) error {
	name := formValue(r, "name")
	var g api.Group
	err := c.Call(r, u, http.MethodPost, "/groups", api.CreateGroupRequest{Name: name}, &g)
	var ae *APIError
	if errors.As(err, &ae) {
		return c.showGroups(w, r, u, ae.Status, name, ae.Message)
	}
	if err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/groups/"+url.PathEscape(g.Name), fmt.Sprintf("Created connector group '%s'.", g.Name))
}

// groupView is the data of a group's page.
type groupView struct {
	G          groupRow
	Connectors []connectorRow
	NewName    string // what was typed in the rename form
	Err        string // the API's refusal of the rename or the deletion
}

// findGroup is the group named r's {name}, with its connectors and
// applications; the API's own sentence when there is none.
func (c *Console) findGroup(r *http.Request, u User) (groupView, error) {
	name := r.PathValue("name")
	rows, _, err := c.groupRows(r, u)
	if err != nil {
		return groupView{}, err
	}
	// The exact name, else the same name in another case (the API
	// compares group names without regard to case).
	found := -1
	for i, g := range rows {
		if g.Name == name || found < 0 && strings.EqualFold(g.Name, name) {
			found = i
		}
	}
	if found >= 0 {
		g := rows[found]
		v := groupView{G: g, NewName: g.Name}
		var cs []api.Connector
		if err := c.Call(r, u, http.MethodGet, "/connectors", nil, &cs); err != nil {
			return groupView{}, err
		}
		for _, x := range cs {
			if x.Group == g.Name {
				v.Connectors = append(v.Connectors, c.connectorRow(x))
			}
		}
		return v, nil
	}
	return groupView{}, &APIError{Status: http.StatusNotFound, Code: "no_group",
		Message: fmt.Sprintf("There is no connector group '%s' in %s: open the list of connector groups, or create it there.", truncate(name, 100), u.Tenant)}
}

// groupPage shows a group: its connectors, its applications, the rename
// form and a link to delete it.
func (c *Console) groupPage(w http.ResponseWriter, r *http.Request, u User) error {
	v, err := c.findGroup(r, u)
	if err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "group", "groups", v)
	return nil
}

// renameGroup renames a group (PATCH /api/v1/groups/{name}); a refusal is
// shown next to the form with the name typed.
func (c *Console) renameGroup(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("name")
	newName := formValue(r, "name")
	var g api.Group
	err := c.Call(r, u, http.MethodPatch, "/groups/"+url.PathEscape(name), api.UpdateGroupRequest{Name: newName}, &g)
	var ae *APIError
	if errors.As(err, &ae) {
		v, ferr := c.findGroup(r, u)
		if ferr != nil {
			return err
		}
		v.NewName, v.Err = newName, ae.Message
		c.render(w, r, u, ae.Status, "group", "groups", v)
		return nil
	}
	if err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/groups/"+url.PathEscape(g.Name), fmt.Sprintf("Renamed connector group '%s' to '%s'.", name, g.Name))
}

// deleteGroupPage asks to confirm deleting a group.
func (c *Console) deleteGroupPage(w http.ResponseWriter, r *http.Request, u User) error {
	v, err := c.findGroup(r, u)
	if err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "group-delete", "groups", v)
	return nil
}

// deleteGroup deletes a group (DELETE /api/v1/groups/{name}). The API
// refuses a group that connectors or applications still use, naming
// them and what to do: the confirmation page shows that sentence.
func (c *Console) deleteGroup(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("name")
	err := c.Call(r, u, http.MethodDelete, "/groups/"+url.PathEscape(name), nil, nil)
	var ae *APIError
	if errors.As(err, &ae) {
		v, ferr := c.findGroup(r, u)
		if ferr != nil {
			return err
		}
		v.Err = ae.Message
		c.render(w, r, u, ae.Status, "group-delete", "groups", v)
		return nil
	}
	if err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/groups", fmt.Sprintf("Deleted connector group '%s'.", name))
}
