package edge

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Status}} {{.StatusText}} · Sallyport</title>
<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:.1rem .3rem}.id{color:#777;font-size:.85rem}</style></head>
<body><h1>{{.Status}} {{.StatusText}}</h1>
<p>{{.Message}}.</p>
{{if .Step}}<p><strong>What to do:</strong> {{.Step}}.</p>{{end}}
<p class="id">Error code <code>{{.Code}}</code> · request id <code>{{.RequestID}}</code> · Sallyport</p>
</body></html>
`))

// PageBody is the error page for clients that accept JSON (API clients):
// the shape of the admin API's errors, with the request id.
type PageBody struct {
	Error struct {
		Code      string `json:"code"`
		Status    int    `json:"status"`
		Message   string `json:"message"` // the sentence: message; step.
		Step      string `json:"step,omitempty"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// WritePage answers with an error page for p: HTML for browsers, JSON for
// clients that accept it, plain text otherwise. p is shown as it is: the
// caller chooses the public or the detailed problem (PublicProblem). Both say what failed, why, what to do, and carry the
// request id found in the cloud's and the connector's logs.
func WritePage(w http.ResponseWriter, r *http.Request, p *problem.Problem, requestID string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set(tunnel.HeaderError, p.Code)
	h.Set(tunnel.HeaderRequestID, requestID)
	h.Set("X-Content-Type-Options", "nosniff")
	if p.Status == http.StatusServiceUnavailable || p.Status == http.StatusTooManyRequests {
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", "1")
		}
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(p.Status)
		pageTmpl.Execute(w, map[string]any{
			"Status": p.Status, "StatusText": http.StatusText(p.Status), "Message": p.Message,
			"Step": p.Step, "Code": p.Code, "RequestID": requestID,
		})
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		var b PageBody
		b.Error.Code, b.Error.Status, b.Error.Message, b.Error.Step, b.Error.RequestID = p.Code, p.Status, p.Error(), p.Step, requestID
		h.Set("Content-Type", "application/json")
		w.WriteHeader(p.Status)
		json.NewEncoder(w).Encode(b)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(p.Status)
	fmt.Fprintf(w, "%d %s: %s\n(error %s, request id %s)\n", p.Status, http.StatusText(p.Status), p.Error(), p.Code, requestID)
}
