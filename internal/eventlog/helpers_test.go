package eventlog

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the first tick of the test clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// tick returns a clock that advances by one second on every call.
func tick() func() time.Time {
	var mu sync.Mutex
	now := t0.Add(-time.Second)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

// openLog opens a log in a fresh directory; it is closed when the test ends.
func openLog(t *testing.T, cfg Config) (*Log, string) {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "events.jsonl")
	}
	if cfg.Source == "" {
		cfg.Source = "connector"
	}
	if cfg.Now == nil {
		cfg.Now = tick()
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, cfg.Path
}

func mustWrite(t *testing.T, l *Log, id ID, level Level, msg string, fields map[string]string) {
	t.Helper()
	if err := l.write(id, level, msg, fields); err != nil {
		t.Fatalf("write(%d): %v", id, err)
	}
}

func mustRead(t *testing.T, path string, f Filter) []Event {
	t.Helper()
	evs, err := Read(path, f)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return evs
}

func messages(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Message
	}
	return out
}

// capture is a slog.Handler that keeps the records it gets.
type capture struct {
	mu      sync.Mutex
	records []slog.Record
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r.Clone())
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

func (c *capture) all() []slog.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]slog.Record(nil), c.records...)
}

func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}
