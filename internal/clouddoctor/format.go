package clouddoctor

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

// WriteTable writes the report for people, as the connector's doctor:
// one block per step (STATUS  id  title, then checked, found, advice),
// then the verdict.
func WriteTable(w io.Writer, rep Report) error {
	bw := bufio.NewWriter(w)
	name := rep.Cloud
	if name == "" {
		name = "(unknown)"
	}
	fmt.Fprintf(bw, "Sallyport cloud doctor: cloud %s, data directory %s, %s\n\n", name, rep.DataDir, rep.Started.Format(time.RFC3339))
	for _, s := range rep.Steps {
		fmt.Fprintf(bw, "%s  %s  %s\n", strings.ToUpper(s.Status), s.ID, s.Title)
		for _, l := range [][2]string{{"checked", s.Checked}, {"found", s.Found}, {"advice", s.Advice}} {
			if l[1] != "" {
				fmt.Fprintf(bw, "      %-8s %s\n", l[0]+":", l[1])
			}
		}
	}
	fmt.Fprintf(bw, "\nVerdict: %s: %d passed, %d warn (%s), %d failed (%s), %d not checked.\n", rep.Verdict,
		len(rep.IDs(Pass)), len(rep.IDs(Warn)), strings.Join(rep.IDs(Warn), ", "), len(rep.IDs(Fail)), strings.Join(rep.IDs(Fail), ", "), len(rep.IDs(Skip)))
	return bw.Flush()
}
