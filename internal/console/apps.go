package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sallyport/sallyport/internal/api"
)

// appForm is what the application form holds: the application's values,
// or what was typed when the API refused them.
type appForm struct {
	Name string
	// Type is "http", "tcp" or "udp"; Addresses a network application's
	// internal addresses, one a line, as typed.
	Type              string
	Addresses         string
	InternalURL       string
	HostName          string // the part before the chosen domain
	HostDomain        string // a proven domain, "" for the default name
	ExternalHost      string // of an existing application (not editable)
	Group             string
	Timeout           string
	PreAuth           string
	KeepAuthorization bool
	Affinity          bool
	DetailedErrors    bool
	BackendProxy      string
	Description       string
}

// appFormView is the data of the new-application page and of an
// application's page.
type appFormView struct {
	Form    appForm
	Error   string // the API's sentence when it refused the form
	Groups  []api.Group
	Domains []string // the tenant's proven domains
	Suffix  string   // the default external host's suffix, -LABEL.CLOUDNAME
	App     api.AppDetail
	// Assignee and AssignGroup are what was typed in the assign form.
	Assignee    string
	AssignGroup bool
}

// appsView is the data of the applications list.
type appsView struct {
	Apps []appRow
}

// appRow is an application of the list with its status: whether its
// connector group has an active connector.
type appRow struct {
	api.App
	Ready  bool
	Status string
}

// appsPage lists the applications.
func (c *Console) appsPage(w http.ResponseWriter, r *http.Request, u User) error {
	var apps []api.App
	if err := c.Call(r, u, http.MethodGet, "/apps", nil, &apps); err != nil {
		return err
	}
	var groups []api.Group
	if err := c.Call(r, u, http.MethodGet, "/groups", nil, &groups); err != nil {
		return err
	}
	active := map[string]int{}
	for _, g := range groups {
		active[g.Name] = g.ActiveConnectors
	}
	var v appsView
	for _, a := range apps {
		row := appRow{App: a, Ready: active[a.Group] > 0, Status: "ready: " + countOf(active[a.Group], "active connector")}
		if !row.Ready {
			row.Status = "no active connector in group '" + a.Group + "': requests get an error page"
		}
		v.Apps = append(v.Apps, row)
	}
	c.render(w, r, u, http.StatusOK, "apps", "apps", v)
	return nil
}

// appChoices fills in what the application form offers: the groups, the
// proven domains and the default name's suffix.
func (c *Console) appChoices(r *http.Request, u User, v *appFormView) error {
	if err := c.Call(r, u, http.MethodGet, "/groups", nil, &v.Groups); err != nil {
		return err
	}
	var ds []api.Domain
	if err := c.Call(r, u, http.MethodGet, "/domains", nil, &ds); err != nil {
		return err
	}
	for _, d := range ds {
		if d.Status == "verified" {
			v.Domains = append(v.Domains, d.Domain)
		}
	}
	var me api.Me
	if err := c.Call(r, u, http.MethodGet, "/me", nil, &me); err != nil {
		return err
	}
	v.Suffix = me.DefaultHostSuffix
	return nil
}

// newAppPage is the form that publishes an application.
func (c *Console) newAppPage(w http.ResponseWriter, r *http.Request, u User) error {
	v := appFormView{Form: appForm{Group: "Default", Timeout: "default", PreAuth: "sallyport"}}
	if err := c.appChoices(r, u, &v); err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "appnew", "apps", v)
	return nil
}

// readAppForm reads the application form of r.
func readAppForm(r *http.Request) appForm {
	f := r.PostForm
	return appForm{
		Name:              strings.TrimSpace(f.Get("name")),
		Type:              f.Get("type"),
		Addresses:         f.Get("internal_addresses"),
		InternalURL:       strings.TrimSpace(f.Get("internal_url")),
		HostName:          strings.TrimSpace(f.Get("host_name")),
		HostDomain:        strings.TrimSpace(f.Get("host_domain")),
		Group:             f.Get("group"),
		Timeout:           f.Get("timeout"),
		PreAuth:           f.Get("preauth"),
		KeepAuthorization: f.Get("keep_authorization") == "on",
		Affinity:          f.Get("session_affinity") == "on",
		DetailedErrors:    f.Get("detailed_errors") == "on",
		BackendProxy:      strings.TrimSpace(f.Get("backend_proxy")),
		Description:       strings.TrimSpace(f.Get("description")),
	}
}

// network reports whether the form is of a network application.
func (f appForm) network() bool { return f.Type == "tcp" || f.Type == "udp" }

