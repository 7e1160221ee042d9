package eventlog

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryEvent: docs/events.md documents every id of Catalog,
// and no id that is not in it.
func TestDocsListEveryEvent(t *testing.T) {
	raw, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, d := range Catalog {
		if !strings.Contains(doc, fmt.Sprintf("\n| %d | %s |", d.ID, d.Level)) {
			t.Errorf("docs/events.md has no row for event %d (%s)", d.ID, d.Level)
		}
	}
	for _, line := range strings.Split(doc, "\n") {
		var id int
		if _, err := fmt.Sscanf(line, "| %d |", &id); err == nil {
			if _, ok := Lookup(ID(id)); !ok {
				t.Errorf("docs/events.md documents event %d, which the catalog does not have", id)
			}
		}
	}
}
