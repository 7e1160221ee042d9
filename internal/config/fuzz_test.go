package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/problem"
)

// FuzzLoad: any bytes as a configuration file are applied or refused with
// one sentence (a problem naming the file), never a panic.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"",
		"data-dir = \"/x\"\nconnections = 3\nverbose = true\ndrain-timeout = \"1s\"\napp-rate = 1.5\nallow = [\"a\"]\n",
		"[cloud]\ndata-dir = 1\n",
		"a.b.c = 1\n",
		"token = \"x\"\n",
		"connections = \"3\"\n",
		"data-dir = \"\\u0000\"\n",
		"x = [[[[[1]]]]]\n",
		"d = 1979-05-27T07:32:00Z\n",
		"'data-dir' = 'x'\n\"connections\" = 0x10\n",
	} {
		f.Add([]byte(seed))
	}
	path := filepath.Join(f.TempDir(), "fuzz.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fs := testFlags()
		_, err := Apply(fs, Options{Command: "fuzz", Path: path, Explicit: true, LookupEnv: env(nil)})
		if err == nil {
			return
		}
		p, ok := problem.As(err)
		if !ok {
			t.Fatalf("not a problem: %v", err)
		}
		if !strings.Contains(p.Message, path) {
			t.Errorf("refusal does not name the file: %q", p.Error())
		}
	})
}
