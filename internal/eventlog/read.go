package eventlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"
)

// Filter selects events. The zero Filter selects every event.
type Filter struct {
	// Newest keeps only the last N matching events; 0 keeps all.
	Newest int
	// MinLevel is the least severe level kept: LevelError keeps errors
	// only, LevelWarning warnings and errors, LevelInformation or "" all.
	MinLevel Level
	// Since keeps events at or after this time; zero keeps all.
	Since time.Time
	// IDs keeps only these event ids; empty keeps all.
	IDs []ID
	// Source keeps only events of this source; empty keeps all.
	Source string
	// Where, if not nil, keeps only the events it returns true for; it
	// runs after the other conditions, and Newest counts what it keeps.
	Where func(*Event) bool
}

// Validate reports a Filter that Read would refuse.
func (f Filter) Validate() error {
	if f.Newest < 0 {
		return fmt.Errorf("eventlog: filter: newest %d is negative", f.Newest)
	}
	if f.MinLevel != "" && f.MinLevel.rank() == 0 {
		return fmt.Errorf("eventlog: filter: %w %q", ErrInvalidLevel, f.MinLevel)
	}
	return nil
}

func (f Filter) match(ev *Event) bool {
	return ev.Level.rank() >= f.MinLevel.rank() &&
		(f.Since.IsZero() || !ev.Time.Before(f.Since)) &&
		(len(f.IDs) == 0 || slices.Contains(f.IDs, ev.ID)) &&
		(f.Source == "" || ev.Source == f.Source) &&
		(f.Where == nil || f.Where(ev))
}

// maxScanBytes bounds how much of the files Read looks at, newest first;
// a variable so tests can lower it. The default comfortably holds the
// default 6 files of 10 MiB.
var maxScanBytes int64 = 128 << 20

// maxRotated bounds how many rotated files Read looks for.
const maxRotated = 1000

// Result is what Scan found.
type Result struct {
	Events  []Event // matching events, oldest first
	Lines   int     // non-blank lines looked at
	Skipped int     // lines that were not a valid event: garbled, cut short, over MaxLineBytes
	Capped  bool    // the files held more than Read looks at; the oldest were left out
}

// Read returns the events of the log at path that pass f, oldest first: the
// rotated files (path.N down to path.1) then path itself. Lines that are not
// a valid event — a last line cut short by a crash, garbage, a line longer
// than MaxLineBytes — are skipped. Only the newest 128 MiB are looked at.
// With no file at all the error wraps fs.ErrNotExist.
//
// Read takes no lock: run beside a writer, it sees a consistent but possibly
// slightly stale picture, and an event may show twice if a rotation happens
// while it reads.
func Read(path string, f Filter) ([]Event, error) {
	res, err := Scan(path, f)
	return res.Events, err
}

// Scan is Read that also says how many lines it skipped.
func Scan(path string, f Filter) (Result, error) {
	if err := f.Validate(); err != nil {
		return Result{}, err
	}
	parts, capped, err := plan(path)
	if err != nil {
		return Result{}, err
	}
	s := scanner{filter: f, res: Result{Capped: capped}}
	for i := len(parts) - 1; i >= 0; i-- {
		if err := s.file(parts[i]); err != nil {
			return Result{}, err
		}
	}
	if f.Newest > 0 && len(s.res.Events) > f.Newest {
		s.res.Events = s.res.Events[len(s.res.Events)-f.Newest:]
	}
	return s.res, nil
}

// part is a file to read from an offset.
type part struct {
	name string
	from int64
}

// plan lists the files to read, newest first, within maxScanBytes.
func plan(path string) (parts []part, capped bool, err error) {
	budget := maxScanBytes
	for i := 0; i <= maxRotated; i++ {
		name := path
		if i > 0 {
			name = rotatedName(path, i)
		}
		st, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			if i == 0 {
				continue // a crash between rotation and the next write
			}
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("eventlog: read: %w", err)
		}
		if budget <= 0 {
			capped = true
			break
		}
		p := part{name: name}
		if st.Size() > budget {
			p.from, capped = st.Size()-budget, true
		}
		budget -= st.Size() - p.from
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return nil, false, fmt.Errorf("eventlog: no event log at %s: %w", path, fs.ErrNotExist)
	}
	return parts, capped, nil
}

type scanner struct {
	filter Filter
	res    Result
}

func (s *scanner) file(p part) error {
	f, err := os.Open(p.name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // rotated away since plan
	}
	if err != nil {
		return fmt.Errorf("eventlog: read: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, MaxLineBytes+1)
	if p.from > 0 {
		// Start after the line that straddles the offset: look at the byte
		// before it, so a line starting exactly there is kept.
		if _, err := f.Seek(p.from-1, io.SeekStart); err != nil {
			return fmt.Errorf("eventlog: read: %w", err)
		}
		if err := discardLine(r); err != nil {
			return readErr(err)
		}
	}
	for {
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			s.res.Lines++
			s.res.Skipped++
			if err := discardLine(r); err != nil {
				return readErr(err)
			}
			continue
		case errors.Is(err, io.EOF):
			s.line(line) // a last line without '\n': kept if whole
			return nil
		case err != nil:
			return readErr(err)
		}
		s.line(line)
	}
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("eventlog: read: %w", err)
}

// discardLine reads up to and including the next '\n'.
func discardLine(r *bufio.Reader) error {
	for {
		_, err := r.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

func (s *scanner) line(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	s.res.Lines++
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil || ev.Level.rank() == 0 || ev.Time.IsZero() {
		s.res.Skipped++
		return
	}
	if !s.filter.match(&ev) {
		return
	}
	s.res.Events = append(s.res.Events, ev)
	// With Newest, hold at most twice that many.
	if n := s.filter.Newest; n > 0 && len(s.res.Events) >= 2*n {
		s.res.Events = append(s.res.Events[:0], s.res.Events[len(s.res.Events)-n:]...)
	}
}
