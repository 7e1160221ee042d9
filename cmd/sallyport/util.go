package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sallyport/sallyport/internal/problem"
)

// logger returns the process logger: text to standard error, info level
// (debug with --verbose).
func logger(cmd *cobra.Command) *slog.Logger {
	level := slog.LevelInfo
	if v, _ := cmd.Flags().GetBool("verbose"); v {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}

// quietLogger logs only with --verbose (for short commands).
func quietLogger(cmd *cobra.Command) *slog.Logger {
	if v, _ := cmd.Flags().GetBool("verbose"); v {
		return logger(cmd)
	}
	return slog.New(slog.DiscardHandler)
}

// readPassword gets a password: one line from standard input with
// --password-stdin, else typed at the terminal without echo.
func readPassword(cmd *cobra.Command, fromStdin bool, prompt string) (string, error) {
	// --password-stdin on a terminal (someone typing, not a pipe) is read
	// like the prompt: without echo, after the prompt (issue 20, defect 8).
	if fromStdin && !(cmd.InOrStdin() == os.Stdin && stdinIsTerminal()) {
		r := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096))
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return "", problem.New(400, "no_password", "pipe the password into the command, for example with printf '%s\\n' \"$PASSWORD\"", "No password was given on standard input")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if !stdinIsTerminal() {
		return "", problem.New(400, "no_password", "use --password-stdin and pipe the password in", "No password was given and standard input is not a terminal to ask for one")
	}
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	b, err := readNoEcho()
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", problem.Newf(400, "no_password", "run the command again", "Reading the password failed (%v)", err)
	}
	return string(b), nil
}

// stdinIsTerminal and readNoEcho are the terminal, replaced in tests.
var (
	stdinIsTerminal = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }
	readNoEcho      = func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) }
)

// readSecretFile reads a password or token file (its first line).
func readSecretFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", problem.Newf(400, "secret_file", "give a readable file holding the secret on its first line", "The file %s cannot be read (%v)", path, err)
	}
	return strings.TrimRight(strings.SplitN(string(raw), "\n", 2)[0], "\r"), nil
}

// group makes a command that only holds subcommands: alone it prints its
// help; with an unknown subcommand it fails (exit 1) instead of printing
// help and succeeding.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}
