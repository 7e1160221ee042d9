package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	"github.com/spf13/pflag"

	"github.com/sallyport/sallyport/internal/problem"
)

// Document is a parsed configuration file: flat top-level keys, each with
// its value and line.
type Document struct {
	path    string
	entries map[string]entry
	order   []string // keys in the file's order
}

type entry struct {
	value any // as go-toml decodes it: string, int64, float64, bool, []any, ...
	line  int
}

// Parse reads a configuration file's bytes (path only names it in
// sentences). It refuses what is not TOML, tables ([section]) and dotted
// keys: the keys are flat, one per flag.
func Parse(data []byte, path string) (*Document, error) {
	var values map[string]any
	if err := toml.Unmarshal(data, &values); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, col := de.Position()
			return nil, fileErr(path, line, fmt.Sprintf("is not valid TOML at column %d (%s)", col, strings.TrimPrefix(de.Error(), "toml: ")),
				`correct that line: each line is KEY = VALUE, strings in double quotes (see docs/config.md)`)
		}
		return nil, problem.New(400, "config_file", "correct it (see docs/config.md)", fmt.Sprintf("The configuration file %s is not valid TOML (%v)", path, err))
	}
	doc := &Document{path: path, entries: map[string]entry{}}
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			it := e.Key()
			it.Next()
			line := p.Shape(it.Node().Raw).Start.Line
			return nil, fileErr(path, line, fmt.Sprintf("opens the table [%s]", joinKey(e.Key())),
				"remove it and write its settings as plain KEY = VALUE lines at the top: the keys are the command's long flag names, without sections")
		case unstable.KeyValue:
			it := e.Key()
			it.Next()
			line := p.Shape(it.Node().Raw).Start.Line
			key := joinKey(e.Key())
			if strings.Contains(key, ".") {
				return nil, fileErr(path, line, fmt.Sprintf("has the dotted key %q", key),
					"write the flag's long name alone as the key, e.g. data-dir = \"/var/lib/sallyport\"")
			}
			doc.entries[key] = entry{value: values[key], line: line}
			doc.order = append(doc.order, key)
		}
	}
	if err := p.Error(); err != nil { // Unmarshal accepted it: not expected
		return nil, problem.New(400, "config_file", "correct it (see docs/config.md)", fmt.Sprintf("The configuration file %s is not valid TOML (%v)", path, err))
	}
	return doc, nil
}

func (d *Document) has(key string) bool {
	_, ok := d.entries[key]
	return ok
}

func joinKey(it unstable.Iterator) string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return strings.Join(parts, ".")
}

// check refuses keys that are no flag of the command and secrets written
// in the file, whatever the command line and environment say: a bad file
// never starts anything.
func (d *Document) check(fs *pflag.FlagSet, keys []string, command string) error {
	for _, key := range d.order {
		line := d.entries[key].line
		if isSecretName(key) {
			step := "put the secret alone in a file readable only by the service (chmod 600 FILE) and give that file's path"
			if fs.Lookup(key+"-file") != nil {
				step += fmt.Sprintf(" as %s-file", key)
			} else {
				step = fmt.Sprintf("remove it: %s takes no such secret, and secrets are only ever given as files (a KEY-file setting)", command)
			}
			return fileErr(d.path, line, fmt.Sprintf("holds the secret %q, and secrets are never written in a configuration file", key), step)
		}
		if !containsKey(keys, key) {
			step := fmt.Sprintf("remove it; the keys are the long flag names of '%s' (see docs/config.md or --help)", command)
			if s := suggest(key, keys); s != "" {
				step = fmt.Sprintf("did you mean %q? The keys are the long flag names of '%s' (see docs/config.md)", s, command)
			}
			return fileErr(d.path, line, fmt.Sprintf("has the key %q, which is not a setting of '%s'", key, command), step)
		}
	}
	return nil
}

func containsKey(keys []string, key string) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}

// apply sets flag f from the file's value, refusing a value of the wrong
// TOML type for the flag's type.
func (e entry) apply(fs *pflag.FlagSet, f *pflag.Flag, path string) error {
	wrong := func(detail string) error {
		return fileErr(path, e.line, fmt.Sprintf("gives %s %s, but it takes %s%s", f.Name, tomlType(e.value), typeWords(f), detail),
			fmt.Sprintf("write it as %s = %s", f.Name, example(f)))
	}
	var s string
	switch t := f.Value.Type(); t {
	case "bool":
		b, ok := e.value.(bool)
		if !ok {
			return wrong("")
		}
		s = strconv.FormatBool(b)
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "count":
		n, ok := e.value.(int64)
		if !ok {
			return wrong("")
		}
		s = strconv.FormatInt(n, 10)
	case "float32", "float64":
		switch v := e.value.(type) {
		case int64:
			s = strconv.FormatInt(v, 10)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return wrong(" (a finite number)")
			}
			s = strconv.FormatFloat(v, 'g', -1, 64)
		default:
			return wrong("")
		}
	case "stringSlice", "stringArray":
		list, ok := e.value.([]any)
		if !ok {
			return wrong("")
		}
		items := make([]string, len(list))
		for i, v := range list {
			if items[i], ok = v.(string); !ok {
				return wrong(" (every item a string)")
			}
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			if err := sv.Replace(items); err != nil {
				return fileErr(path, e.line, fmt.Sprintf("gives %s a value it refuses (%v)", f.Name, err), fmt.Sprintf("write it as %s = %s", f.Name, example(f)))
			}
			f.Changed = true
			return nil
		}
		s = strings.Join(items, ",")
	default: // string, duration and any other text-valued flag
		str, ok := e.value.(string)
		if !ok {
			return wrong("")
		}
		s = str
	}
	if err := fs.Set(f.Name, s); err != nil {
		return fileErr(path, e.line, fmt.Sprintf("gives %s the value %q, which it cannot take (%s)", f.Name, s, cause(err)),
			fmt.Sprintf("write it as %s = %s", f.Name, example(f)))
	}
	return nil
}

// cause is pflag's parse error without its own "invalid argument" framing.
func cause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

func fileErr(path string, line int, what, step string) error {
	return problem.New(400, "config_file", step, fmt.Sprintf("The configuration file %s, line %d, %s", path, line, what))
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a decimal number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an inline table"
	default:
		return "a date or time"
	}
}

// typeWords says in words what a flag's key takes.
func typeWords(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "count":
		return "a whole number"
	case "float32", "float64":
		return "a number"
	case "duration":
		return `a duration in a string such as "30s" or "2h"`
	case "stringSlice", "stringArray":
		return "an array of strings"
	default:
		return "a string"
	}
}

// example is a valid TOML value for f: its default, else a typical value.
func example(f *pflag.Flag) string {
	def := f.DefValue
	switch f.Value.Type() {
	case "bool":
		return "true"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "count", "float32", "float64":
		if def == "" {
			return "1"
		}
		return def
	case "duration":
		if def == "" || def == "0s" {
			return `"30s"`
		}
		return strconv.Quote(def)
	case "stringSlice", "stringArray":
		return `["a", "b"]`
	default:
		if def == "" {
			return `"..."`
		}
		return strconv.Quote(def)
	}
}

// suggest is the key most like an unknown one: the same key with '_' or
// upper case written differently, else one at a small edit distance.
func suggest(key string, keys []string) string {
	norm := strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	best, bestDist := "", 3
	for _, k := range keys {
		if k == norm {
			return k
		}
		if d := distance(norm, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b (bytes; keys are ASCII).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
