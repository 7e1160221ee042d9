package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/api"
)

// certWarning is how long before its certificate expires a connector's
// page warns about it.
const certWarning = 14 * 24 * time.Hour

// connectorRow is a connector as the pages show it.
type connectorRow struct {
	api.Connector
	CertDaysLeft int  // whole days until the certificate expires
	CertSoon     bool // it expires within certWarning (or has expired)
	CertExpired  bool
}

func (c *Console) connectorRow(x api.Connector) connectorRow {
	row := connectorRow{Connector: x}
	if !x.CertExpiresAt.IsZero() {
		left := x.CertExpiresAt.Sub(c.cfg.Now())
		row.CertDaysLeft = int(left / (24 * time.Hour))
		row.CertSoon = left < certWarning
		row.CertExpired = left <= 0
	}
	return row
}

// connectorsView is the data of the connectors page.
type connectorsView struct {
	Connectors []connectorRow
}

// connectorsPage lists the tenant's connectors (GET /api/v1/connectors).
func (c *Console) connectorsPage(w http.ResponseWriter, r *http.Request, u User) error {
	var cs []api.Connector
	if err := c.Call(r, u, http.MethodGet, "/connectors", nil, &cs); err != nil {
		return err
	}
	v := connectorsView{Connectors: make([]connectorRow, 0, len(cs))}
	for _, x := range cs {
		v.Connectors = append(v.Connectors, c.connectorRow(x))
	}
	c.render(w, r, u, http.StatusOK, "connectors", "connectors", v)
	return nil
}

// connectorView is the data of a connector's page.
type connectorView struct {
	C        connectorRow
	Groups   []api.Group
	Group    string // the group chosen in the move form
	MoveErr  string // the API's refusal of the move
	Protocol string // the tunnel protocol as text
	// Events are the connector's last events from the cloud's side
	// (GET /api/v1/events?connector=ID); EventsErr is the API's sentence
	// when it could not give them (the page shows the rest).
	Events    api.EventList
	EventsErr string
	EventsFor string // the period, as the heading says it
}

// connectorEvents is how far back, and how many of, a connector's events
// its page shows; the events page shows more.
const (
	connectorEventsSince = "24h"
	connectorEventsLimit = 10
)

// connectorPage shows one connector (GET /api/v1/connectors/{id}) with
// the form to move it to another group and a link to delete it.
func (c *Console) connectorPage(w http.ResponseWriter, r *http.Request, u User) error {
	return c.showConnector(w, r, u, http.StatusOK, "", "")
}

// showConnector renders a connector's page; moveErr, with status, is the
// API's refusal of a move to group.
func (c *Console) showConnector(w http.ResponseWriter, r *http.Request, u User, status int, group, moveErr string) error {
	var x api.Connector
	if err := c.Call(r, u, http.MethodGet, "/connectors/"+url.PathEscape(r.PathValue("id")), nil, &x); err != nil {
		return err
	}
	v := connectorView{C: c.connectorRow(x), Group: group, MoveErr: moveErr, Protocol: "not connected"}
	if v.Group == "" {
		v.Group = x.Group
	}
	if x.TunnelProtocol != 0 {
		v.Protocol = fmt.Sprintf("version %d", x.TunnelProtocol)
	}
	if err := c.Call(r, u, http.MethodGet, "/groups", nil, &v.Groups); err != nil {
		return err
	}
	v.EventsFor = "24 hours"
	q := url.Values{"connector": {x.ID}, "since": {connectorEventsSince}, "limit": {fmt.Sprint(connectorEventsLimit)}}
	if err := c.Call(r, u, http.MethodGet, "/events?"+q.Encode(), nil, &v.Events); err != nil {
		var ae *APIError
		if !errors.As(err, &ae) {
			return err
		}
		v.EventsErr = ae.Message
	}
	c.render(w, r, u, status, "connector", "connectors", v)
	return nil
}

// moveConnector moves a connector to the group chosen
// (POST /api/v1/connectors/{id}/move); a refusal is shown on the
// connector's page next to the form.
func (c *Console) moveConnector(w http.ResponseWriter, r *http.Request, u User) error {
	id := r.PathValue("id")
	group := formValue(r, "group")
	var x api.Connector
	err := c.Call(r, u, http.MethodPost, "/connectors/"+url.PathEscape(id)+"/move", api.MoveConnectorRequest{Group: group}, &x)
	// A refusal is shown next to the form (when the connector itself is
	// gone, showing the page fails with the API's sentence about that).
	var ae *APIError
	if errors.As(err, &ae) {
		return c.showConnector(w, r, u, ae.Status, group, ae.Message)
	}
	if err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/connectors/"+url.PathEscape(x.ID), fmt.Sprintf("Moved connector %s to group '%s'.", x.ID, x.Group))
}

// deleteConnectorPage asks to confirm deleting a connector.
func (c *Console) deleteConnectorPage(w http.ResponseWriter, r *http.Request, u User) error {
	var x api.Connector
	if err := c.Call(r, u, http.MethodGet, "/connectors/"+url.PathEscape(r.PathValue("id")), nil, &x); err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "connector-delete", "connectors", c.connectorRow(x))
	return nil
}

// deleteConnector deletes a connector (DELETE /api/v1/connectors/{id}):
// its certificate is revoked and its connections are closed.
func (c *Console) deleteConnector(w http.ResponseWriter, r *http.Request, u User) error {
	id := r.PathValue("id")
	if err := c.Call(r, u, http.MethodDelete, "/connectors/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/connectors", fmt.Sprintf("Deleted connector %s; its certificate is revoked and its connections are closed.", truncate(id, 100)))
}

// maxField bounds one field of a form (the API checks it again).
const maxField = 1024

// formValue is a form field, trimmed and cut to maxField.
func formValue(r *http.Request, name string) string {
	v := strings.TrimSpace(r.PostFormValue(name))
	if len(v) > maxField {
		v = strings.ToValidUTF8(v[:maxField], "")
	}
	return v
}
