package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/sallyport/sallyport/internal/problem"
)

// testFlags is a flag set with one flag of each type the services use.
func testFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("data-dir", "/default", "")
	fs.Int("connections", 2, "")
	fs.Bool("verbose", false, "")
	fs.Duration("drain-timeout", 30*time.Second, "")
	fs.Float64("app-rate", 5000, "")
	fs.StringSlice("allow", nil, "")
	fs.String("edge-key", "", "")
	MarkSecretFile(fs, "edge-key")
	fs.String("token-file", "", "")
	fs.String("config", "", "")
	fs.Bool("hidden-test", false, "")
	fs.MarkHidden("hidden-test")
	return fs
}

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.toml")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func apply(t *testing.T, args []string, environ map[string]string, file string) (*pflag.FlagSet, *Result, error) {
	t.Helper()
	fs := testFlags()
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	path := ""
	if file != "" {
		path = writeFile(t, file, 0o600)
	}
	res, err := Apply(fs, Options{Command: "test run", Path: path, Explicit: true, Skip: []string{"config"}, LookupEnv: env(environ)})
	return fs, res, err
}

func setting(t *testing.T, res *Result, key string) Setting {
	t.Helper()
	for _, s := range res.Settings {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("no setting %s in %+v", key, res.Settings)
	return Setting{}
}

// TestConfigPrecedence: for each type, a flag beats the environment, the
// environment beats the file, the file beats the default; and each setting
// says where it came from.
func TestConfigPrecedence(t *testing.T) {
	types := []struct {
		key                      string
		flag, env, file, fileVal string // values as given, and as the file writes it
		wantFlag, wantEnv        string
		wantFile, wantDef        string
	}{
		{"data-dir", "--data-dir=/flag", "/env", `"/file"`, "", "/flag", "/env", "/file", "/default"},
		{"connections", "--connections=5", "6", "7", "", "5", "6", "7", "2"},
		{"verbose", "--verbose=true", "true", "true", "", "true", "true", "true", "false"},
		{"drain-timeout", "--drain-timeout=1s", "2s", `"3s"`, "", "1s", "2s", "3s", "30s"},
		{"app-rate", "--app-rate=1.5", "2.5", "3.5", "", "1.5", "2.5", "3.5", "5000"},
		{"allow", "--allow=a,b", "c,d", `["e", "f"]`, "", "[a,b]", "[c,d]", "[e,f]", "[]"},
	}
	for _, tc := range types {
		envName := EnvName(tc.key)
		file := tc.key + " = " + tc.file + "\n"
		cases := []struct {
			name    string
			args    []string
			env     map[string]string
			file    string
			want    string
			origin  Origin
			wantSrc string
		}{
			{"flag over all", []string{tc.flag}, map[string]string{envName: tc.env}, file, tc.wantFlag, Flag, "flag"},
			{"env over file", nil, map[string]string{envName: tc.env}, file, tc.wantEnv, Env, "env " + envName},
			{"file over default", nil, nil, "# comment\n" + file, tc.wantFile, File, ":2"},
			{"default", nil, nil, "", tc.wantDef, Default, "default"},
		}
		for _, c := range cases {
			t.Run(tc.key+"/"+c.name, func(t *testing.T) {
				_, res, err := apply(t, c.args, c.env, c.file)
				if err != nil {
					t.Fatal(err)
				}
				s := setting(t, res, tc.key)
				if s.Value != c.want || s.Origin != c.origin {
					t.Errorf("got %q from %v, want %q from %v", s.Value, s.Origin, c.want, c.origin)
				}
				if src := res.Source(s); !strings.Contains(src, c.wantSrc) {
					t.Errorf("source %q, want it to contain %q", src, c.wantSrc)
				}
			})
		}
	}
}

// TestConfigRefusals: a bad file or variable is refused with one sentence
// naming the file, the line and the key, and what to do.
func TestConfigRefusals(t *testing.T) {
	cases := []struct {
		name string
		file string
		env  map[string]string
		want []string
	}{
		{"unknown key with suggestion", "connections = 2\ndata_dir = \"/x\"\n", nil, []string{"line 2", `"data_dir"`, `did you mean "data-dir"`}},
		{"typo", "\n\nconections = 3\n", nil, []string{"line 3", `"conections"`, `did you mean "connections"`}},
		{"unknown key far from any", "listen-everywhere = true\n", nil, []string{"line 1", "not a setting of 'test run'", "remove it"}},
		{"hidden flags have no key", "hidden-test = true\n", nil, []string{"line 1", `"hidden-test"`}},
		{"config has no key", "config = \"/other\"\n", nil, []string{"line 1", `"config"`}},
		{"string for int", "connections = \"3\"\n", nil, []string{"line 1", "connections", "a string", "a whole number", "connections = 2"}},
		{"int for duration", "drain-timeout = 30\n", nil, []string{"line 1", "drain-timeout", "an integer", `"30s"`}},
		{"bad duration", "drain-timeout = \"30 seconds\"\n", nil, []string{"line 1", "drain-timeout", "cannot take", "unknown unit"}},
		{"string for bool", "verbose = \"yes\"\n", nil, []string{"line 1", "true or false"}},
		{"float for int", "connections = 2.5\n", nil, []string{"line 1", "a decimal number"}},
		{"array of ints", "allow = [1, 2]\n", nil, []string{"line 1", "every item a string"}},
		{"inline table", "data-dir = { a = 1 }\n", nil, []string{"line 1", "an inline table"}},
		{"table", "connections = 2\n[cloud]\ndata-dir = \"/x\"\n", nil, []string{"line 2", "[cloud]", "without sections"}},
		{"dotted key", "cloud.data-dir = \"/x\"\n", nil, []string{"line 1", "dotted key"}},
		{"not TOML", "connections = 2\ndata-dir = /x\n", nil, []string{"line 2", "not valid TOML"}},
		{"duplicate key", "connections = 2\nconnections = 3\n", nil, []string{"line 2", "not valid TOML"}},
		{"secret with a file key", "token = \"spr_abc\"\n", nil, []string{"line 1", `secret "token"`, "as token-file", "chmod 600"}},
		{"secret without a file key", "\npassword = \"x\"\n", nil, []string{"line 2", `secret "password"`, "takes no such secret"}},
		{"bad env", "", map[string]string{"SALLYPORT_CONNECTIONS": "many"}, []string{"SALLYPORT_CONNECTIONS", "a whole number", "unset it"}},
		{"bad env even with a good file", "connections = 2\n", map[string]string{"SALLYPORT_DRAIN_TIMEOUT": "x"}, []string{"SALLYPORT_DRAIN_TIMEOUT"}},
		// the file is checked whole, even for a key a flag overrides
		{"unknown key even when flags are given", "verbos = true\n", map[string]string{"SALLYPORT_VERBOSE": "true"}, []string{"did you mean \"verbose\""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := c.file
			if file == "" {
				file = "# empty\n"
			}
			_, _, err := apply(t, nil, c.env, file)
			if err == nil {
				t.Fatal("accepted")
			}
			p, ok := problem.As(err)
			if !ok {
				t.Fatalf("not a problem: %v", err)
			}
			msg := p.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("not one line: %q", msg)
			}
			if c.env == nil && !strings.Contains(msg, "test.toml") {
				t.Errorf("%q does not name the file", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not contain %q", msg, w)
				}
			}
		})
	}
}

