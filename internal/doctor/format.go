package doctor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteJSON writes the report as indented JSON (docs/doctor.md).
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the report for people: one block per step,
//
//	PASS  tls  TLS handshake with the cloud
//	      checked: ...
//	      found:   ...
//	      advice:  ...
//
// then the verdict.
func WriteTable(w io.Writer, rep Report) error {
	bw := bufio.NewWriter(w)
	who := "connector " + orUnknown(rep.Connector)
	fmt.Fprintf(bw, "Sallyport connector doctor: %s, cloud %s, %s\n\n", who, orUnknown(rep.Cloud), rep.Started.Format(time.RFC3339))
	for _, s := range rep.Steps {
		fmt.Fprintf(bw, "%s  %s  %s\n", strings.ToUpper(s.Status), s.ID, s.Title)
		if s.Checked != "" {
			fmt.Fprintf(bw, "      checked: %s\n", s.Checked)
		}
		if s.Found != "" {
			fmt.Fprintf(bw, "      found:   %s\n", s.Found)
		}
		if s.Advice != "" {
			fmt.Fprintf(bw, "      advice:  %s\n", s.Advice)
		}
	}
	fmt.Fprintf(bw, "\n%s\n", VerdictLine(rep))
	return bw.Flush()
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// VerdictLine is the report's last line: the verdict and the steps that
// decided it.
func VerdictLine(rep Report) string {
	count := func(status string) string {
		ids := rep.IDs(status)
		return fmt.Sprintf("%d %s (%s)", len(ids), status, strings.Join(ids, ", "))
	}
	switch rep.Verdict {
	case Failed:
		line := "Verdict: failed: " + count(Fail)
		if len(rep.IDs(Warn)) > 0 {
			line += ", " + count(Warn)
		}
		if n := len(rep.IDs(Skip)); n > 0 {
			line += fmt.Sprintf(", %d skipped", n)
		}
		return line + "."
	case Warnings:
		return "Verdict: warnings: " + count(Warn) + ", nothing failed."
	}
	if n := len(rep.IDs(Skip)); n > 0 {
		return fmt.Sprintf("Verdict: healthy: %d steps passed, %d not checked (%s).", len(rep.Steps)-n, n, strings.Join(rep.IDs(Skip), ", "))
	}
	return fmt.Sprintf("Verdict: healthy: all %d steps passed.", len(rep.Steps))
}
