package eventlog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriteReadRoundTrip(t *testing.T) {
	l, path := openLog(t, Config{Source: "cloud"})
	want := []Event{
		{ID: 1000, Level: LevelError, Message: "Connector re-registration failed: the connector trust certificate expired",
			Fields: map[string]string{"connector_id": "c-42", "thumbprint": "ab:cd"}},
		{ID: 2001, Level: LevelWarning, Message: "backend slow <app> & \"quoted\"", Fields: map[string]string{"app": "wiki", "request_id": "r-1"}},
		{ID: 3002, Level: LevelInformation, Message: "two\nlines\tand unicode é ✓"},
		{ID: 7, Level: LevelInformation, Message: ""},
	}
	for i := range want {
		mustWrite(t, l, ID(want[i].ID), want[i].Level, want[i].Message, want[i].Fields)
		want[i].Source = "cloud"
		want[i].Time = t0.Add(time.Duration(i) * time.Second)
	}
	got := mustRead(t, path, Filter{})
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Level != w.Level || g.Source != w.Source || !g.Time.Equal(w.Time) ||
			g.Message != w.Message || !maps.Equal(g.Fields, w.Fields) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	// One event, one line: a newline in a message must not split it.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), "\n"); n != len(want) {
		t.Errorf("file has %d lines, want %d:\n%s", n, len(want), raw)
	}
}

func TestWriteRejectsInvalidLevel(t *testing.T) {
	l, path := openLog(t, Config{})
	for _, level := range []Level{"", "fatal", "Error", "warn"} {
		if err := l.write(1, level, "x", nil); !errors.Is(err, ErrInvalidLevel) {
			t.Errorf("write(level %q) = %v, want ErrInvalidLevel", level, err)
		}
	}
	if raw, _ := os.ReadFile(path); len(raw) != 0 {
		t.Errorf("refused events reached the file: %q", raw)
	}
}

func TestWriteAcceptsUnknownIDs(t *testing.T) {
	l, path := openLog(t, Config{})
	for _, id := range []ID{0, -1, 999999} {
		if _, ok := Lookup(id); ok {
			t.Fatalf("id %d is documented; pick another", id)
		}
		mustWrite(t, l, id, LevelInformation, "x", nil)
	}
	if got := len(mustRead(t, path, Filter{})); got != 3 {
		t.Errorf("read %d events, want 3", got)
	}
}

func TestWriteAfterClose(t *testing.T) {
	var logs capture
	l, path := openLog(t, Config{Logger: slog.New(&logs)})
	mustWrite(t, l, 1, LevelInformation, "before", nil)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.write(2, LevelInformation, "after", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close = %v, want ErrClosed", err)
	}
	l.Event(TrustExpired, "helper after close")
	if got := messages(mustRead(t, path, Filter{})); !slices.Equal(got, []string{"before"}) {
		t.Errorf("file holds %q, want only the event before Close", got)
	}
	// The helper's failure is reported, not swallowed.
	var reported bool
	for _, r := range logs.all() {
		if r.Message == "eventlog: could not record event" && attrs(r)["event_id"] == "1000" {
			reported = true
		}
	}
	if !reported {
		t.Error("the helper's write failure was not reported to the Logger")
	}
}

