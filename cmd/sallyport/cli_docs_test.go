package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// How docs/cli.md documents flags, as TestCLIDocsFlags checks it (both
// ways, as eventlog's docs test does for the event catalog):
//
//   - Every command that has flags has a heading of its own whose first
//     code span is its path without "sallyport" (`### `connector run``;
//     words after the path, such as `[--check | --apply]`, are allowed),
//     followed by a table whose header starts with "| flag |". That
//     table lists exactly the command's flags: its own and the
//     persistent flags it declares, one or more `--flag ARG` per row.
//   - An inherited flag is documented where it is declared, not again
//     below: `--verbose` (and the help and version flags cobra adds) in
//     "Global flags", `--json` of `admin` in the `sallyport admin`
//     section.
//   - A hidden flag (for tests only) is never in a table; its command's
//     section names it in prose with the word "hidden".
//   - Hidden commands are not documented; cobra's own `help` and
//     `completion` are listed in the tree at the top only.
//   - A flag table under a heading that names no command is an error, as
//     is a command documented under two headings.

// docHeading is a heading of docs/cli.md and the command it names.
type docHeading struct {
	line  int
	level int
	text  string
	cmd   *cobra.Command // nil: names no command
	flags map[string]int // documented flag -> line of its row
	body  strings.Builder
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

// commandOfHeading walks root's tree along the words of the heading's
// first code span.
func commandOfHeading(root *cobra.Command, text string) *cobra.Command {
	if strings.TrimSpace(text) == "Global flags" {
		return root
	}
	m := codeSpan.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	words := strings.Fields(m[1])
	if len(words) > 0 && words[0] == "sallyport" {
		if len(words) == 1 {
			return root
		}
		words = words[1:]
	}
	c, matched := root, 0
	for _, w := range words {
		var next *cobra.Command
		for _, sub := range c.Commands() {
			if sub.Name() == w {
				next = sub
			}
		}
		if next == nil {
			break
		}
		c, matched = next, matched+1
	}
	if matched == 0 {
		return nil
	}
	return c
}

// flagsOfCell returns the flags named in a table cell's code spans:
// "--name" or "-x" (a shorthand, mapped to its long name by the caller).
func flagsOfCell(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		for _, w := range strings.Fields(m[1]) {
			w = strings.TrimRight(w, ",")
			if strings.HasPrefix(w, "-") && len(w) > 1 {
				if i := strings.IndexByte(w, '='); i > 0 {
					w = w[:i]
				}
				out = append(out, w)
			}
		}
	}
	return out
}

// parseCLIDoc reads docs/cli.md into headings with their flag tables.
func parseCLIDoc(t *testing.T, root *cobra.Command) []*docHeading {
	t.Helper()
	raw, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	var heads []*docHeading
	var cur *docHeading
	inCode, inFlagTable := false, false
	for i, line := range strings.Split(string(raw), "\n") {
		n := i + 1
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if !inCode && strings.HasPrefix(line, "#") {
			level := len(line) - len(strings.TrimLeft(line, "#"))
			text := strings.TrimSpace(line[level:])
			cur = &docHeading{line: n, level: level, text: text, cmd: commandOfHeading(root, text), flags: map[string]int{}}
			heads = append(heads, cur)
			inFlagTable = false
			continue
		}
		if cur == nil {
			continue
		}
		cur.body.WriteString(line + "\n")
		if inCode {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			inFlagTable = false
			continue
		}
		cells := strings.Split(strings.Trim(strings.ReplaceAll(line, `\|`, "/"), "|"), "|")
		first := strings.TrimSpace(cells[0])
		switch {
		case first == "flag":
			inFlagTable = true
			if cur.cmd == nil {
				t.Errorf("docs/cli.md:%d: a flag table under the heading %q, which names no command: put it under the heading of its command (e.g. ### `connector run`)", n, cur.text)
			}
		case inFlagTable && strings.HasPrefix(first, "---"):
		case inFlagTable:
			for _, f := range flagsOfCell(first) {
				cur.flags[f] = n
			}
		}
	}
	return heads
}

// documentedFlagName maps "--name" and "-x" to the flag's name on c,
// "" when c has no such flag.
func documentedFlagName(c *cobra.Command, doc string) string {
	if strings.HasPrefix(doc, "--") {
		if f := c.Flags().Lookup(doc[2:]); f != nil {
			return f.Name
		}
		return ""
	}
	if f := c.Flags().ShorthandLookup(doc[1:]); f != nil {
		return f.Name
	}
	return ""
}

