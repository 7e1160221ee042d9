package edge

import (
	"net/http"

	"github.com/sallyport/sallyport/internal/problem"
)

// A public page is what anyone on the internet is told of a failed
// request: a fixed sentence and step for its code, the code and the
// request id. The detailed problem (the internal URL, host names, the
// connector, group and tenant) goes to the cloud's log, its event 2700,
// and the request index that 'sallyport admin request show' reads; an
// application published with --detailed-errors shows it on the page
// instead, for its developers.

// askAdmins is the step of the failures only the application's
// administrators can fix.
const askAdmins = "retry later; if it keeps failing, give the application's administrators the request id below"

// publicPages is the public sentence and step of every code the edge
// answers with. Neither may name anything of the tenant's network.
var publicPages = map[string]struct{ Message, Step string }{
	"no_application":            {"No application is published at this address", "check the address"},
	"no_connector":              {"The application cannot be reached right now: its network has no connection to this service", askAdmins},
	"connectors_saturated":      {"The application is busy: it is already serving as many requests as it can", "retry in a few seconds"},
	"connector_lost":            {"The connection to the application's network broke before the application answered", askAdmins},
	"backend_timeout":           {"The application did not answer in time", askAdmins},
	"headers_too_large":         {"The request headers are larger than this service accepts", "send smaller headers (often: clear this site's cookies)"},
	"url_too_long":              {"The request URL is longer than this service accepts", "use a shorter address"},
	"app_rate_limited":          {"The application gets more requests than it accepts right now", "slow down and retry in a few seconds"},
	"tenant_rate_limited":       {"The application gets more requests than it accepts right now", "slow down and retry in a few seconds"},
	"backend_dns":               {"The application cannot be reached: its internal address is not known in its network", askAdmins},
	"backend_refused":           {"The application is not accepting connections", askAdmins},
	"backend_unreachable":       {"The application could not be reached in time", askAdmins},
	"backend_tls":               {"The secure connection to the application failed", askAdmins},
	"backend_failed":            {"The request to the application failed", askAdmins},
	"backend_upgrade":           {"The application's switch to another protocol (such as WebSocket) could not be carried", askAdmins},
	"backend_headers_too_large": {"The application answered with headers larger than this service accepts", askAdmins},
	"app_not_configured":        {"The application's network is not ready for this application yet", "retry in a few seconds"},
	"internal":                  {"The request failed because of an internal error", askAdmins},
}

// unknownPage is the public page of a code missing from publicPages.
var unknownPage = struct{ Message, Step string }{"The request to the application failed", askAdmins}

// PublicProblem is the problem as anyone may see it: p's code and status
// with the fixed sentence and step of its code.
func PublicProblem(p *problem.Problem) *problem.Problem {
	pg, ok := publicPages[p.Code]
	if !ok {
		pg = unknownPage
	}
	status := p.Status
	if status < 400 || status > 599 {
		status = http.StatusBadGateway
	}
	return &problem.Problem{Code: p.Code, Status: status, Message: pg.Message, Step: pg.Step}
}

// shown is the problem the page for app shows: the detailed one when the
// application opted in, else the public one.
func shown(app *App, p *problem.Problem) *problem.Problem {
	if app != nil && app.DetailedErrors {
		return p
	}
	return PublicProblem(p)
}
