package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestReadPassword: --password-stdin reads a pipe as it is, but on a
// terminal it prompts and reads without echo like the prompt does (issue
// 20, defect 8: the typed password was echoed, with no prompt).
func TestReadPassword(t *testing.T) {
	defer func(a func() bool, b func() ([]byte, error)) { stdinIsTerminal, readNoEcho = a, b }(stdinIsTerminal, readNoEcho)
	readNoEcho = func() ([]byte, error) { return []byte("typed-secret"), nil }
	tests := []struct {
		name       string
		stdin      *os.File // nil: a pipe given with SetIn
		terminal   bool
		fromStdin  bool
		want       string
		wantPrompt bool
	}{
		{"--password-stdin from a pipe", nil, false, true, "piped-secret", false},
		{"--password-stdin on a terminal", os.Stdin, true, true, "typed-secret", true},
		{"prompt on a terminal", os.Stdin, true, false, "typed-secret", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdinIsTerminal = func() bool { return tt.terminal }
			cmd := &cobra.Command{}
			if tt.stdin != nil {
				cmd.SetIn(tt.stdin)
			} else {
				cmd.SetIn(strings.NewReader("piped-secret\n"))
			}
			var stderr bytes.Buffer
			cmd.SetErr(&stderr)
			got, err := readPassword(cmd, tt.fromStdin, "Password for a@b.c: ")
			if err != nil || got != tt.want {
				t.Fatalf("readPassword = %q, %v; want %q", got, err, tt.want)
			}
			if prompted := strings.Contains(stderr.String(), "Password for a@b.c: "); prompted != tt.wantPrompt {
				t.Errorf("prompted %v, want %v (stderr %q)", prompted, tt.wantPrompt, stderr.String())
			}
		})
	}
}