// ownFlags are the flags c's section must document: its local flags and
// the persistent flags it declares (inherited ones are documented where
// they are declared); hidden ones apart.
func ownFlags(c *cobra.Command) (shown, hidden []*pflag.Flag) {
	seen := map[string]bool{}
	add := func(f *pflag.Flag) {
		if seen[f.Name] || (f.Name == "help" && c.HasParent()) {
			return
		}
		seen[f.Name] = true
		if f.Hidden {
			hidden = append(hidden, f)
		} else {
			shown = append(shown, f)
		}
	}
	c.LocalNonPersistentFlags().VisitAll(add)
	c.PersistentFlags().VisitAll(add)
	return shown, hidden
}

// docTree is the command tree as the binary has it, with the flags cobra
// adds at execution (help, version) made now.
func docTree() *cobra.Command {
	root := newRoot()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		c.InitDefaultVersionFlag()
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return root
}

func TestCLIDocsFlags(t *testing.T) {
	root := docTree()
	heads := parseCLIDoc(t, root)

	sections := map[*cobra.Command][]*docHeading{}
	for i, h := range heads {
		if h.cmd == nil {
			continue
		}
		// A section runs to the next heading of its level or above;
		// hidden flags are looked for in all of it.
		for _, sub := range heads[i+1:] {
			if sub.level <= h.level {
				break
			}
			h.body.WriteString(sub.text + "\n" + sub.body.String())
		}
		sections[h.cmd] = append(sections[h.cmd], h)
	}

	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		defer func() {
			for _, s := range c.Commands() {
				walk(s)
			}
		}()
		path := strings.TrimPrefix(c.CommandPath(), "sallyport ")
		shown, hidden := ownFlags(c)
		hs := sections[c]
		var withTable []*docHeading
		for _, h := range hs {
			if len(h.flags) > 0 {
				withTable = append(withTable, h)
			}
		}
		if len(withTable) > 1 {
			var where []string
			for _, h := range withTable {
				where = append(where, fmt.Sprintf("line %d", h.line))
			}
			t.Errorf("docs/cli.md documents the flags of `%s` under %d headings (%s): keep one flag table, under one heading", path, len(withTable), strings.Join(where, ", "))
		}
		if len(shown) == 0 {
			for _, h := range withTable {
				for _, doc := range slices.Sorted(maps.Keys(h.flags)) {
					line := h.flags[doc]
					t.Errorf("docs/cli.md:%d: `%s` has no flag %s: remove it from the flag table under %q", line, path, doc, h.text)
				}
			}
			return
		}
		if len(withTable) == 0 {
			var names []string
			for _, f := range shown {
				names = append(names, "--"+f.Name)
			}
			hint := "#### `" + path + "`"
			if c == root {
				hint = "### Global flags"
			}
			t.Errorf("docs/cli.md has no flag table for `%s` (flags %s): add a heading %s followed by a \"| flag | default | meaning |\" table with a row for each", path, strings.Join(names, ", "), hint)
			return
		}
		h := withTable[0]
		documented := map[string]bool{}
		for _, doc := range slices.Sorted(maps.Keys(h.flags)) {
			line := h.flags[doc]
			name := documentedFlagName(c, doc)
			switch {
			case name == "":
				t.Errorf("docs/cli.md:%d: `%s` has no flag %s: remove it from the flag table under %q", line, path, doc, h.text)
			case c.Flags().Lookup(name).Hidden:
				t.Errorf("docs/cli.md:%d: %s of `%s` is hidden (for tests only): take its row out of the table and name it in the section's prose as hidden", line, doc, path)
			case !isOwn(c, name):
				t.Errorf("docs/cli.md:%d: %s of `%s` is inherited, documented where it is declared: remove its row under %q", line, doc, path, h.text)
			default:
				documented[name] = true
			}
		}
		for _, f := range shown {
			if !documented[f.Name] {
				t.Errorf("docs/cli.md:%d: the flag table of `%s` has no row for --%s (%s): add | `--%s` | %s | %s |", h.line, path, f.Name, f.Usage, f.Name, defaultCell(f), f.Usage)
			}
		}
		body := ""
		for _, h := range hs {
			body += h.body.String()
		}
		for _, f := range hidden {
			named := regexp.MustCompile("`--" + regexp.QuoteMeta(f.Name) + "[ `=]")
			if !named.MatchString(body) || !strings.Contains(body, "hidden") {
				t.Errorf("docs/cli.md:%d: the section of `%s` does not name its hidden flag --%s: say in its prose that `--%s` is hidden and what it is for (tests only)", h.line, path, f.Name, f.Name)
			}
		}
	}
	walk(root)
}

