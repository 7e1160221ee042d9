package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
)

// domainsView is the data of the domains page.
type domainsView struct {
	Domains []api.Domain
	Domain  string // typed in the add form
	Error   string // the API's sentence when it refused a form
	Failed  string // the domain whose verification failed
}

// showDomains renders the domains page with v's form and error.
func (c *Console) showDomains(w http.ResponseWriter, r *http.Request, u User, status int, v domainsView) error {
	if err := c.Call(r, u, http.MethodGet, "/domains", nil, &v.Domains); err != nil {
		return err
	}
	c.render(w, r, u, status, "domains", "domains", v)
	return nil
}

// domainsPage lists the tenant's domains with the TXT record that proves
// each pending one, and the form that adds one.
func (c *Console) domainsPage(w http.ResponseWriter, r *http.Request, u User) error {
	return c.showDomains(w, r, u, http.StatusOK, domainsView{})
}

// addDomain claims a domain (POST /api/v1/domains).
func (c *Console) addDomain(w http.ResponseWriter, r *http.Request, u User) error {
	name := strings.TrimSpace(r.PostForm.Get("domain"))
	var d api.Domain
	if err := c.Call(r, u, http.MethodPost, "/domains", api.CreateDomainRequest{Domain: name}, &d); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showDomains(w, r, u, ae.Status, domainsView{Domain: name, Error: ae.Message})
	}
	if d.Status == "verified" {
		return c.done(w, r, Prefix+"/domains", fmt.Sprintf("Added %s, already proven: publish applications under it.", d.Domain))
	}
	return c.done(w, r, Prefix+"/domains#domain-"+d.Domain, fmt.Sprintf("Added %s: create the TXT record %s with the value %s at its DNS provider, then press Verify.", d.Domain, d.TXTName, d.TXTValue))
}

// verifyDomain looks up a domain's TXT record (POST
// /api/v1/domains/{domain}/verify); when it is not there yet, the page
// shows the API's sentence.
func (c *Console) verifyDomain(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("domain")
	var d api.Domain
	if err := c.Call(r, u, http.MethodPost, "/domains/"+url.PathEscape(name)+"/verify", nil, &d); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showDomains(w, r, u, ae.Status, domainsView{Error: ae.Message, Failed: name})
	}
	return c.done(w, r, Prefix+"/domains", fmt.Sprintf("%s is proven: publish applications under it (you may now remove its TXT record).", d.Domain))
}

// deleteDomainPage asks for confirmation before a domain is given up.
func (c *Console) deleteDomainPage(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("domain")
	var ds []api.Domain
	if err := c.Call(r, u, http.MethodGet, "/domains", nil, &ds); err != nil {
		return err
	}
	var d *api.Domain
	for i := range ds {
		if strings.EqualFold(ds[i].Domain, name) {
			d = &ds[i]
		}
	}
	if d == nil {
		return &APIError{Status: http.StatusNotFound, Code: "no_domain",
			Message: fmt.Sprintf("There is no domain %s in %s: open the Domains page to see the tenant's domains.", truncate(name, 100), u.Tenant)}
	}
	what := fmt.Sprintf("%s gives up %s (pending): its TXT record no longer proves anything.", u.Tenant, d.Domain)
	if d.Status == "verified" {
		what = fmt.Sprintf("%s gives up %s: no application can be published under it any more (the API refuses while one is).", u.Tenant, d.Domain)
	}
	c.render(w, r, u, http.StatusOK, "confirm-action", "domains", actionConfirm{
		Heading: "Delete domain " + d.Domain, What: what,
		Action: Prefix + "/domains/" + url.PathEscape(d.Domain) + "/delete", Button: "Delete " + d.Domain, Back: Prefix + "/domains"})
	return nil
}

// deleteDomain gives a domain up.
func (c *Console) deleteDomain(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("domain")
	if err := c.Call(r, u, http.MethodDelete, "/domains/"+url.PathEscape(name), nil, nil); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		return c.showDomains(w, r, u, ae.Status, domainsView{Error: ae.Message, Failed: name})
	}
	return c.done(w, r, Prefix+"/domains", fmt.Sprintf("Deleted the domain %s.", strings.ToLower(name)))
}
