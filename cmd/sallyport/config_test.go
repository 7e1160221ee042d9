package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/config"
)

// commentedKey is an example line of the packaged files: "# key = value".
var commentedKey = regexp.MustCompile(`(?m)^# ([a-z][a-z0-9-]*) = (.*)$`)

// TestConfigPackagedFiles: the configuration files the packages ship name
// every key of their command, each once, at the flag's default (but
// data-dir, which has none), and read without error once uncommented.
func TestConfigPackagedFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the packaged files hold the Linux defaults")
	}
	for _, tc := range []struct {
		file string
		cmd  []string
	}{
		{"../../packaging/etc/sallyport/cloud.toml", []string{"cloud", "serve"}},
		{"../../packaging/etc/sallyport/connector.toml", []string{"connector", "run"}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			raw, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			text := commentedKey.ReplaceAllString(string(raw), "$1 = $2")
			path := filepath.Join(t.TempDir(), "uncommented.toml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd, _, err := newRoot().Find(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.ParseFlags(nil); err != nil {
				t.Fatal(err)
			}
			res, err := config.Apply(cmd.Flags(), config.Options{Command: "test", Path: path, Explicit: true,
				Skip: []string{"config", "print-config"}, LookupEnv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatalf("%s, uncommented: %v", tc.file, err)
			}
			for _, s := range res.Settings {
				if s.Origin != config.File {
					t.Errorf("%s lacks the key %s", tc.file, s.Key)
					continue
				}
				if f := cmd.Flags().Lookup(s.Key); s.Key != "data-dir" && f.Value.String() != f.DefValue {
					t.Errorf("%s: %s = %s, but the flag's default is %s", tc.file, s.Key, f.Value.String(), f.DefValue)
				}
			}
		})
	}
}

// execute runs the real command tree in process.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestConfigPrintConfig: --print-config shows each setting's source and
// starts nothing (no data directory needed, none given).
func TestConfigPrintConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "connector.toml")
	os.WriteFile(file, []byte("# the connector\ndir = \"/srv/c\"\ntunnel-version = 1\n"), 0o640)
	t.Setenv("SALLYPORT_DRAIN_TIMEOUT", "5s")
	out, err := execute(t, "connector", "run", "--config", file, "--connections", "3", "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# connector run: configuration file " + file,
		`dir = "/srv/c"`, "# file " + file + ":2",
		"tunnel-version = 1", "# file " + file + ":3",
		"connections = 3", "# flag",
		`drain-timeout = "5s"`, "# env SALLYPORT_DRAIN_TIMEOUT",
		"# default",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("print-config lacks %q:\n%s", want, out)
		}
	}

	out, err = execute(t, "cloud", "serve", "--config", "", "--print-config")
	if err != nil {
		t.Fatalf("cloud serve --print-config without --data-dir: %v", err)
	}
	if !strings.Contains(out, "no configuration file (--config '')") || !strings.Contains(out, `data-dir = ""`) {
		t.Errorf("cloud serve --print-config:\n%s", out)
	}
}

// TestConfigRefusedBeforeStart: a bad file stops the command before it
// does anything (here: before connector run would look at its state
// directory, or cloud serve at its data directory).
func TestConfigRefusedBeforeStart(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("verbose = true\n\nmetrics_listen = \"\"\n"), 0o600)
	for _, args := range [][]string{
		{"connector", "run", "--config", bad},
		{"cloud", "serve", "--data-dir", dir, "--config", bad},
	} {
		_, err := execute(t, args...)
		if err == nil || !strings.Contains(err.Error(), bad+", line 3") {
			t.Errorf("%v: %v, want a refusal naming line 3", args, err)
		}
	}
	_, err := execute(t, "connector", "run", "--config", filepath.Join(dir, "missing.toml"))
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a missing --config file: %v", err)
	}
}