// addresses are the form's internal addresses: one a line, blank lines
// left out (the API checks each, and their number).
func (f appForm) addresses() []string {
	out := []string{} // never nil: an empty list is sent as [], not left out
	for _, l := range strings.Split(f.Addresses, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// externalHost is the host the form asks for: "" (the API's default
// name) unless a proven domain is chosen, then HOSTNAME.DOMAIN, or the
// domain itself when no name is typed.
func (f appForm) externalHost() string {
	if f.HostDomain == "" {
		return ""
	}
	if f.HostName == "" {
		return f.HostDomain
	}
	return f.HostName + "." + f.HostDomain
}

// apiRefusal returns the API's refusal of a form, to show next to the
// form with its sentence and status, or nil and err when err is no
// refusal (an internal error, shown as the error page).
func apiRefusal(err error) (*APIError, error) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Code != "internal" && ae.Code != "api_error" {
		return ae, nil
	}
	return nil, err
}

// createApp publishes an application (POST /admin/apps).
func (c *Console) createApp(w http.ResponseWriter, r *http.Request, u User) error {
	f := readAppForm(r)
	in := api.CreateAppRequest{Name: f.Name, Type: f.Type, InternalURL: f.InternalURL, Group: f.Group, ExternalHost: f.externalHost(),
		Timeout: f.Timeout, PreAuth: f.PreAuth, Affinity: f.Affinity, BackendProxy: f.BackendProxy,
		DetailedErrors: f.DetailedErrors, KeepAuthorization: f.KeepAuthorization, Description: f.Description}
	if f.network() {
		// A network application: its addresses, and the web fields only
		// when they differ from the form's defaults (the API refuses them).
		in.InternalAddresses = f.addresses()
		if in.Timeout == "default" {
			in.Timeout = ""
		}
		if in.PreAuth == "sallyport" {
			in.PreAuth = ""
		}
	} else if f.Addresses != "" {
		in.InternalAddresses = f.addresses()
	}
	var a api.App
	err := c.Call(r, u, http.MethodPost, "/apps", in, &a)
	if err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		v := appFormView{Form: f, Error: ae.Message}
		if err := c.appChoices(r, u, &v); err != nil {
			return err
		}
		c.render(w, r, u, ae.Status, "appnew", "apps", v)
		return nil
	}
	if a.Type == "tcp" || a.Type == "udp" {
		return c.done(w, r, Prefix+"/apps/"+url.PathEscape(a.Name), withAPINotes(fmt.Sprintf("Created the %s application '%s' for %s.", a.Type, a.Name, strings.Join(a.InternalAddresses, ", ")), a.Note))
	}
	return c.done(w, r, Prefix+"/apps/"+url.PathEscape(a.Name), withAPINotes(fmt.Sprintf("Published '%s' at %s.", a.Name, a.ExternalURL), a.Note, a.PublicNote))
}

// withNotes adds the API's notes (sentences without their period) to msg.
func withAPINotes(msg string, notes ...string) string {
	for _, n := range notes {
		if n != "" {
			msg += " Note: " + strings.TrimSuffix(n, ".") + "."
		}
	}
	return msg
}

// appView reads the application of the page's path with the form's
// choices; f, when not nil, is what was typed.
func (c *Console) appView(r *http.Request, u User, f *appForm) (appFormView, error) {
	var v appFormView
	if err := c.Call(r, u, http.MethodGet, "/apps/"+url.PathEscape(r.PathValue("name")), nil, &v.App); err != nil {
		return v, err
	}
	if err := c.appChoices(r, u, &v); err != nil {
		return v, err
	}
	a := v.App
	v.Form = appForm{Name: a.Name, Type: a.Type, Addresses: strings.Join(a.InternalAddresses, "\n"), InternalURL: a.InternalURL, ExternalHost: a.ExternalHost, Group: a.Group, Timeout: a.Timeout,
		PreAuth: a.PreAuth, KeepAuthorization: a.KeepAuthorization, Affinity: a.Affinity, DetailedErrors: a.DetailedErrors,
		BackendProxy: a.BackendProxy, Description: a.Description}
	if f != nil {
		f.Name, f.ExternalHost, f.Type = a.Name, a.ExternalHost, a.Type
		v.Form = *f
	}
	return v, nil
}

// appPage shows an application: its settings to edit, its Test button,
// its assignments and its delete link.
func (c *Console) appPage(w http.ResponseWriter, r *http.Request, u User) error {
	v, err := c.appView(r, u, nil)
	if err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "app", "apps", v)
	return nil
}

