package testnet

import (
	"os"
	"os/exec"
	"testing"
)

// Tool is a program a test harness runs (a browser, an OpenID provider)
// and how to find it.
type Tool struct {
	// Env names the program's path; when set, the file must exist.
	Env string
	// Names are tried in order when Env is unset: a name is looked up on
	// PATH, a path (with a slash) is taken when it is an executable file;
	// empty ones are passed over.
	Names []string
	// CI is the failure under CI=true, where the program must be there.
	CI string
	// Skip is why the test is skipped elsewhere.
	Skip string
}

// Path is the path of the program: $Env, else the first of Names found.
// Without one the test is skipped, or fails under CI=true.
func (tool Tool) Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(tool.Env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", tool.Env, p, err)
		}
		return p
	}
	for _, name := range tool.Names {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(tool.CI)
	}
	t.Skip(tool.Skip)
	return ""
}
