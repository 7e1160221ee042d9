package service

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"

	"github.com/sallyport/sallyport/internal/problem"
)

// ErrRestartBySignal is what Restart returns for the spec "signal": the
// caller (the updater) restarts the connector itself, by sending SIGTERM to
// its pid and relying on the connector's supervisor to start it again.
var ErrRestartBySignal = errors.New("the connector is restarted by a signal to its process, not through a service manager")

// Restart methods of a RestartSpec.
const (
	MethodSystemd = "systemd"
	MethodWindows = "windows"
	MethodSignal  = "signal"
)

// RestartSpec says how the updater restarts the connector: the --restart
// value systemd:UNIT, windows:SERVICE or signal.
type RestartSpec struct {
	Method string // MethodSystemd, MethodWindows or MethodSignal
	Target string // the unit or service name; empty for MethodSignal
}

func (s RestartSpec) String() string {
	if s.Method == MethodSignal {
		return s.Method
	}
	return s.Method + ":" + s.Target
}

var (
	// systemd unit names: letters, digits and ":-_.\@", at most 255
	// characters, optionally with a unit type suffix.
	systemdUnitName = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]{1,255}$`)
	// Windows service names: at most 256 characters, no slashes.
	windowsServiceName = regexp.MustCompile(`^[^/\\\x00-\x1f]{1,256}$`)
)

// ParseRestartSpec parses a --restart value.
func ParseRestartSpec(s string) (RestartSpec, error) {
	if s == MethodSignal {
		return RestartSpec{Method: MethodSignal}, nil
	}
	method, target, ok := strings.Cut(s, ":")
	switch {
	case !ok:
	case method == MethodSystemd && systemdUnitName.MatchString(target) && !strings.HasPrefix(target, "-"):
		return RestartSpec{Method: method, Target: target}, nil
	case method == MethodWindows && windowsServiceName.MatchString(target) && strings.TrimSpace(target) == target:
		return RestartSpec{Method: method, Target: target}, nil
	}
	return RestartSpec{}, problem.Newf(400, "restart_spec", "use systemd:UNIT (for example systemd:"+ConnectorUnit+"), windows:SERVICE (for example windows:"+WindowsConnector+") or signal",
		"The restart method %q is not valid", s)
}

// Restart restarts the connector's service as spec says. For "signal" it
// does nothing and returns ErrRestartBySignal.
func Restart(ctx context.Context, spec string) error {
	s, err := ParseRestartSpec(spec)
	if err != nil {
		return err
	}
	switch s.Method {
	case MethodSystemd:
		return RestartSystemd(ctx, s.Target)
	case MethodWindows:
		return RestartWindows(ctx, s.Target)
	default:
		return ErrRestartBySignal
	}
}

// RestartSystemd runs 'systemctl restart UNIT'.
func RestartSystemd(ctx context.Context, unit string) error {
	if !systemdUnitName.MatchString(unit) || strings.HasPrefix(unit, "-") {
		return problem.Newf(400, "restart_spec", "give a unit name such as "+ConnectorUnit, "The systemd unit name %q is not valid", unit)
	}
	if out, err := systemctl(ctx, "restart", "--no-ask-password", unit); err != nil {
		return problem.Newf(500, "service_restart", "look at 'systemctl status "+unit+"' and 'journalctl -u "+unit+"'",
			"Restarting the systemd unit %s failed (%s)", unit, out).Wrap(err)
	}
	return nil
}

// systemctl runs systemctl with args and returns its output, trimmed to one
// line, for error messages.
func systemctl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "systemctl", args...)
}

// run runs a command; on failure its combined output (or the error when it
// printed nothing) comes back as one line.
func run(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	msg := strings.Join(strings.Fields(out.String()), " ")
	if err != nil && msg == "" {
		msg = err.Error()
	} else if err != nil {
		msg += ", " + err.Error()
	}
	return msg, err
}

var lookPath = exec.LookPath