// updateApp changes an application (POST /admin/apps/{name}).
func (c *Console) updateApp(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("name")
	f := readAppForm(r)
	in := api.UpdateAppRequest{InternalURL: &f.InternalURL, Group: &f.Group, Timeout: &f.Timeout, Affinity: &f.Affinity,
		BackendProxy: &f.BackendProxy, DetailedErrors: &f.DetailedErrors, KeepAuthorization: &f.KeepAuthorization,
		PreAuth: &f.PreAuth, Description: &f.Description}
	if f.network() {
		// The form of a network application has its addresses, group and
		// description only.
		addrs := f.addresses()
		in = api.UpdateAppRequest{InternalAddresses: &addrs, Group: &f.Group, Description: &f.Description}
	}
	var a api.App
	err := c.Call(r, u, http.MethodPatch, "/apps/"+url.PathEscape(name), in, &a)
	if err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		v, err := c.appView(r, u, &f)
		if err != nil {
			return err
		}
		v.Error = ae.Message
		c.render(w, r, u, ae.Status, "app", "apps", v)
		return nil
	}
	if a.Type == "tcp" || a.Type == "udp" {
		return c.done(w, r, Prefix+"/apps/"+url.PathEscape(a.Name), withAPINotes(fmt.Sprintf("Saved '%s': %s.", a.Name, strings.Join(a.InternalAddresses, ", ")), a.Note))
	}
	return c.done(w, r, Prefix+"/apps/"+url.PathEscape(a.Name), withAPINotes(fmt.Sprintf("Saved '%s': %s → %s.", a.Name, a.ExternalURL, a.InternalURL), a.Note, a.PublicNote))
}

// testStep is one step of an application's test, with its result.
type testStep struct {
	Name     string
	Result   string // "passed", "warning", "failed" or "not run"
	Detail   string // what was found
	Sentence string // the API's sentence: what failed and what to do
	First    bool   // the first failing step
}

// appTestView is the data of an application's test.
type appTestView struct {
	Diagnosis api.AppDiagnosis
	Steps     []testStep
	Failed    bool
	Warned    bool            // a step passed with a warning
	Errors    []api.EdgeError // the last ones, newest first
}

// testApp runs the application's diagnosis (the API's GET
// /apps/{name}/diagnose, as 'sallyport admin app diagnose') and shows it
// step by step, the first failing step marked.
func (c *Console) testApp(w http.ResponseWriter, r *http.Request, u User) error {
	var d api.AppDiagnosis
	if err := c.Call(r, u, http.MethodGet, "/apps/"+url.PathEscape(r.PathValue("name"))+"/diagnose", nil, &d); err != nil {
		return err
	}
	v := appTestView{Diagnosis: d, Steps: diagnosisSteps(d)}
	for i := range v.Steps {
		v.Warned = v.Warned || v.Steps[i].Result == "warning"
		if v.Steps[i].Result == "failed" {
			v.Steps[i].First, v.Failed = true, true
			break
		}
	}
	for i := len(d.RecentErrors) - 1; i >= 0 && len(v.Errors) < 5; i-- {
		v.Errors = append(v.Errors, d.RecentErrors[i])
	}
	c.render(w, r, u, http.StatusOK, "apptest", "apps", v)
	return nil
}