// TestConfigFiles: a missing default file is fine, a missing explicit file
// is not; an empty path reads none.
func TestConfigFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	for _, c := range []struct {
		name     string
		path     string
		explicit bool
		wantErr  string
		wantNote string
	}{
		{"missing default", missing, false, "", "does not exist (the default path"},
		{"missing explicit", missing, true, "does not exist", ""},
		{"none", "", true, "", "no configuration file (--config '')"},
		{"a directory", t.TempDir(), true, "cannot be read", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := testFlags()
			res, err := Apply(fs, Options{Command: "test run", Path: c.path, Explicit: c.explicit, LookupEnv: env(nil)})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if note := res.FileNote(); !strings.Contains(note, c.wantNote) {
				t.Errorf("note %q, want %q", note, c.wantNote)
			}
		})
	}
}

// TestConfigSecretFileMode: a secret file named by the file or the
// environment must be readable by its owner only.
func TestConfigSecretFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows protects files by ACL, not mode bits")
	}
	dir := t.TempDir()
	private := filepath.Join(dir, "private.pem")
	open := filepath.Join(dir, "open.pem")
	os.WriteFile(private, []byte("key"), 0o600)
	os.WriteFile(open, []byte("key"), 0o644)
	os.Chmod(open, 0o644)
	for _, c := range []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		wantErr []string
	}{
		{"file names a 0600 key", nil, nil, "edge-key = \"" + private + "\"\n", nil},
		{"file names a 0644 key", nil, nil, "edge-key = \"" + open + "\"\n", []string{open, "line 1", "edge-key", "mode 0644", "chmod 600 " + open}},
		{"env names a 0644 token file", nil, map[string]string{"SALLYPORT_TOKEN_FILE": open}, "", []string{"SALLYPORT_TOKEN_FILE", "chmod 600"}},
		{"token-file in the file", nil, nil, "token-file = \"" + open + "\"\n", []string{"token-file", "chmod 600"}},
		// the command line is the operator's own choice: not checked here
		{"flag names a 0644 key", []string{"--edge-key=" + open}, nil, "", nil},
		{"missing file is the command's to refuse", nil, nil, "edge-key = \"" + filepath.Join(dir, "none") + "\"\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := c.file
			if file == "" {
				file = "# empty\n"
			}
			_, _, err := apply(t, c.args, c.env, file)
			if len(c.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestConfigPrintIsAConfigFile: --print-config's output read back as a
// file gives the same settings.
func TestConfigPrintIsAConfigFile(t *testing.T) {
	_, res, err := apply(t, []string{"--connections=4", "--data-dir=/with \"quotes\"\tand tab"}, map[string]string{"SALLYPORT_DRAIN_TIMEOUT": "1m"}, "allow = [\"x\", \"y\"]\napp-rate = 2.25\n")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := res.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connections = 4", "# flag", "# env SALLYPORT_DRAIN_TIMEOUT", "test.toml:1", "# default", "# test run: configuration file "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("print lacks %q:\n%s", want, out.String())
		}
	}
	_, again, err := apply(t, nil, nil, out.String())
	if err != nil {
		t.Fatalf("the printed settings are not a valid file: %v\n%s", err, out.String())
	}
	for i, s := range res.Settings {
		if got := again.Settings[i]; got.Value != s.Value {
			t.Errorf("%s: %q printed and read back as %q", s.Key, s.Value, got.Value)
		}
	}
}

func TestConfigSuggest(t *testing.T) {
	keys := []string{"data-dir", "connections", "metrics-listen", "listen"}
	for in, want := range map[string]string{
		"DATA_DIR": "data-dir", "data_dir": "data-dir", "conections": "connections",
		"metric-listen": "metrics-listen", "lisen": "listen", "tunnels": "", "": "",
	} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigDefaultPath(t *testing.T) {
	if got := DefaultPath("linux", "connector"); got != "/etc/sallyport/connector.toml" {
		t.Errorf("linux: %s", got)
	}
	t.Setenv("ProgramData", `D:\Data`)
	if got := DefaultPath("windows", "connector"); got != `D:\Data\Sallyport\connector.toml` {
		t.Errorf("windows: %s", got)
	}
}

// TestConfigOthers: a command reading another's file ('cloud doctor'
// reads 'cloud serve's) accepts that command's keys and ignores them,
// and still refuses a key neither has.
func TestConfigOthers(t *testing.T) {
	path := writeFile(t, "connections = 3\nmax-header-count = 50\n", 0o600)
	fs := testFlags()
	res, err := Apply(fs, Options{Command: "test doctor", Path: path, Explicit: true, Others: []string{"max-header-count"}, LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if s := setting(t, res, "connections"); s.Value != "3" || s.Origin != File {
		t.Errorf("connections: %+v", s)
	}
	for _, s := range res.Settings {
		if s.Key == "max-header-count" {
			t.Errorf("another command's key became a setting: %+v", s)
		}
	}
	if _, err := Apply(testFlags(), Options{Command: "test doctor", Path: path, Explicit: true, LookupEnv: env(nil)}); err == nil || !strings.Contains(err.Error(), "max-header-count") {
		t.Errorf("without Others, the other key is not refused: %v", err)
	}
}
