package tunnel

import (
	"encoding/json"
	"testing"
)

// TestConfigWebOnly: a configuration without its network applications,
// for a connector that predates them; AppConfig's type and segments are
// left out of the JSON of a web application.
func TestConfigWebOnly(t *testing.T) {
	c := Config{Version: "v", Apps: []AppConfig{
		{ID: "a1", Name: "web", InternalURL: "http://i/"},
		{ID: "a2", Name: "db", Type: "tcp", Segments: []string{"db.corp:5432"}},
		{ID: "a3", Name: "web2", Type: "http", InternalURL: "http://j/"},
		{ID: "a4", Name: "dns", Type: "udp", Segments: []string{"dns.corp:53"}},
	}}
	w := c.WebOnly()
	if len(w.Apps) != 2 || w.Apps[0].ID != "a1" || w.Apps[1].ID != "a3" || w.Version != "v" {
		t.Errorf("WebOnly = %+v", w)
	}
	if len(c.Apps) != 4 {
		t.Error("WebOnly changed the original")
	}
	js, _ := json.Marshal(c.Apps[0])
	var m map[string]any
	json.Unmarshal(js, &m)
	if _, ok := m["type"]; ok {
		t.Errorf("a web application's JSON has a type: %s", js)
	}
	if _, ok := m["segments"]; ok {
		t.Errorf("a web application's JSON has segments: %s", js)
	}
}
