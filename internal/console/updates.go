package console

import (
	"net/http"

	"github.com/sallyport/sallyport/internal/api"
)

// updatesPage shows the published releases, which connector runs what,
// and the groups' update turns and halted rollouts (GET /api/v1/updates).
// It has no form: releases are the cloud operator's, and connectors take
// their update turns themselves.
func (c *Console) updatesPage(w http.ResponseWriter, r *http.Request, u User) error {
	var v api.Updates
	if err := c.Call(r, u, http.MethodGet, "/updates", nil, &v); err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "updates", "updates", v)
	return nil
}
