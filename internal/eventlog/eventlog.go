// Package eventlog is the user-facing event log of the connector and the
// cloud: numbered events with a level, a source, a time, a message and a few
// structured fields, kept as JSON lines in a file that rotates by size. It is
// what an operator reads with `sallyport connector events`, the counterpart
// of the Windows application event log in the system Sallyport replaces.
//
// The event log is a contract with users: every id is documented in Catalog.
// It is not the debug log; each event is also written to the process log
// (a *slog.Logger passed in) so both tell the same story.
//
// The package owns the file format, rotation and reading. It must not decide
// which events exist or when they are written (that is the service
// packages'), and it imports nothing else of Sallyport's.
//
// Each line of the file is one Event encoded as a JSON object. One process
// writes a given file: writes and rotation are serialised within a process,
// and each line is appended with a single O_APPEND write, but rotation is not
// coordinated across processes.
package eventlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Level is the severity of an event.
type Level string

// The levels, from least to most severe.
const (
	LevelInformation Level = "information"
	LevelWarning     Level = "warning"
	LevelError       Level = "error"
)

// ErrInvalidLevel is returned (wrapped) for a level that is not one of the
// three above.
var ErrInvalidLevel = errors.New("invalid event level")

// ErrClosed is returned by a write after Close.
var ErrClosed = errors.New("eventlog: log is closed")

// ParseLevel reads a level as a user types it: "error", "warning" or "warn",
// "information" or "info", in any case.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error":
		return LevelError, nil
	case "warning", "warn":
		return LevelWarning, nil
	case "information", "info":
		return LevelInformation, nil
	}
	return "", fmt.Errorf("%w %q: use error, warning or information", ErrInvalidLevel, s)
}

// rank orders levels by severity; 0 means not a level.
func (l Level) rank() int {
	switch l {
	case LevelInformation:
		return 1
	case LevelWarning:
		return 2
	case LevelError:
		return 3
	}
	return 0
}

