package console

import (
	"net/http"

	"github.com/sallyport/sallyport/internal/api"
)

// overviewView is the data of the overview.
type overviewView struct {
	Connectors []api.Connector
}

// overviewPage is the admin center's first page: the connectors by group
// with their status, refreshed live.
func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request, u User) error {
	var v overviewView
	if err := c.Call(r, u, http.MethodGet, "/connectors", nil, &v.Connectors); err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "overview", "overview", v)
	return nil
}
