package eventlog

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// FormatTable writes events as a table for people: TIME (RFC 3339, local
// time), LEVEL, ID, SOURCE, MESSAGE, the message followed by the fields as
// key=value in key order. Control characters read from the file are
// (and bidirectional overrides) are replaced, so a tampered log cannot
// drive the terminal or disguise a line.
func FormatTable(w io.Writer, events []Event) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tLEVEL\tID\tSOURCE\tMESSAGE")
	for _, ev := range events {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n",
			ev.Time.Local().Format(time.RFC3339), clean(string(ev.Level)), ev.ID, clean(ev.Source), describe(ev))
	}
	return tw.Flush()
}

// describe is the message then the fields, on one line.
func describe(ev Event) string {
	var b strings.Builder
	b.WriteString(clean(ev.Message))
	keys := make([]string, 0, len(ev.Fields))
	for k := range ev.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString("  ")
		b.WriteString(quoteIfNeeded(clean(k)))
		b.WriteByte('=')
		b.WriteString(quoteIfNeeded(clean(ev.Fields[k])))
	}
	return b.String()
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			return '?'
		}
		return r
	}, s)
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " =\"") {
		return strconv.Quote(s)
	}
	return s
}

// FormatJSON writes events as one indented JSON array; no events is [].
func FormatJSON(w io.Writer, events []Event) error {
	if events == nil {
		events = []Event{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(events)
}
