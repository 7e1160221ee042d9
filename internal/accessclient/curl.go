package accessclient

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"

	"github.com/sallyport/sallyport/internal/problem"
)

// CurlOptions run curl with the application's access token.
type CurlOptions struct {
	Options
	Args           []string // curl's arguments after the URL
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Program        string // "" is curl from PATH
}

// Curl runs curl on the application URL with its access token and the
// arguments, and returns curl's exit code. The token goes to curl in a
// header file (-H @FILE, 0600, removed after), never on its command line
// where other users of the machine could read it; a CA file given at
// login is passed as --cacert.
func Curl(ctx context.Context, o CurlOptions) (int, error) {
	tok, s, err := token(ctx, o.Options)
	if err != nil {
		return 0, err
	}
	prog := o.Program
	if prog == "" {
		if prog, err = exec.LookPath("curl"); err != nil {
			return 0, problem.New(400, "no_curl", "install curl, or send the token of 'sallyport access token' with another client", "curl is not installed (it is not in PATH)")
		}
	}
	f, err := os.CreateTemp("", "sallyport-access-*.hdr")
	if err != nil {
		return 0, problem.Newf(400, "temp_file", "check TMPDIR", "A temporary file for the token cannot be made (%v)", err)
	}
	defer os.Remove(f.Name())
	f.Chmod(0o600)
	_, err = io.WriteString(f, "Authorization: Bearer "+tok+"\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, problem.Newf(400, "temp_file", "check TMPDIR", "The token cannot be written to a temporary file (%v)", err)
	}
	args := []string{"-H", "@" + f.Name()}
	if s.CAFile != "" {
		args = append(args, "--cacert", s.CAFile)
	}
	args = append(append(args, o.AppURL), o.Args...)
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return max(ee.ExitCode(), 1), nil // -1: killed by a signal
	}
	if err != nil {
		return 0, problem.Newf(400, "curl_failed", "check that "+prog+" is curl", "curl could not be started (%v)", err)
	}
	return 0, nil
}
