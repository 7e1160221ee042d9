// Package config reads a command's TOML configuration file and the
// SALLYPORT_* environment onto the command's flags, so that every flag of
// 'cloud serve' and 'connector run' is also a key of their files. It owns
// the precedence (flag > environment > file > default), the refusals of a
// bad file (unknown key, wrong type, a secret written in the file, a secret
// file others may read) and the report of where each setting came from
// (--print-config).
//
// It is generic over a pflag.FlagSet: a key is exactly a flag's long name,
// its TOML type follows the flag's type. It knows no command of ours and
// must not import any package of ours but internal/problem.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sallyport/sallyport/internal/problem"
)

// EnvPrefix starts the environment variable of every key:
// SALLYPORT_ + the key in upper case with '-' as '_' (data-dir:
// SALLYPORT_DATA_DIR).
const EnvPrefix = "SALLYPORT_"

// MaxFileSize bounds a configuration file: a few hundred bytes in
// practice; anything near a megabyte is not a configuration file.
const MaxFileSize = 1 << 20

// SecretFileAnnotation marks a flag whose value names a file holding a
// secret (a private key, a token): when the name comes from the file or
// the environment, the file must be readable by its owner only.
const SecretFileAnnotation = "sallyport_secret_file"

// MarkSecretFile marks the flag name as naming a secret file.
func MarkSecretFile(fs *pflag.FlagSet, name string) {
	_ = fs.SetAnnotation(name, SecretFileAnnotation, []string{"true"})
}

// Origin is where a setting's value came from.
type Origin int

// The origins, from the weakest to the strongest.
const (
	Default Origin = iota
	File
	Env
	Flag
)

// Setting is one key's effective value and where it came from.
type Setting struct {
	Key    string
	Type   string // the flag's type: string, int, bool, duration, float64, stringSlice...
	Value  string // as the flag prints it (pflag.Value.String)
	Origin Origin
	Env    string // the variable's name (Origin Env)
	Line   int    // the line in the file (Origin File)
	Secret bool   // a secret value: never printed
}

// Options say where a command's settings come from.
type Options struct {
	// Command names the command in sentences: "cloud serve".
	Command string
	// Path is the configuration file; "" reads none.
	Path string
	// Explicit: the user gave Path (--config), so a missing file is an
	// error; the default path may be missing.
	Explicit bool
	// Skip are flags that have no key (config, print-config); "help" and
	// hidden flags never have one.
	Skip []string
	// Others are the keys of another command that reads the same file
	// ('cloud doctor' reads 'cloud serve's): accepted in the file and
	// ignored, so that one file serves both.
	Others []string
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Result is the effective configuration after Apply.
type Result struct {
	Command string
	Path    string // the file's path; "" when none was to be read
	Found   bool   // the file existed and was read
	// Unreadable: the default file exists but this user may not read it
	// (a non-root user beside the installed service's 0640 file); it was
	// skipped, and the command says so on standard error.
	Unreadable bool
	Explicit   bool
	Settings   []Setting // one per key, sorted by key
}

// EnvName is the environment variable of a key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// Keys returns the keys of fs: its flags' long names, without help, hidden
// flags and skip.
func Keys(fs *pflag.FlagSet, skip ...string) []string {
	var keys []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Hidden || slices.Contains(skip, f.Name) {
			return
		}
		keys = append(keys, f.Name)
	})
	slices.Sort(keys)
	return keys
}

