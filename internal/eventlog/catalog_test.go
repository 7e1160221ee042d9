package eventlog

import (
	"strings"
	"testing"
)

// Guards the catalog as it grows: docs are generated from it.
func TestCatalogIsWellFormed(t *testing.T) {
	for i, d := range Catalog {
		if d.Level.rank() == 0 || d.Area == "" || d.Summary == "" {
			t.Errorf("event %d: level, area and summary are required: %+v", d.ID, d)
		}
		if strings.HasSuffix(d.Summary, ".") {
			t.Errorf("event %d: summary ends with a period", d.ID)
		}
		if i > 0 && d.ID <= Catalog[i-1].ID {
			t.Errorf("event %d: catalog not in strictly increasing id order", d.ID)
		}
	}
}

func TestLookup(t *testing.T) {
	d, ok := Lookup(1000)
	if !ok || d.Level != LevelError || d.Area != "trust" || !strings.Contains(d.Summary, "trust certificate expired") {
		t.Errorf("Lookup(1000) = %+v, %v", d, ok)
	}
	if d, ok := Lookup(-5); ok {
		t.Errorf("Lookup(-5) = %+v, want not found", d)
	}
}