func (l Level) slogLevel() slog.Level {
	switch l {
	case LevelError:
		return slog.LevelError
	case LevelWarning:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// Event is one entry of the log, and one line of the file.
type Event struct {
	ID      ID                `json:"id"`
	Level   Level             `json:"level"`
	Source  string            `json:"source"` // "connector", "cloud", "updater", "registration", ...
	Time    time.Time         `json:"time"`   // written in UTC
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"` // request id, application, connector id, ...
}

// Sizes and defaults.
const (
	// DefaultMaxBytes is Config.MaxBytes when left zero.
	DefaultMaxBytes = 10 << 20
	// DefaultKeep is Config.Keep when left zero.
	DefaultKeep = 5
	// MaxLineBytes is the longest line Read accepts, newline excluded.
	// Log.Event shortens an event that would encode longer (see Log.write).
	MaxLineBytes = 64 << 10
	// maxSourceBytes bounds Config.Source so a shortened event always fits.
	maxSourceBytes = 64
	// truncatedMessageBytes is how much of the message a shortened event
	// keeps: even if every byte is escaped as \u00XX it fits MaxLineBytes.
	truncatedMessageBytes = 8 << 10
)

// Config says where and how a Log writes.
type Config struct {
	// Path is the current file, e.g. DIR/events.jsonl. Its directory must
	// exist. Rotated files are Path.1 (newest) to Path.Keep (oldest).
	Path string
	// MaxBytes is the size a file may reach: a write that would take the
	// current file past it rotates first. Zero means DefaultMaxBytes. An
	// event longer than MaxBytes still goes, alone, into a fresh file.
	MaxBytes int64
	// Keep is how many rotated files are kept; older ones are deleted.
	// Zero means DefaultKeep.
	Keep int
	// Source is written in every event of this Log, e.g. "connector".
	// Required, at most 64 bytes.
	Source string
	// Logger, if not nil, receives every event at the matching slog level
	// (error, warn, info) with the id as attribute "event_id" and each field
	// as an attribute; it also receives failures of Log.Event and of
	// rotation.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate reports a Config that Open would refuse.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("eventlog: config: path is required")
	case c.Source == "":
		return errors.New("eventlog: config: source is required")
	case len(c.Source) > maxSourceBytes:
		return fmt.Errorf("eventlog: config: source is longer than %d bytes", maxSourceBytes)
	case c.MaxBytes < 0:
		return fmt.Errorf("eventlog: config: max bytes %d is negative", c.MaxBytes)
	case c.Keep < 0:
		return fmt.Errorf("eventlog: config: keep %d is negative", c.Keep)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Log appends events to a file. It is safe for concurrent use.
type Log struct {
	cfg Config

	mu     sync.Mutex
	f      *os.File // nil after a failed rotation; reopened by the next write
	size   int64
	closed bool
}

// Open opens cfg.Path for appending, creating it with mode 0600 if needed.
// An existing file's mode is left as it is.
func Open(cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg.withDefaults()}
	if err := l.openLocked(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) openLocked() error {
	f, err := os.OpenFile(l.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("eventlog: open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("eventlog: open: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// write appends one event, stamped with the Log's source and clock, as one
// JSON line, and passes it to the Logger. Event calls it with the level of
// the id's Catalog entry; tests call it with any id and level. An event whose line would exceed MaxLineBytes is shortened:
// its message is cut to 8 KiB and its fields are replaced by
// truncated=true, so readers never lose it. write does not fsync.
func (l *Log) write(id ID, level Level, message string, fields map[string]string) error {
	if l == nil {
		return ErrClosed
	}
	if level.rank() == 0 {
		return fmt.Errorf("eventlog: event %d: %w %q", id, ErrInvalidLevel, level)
	}
	ev, err := l.append(id, level, message, fields)
	l.emit(ev)
	return err
}

func (l *Log) append(id ID, level Level, message string, fields map[string]string) (Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Stamping under the lock keeps the file in time order.
	ev := Event{ID: id, Level: level, Source: l.cfg.Source, Time: l.cfg.Now().UTC(), Message: message, Fields: fields}
	if l.closed {
		return ev, ErrClosed
	}
	line, err := encodeLine(ev)
	if err != nil {
		return ev, fmt.Errorf("eventlog: event %d: %w", id, err)
	}
	if l.size > 0 && l.size+int64(len(line)) > l.cfg.MaxBytes {
		l.rotateLocked()
	}
	if l.f == nil {
		if err := l.openLocked(); err != nil {
			return ev, err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		return ev, fmt.Errorf("eventlog: write event %d: %w", id, err)
	}
	return ev, nil
}

// encodeLine returns ev as one JSON line ending in '\n', shortened if it
// would not fit MaxLineBytes.
func encodeLine(ev Event) ([]byte, error) {
	line, err := marshal(ev)
	if err != nil || len(line)-1 <= MaxLineBytes {
		return line, err
	}
	ev.Message = truncateUTF8(ev.Message, truncatedMessageBytes)
	ev.Fields = map[string]string{"truncated": "true"}
	return marshal(ev)
}

func marshal(ev Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil { // Encode adds the '\n'
		return nil, err
	}
	return buf.Bytes(), nil
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// rotateLocked renames Path to Path.1, shifting older files up and dropping
// the one beyond Keep. On failure it keeps writing to the current file, so
// an event is never lost to rotation; the failure goes to the Logger.
func (l *Log) rotateLocked() {
	if l.f != nil {
		// Closed before renaming: Windows cannot rename an open file.
		if err := l.f.Close(); err != nil {
			l.warn("eventlog: closing the file before rotation failed", err)
		}
		l.f = nil
	}
	if err := shift(l.cfg.Path, l.cfg.Keep); err != nil {
		l.warn("eventlog: rotation failed; writing on in the current file", err)
	}
}

func shift(path string, keep int) error {
	if err := os.Remove(rotatedName(path, keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(rotatedName(path, i), rotatedName(path, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(path, rotatedName(path, 1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func rotatedName(path string, i int) string { return path + "." + strconv.Itoa(i) }

func (l *Log) warn(msg string, err error) {
	if l.cfg.Logger != nil {
		l.cfg.Logger.Warn(msg, "path", l.cfg.Path, "err", err)
	}
}

// emit writes ev to the process log.
func (l *Log) emit(ev Event) {
	if l.cfg.Logger == nil {
		return
	}
	attrs := make([]slog.Attr, 0, 1+len(ev.Fields))
	attrs = append(attrs, slog.Int("event_id", int(ev.ID)))
	keys := make([]string, 0, len(ev.Fields))
	for k := range ev.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		attrs = append(attrs, slog.String(k, ev.Fields[k]))
	}
	l.cfg.Logger.LogAttrs(context.Background(), ev.Level.slogLevel(), ev.Message, attrs...)
}

// Event writes event id at the level Catalog gives it; kv are field
// key/value pairs. A failure to write is reported to the Logger, never
// returned. Safe on a nil *Log. An id missing from Catalog (only a
// conversion can make one) is written as an error, and the Logger is told.
func (l *Log) Event(id ID, message string, kv ...string) {
	if l == nil {
		return
	}
	level := LevelError
	if d, ok := Lookup(id); ok {
		level = d.Level
	} else if l.cfg.Logger != nil {
		l.cfg.Logger.Error("eventlog: event id is not in the catalog", "event_id", int(id))
	}
	if err := l.write(id, level, message, fieldsOf(kv)); err != nil && l.cfg.Logger != nil {
		l.cfg.Logger.Error("eventlog: could not record event", "event_id", int(id), "err", err)
	}
}

// fieldsOf pairs kv into a map; a lone last value is kept under "!BADKEY",
// as log/slog does.
func fieldsOf(kv []string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	m := make(map[string]string, (len(kv)+1)/2)
	for i := 0; i < len(kv); i += 2 {
		if i+1 == len(kv) {
			m["!BADKEY"] = kv[i]
			break
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Close closes the file. Later writes return ErrClosed; closing twice is
// harmless.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("eventlog: close: %w", err)
	}
	return nil
}
