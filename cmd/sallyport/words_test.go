package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// unknownWords are words of the project's own history that users have
// never met: user-facing text must not say them (issue 20, defect 10:
// the doctor named a step of the document the product came from).
var unknownWords = []string{"seed"}

// TestNoUnknownWords scans what a user reads — every command's help
// (through the cobra tree) and docs/*.md and the README — for
// unknownWords. The doctor's own output is scanned by e2e's TestDoctor.
func TestNoUnknownWords(t *testing.T) {
	texts := map[string]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		var b strings.Builder
		b.WriteString(c.Use + "\n" + c.Short + "\n" + c.Long + "\n" + c.Example + "\n")
		c.Flags().VisitAll(func(f *pflag.Flag) { b.WriteString(f.Name + " " + f.Usage + "\n") })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { b.WriteString(f.Name + " " + f.Usage + "\n") })
		texts["help of '"+c.CommandPath()+"'"] = b.String()
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRoot()
	walk(root)
	if len(texts) < 10 {
		t.Fatalf("only %d commands in the cobra tree", len(texts))
	}
	docs, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md found (%v)", err)
	}
	for _, p := range append(docs, filepath.Join("..", "..", "README.md")) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		texts[filepath.Base(p)] = string(b)
	}
	for what, text := range texts {
		for i, line := range strings.Split(text, "\n") {
			for _, w := range unknownWords {
				if strings.Contains(strings.ToLower(line), w) {
					t.Errorf("%s, line %d, says %q, a word users do not know: %s", what, i+1, w, strings.TrimSpace(line))
				}
			}
		}
	}
}