// Apply sets every flag of fs that the command line left unset from the
// environment, else from the configuration file, and returns where each
// setting came from. fs must be parsed already (flag.Changed says what the
// command line set). On any error nothing should start: the error is one
// sentence naming the file, line and key.
func Apply(fs *pflag.FlagSet, o Options) (*Result, error) {
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	res := &Result{Command: o.Command, Path: o.Path, Explicit: o.Explicit}
	keys := Keys(fs, o.Skip...)

	var doc *Document
	if o.Path != "" {
		data, found, err := readFile(o.Path, o.Explicit)
		if !o.Explicit && errors.Is(err, os.ErrPermission) {
			res.Unreadable, err = true, nil
		}
		if err != nil {
			return nil, err
		}
		res.Found = found
		if found {
			if doc, err = Parse(data, o.Path); err != nil {
				return nil, err
			}
			if err := doc.check(fs, append(keys, o.Others...), o.Command); err != nil {
				return nil, err
			}
		}
	}

	for _, key := range keys {
		f := fs.Lookup(key)
		s := Setting{Key: key, Type: f.Value.Type(), Secret: isSecretName(key)}
		env := EnvName(key)
		switch v, inEnv := lookup(env); {
		case f.Changed:
			s.Origin = Flag
		case inEnv:
			if err := fs.Set(key, v); err != nil {
				return nil, problem.New(400, "config_env",
					"correct it or unset it (see docs/config.md)", fmt.Sprintf("The environment variable %s=%q does not fit %s, which takes %s (%s)", env, v, key, typeWords(f), cause(err)))
			}
			s.Origin, s.Env = Env, env
			if err := checkSecretFile(f, "the environment variable "+env); err != nil {
				return nil, err
			}
		case doc != nil && doc.has(key):
			e := doc.entries[key]
			if err := e.apply(fs, f, o.Path); err != nil {
				return nil, err
			}
			s.Origin, s.Line = File, e.line
			if err := checkSecretFile(f, fmt.Sprintf("%s line %d", o.Path, e.line)); err != nil {
				return nil, err
			}
		}
		s.Value = f.Value.String()
		res.Settings = append(res.Settings, s)
	}
	return res, nil
}

// readFile reads the configuration file; a missing file is an error only
// when explicit.
func readFile(path string, explicit bool) ([]byte, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, false, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, problem.New(400, "config_file",
			"check the path given to --config (write one as docs/config.md shows, or leave --config out)", fmt.Sprintf("The configuration file %s does not exist", path))
	}
	if err != nil {
		return nil, false, problem.New(400, "config_file",
			"check its permissions (run the command as the service's user or root), or give --config '' to read no file", fmt.Sprintf("The configuration file %s cannot be read (%v)", path, errors.Unwrap(err))).Wrap(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return nil, false, problem.New(400, "config_file",
			"check that it is a file, readable by this user", fmt.Sprintf("The configuration file %s cannot be read (%v)", path, err))
	}
	if buf.Len() > MaxFileSize {
		return nil, false, problem.New(400, "config_file",
			"check the path given to --config: a configuration file holds a few lines", fmt.Sprintf("The configuration file %s is larger than 1 MiB", path))
	}
	return buf.Bytes(), true, nil
}

// checkSecretFile refuses a secret file (a flag marked with
// SecretFileAnnotation, or NAME-file for a secret NAME) that others than
// its owner may read or write, when the file or the environment named it.
func checkSecretFile(f *pflag.Flag, from string) error {
	if !isSecretFileFlag(f) || f.Value.String() == "" || runtime.GOOS == "windows" {
		return nil // Windows: access is by ACL, which the mode bits do not show
	}
	path := f.Value.String()
	fi, err := os.Stat(path)
	if err != nil {
		return nil // the command's own check says what is wrong with a missing file
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return problem.New(400, "secret_file_mode",
			fmt.Sprintf("run 'chmod 600 %s' (and make its owner the user the service runs as)", shellWord(path)), fmt.Sprintf("The secret file %s that %s names for %s can be read or written by other users than its owner (mode %04o)", path, from, f.Name, perm))
	}
	return nil
}

func isSecretFileFlag(f *pflag.Flag) bool {
	if _, ok := f.Annotations[SecretFileAnnotation]; ok {
		return true
	}
	name, ok := strings.CutSuffix(f.Name, "-file")
	return ok && isSecretName(name)
}

// isSecretName reports whether a key holds a secret value itself: token,
// password, secret, passphrase, or a name ending in one of them
// (registration-token, admin-password).
func isSecretName(key string) bool {
	key = strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	for _, s := range []string{"token", "password", "secret", "passphrase", "private-key"} {
		if key == s || strings.HasSuffix(key, "-"+s) {
			return true
		}
	}
	return false
}

// shellWord quotes a path for a shell command in a step, if it needs it.
func shellWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// DefaultPath is the configuration file of a service (name "cloud" or
// "connector") on goos: /etc/sallyport/NAME.toml, on Windows
// %ProgramData%\Sallyport\NAME.toml.
func DefaultPath(goos, name string) string {
	if goos == "windows" {
		base := os.Getenv("ProgramData")
		if base == "" {
			base = `C:\ProgramData`
		}
		return strings.TrimRight(base, `\`) + `\Sallyport\` + name + ".toml"
	}
	return "/etc/sallyport/" + name + ".toml"
}