// diagnosisSteps turns a diagnosis into the steps a request goes through:
// the application is published, its group has connectors, one of them is
// connected, and requests got through. The sentences are the API's
// findings (the connectors' finding first, the last error's last).
func diagnosisSteps(d api.AppDiagnosis) []testStep {
	a := d.App
	finding := func(prefix string) string {
		for _, f := range d.Findings {
			if strings.HasPrefix(f, prefix) {
				return f + "."
			}
		}
		return ""
	}
	steps := []testStep{{Name: "The application is published", Result: "passed",
		Detail: fmt.Sprintf("%s → %s, connector group '%s', timeout %s, pre-authentication %s.", a.ExternalURL, a.InternalURL, a.Group, a.Timeout, a.PreAuth)}}
	network := a.Type == "tcp" || a.Type == "udp"
	if network {
		steps[0].Detail = fmt.Sprintf("%s application for %s, connector group '%s'.", a.Type, strings.Join(a.InternalAddresses, ", "), a.Group)
	}
	connected := 0
	for _, x := range d.Connectors {
		if x.Tunnels > 0 {
			connected++
		}
	}
	has := testStep{Name: fmt.Sprintf("Group '%s' has connectors", a.Group), Result: "passed", Detail: countOf(len(d.Connectors), "connector") + " in the group."}
	conn := testStep{Name: "A connector of the group is connected", Result: "passed", Detail: fmt.Sprintf("%d of %d connected.", connected, len(d.Connectors))}
	switch {
	case len(d.Connectors) == 0:
		has.Result, has.Detail, has.Sentence = "failed", "No connector is in the group.", finding("Group '")
		conn.Result, conn.Detail = "not run", "There is no connector to connect."
	case connected == 0:
		conn.Result, conn.Sentence = "failed", finding("No connector")
	case connected == 1:
		conn.Result, conn.Sentence = "warning", finding("Only one connector")
	}
	probe := testStep{Name: "The backend answers a test request", Result: "passed"}
	switch {
	case network:
		probe = networkProbeStep(d, connected, finding)
	case len(d.Probes) == 0 && connected == 0:
		probe.Result, probe.Detail = "not run", "No connector of the group is connected to send it."
	case len(d.Probes) == 0:
		probe.Result, probe.Detail = "not run", "The cloud sent no test request this time (the application was just changed): run Test again."
	default:
		var ok []string
		for _, p := range d.Probes {
			if !p.OK && probe.Result == "passed" {
				probe.Result = "failed"
				probe.Detail = fmt.Sprintf("GET %s through connector %s: %s (request id %s).", a.InternalURL, p.Connector, p.Code, p.RequestID)
				probe.Sentence = finding("A test request")
				if probe.Sentence == "" {
					probe.Sentence = p.Message
				}
			}
			if p.OK {
				ok = append(ok, fmt.Sprintf("%s answered %d in %d ms", p.Connector, p.Status, p.Millis))
			}
		}
		if probe.Result == "passed" {
			probe.Detail = "GET " + a.InternalURL + " through each connected connector: " + strings.Join(ok, "; ") + "."
		}
	}
	reqs := testStep{Name: "Requests reach the backend", Result: "passed", Detail: "No request failed recently."}
	if n := len(d.RecentErrors); n > 0 {
		last := d.RecentErrors[n-1]
		reqs.Result = "failed"
		reqs.Detail = fmt.Sprintf("%s failed; the last: %d %s, request id %s.", countOf(n, "recent request"), last.Status, last.Code, last.RequestID)
		reqs.Sentence = finding("The last failed request")
		if reqs.Sentence == "" {
			reqs.Sentence = last.Message
		}
	}
	if network {
		// A network application's streams are not edge requests: its
		// failures are in the probes, the events and the access log.
		reqs.Name, reqs.Detail = "Streams are counted", "The cloud counts a network application's streams and refusals in its metrics (sallyport_cloud_network_streams_total) and events, not as failed requests."
	}
	return append(steps, has, conn, probe, reqs)
}

// networkProbeStep is the step of a network application's probes: each
// internal address that names one host, through each connected connector.
func networkProbeStep(d api.AppDiagnosis, connected int, finding func(string) string) testStep {
	st := testStep{Name: "The connectors reach the internal addresses", Result: "passed"}
	skipped := ""
	if len(d.NotProbed) > 0 {
		skipped = " Not probed: " + strings.Join(d.NotProbed, "; ") + "."
	}
	switch {
	case len(d.NetworkProbes) == 0 && connected == 0:
		st.Result, st.Detail = "not run", "No connector of the group is connected to probe from."
		return st
	case len(d.NetworkProbes) == 0 && len(d.NotProbed) > 0:
		st.Result, st.Detail = "not run", "No internal address names one host or one address."+skipped
		return st
	case len(d.NetworkProbes) == 0:
		st.Result, st.Detail = "not run", "The cloud probed nothing this time (the application was just changed): run Test again."
		return st
	}
	var ok []string
	for _, p := range d.NetworkProbes {
		if p.OK {
			ok = append(ok, fmt.Sprintf("%s through %s in %d ms", p.Destination, p.Connector, p.Millis))
			continue
		}
		if st.Result == "passed" {
			st.Result = "failed"
			st.Detail = fmt.Sprintf("%s through connector %s: %s.", p.Destination, p.Connector, p.Code)
			if st.Sentence = finding("The probe of " + p.Destination + " "); st.Sentence == "" {
				st.Sentence = strings.TrimSuffix(p.Message, ".") + "."
			}
		}
	}
	if st.Result == "passed" {
		st.Detail = "Reached: " + strings.Join(ok, "; ") + "." + skipped
	} else {
		st.Detail += skipped
	}
	return st
}

// countOf is n with noun, plural when n is not 1 ("2 connectors").
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// actionConfirm is the data of a confirmation page: what will happen, and
// the form that does it.
type actionConfirm struct {
	Heading string
	What    string   // the sentence saying what will happen
	Facts   []string // more lines of what will be lost
	Action  string   // the form's action
	Button  string
	Back    string // where Cancel goes
}

