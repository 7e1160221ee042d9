package diag

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocsListEveryEntry: the entry table in docs/cli.md's `connector
// diag` section lists exactly Entries(), in the same order (issue 20: the
// docs' list missed doctor.json).
func TestDocsListEveryEntry(t *testing.T) {
	raw, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "### `connector diag`")
	if start < 0 {
		t.Fatal("docs/cli.md has no section ### `connector diag`")
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	inTable := false
	var documented []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| entry |") {
			inTable = true
			continue
		}
		if inTable && !strings.HasPrefix(line, "|") {
			break
		}
		if m := row.FindStringSubmatch(line); inTable && m != nil {
			documented = append(documented, m[1])
		}
	}
	want := Entries()
	for _, e := range want {
		if !slices.Contains(documented, e) {
			t.Errorf("docs/cli.md, `connector diag`: the entry table has no row for %s: add | `%s` | ... |", e, e)
		}
	}
	for _, e := range documented {
		if !slices.Contains(want, e) {
			t.Errorf("docs/cli.md, `connector diag`: the entry table lists %s, which the bundle never holds: remove its row", e)
		}
	}
	if !t.Failed() && !slices.Equal(documented, want) {
		t.Errorf("docs/cli.md, `connector diag`: list the entries in the bundle's order:\n got %v\nwant %v", documented, want)
	}
}

// TestEntriesAreWhatWriteWrites: a bundle with every source present holds
// exactly Entries(), in that order.
func TestEntriesAreWhatWriteWrites(t *testing.T) {
	dir, upd := t.TempDir(), t.TempDir()
	for _, f := range stateFiles {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range updaterFiles {
		if err := os.WriteFile(filepath.Join(upd, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	defer metrics.Close()
	names, err := Write(t.Context(), io.Discard, Options{Dir: dir, UpdaterDir: upd, MetricsURL: metrics.URL,
		Doctor: func(context.Context) ([]byte, error) { return []byte("{}"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, Entries()) {
		t.Errorf("Write wrote %v, Entries() says %v", names, Entries())
	}
}
