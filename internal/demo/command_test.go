package demo

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCommandFor: the demo prints commands that work as printed (issue
// 20, defect 8): 'go run' gets "go run ./cmd/sallyport", a binary that is
// the sallyport on PATH gets "sallyport", any other its absolute path.
func TestCommandFor(t *testing.T) {
	tmp := t.TempDir()
	goRun := filepath.Join(tmp, "go-build1234", "b001", "exe", "sallyport")
	installed := filepath.Join(tmp, "bin", "sallyport")
	other := filepath.Join(tmp, "my builds", "sallyport")
	link := filepath.Join(tmp, "link", "sallyport")
	for _, p := range []string{goRun, installed, other} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(installed, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, exe, onPath, want string
	}{
		{"go run", goRun, installed, "go run ./cmd/sallyport"},
		{"the one on PATH", installed, installed, "sallyport"},
		{"on PATH through a link", installed, link, "sallyport"},
		{"none on PATH", other, "", "'" + other + "'"},
		{"another on PATH", other, installed, "'" + other + "'"},
		{"a plain path", installed, "", installed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := commandFor(tt.exe, tt.onPath, tmp); got != tt.want {
				t.Errorf("commandFor(%q, %q) = %q, want %q", tt.exe, tt.onPath, got, tt.want)
			}
		})
	}
}
