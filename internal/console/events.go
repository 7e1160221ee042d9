package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
)

// eventFilters are the filters of the events page, passed to
// GET /api/v1/events as they are: the API checks them.
var eventFilters = []string{"level", "id", "since", "until", "connector", "app", "request_id", "limit"}

// eventsView is the data of the events page.
type eventsView struct {
	Filter  map[string]string // the filters as typed, by name
	Levels  []string
	List    api.EventList
	Error   string // the API's refusal of the filters, shown by the form
	Filters bool   // some filter is set
}

// eventsPage is the cloud's event log of the tenant, with its filters
// (a GET form, so the page's URL can be shared).
func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request, u User) error {
	v := eventsView{Filter: map[string]string{}, Levels: []string{"information", "warning", "error"}}
	q := url.Values{}
	for _, k := range eventFilters {
		if x := strings.TrimSpace(r.URL.Query().Get(k)); x != "" {
			v.Filter[k] = x
			q.Set(k, x)
			v.Filters = true
		}
	}
	// The API also takes warn and info; the form's select shows them.
	switch strings.ToLower(v.Filter["level"]) {
	case "warn", "warning":
		v.Filter["level"] = "warning"
	case "info", "information":
		v.Filter["level"] = "information"
	case "error":
		v.Filter["level"] = "error"
	}
	path := "/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	status := http.StatusOK
	if err := c.Call(r, u, http.MethodGet, path, nil, &v.List); err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			return err
		}
		v.Error, status = ae.Message, ae.Status
	}
	c.render(w, r, u, status, "events", "events", v)
	return nil
}

// requestView is the data of the request page.
type requestView struct {
	ID        string
	Story     *api.RequestStory
	NotFound  string // the API's sentence when it knows no such request
	Events    []api.Event
	EventsErr string
}

// requestPage is one request's story (GET /api/v1/requests/{id}, what
// 'sallyport admin request show' prints) with the events of its request
// id below it; without ?id= it is the search form alone.
func (c *Console) requestPage(w http.ResponseWriter, r *http.Request, u User) error {
	v := requestView{ID: strings.TrimSpace(r.URL.Query().Get("id"))}
	if v.ID == "" {
		c.render(w, r, u, http.StatusOK, "request", "events", v)
		return nil
	}
	status := http.StatusOK
	var st api.RequestStory
	err := c.Call(r, u, http.MethodGet, "/requests/"+url.PathEscape(v.ID), nil, &st)
	var ae *APIError
	switch {
	case err == nil:
		v.Story = &st
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		v.NotFound = ae.Message
	default:
		return err
	}
	var list api.EventList
	err = c.Call(r, u, http.MethodGet, "/events?"+url.Values{"request_id": {v.ID}}.Encode(), nil, &list)
	switch {
	case err == nil:
		v.Events = list.Events
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		v.EventsErr, status = ae.Message, ae.Status
	default:
		return err
	}
	if v.Story == nil && len(v.Events) == 0 && status == http.StatusOK {
		status = http.StatusNotFound
	}
	c.render(w, r, u, status, "request", "events", v)
	return nil
}
