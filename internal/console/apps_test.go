package console

import (
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
)

// TestDiagnosisSteps: a diagnosis becomes the steps of a request, each
// with its result, and a failing step carries the API's finding.
func TestDiagnosisSteps(t *testing.T) {
	app := api.App{Name: "web", Group: "Site A", ExternalURL: "https://web/", InternalURL: "http://web.corp/", Timeout: "default", PreAuth: "sallyport"}
	up := api.Connector{ID: "c1", Tunnels: 2}
	down := api.Connector{ID: "c2"}
	noConn := "Group 'Site A' has no connector, so every request gets 502: register one"
	noneUp := "No connector of group 'Site A' is connected, so every request gets 502: start them"
	onlyOne := "Only one connector of group 'Site A' is connected: add a second one"
	lastErr := "The last failed request (…) said: The internal application refused the connection"
	probeErr := "A test request to http://web.corp/ through connector c1 failed (backend_refused): refused"
	answered := []api.BackendProbe{{Connector: "c1", OK: true, Status: 200, Millis: 3, RequestID: "p1"}}
	refused := []api.BackendProbe{{Connector: "c1", Code: "backend_refused", Message: "The backend refused the connection.", RequestID: "p2"}}
	db := api.App{Name: "db", Type: "tcp", Group: "Site A", InternalAddresses: []string{"db.corp:5432", "10.1.0.7:5433", "10.1.0.0/24:22"}, PreAuth: "sallyport"}
	dbOK := api.NetworkProbe{Connector: "c1", Network: "tcp", Destination: "db.corp:5432", OK: true, Message: "The connector connected to db.corp:5432", Millis: 2}
	dbRefused := api.NetworkProbe{Connector: "c1", Network: "tcp", Destination: "10.1.0.7:5433", Code: "refused", Message: "10.1.0.7:5433 refused the connection from the connector"}
	netErr := "The probe of 10.1.0.7:5433 through connector c1 failed (refused): 10.1.0.7:5433 refused the connection from the connector; check that the service at 10.1.0.7 runs"
	noneUpNet := "No connector of group 'Site A' is connected, so every stream is refused: start them"
	for _, tc := range []struct {
		name string
		d    api.AppDiagnosis
		want []string // the results of the five steps
		says map[int]string
	}{
		{"healthy", api.AppDiagnosis{App: app, Connectors: []api.Connector{up, up}, Probes: answered}, []string{"passed", "passed", "passed", "passed", "passed"}, nil},
		{"no connector", api.AppDiagnosis{App: app, Findings: []string{noConn}}, []string{"passed", "failed", "not run", "not run", "passed"}, map[int]string{1: noConn + "."}},
		{"none connected", api.AppDiagnosis{App: app, Connectors: []api.Connector{down, down}, Findings: []string{noneUp}}, []string{"passed", "passed", "failed", "not run", "passed"}, map[int]string{2: noneUp + "."}},
		{"connected, no test request", api.AppDiagnosis{App: app, Connectors: []api.Connector{up, up}}, []string{"passed", "passed", "passed", "not run", "passed"}, nil},
		{"one connected, backend down", api.AppDiagnosis{App: app, Connectors: []api.Connector{up, down}, Probes: refused,
			RecentErrors: []api.EdgeError{{Status: 502, Code: "backend_refused", RequestID: "r1", Message: "refused."}}, Findings: []string{probeErr, onlyOne, lastErr}},
			[]string{"passed", "passed", "warning", "failed", "failed"}, map[int]string{2: onlyOne + ".", 3: probeErr + ".", 4: lastErr + "."}},
		{"a test request failed without its finding", api.AppDiagnosis{App: app, Connectors: []api.Connector{up, up}, Probes: refused},
			[]string{"passed", "passed", "passed", "failed", "passed"}, map[int]string{3: "The backend refused the connection."}},
		{"an error without its finding", api.AppDiagnosis{App: app, Connectors: []api.Connector{up, up}, Probes: answered,
			RecentErrors: []api.EdgeError{{Status: 504, Code: "backend_timeout", RequestID: "r2", Message: "The backend did not answer in time."}}},
			[]string{"passed", "passed", "passed", "passed", "failed"}, map[int]string{4: "The backend did not answer in time."}},
		{"network: every address reached", api.AppDiagnosis{App: db, Connectors: []api.Connector{up, up}, NetworkProbes: []api.NetworkProbe{dbOK}, NotProbed: []string{"10.1.0.0/24:22: a range"}},
			[]string{"passed", "passed", "passed", "passed", "passed"}, nil},
		{"network: an address refused", api.AppDiagnosis{App: db, Connectors: []api.Connector{up, up}, NetworkProbes: []api.NetworkProbe{dbOK, dbRefused}, Findings: []string{netErr}},
			[]string{"passed", "passed", "passed", "failed", "passed"}, map[int]string{3: netErr + "."}},
		{"network: only ranges", api.AppDiagnosis{App: db, Connectors: []api.Connector{up, up}, NotProbed: []string{"10.1.0.0/24:22: a range"}},
			[]string{"passed", "passed", "passed", "not run", "passed"}, nil},
		{"network: none connected", api.AppDiagnosis{App: db, Connectors: []api.Connector{down}, Findings: []string{noneUpNet}},
			[]string{"passed", "passed", "failed", "not run", "passed"}, map[int]string{2: noneUpNet + "."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := diagnosisSteps(tc.d)
			if len(steps) != len(tc.want) {
				t.Fatalf("%d steps, want %d: %+v", len(steps), len(tc.want), steps)
			}
			for i, s := range steps {
				if s.Result != tc.want[i] {
					t.Errorf("step %d (%s): %s, want %s", i, s.Name, s.Result, tc.want[i])
				}
				if want, ok := tc.says[i]; ok && s.Sentence != want {
					t.Errorf("step %d (%s) says %q, want %q", i, s.Name, s.Sentence, want)
				}
				if _, ok := tc.says[i]; !ok && s.Sentence != "" {
					t.Errorf("step %d (%s) says %q, want nothing", i, s.Name, s.Sentence)
				}
				if s.Detail == "" || !strings.HasSuffix(s.Detail, ".") {
					t.Errorf("step %d (%s): detail %q is not a sentence", i, s.Name, s.Detail)
				}
			}
		})
	}
}

func TestExternalHost(t *testing.T) {
	for _, tc := range []struct{ name, domain, want string }{
		{"", "", ""}, {"intranet", "", ""}, {"", "apps.contoso.com", "apps.contoso.com"}, {"hr", "apps.contoso.com", "hr.apps.contoso.com"},
	} {
		if got := (appForm{HostName: tc.name, HostDomain: tc.domain}).externalHost(); got != tc.want {
			t.Errorf("host %q under %q = %q, want %q", tc.name, tc.domain, got, tc.want)
		}
	}
}
