package eventlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadFilters(t *testing.T) {
	// Written one second apart from t0: e1 at t0, e2 at t0+1s, ...
	fixture := []struct {
		id    int
		level Level
	}{
		{100, LevelInformation}, // e1
		{1000, LevelError},      // e2
		{200, LevelWarning},     // e3
		{100, LevelInformation}, // e4
		{1000, LevelError},      // e5
		{300, LevelWarning},     // e6
		{100, LevelInformation}, // e7
		{400, LevelError},       // e8
	}
	l, path := openLog(t, Config{})
	for i, ev := range fixture {
		mustWrite(t, l, ID(ev.id), ev.level, fmt.Sprintf("e%d", i+1), nil)
	}
	l.Close()
	// Another source writing to the same file (discouraged, but readable).
	other, _ := openLog(t, Config{Path: path, Source: "updater", Now: func() time.Time { return t0.Add(time.Hour) }})
	mustWrite(t, other, 100, LevelInformation, "u1", nil)
	other.Close()

	at := func(i int) time.Time { return t0.Add(time.Duration(i-1) * time.Second) }
	tests := []struct {
		name   string
		filter Filter
		want   string
	}{
		{"all", Filter{}, "e1 e2 e3 e4 e5 e6 e7 e8 u1"},
		{"newest 1", Filter{Newest: 1}, "u1"},
		{"newest 3", Filter{Newest: 3}, "e7 e8 u1"},
		{"newest more than there are", Filter{Newest: 50}, "e1 e2 e3 e4 e5 e6 e7 e8 u1"},
		{"errors", Filter{MinLevel: LevelError}, "e2 e5 e8"},
		{"warnings and errors", Filter{MinLevel: LevelWarning}, "e2 e3 e5 e6 e8"},
		{"information is all", Filter{MinLevel: LevelInformation}, "e1 e2 e3 e4 e5 e6 e7 e8 u1"},
		{"since", Filter{Since: at(6)}, "e6 e7 e8 u1"},
		{"since after everything", Filter{Since: t0.Add(2 * time.Hour)}, ""},
		{"ids", Filter{IDs: []ID{1000, 300}}, "e2 e5 e6"},
		{"unknown id", Filter{IDs: []ID{9}}, ""},
		{"source", Filter{Source: "updater"}, "u1"},
		// Get-EventLog application -EntryType Error -Newest 1
		{"newest error", Filter{MinLevel: LevelError, Newest: 1}, "e8"},
		{"newest 2 warnings", Filter{MinLevel: LevelWarning, Newest: 2}, "e6 e8"},
		{"ids since", Filter{IDs: []ID{1000}, Since: at(3)}, "e5"},
		{"where", Filter{Where: func(ev *Event) bool { return ev.Message != "e2" && ev.ID == 1000 }}, "e5"},
		{"where before newest", Filter{Where: func(ev *Event) bool { return ev.ID == 100 }, Newest: 2}, "e7 u1"},
		{"everything combined", Filter{IDs: []ID{100, 1000}, MinLevel: LevelInformation, Since: at(2), Source: "connector", Newest: 2}, "e5 e7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(messages(mustRead(t, path, tt.filter)), " ")
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadRejectsBadFilter(t *testing.T) {
	_, path := openLog(t, Config{})
	tests := []struct {
		name   string
		filter Filter
	}{
		{"negative newest", Filter{Newest: -1}},
		{"unknown level", Filter{MinLevel: "fatal"}},
		{"alias is for ParseLevel only", Filter{MinLevel: "warn"}},
	}
	for _, tt := range tests {
		if _, err := Read(path, tt.filter); err == nil {
			t.Errorf("%s: Read accepted %+v", tt.name, tt.filter)
		}
	}
}

const (
	good1 = `{"id":1,"level":"information","source":"connector","time":"2026-03-01T12:00:00Z","message":"one"}`
	good2 = `{"id":2,"level":"error","source":"connector","time":"2026-03-01T12:00:01Z","message":"two"}`
)

func TestReadSkipsGarbage(t *testing.T) {
	tests := []struct {
		name        string
		content     string
		want        string
		wantSkipped int
	}{
		{"clean", good1 + "\n" + good2 + "\n", "one two", 0},
		{"truncated last line", good1 + "\n" + good2[:40], "one", 1},
		{"whole last line without newline", good1 + "\n" + good2, "one two", 0},
		{"garbage in the middle", good1 + "\nnot json at all\n" + good2 + "\n", "one two", 1},
		{"binary junk", good1 + "\n\x00\xff\xfe{{\n" + good2 + "\n", "one two", 1},
		{"blank lines ignored", "\n\n" + good1 + "\n   \n" + good2 + "\n\n", "one two", 0},
		{"crlf line ends", good1 + "\r\n" + good2 + "\r\n", "one two", 0},
		{"json that is not an event", "null\n{}\n[1,2]\n\"s\"\n" + good1 + "\n", "one", 4},
		{"unknown level", strings.Replace(good1, "information", "debug", 1) + "\n" + good2 + "\n", "two", 1},
		{"missing time", `{"id":3,"level":"error","message":"no time"}` + "\n" + good2 + "\n", "two", 1},
		{"bad time", strings.Replace(good1, "2026-03-01T12:00:00Z", "yesterday", 1) + "\n" + good2 + "\n", "two", 1},
		{"two events on one line", good1 + good2 + "\n", "", 1},
		{"over-long line skipped, reading goes on", good1 + "\n" + strings.Repeat("x", MaxLineBytes+10) + "\n" + good2 + "\n", "one two", 1},
		{"over-long valid event skipped", good1 + "\n" + strings.Replace(good2, `"two"`, `"`+strings.Repeat("y", MaxLineBytes)+`"`, 1) + "\n", "one", 1},
		{"over-long last line without newline", good1 + "\n" + strings.Repeat("x", 3*MaxLineBytes), "one", 1},
		{"line of exactly MaxLineBytes", good1 + "\n" + good2[:len(good2)-1] + strings.Repeat(" ", MaxLineBytes-len(good2)) + "}\n", "one two", 0},
		{"empty file", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := Scan(path, Filter{})
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if got := strings.Join(messages(res.Events), " "); got != tt.want || res.Skipped != tt.wantSkipped {
				t.Errorf("got %q skipped %d, want %q skipped %d", got, res.Skipped, tt.want, tt.wantSkipped)
			}
		})
	}
}

func TestReadWithoutLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if _, err := Read(path, Filter{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing log = %v, want fs.ErrNotExist", err)
	}
	// A crash between rotation and the next write leaves only path.1.
	if err := os.WriteFile(path+".1", []byte(good1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := messages(mustRead(t, path, Filter{})); !slices.Equal(got, []string{"one"}) {
		t.Errorf("read %q, want the rotated file's event", got)
	}
}

// Regression guard: capping must drop the oldest events, never the newest,
// and must not count the line cut by the cap as garbage. (Budgets are at
// least one line long, as the real one, 128 MiB, is over MaxLineBytes.)
func TestReadCapKeepsNewest(t *testing.T) {
	old := maxScanBytes
	t.Cleanup(func() { maxScanBytes = old })

	l, path := openLog(t, Config{MaxBytes: 1000, Keep: 50})
	const n = 100
	for i := 1; i <= n; i++ {
		mustWrite(t, l, ID(i), LevelInformation, fmt.Sprintf("event %03d", i), nil)
	}
	all := mustRead(t, path, Filter{})
	if len(all) != n {
		t.Fatalf("uncapped read %d events, want %d", len(all), n)
	}
	for _, budget := range []int64{150, 999, 1000, 2500, 5003} {
		maxScanBytes = budget
		res, err := Scan(path, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Capped || res.Skipped != 0 {
			t.Errorf("budget %d: capped %v skipped %d, want capped and nothing skipped", budget, res.Capped, res.Skipped)
		}
		if len(res.Events) == 0 || res.Events[len(res.Events)-1].ID != n {
			t.Fatalf("budget %d: newest event missing from %d events", budget, len(res.Events))
		}
		for i, ev := range res.Events {
			if want := n - len(res.Events) + 1 + i; int(ev.ID) != want {
				t.Fatalf("budget %d: event %d has id %d, want %d (a contiguous newest run)", budget, i, ev.ID, want)
			}
		}
	}
	maxScanBytes = old
	if res, _ := Scan(path, Filter{}); res.Capped {
		t.Error("default budget reported a cap on a small log")
	}
}
