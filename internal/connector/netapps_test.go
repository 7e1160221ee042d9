package connector

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestNetworkAppsConfig: the connector keeps a configuration's network
// applications (type and segments) apart from its web applications, never
// serves them over HTTP, says so in its hello, and refuses a configuration
// whose network application has unusable segments or whose type it does
// not know.
func TestNetworkAppsConfig(t *testing.T) {
	web := tunnel.AppConfig{ID: "a_web", Name: "web", ExternalHost: "web.example", InternalURL: "http://127.0.0.1:1/"}
	db := tunnel.AppConfig{ID: "a_db", Name: "db", Type: "tcp", Segments: []string{"db.corp:5432", "10.1.0.0/24:22"}}
	dns := tunnel.AppConfig{ID: "a_dns", Name: "dns", Type: "udp", Segments: []string{"dns.corp:53"}}
	c, _, _ := newTestConnector(t, web, db, dns)
	h := c.handler

	if _, ok := h.apps.Load().byID["a_db"]; ok {
		t.Error("the tcp application is among the web applications")
	}
	cfg, set, ok := h.networkApp("a_db")
	if !ok || cfg.Type != "tcp" || !set.CoversName("db.corp", 5432) || set.CoversName("other.corp", 5432) {
		t.Errorf("networkApp(a_db) = %+v, %v, %v", cfg, set, ok)
	}
	if cfg, _, ok := h.networkApp("a_dns"); !ok || cfg.Type != "udp" {
		t.Errorf("networkApp(a_dns) = %+v, %v", cfg, ok)
	}
	if _, _, ok := h.networkApp("a_web"); ok {
		t.Error("the web application is a network application")
	}

	// Never over HTTP.
	req := httptest.NewRequest("GET", "https://connector/", nil)
	req.Header.Set(tunnel.HeaderApp, "a_db")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMisdirectedRequest || !strings.Contains(rec.Body.String(), "app_not_configured") {
		t.Errorf("HTTP request for the tcp application: %d %s", rec.Code, rec.Body)
	}

	// The hello says it keeps them.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://connector"+tunnel.PathHello, nil))
	var hello tunnel.Hello
	if err := json.Unmarshal(rec.Body.Bytes(), &hello); err != nil || !hello.NetworkApps {
		t.Errorf("hello = %+v, %v", hello, err)
	}

	for _, tc := range []struct {
		name string
		app  tunnel.AppConfig
		want string
	}{
		{"bad segment", tunnel.AppConfig{ID: "a_x", Name: "x", Type: "tcp", Segments: []string{"db.corp"}}, "unusable internal addresses"},
		{"no segment", tunnel.AppConfig{ID: "a_x", Name: "x", Type: "udp"}, "no internal address"},
		{"unknown type", tunnel.AppConfig{ID: "a_x", Name: "x", Type: "sctp", Segments: []string{"db.corp:1"}}, "unknown type"},
	} {
		err := h.setConfig(tunnel.Config{Version: "v-" + tc.name, Apps: []tunnel.AppConfig{web, tc.app}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: setConfig = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, _, ok := h.networkApp("a_db"); !ok {
		t.Error("a refused configuration replaced the one held")
	}
}
