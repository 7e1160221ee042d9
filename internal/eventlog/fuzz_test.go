package eventlog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary file contents to Read: the file is untrusted
// (a crash, a full disk or a person can leave anything in it).
func FuzzRead(f *testing.F) {
	f.Add([]byte(good1+"\n"+good2+"\n"), 0)
	f.Add([]byte(good1+"\n"+good2[:30]), 1)
	f.Add([]byte("null\n{}\n[]\n\x00\xff\n"), 2)
	f.Add([]byte(strings.Repeat("{", MaxLineBytes+2)+"\n"+good1), 0)
	f.Add([]byte(`{"id":1,"level":"error","time":"2026-03-01T12:00:00Z","fields":{"a":"b"}}`+"\r\n"), 1)
	// One file per fuzzing process, rewritten each time: a directory per
	// input would slow the fuzzer tenfold.
	path := filepath.Join(f.TempDir(), "events.jsonl")
	f.Fuzz(func(t *testing.T, data []byte, newest int) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		filter := Filter{Newest: newest % 4}
		if filter.Newest < 0 {
			filter.Newest = -filter.Newest
		}
		res, err := Scan(path, filter)
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		if len(res.Events) > lines || res.Lines > lines || res.Skipped > res.Lines {
			t.Fatalf("%d events, %d lines seen, %d skipped, from %d lines", len(res.Events), res.Lines, res.Skipped, lines)
		}
		if filter.Newest > 0 && len(res.Events) > filter.Newest {
			t.Fatalf("%d events, want at most %d", len(res.Events), filter.Newest)
		}
		for _, ev := range res.Events {
			if ev.Level.rank() == 0 || ev.Time.IsZero() {
				t.Fatalf("invalid event returned: %+v", ev)
			}
		}
	})
}
