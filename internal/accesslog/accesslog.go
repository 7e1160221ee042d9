// Package accesslog writes the edge's access log: one JSON object per
// line and request, to a file (reopened on demand, for log rotation) or
// standard output, sampled for ordinary answers and complete for failures.
package accesslog

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sallyport/sallyport/internal/problem"
)

// Entry is one request as the access log records it.
type Entry struct {
	Time      time.Time // when the request arrived
	RequestID string
	Tenant    string // primary domain
	App       string // name
	Connector string // id of the connector that answered, if one did
	Client    string // the client's IP address
	Method    string
	Host      string
	Path      string // escaped, without the query (which may hold secrets)
	Proto     string
	Status    int
	Error     string // Sallyport error code of a page the edge answered with
	TTFB      time.Duration
	Duration  time.Duration
	BytesIn   int64
	BytesOut  int64
	UserAgent string
	// User and Dest: a private access stream's user and destination
	// (HOST:PORT as asked); Method is then TCP or UDP.
	User string
	Dest string
}

// Options configure a Logger.
type Options struct {
	// Path is the file to append to, or "-" for standard output.
	Path string
	// Sample, above 1, logs one in Sample ordinary answers (status below
	// 500 and no Sallyport error); failures are always logged.
	Sample int
	// FlushInterval bounds how long a line waits in the buffer. Default 1s.
	FlushInterval time.Duration
	// OnError, if set, is told of a failed write by the periodic flush
	// (at most once per FlushInterval).
	OnError func(error)
}

// Logger is an open access log. Its methods are safe for concurrent use.
type Logger struct {
	opts Options
	mu   sync.Mutex
	f    *os.File // nil for standard output
	w    io.Writer
	bw   *bufio.Writer
	err  error // the last write error, reported once
	seen atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

// maxField bounds what one field contributes to a line.
const maxField = 2048

// Open opens the access log (creating the file 0600) and starts its
// flusher; Close stops it.
func Open(o Options) (*Logger, error) {
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Sample < 1 {
		o.Sample = 1
	}
	l := &Logger{opts: o, stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.open(); err != nil {
		return nil, err
	}
	l.bw = bufio.NewWriterSize(l.w, 64<<10)
	go l.flusher()
	return l, nil
}

func (l *Logger) open() error {
	if l.opts.Path == "-" {
		l.w = os.Stdout
		return nil
	}
	f, err := os.OpenFile(l.opts.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return problem.Newf(400, "access_log", "check the path given with --access-log and that the cloud's user may write there",
			"The access log %s cannot be opened (%v)", l.opts.Path, err)
	}
	l.f, l.w = f, f
	return nil
}

// Log records e, unless sampling leaves it out.
func (l *Logger) Log(e *Entry) {
	if l.opts.Sample > 1 && e.Status < 500 && e.Error == "" && l.seen.Add(1)%uint64(l.opts.Sample) != 1 {
		return
	}
	bp := lines.Get().(*[]byte)
	b := AppendJSON((*bp)[:0], e)
	l.mu.Lock()
	if _, err := l.bw.Write(b); err != nil && l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	if cap(b) <= 64<<10 {
		*bp = b
		lines.Put(bp)
	}
}

var lines = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (l *Logger) flusher() {
	defer close(l.done)
	t := time.NewTicker(l.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := l.Flush(); err != nil && l.opts.OnError != nil {
				l.opts.OnError(err)
			}
		case <-l.stop:
			return
		}
	}
}

// Flush writes what is buffered. It returns the first write error since
// the last Flush or Reopen (a full disk, a removed mount), once.
func (l *Logger) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.bw.Flush(); err != nil && l.err == nil {
		l.err = err
	}
	err := l.err
	l.err = nil
	if err != nil {
		l.bw.Reset(l.w) // drop what cannot be written rather than retry it forever
	}
	return err
}

// Reopen flushes and reopens the file (after a log rotation moved it).
func (l *Logger) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bw.Flush()
	if l.f == nil {
		return nil
	}
	old := l.f
	if err := l.open(); err != nil {
		return err // keep writing to the old file
	}
	old.Close()
	l.bw.Reset(l.w)
	return nil
}

// Close flushes and closes the log.
func (l *Logger) Close() error {
	close(l.stop)
	<-l.done
	err := l.Flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// AppendJSON appends e as one line of JSON (with its newline) to b.
func AppendJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, '"')
	str := func(name, v string) {
		if v == "" {
			return
		}
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":`...)
		b = AppendString(b, v)
	}
	num := func(name string, v int64) {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, v, 10)
	}
	ms := func(name string, d time.Duration) {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":`...)
		b = strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
	}
	str("request_id", e.RequestID)
	str("tenant", e.Tenant)
	str("app", e.App)
	str("connector", e.Connector)
	str("client", e.Client)
	str("method", e.Method)
	str("host", e.Host)
	str("path", e.Path)
	str("user", e.User)
	str("dest", e.Dest)
	str("proto", e.Proto)
	num("status", int64(e.Status))
	str("error", e.Error)
	ms("ttfb_ms", e.TTFB)
	ms("duration_ms", e.Duration)
	num("bytes_in", e.BytesIn)
	num("bytes_out", e.BytesOut)
	str("user_agent", e.UserAgent)
	return append(b, "}\n"...)
}

// AppendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD, at most maxField
// bytes of s (then "…").
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	cut := len(s) > maxField
	if cut {
		s = s[:maxField]
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			if cut && len(s)-i < utf8.UTFMax && !utf8.FullRuneInString(s[i:]) {
				i = len(s) // a rune cut in two by the limit
				continue
			}
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	if cut {
		b = append(b, "…"...)
	}
	return append(b, '"')
}