func isOwn(c *cobra.Command, name string) bool {
	shown, hidden := ownFlags(c)
	for _, f := range append(shown, hidden...) {
		if f.Name == name {
			return true
		}
	}
	return false
}

func defaultCell(f *pflag.Flag) string {
	switch f.DefValue {
	case "", "false", "0", "0s", "[]":
		return "off"
	}
	return "`" + f.DefValue + "`"
}

// TestCLIDocsCommandLines parses every sallyport command line written in
// docs/*.md and README.md (in code blocks, and in code spans that start
// with "sallyport ") against the command tree: the command must exist,
// its flags too, and its arguments must be as many as it takes.
func TestCLIDocsCommandLines(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	checked := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(file, "../../")
		for _, cl := range commandLines(string(raw)) {
			checked++
			if wrongOnPurpose[strings.Join(cl.words, " ")] {
				continue
			}
			if msg := checkCommandLine(cl.words, cl.inline); msg != "" {
				t.Errorf("%s:%d: %q: %s", name, cl.line, strings.Join(cl.words, " "), msg)
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d command lines found in the docs: the extraction is broken", checked)
	}
}

type docCommandLine struct {
	line   int
	words  []string
	inline bool // a code span in prose: it may name a command without its arguments
}

// wrongOnPurpose are command lines the docs show failing.
var wrongOnPurpose = map[string]bool{"admin frobnicate": true}

// commandLines finds "sallyport ..." command lines: lines of code blocks
// (after "$ ", "sudo ", a pipe; continued with a trailing backslash; in
// a block that shows a prompt, only the lines after "$ ") and code spans
// starting with "sallyport ".
func commandLines(doc string) []docCommandLine {
	var out []docCommandLine
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), "```") {
			for _, m := range codeSpan.FindAllStringSubmatch(lines[i], -1) {
				if strings.HasPrefix(m[1], "sallyport ") {
					if w := sallyportWords(m[1]); w != nil {
						out = append(out, docCommandLine{i + 1, w, true})
					}
				}
			}
			continue
		}
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[end]), "```") {
			end++
		}
		block := lines[i+1 : end]
		prompt := false
		for _, l := range block {
			prompt = prompt || strings.HasPrefix(l, "$ ")
		}
		for j := 0; j < len(block); j++ {
			start, line := j, block[j]
			for strings.HasSuffix(line, "\\") && j+1 < len(block) {
				j++
				line = strings.TrimSuffix(line, "\\") + " " + block[j]
			}
			if (prompt && !strings.HasPrefix(line, "$ ")) || strings.ContainsAny(line, "─│┌└►▲") {
				continue
			}
			if w := sallyportWords(line); w != nil {
				out = append(out, docCommandLine{i + 2 + start, w, false})
			}
		}
		i = end
	}
	return out
}

