package eventlog

import (
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"strconv"
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
		if !(d.ID >= 1000 && d.ID <= 3099) {
			t.Errorf("event %d: outside the documented ranges (1000–1999 connector, 2000–2999 cloud, 3000–3099 updater)", d.ID)
		}
	}
}

// TestEveryIDConstantIsCataloged: each constant of type ID in catalog.go
// has exactly one Catalog entry, and each entry has a constant, so
// Log.Event always finds the level of the id it is given.
func TestEveryIDConstantIsCataloged(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "catalog.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[ID]string{}
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "ID" {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Errorf("constant %s: give its id as a number literal", name.Name)
					continue
				}
				n, _ := strconv.Atoi(lit.Value)
				if other, dup := consts[ID(n)]; dup {
					t.Errorf("constants %s and %s are both %d: give each event its own id", other, name.Name, n)
				}
				consts[ID(n)] = name.Name
			}
		}
	}
	for id, name := range consts {
		if _, ok := Lookup(id); !ok {
			t.Errorf("constant %s (%d) has no Catalog entry: add one with its level, area and summary", name, id)
		}
	}
	for _, d := range Catalog {
		if _, ok := consts[d.ID]; !ok {
			t.Errorf("Catalog entry %d has no named constant of type ID in catalog.go: add one", d.ID)
		}
	}
	if len(consts) != len(Catalog) {
		t.Errorf("%d constants, %d Catalog entries: each id is listed once", len(consts), len(Catalog))
	}
}

func TestLookup(t *testing.T) {
	d, ok := Lookup(TrustExpired)
	if !ok || d.ID != 1000 || d.Level != LevelError || d.Area != "trust" || !strings.Contains(d.Summary, "trust certificate expired") {
		t.Errorf("Lookup(TrustExpired) = %+v, %v", d, ok)
	}
	if d, ok := Lookup(-5); ok {
		t.Errorf("Lookup(-5) = %+v, want not found", d)
	}
}

// TestEventWritesTheCatalogLevel: the level of an event is its Catalog
// entry's, whatever the call site; an id missing from the catalog is
// written as an error and reported.
func TestEventWritesTheCatalogLevel(t *testing.T) {
	var logs capture
	l, path := openLog(t, Config{Logger: slog.New(&logs)})
	l.Event(UpdateCompleted, "done")
	l.Event(UpdateInstalledNotRunning, "installed, not checked")
	l.Event(UpdateRolledBack, "rolled back")
	l.Event(ID(4242), "unknown")
	want := []struct {
		id    int
		level Level
	}{{3008, LevelInformation}, {3030, LevelWarning}, {3009, LevelError}, {4242, LevelError}}
	got := mustRead(t, path, Filter{})
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i, w := range want {
		if int(got[i].ID) != w.id || got[i].Level != w.level {
			t.Errorf("event %d written as %d %s, want %d %s", i, got[i].ID, got[i].Level, w.id, w.level)
		}
	}
	var reported bool
	for _, r := range logs.all() {
		if r.Message == "eventlog: event id is not in the catalog" && attrs(r)["event_id"] == "4242" {
			reported = true
		}
	}
	if !reported {
		t.Error("an id missing from the catalog was not reported to the Logger")
	}
}
