package testnet

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// skipT is a fakeT whose Skip is recorded too.
type skipT struct {
	fakeT
	skipped string
}

func (f *skipT) Skip(args ...any) {
	f.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

// TestTool: the variable wins (and must name a file), then the first
// name found (on PATH, or a path); without one the test is skipped, or
// fails under CI=true, with the tool's own words.
func TestTool(t *testing.T) {
	dir := t.TempDir()
	prog := WriteFile(t, filepath.Join(dir, "prog"), "#!/bin/sh\n", 0o755)
	tool := Tool{Env: "TESTNET_TOOL", Names: []string{"", "testnet-no-such-program", prog}, CI: "not built in CI", Skip: "not here"}
	path := func(tool Tool) (p, failed, skipped string) {
		f := &skipT{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			p = tool.Path(f)
		}()
		<-done
		return p, f.failed, f.skipped
	}

	t.Setenv("CI", "")
	t.Setenv("TESTNET_TOOL", "")
	if p, failed, skipped := path(tool); p != prog || failed != "" || skipped != "" {
		t.Errorf("from Names: %q (failed %q, skipped %q), want %s", p, failed, skipped, prog)
	}
	other := WriteFile(t, filepath.Join(dir, "other"), "", 0o644)
	t.Setenv("TESTNET_TOOL", other)
	if p, _, _ := path(tool); p != other {
		t.Errorf("with TESTNET_TOOL set: %q, want %s", p, other)
	}
	t.Setenv("TESTNET_TOOL", filepath.Join(dir, "missing"))
	if _, failed, _ := path(tool); !strings.HasPrefix(failed, "TESTNET_TOOL="+filepath.Join(dir, "missing")+": ") {
		t.Errorf("a missing TESTNET_TOOL failed with %q", failed)
	}

	t.Setenv("TESTNET_TOOL", "")
	tool.Names = tool.Names[:2]
	if p, failed, skipped := path(tool); p != "" || failed != "" || skipped != "not here" {
		t.Errorf("not found: %q, failed %q, skipped %q; want skipped %q", p, failed, skipped, "not here")
	}
	t.Setenv("CI", "true")
	if p, failed, skipped := path(tool); p != "" || failed != "not built in CI" || skipped != "" {
		t.Errorf("not found under CI=true: %q, failed %q, skipped %q; want failed %q", p, failed, skipped, "not built in CI")
	}
}