func TestNilLogHelpers(t *testing.T) {
	var l *Log
	l.Event(TrustExpired, "x")
	l.Event(ConnectorStarted, "x")
	if err := l.write(1, LevelError, "x", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("nil Log write = %v, want ErrClosed", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok", Config{Path: filepath.Join(dir, "ok.jsonl"), Source: "connector"}, ""},
		{"no path", Config{Source: "connector"}, "path is required"},
		{"no source", Config{Path: filepath.Join(dir, "a")}, "source is required"},
		{"long source", Config{Path: filepath.Join(dir, "a"), Source: strings.Repeat("s", 65)}, "source is longer"},
		{"negative max bytes", Config{Path: filepath.Join(dir, "a"), Source: "x", MaxBytes: -1}, "max bytes"},
		{"negative keep", Config{Path: filepath.Join(dir, "a"), Source: "x", Keep: -1}, "keep"},
		{"missing directory", Config{Path: filepath.Join(dir, "nope", "events.jsonl"), Source: "x"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Open(tt.cfg)
			if err == nil {
				l.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Open: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Open = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenAppendsToExistingFile(t *testing.T) {
	l, path := openLog(t, Config{})
	mustWrite(t, l, 1, LevelInformation, "first run", nil)
	l.Close()
	l2, _ := openLog(t, Config{Path: path})
	mustWrite(t, l2, 2, LevelInformation, "second run", nil)
	if got := messages(mustRead(t, path, Filter{})); !slices.Equal(got, []string{"first run", "second run"}) {
		t.Errorf("read %q, want both runs", got)
	}
}

func TestFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
	l, path := openLog(t, Config{MaxBytes: 1})
	mustWrite(t, l, 1, LevelInformation, "one", nil)
	mustWrite(t, l, 2, LevelInformation, "two", nil) // rotates: a new file
	for _, name := range []string{path, path + ".1"} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(name), got)
		}
	}
}

func TestRotation(t *testing.T) {
	// Every line has the same length, so each file holds exactly linesPerFile.
	const linesPerFile = 3
	tests := []struct {
		name      string
		keep      int
		writes    int
		wantFirst int // first event number still readable
		wantFiles []string
	}{
		{"no rotation yet", 2, 3, 1, []string{""}},
		{"first rotation", 2, 4, 1, []string{"", ".1"}},
		{"oldest dropped", 2, 10, 4, []string{"", ".1", ".2"}},
		{"keep one", 1, 10, 7, []string{"", ".1"}},
		{"keep four", 4, 10, 1, []string{"", ".1", ".2", ".3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lineLen := int64(len(mustEncode(t, Event{ID: 1, Level: LevelInformation, Source: "connector", Time: t0, Message: "event 001"})))
			l, path := openLog(t, Config{MaxBytes: linesPerFile * lineLen, Keep: tt.keep})
			for i := 1; i <= tt.writes; i++ {
				mustWrite(t, l, 1, LevelInformation, fmt.Sprintf("event %03d", i), nil)
			}
			var want []string
			for i := tt.wantFirst; i <= tt.writes; i++ {
				want = append(want, fmt.Sprintf("event %03d", i))
			}
			if got := messages(mustRead(t, path, Filter{})); !slices.Equal(got, want) {
				t.Errorf("read %q, want %q", got, want)
			}
			for i := 1; i <= tt.keep+1; i++ {
				suffix := fmt.Sprintf(".%d", i)
				st, err := os.Stat(path + suffix)
				if exists := err == nil; exists != slices.Contains(tt.wantFiles, suffix) {
					t.Errorf("%s exists = %v, want %v", suffix, exists, !exists)
				}
				if err == nil && st.Size() > linesPerFile*lineLen {
					t.Errorf("%s is %d bytes, over MaxBytes %d", suffix, st.Size(), linesPerFile*lineLen)
				}
			}
		})
	}
}

func mustEncode(t *testing.T, ev Event) []byte {
	t.Helper()
	line, err := encodeLine(ev)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func TestEventLargerThanMaxBytesGetsItsOwnFile(t *testing.T) {
	l, path := openLog(t, Config{MaxBytes: 200, Keep: 3})
	mustWrite(t, l, 1, LevelInformation, "small", nil)
	mustWrite(t, l, 2, LevelInformation, strings.Repeat("big ", 100), nil)
	mustWrite(t, l, 3, LevelInformation, "small again", nil)
	if got := len(mustRead(t, path, Filter{})); got != 3 {
		t.Fatalf("read %d events, want 3", got)
	}
	for suffix, wantID := range map[string]int{".2": 1, ".1": 2, "": 3} {
		evs := mustRead(t, path+suffix, Filter{})
		if len(evs) == 0 || int(evs[len(evs)-1].ID) != wantID {
			t.Errorf("%s ends with %+v, want event %d alone", suffix, evs, wantID)
		}
	}
}

// A line over MaxLineBytes would be skipped by Read; Write shortens it instead.
func TestOverlongEventIsShortenedNotLost(t *testing.T) {
	tests := []struct {
		name    string
		message string
		fields  map[string]string
	}{
		{"long message", strings.Repeat("m", 100<<10), nil},
		{"escaped message", strings.Repeat("\x01", 20<<10), nil}, // 6 bytes each once escaped
		{"long fields", "short", map[string]string{"a": strings.Repeat("v", 40<<10), "b": strings.Repeat("w", 40<<10)}},
		{"cut inside a rune", strings.Repeat("é", 50<<10), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path := openLog(t, Config{})
			mustWrite(t, l, 5, LevelWarning, tt.message, tt.fields)
			res, err := Scan(path, Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 1 || res.Skipped != 0 {
				t.Fatalf("read %d events, skipped %d; want the event back", len(res.Events), res.Skipped)
			}
			ev := res.Events[0]
			if ev.Fields["truncated"] != "true" || !strings.HasPrefix(tt.message, ev.Message) {
				t.Errorf("got message of %d bytes with fields %v; want a prefix and truncated=true", len(ev.Message), ev.Fields)
			}
			if !utf8Valid(ev.Message) {
				t.Error("shortened message is not valid UTF-8")
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestConcurrentWritersProduceWholeLines(t *testing.T) {
	const writers, each = 8, 200
	var logs capture
	l, path := openLog(t, Config{MaxBytes: 4 << 10, Keep: 1000, Logger: slog.New(&logs)})

	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() { // a reader alongside, as `connector events` would be
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := Read(path, Filter{Newest: 5}); err != nil {
				t.Errorf("Read during writes: %v", err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Lengths vary so writes straddle rotation points differently.
				if err := l.write(ID(w*1000+i), LevelInformation, strings.Repeat("x", (w*31+i*17)%300), map[string]string{"writer": fmt.Sprint(w)}); err != nil {
					t.Errorf("write: %v", err)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()

	res, err := Scan(path, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 || len(res.Events) != writers*each {
		t.Fatalf("read %d events, skipped %d; want %d whole events", len(res.Events), res.Skipped, writers*each)
	}
	// Each writer's events appear in the order it wrote them.
	next := make(map[string]int)
	for _, ev := range res.Events {
		w := ev.Fields["writer"]
		if want := mustAtoi(t, w)*1000 + next[w]; int(ev.ID) != want {
			t.Fatalf("writer %s: event %d out of order, want %d", w, ev.ID, want)
		}
		next[w]++
	}
	for _, r := range logs.all() {
		if r.Level > slog.LevelInfo {
			t.Errorf("unexpected log record: %s %v", r.Message, attrs(r))
		}
	}
	// Every line of every file is one JSON object.
	files, _ := filepath.Glob(path + "*")
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				t.Errorf("%s: not a whole line: %q", filepath.Base(name), sc.Text())
			}
		}
		f.Close()
		if st, _ := os.Stat(name); st.Size() > 4<<10 {
			t.Errorf("%s: %d bytes, over MaxBytes", filepath.Base(name), st.Size())
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLoggerReceivesEvents(t *testing.T) {
	var logs capture
	l, _ := openLog(t, Config{Logger: slog.New(&logs)})
	l.Event(TrustExpired, "trust expired", "connector_id", "c-1")
	l.Event(TunnelClosed, "tunnel closed", "app", "wiki", "latency", "90s")
	l.Event(UpdaterStarted, "started")
	l.Event(UpdateNothingNewer, "odd pairs", "key", "value", "lonely")
	mustWrite(t, l, 3002, LevelWarning, "via write", map[string]string{"k": "v"})

	want := []struct {
		level slog.Level
		msg   string
		attrs map[string]string
	}{
		{slog.LevelError, "trust expired", map[string]string{"event_id": "1000", "connector_id": "c-1"}},
		{slog.LevelWarn, "tunnel closed", map[string]string{"event_id": "1202", "app": "wiki", "latency": "90s"}},
		{slog.LevelInfo, "started", map[string]string{"event_id": "3000"}},
		{slog.LevelInfo, "odd pairs", map[string]string{"event_id": "3001", "key": "value", "!BADKEY": "lonely"}},
		{slog.LevelWarn, "via write", map[string]string{"event_id": "3002", "k": "v"}},
	}
	got := logs.all()
	if len(got) != len(want) {
		t.Fatalf("logger got %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		r := got[i]
		if r.Level != w.level || r.Message != w.msg || !maps.Equal(attrs(r), w.attrs) {
			t.Errorf("record %d = %v %q %v, want %v %q %v", i, r.Level, r.Message, attrs(r), w.level, w.msg, w.attrs)
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want Level
	}{
		{"error", LevelError},
		{"ERROR", LevelError},
		{" Error ", LevelError},
		{"warning", LevelWarning},
		{"Warn", LevelWarning},
		{"information", LevelInformation},
		{"INFO", LevelInformation},
		{"", ""},
		{"fatal", ""},
		{"err", ""},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrInvalidLevel) || !strings.Contains(err.Error(), "use error, warning or information") {
				t.Errorf("ParseLevel(%q) = %q, %v; want a clear ErrInvalidLevel", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLevel(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