// sallyportWords returns the words after "sallyport" up to the end of
// the shell command, nil when the line runs no sallyport command.
func sallyportWords(line string) []string {
	words := shellWords(line)
	at := -1
	for i, w := range words {
		// A path to the binary (/usr/bin/sallyport, ./cmd/sallyport), not a
		// package path in prose or a diagram (cmd/sallyport).
		isPath := strings.HasSuffix(w, "/sallyport") && (strings.HasPrefix(w, "/") || strings.HasPrefix(w, "./") || strings.HasPrefix(w, "~"))
		if w == "sallyport" || isPath {
			if i == 0 || words[i-1] == "$" || words[i-1] == "sudo" || words[i-1] == "|" || words[i-1] == "--" || words[i-1] == "run" {
				at = i
				break
			}
		}
	}
	if at < 0 {
		return nil
	}
	var out []string
	for _, w := range words[at+1:] {
		if w == "|" || w == "&&" || w == ";" || w == "#" || strings.HasPrefix(w, ">") || w == "2>&1" {
			break
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// shellWords splits a line as a shell would, closely enough for docs:
// quotes group and are removed.
func shellWords(s string) []string {
	var out []string
	var b strings.Builder
	inWord, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				b.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, b.String())
	}
	return out
}

// placeholder reports words the docs use for "and so on".
func placeholder(w string) bool {
	return w == "…" || w == "..." || strings.HasPrefix(w, "[") || strings.HasSuffix(w, "]") || w == "|"
}

// checkCommandLine parses words (after "sallyport") against a fresh tree.
func checkCommandLine(words []string, inline bool) string {
	root := docTree()
	var args []string
	elided := false
	for _, w := range words {
		if placeholder(w) {
			elided = true
			continue
		}
		args = append(args, w)
	}
	c, rest, err := root.Find(args)
	if err != nil {
		return err.Error()
	}
	if c.HasSubCommands() && !c.Runnable() {
		return "names a command group, not a command"
	}
	if err := c.ParseFlags(rest); err != nil {
		return err.Error()
	}
	pos := c.Flags().Args()
	if c.HasSubCommands() && c.Args != nil && len(pos) > 0 {
		// A group with NoArgs: a word that is not a subcommand.
		return fmt.Sprintf("`%s` has no subcommand %q", strings.TrimPrefix(c.CommandPath(), "sallyport "), pos[0])
	}
	if elided || (inline && len(pos) == 0) {
		return ""
	}
	if err := c.ValidateArgs(pos); err != nil {
		return err.Error()
	}
	return ""
}

// TestDocsAnchors: every link to a heading of docs/*.md or README.md
// ("#anchor", "file.md#anchor") names a heading that exists (as GitHub
// makes anchors), so renaming a command's heading cannot leave a link
// dangling.
func TestDocsAnchors(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	anchors := map[string]map[string]bool{} // file name -> anchors
	texts := map[string]string{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(file)
		texts[name] = string(raw)
		anchors[name] = map[string]bool{}
		inCode := false
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "```") {
				inCode = !inCode
			}
			if !inCode && strings.HasPrefix(line, "#") {
				anchors[name][slug(strings.TrimLeft(line, "#"))] = true
			}
		}
	}
	link := regexp.MustCompile(`\]\(([A-Za-z0-9_./-]*)#([^)\s]+)\)`)
	for name, text := range texts {
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := name
			if m[1] != "" {
				target = filepath.Base(m[1])
			}
			as, ok := anchors[target]
			if !ok {
				continue // a file outside docs/ (bench/RESULTS.md)
			}
			if !as[m[2]] {
				t.Errorf("%s links to %s#%s, which has no such heading", name, target, m[2])
			}
		}
	}
}

// slug is GitHub's anchor of a heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127 && unicode.IsLetter(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestCLIDocsTree: the command tree at the top of docs/cli.md lists every
// command of the binary, and only those (cobra's own help and completion
// apart; hidden commands are not listed).
func TestCLIDocsTree(t *testing.T) {
	raw, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "```\nsallyport\n")
	if start < 0 {
		t.Fatal("docs/cli.md has no command tree (a code block starting with the line 'sallyport')")
	}
	block := doc[start+len("```\n"):]
	block = block[:strings.Index(block, "```")]
	documented := map[string]int{}
	var stack []string
	for i, line := range strings.Split(block, "\n") {
		r := []rune(line)
		at := strings.Index(line, "── ")
		if at < 0 {
			continue
		}
		depth := (len([]rune(line[:at])) - 1) / 4
		words := strings.Fields(string(r[len([]rune(line[:at]))+3:]))
		if len(words) == 0 {
			continue
		}
		stack = append(stack[:min(depth, len(stack))], words[0])
		if words[0] == "help" || words[0] == "completion" {
			continue
		}
		documented[strings.Join(stack, " ")] = i + 1
		for _, w := range words[1:] {
			w = strings.Trim(w, ",")
			if strings.HasPrefix(w, "(") {
				break
			}
			if w == "|" || w == "" || strings.HasPrefix(w, "-") || strings.ContainsAny(w, "[]") { // flags, not subcommands (add-member is one)
				continue
			}
			documented[strings.Join(stack, " ")+" "+w] = i + 1
		}
	}
	inTree := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.Hidden {
				continue
			}
			path := strings.TrimPrefix(s.CommandPath(), "sallyport ")
			inTree[path] = true
			if _, ok := documented[path]; !ok {
				t.Errorf("docs/cli.md's command tree does not list `%s`: add it", path)
			}
			walk(s)
		}
	}
	walk(newRoot())
	for _, path := range slices.Sorted(maps.Keys(documented)) {
		if !inTree[path] {
			t.Errorf("docs/cli.md's command tree (line %d of the block) lists `%s`, which the binary does not have: remove it", documented[path], path)
		}
	}
}