// deleteAppPage asks for confirmation before an application is deleted.
func (c *Console) deleteAppPage(w http.ResponseWriter, r *http.Request, u User) error {
	var a api.AppDetail
	if err := c.Call(r, u, http.MethodGet, "/apps/"+url.PathEscape(r.PathValue("name")), nil, &a); err != nil {
		return err
	}
	p := Prefix + "/apps/" + url.PathEscape(a.Name)
	c.render(w, r, u, http.StatusOK, "confirm-action", "apps", actionConfirm{
		Heading: "Delete application " + a.Name,
		What:    fmt.Sprintf("%s stops answering at once and its assignments (%d) are removed; this cannot be undone (publish it again to bring it back).", a.ExternalURL, len(a.Assignments)),
		Action:  p + "/delete", Button: "Delete " + a.Name, Back: p})
	return nil
}

// deleteApp deletes an application.
func (c *Console) deleteApp(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("name")
	if err := c.Call(r, u, http.MethodDelete, "/apps/"+url.PathEscape(name), nil, nil); err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/apps", fmt.Sprintf("Deleted application '%s'.", name))
}

// assign assigns a user or a user group to an application.
func (c *Console) assign(w http.ResponseWriter, r *http.Request, u User) error {
	name := r.PathValue("name")
	who := strings.TrimSpace(r.PostForm.Get("assignee"))
	var in api.AssignRequest
	what := "user"
	if r.PostForm.Get("kind") == "user-group" {
		in.UserGroup, what = who, "user group"
	} else {
		in.User = who
	}
	var x api.Assignment
	if err := c.Call(r, u, http.MethodPost, "/apps/"+url.PathEscape(name)+"/assignments", in, &x); err != nil {
		ae, err := apiRefusal(err)
		if err != nil {
			return err
		}
		v, err := c.appView(r, u, nil)
		if err != nil {
			return err
		}
		v.Error, v.Assignee, v.AssignGroup = ae.Message, who, in.UserGroup != ""
		c.render(w, r, u, ae.Status, "app", "apps", v)
		return nil
	}
	return c.done(w, r, Prefix+"/apps/"+url.PathEscape(name)+"#assignments", withAPINotes(fmt.Sprintf("Assigned the %s %s to '%s'.", what, x.Name, name), x.Note))
}

// assignKind maps the path's kind to the API's path and its words.
func assignKind(kind string) (string, bool) {
	switch kind {
	case "users":
		return "user", true
	case "user-groups":
		return "user group", true
	}
	return "", false
}

var errNoKind = &APIError{Status: http.StatusNotFound, Code: "not_found",
	Message: "An assignment is of a user or a user group: open the application's page and use its Unassign buttons."}

// unassignPage asks for confirmation before an assignment is removed.
func (c *Console) unassignPage(w http.ResponseWriter, r *http.Request, u User) error {
	name, kind, who := r.PathValue("name"), r.PathValue("kind"), r.PathValue("assignee")
	what, ok := assignKind(kind)
	if !ok {
		return errNoKind
	}
	var a api.AppDetail
	if err := c.Call(r, u, http.MethodGet, "/apps/"+url.PathEscape(name), nil, &a); err != nil {
		return err
	}
	p := Prefix + "/apps/" + url.PathEscape(a.Name)
	c.render(w, r, u, http.StatusOK, "confirm-action", "apps", actionConfirm{
		Heading: "Unassign " + who + " from " + a.Name,
		What:    fmt.Sprintf("The %s %s will no longer be given '%s' (a user may still get it through another assignment).", what, who, a.Name),
		Action:  p + "/assignments/" + kind + "/" + url.PathEscape(who) + "/delete", Button: "Unassign", Back: p + "#assignments"})
	return nil
}

// unassign removes an assignment.
func (c *Console) unassign(w http.ResponseWriter, r *http.Request, u User) error {
	name, kind, who := r.PathValue("name"), r.PathValue("kind"), r.PathValue("assignee")
	what, ok := assignKind(kind)
	if !ok {
		return errNoKind
	}
	if err := c.Call(r, u, http.MethodDelete, "/apps/"+url.PathEscape(name)+"/assignments/"+kind+"/"+url.PathEscape(who), nil, nil); err != nil {
		return err
	}
	return c.done(w, r, Prefix+"/apps/"+url.PathEscape(name)+"#assignments", fmt.Sprintf("Unassigned the %s %s from '%s'.", what, who, name))
}
