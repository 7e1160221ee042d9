package config

import (
	"fmt"
	"io"
	"strings"
)

// Source says where a setting came from, as --print-config shows it:
// "flag", "env SALLYPORT_DATA_DIR", "file /etc/sallyport/cloud.toml:3" or
// "default".
func (r *Result) Source(s Setting) string {
	switch s.Origin {
	case Flag:
		return "flag"
	case Env:
		return "env " + s.Env
	case File:
		return fmt.Sprintf("file %s:%d", r.Path, s.Line)
	default:
		return "default"
	}
}

// FileNote is the first line of --print-config: which file was read, or
// why none was.
func (r *Result) FileNote() string {
	switch {
	case r.Path == "":
		return "no configuration file (--config '')"
	case r.Found:
		return "configuration file " + r.Path
	case r.Unreadable:
		return "no configuration file: " + r.Path + " is not readable by this user, so it was skipped (run as the service's user or root to use it, or give --config)"
	default:
		return "no configuration file: " + r.Path + " does not exist (the default path, which may be missing)"
	}
}

// Print writes the effective settings, one per line, as TOML with where
// each came from in a comment: the output is itself a valid configuration
// file. Secret values are never printed.
func (r *Result) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s\n", r.Command, r.FileNote())
	width := 0
	lines := make([]string, len(r.Settings))
	for i, s := range r.Settings {
		lines[i] = s.Key + " = " + tomlValue(s)
		if s.Secret {
			lines[i] = "# " + s.Key + " = (hidden)"
		}
		width = max(width, len(lines[i]))
	}
	for i, s := range r.Settings {
		fmt.Fprintf(&b, "%-*s  # %s\n", width, lines[i], r.Source(s))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tomlValue writes a setting's value as TOML: numbers and booleans bare,
// everything else (durations too) a quoted string, lists arrays.
func tomlValue(s Setting) string {
	switch s.Type {
	case "bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "count", "float32", "float64":
		return s.Value
	case "stringSlice", "stringArray":
		inner := strings.TrimSuffix(strings.TrimPrefix(s.Value, "["), "]")
		if inner == "" {
			return "[]"
		}
		items := strings.Split(inner, ",")
		for i, it := range items {
			items[i] = tomlString(it)
		}
		return "[" + strings.Join(items, ", ") + "]"
	default:
		return tomlString(s.Value)
	}
}

// Quote is s as a TOML basic string (for files written by install).
func Quote(s string) string { return tomlString(s) }

// tomlString is a TOML basic string: '"' and '\\' escaped, control
// characters as \uXXXX, everything else as is (UTF-8).
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
