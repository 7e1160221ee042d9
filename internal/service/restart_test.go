package service

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/problem"
)

func TestParseRestartSpec(t *testing.T) {
	tests := []struct {
		in   string
		want RestartSpec
		ok   bool
	}{
		{"systemd:sallyport-connector.service", RestartSpec{MethodSystemd, "sallyport-connector.service"}, true},
		{"systemd:sallyport-connector", RestartSpec{MethodSystemd, "sallyport-connector"}, true},
		{"systemd:getty@tty1.service", RestartSpec{MethodSystemd, "getty@tty1.service"}, true},
		{"windows:SallyportConnector", RestartSpec{MethodWindows, "SallyportConnector"}, true},
		{"windows:Sallyport Connector", RestartSpec{MethodWindows, "Sallyport Connector"}, true},
		{"signal", RestartSpec{Method: MethodSignal}, true},
		{"", RestartSpec{}, false},
		{"systemd", RestartSpec{}, false},
		{"systemd:", RestartSpec{}, false},
		{"systemd:--now", RestartSpec{}, false},       // an option, not a unit
		{"systemd:a b.service", RestartSpec{}, false}, // two units
		{"systemd:a;reboot", RestartSpec{}, false},
		{"windows:", RestartSpec{}, false},
		{"windows:a\\b", RestartSpec{}, false},
		{"windows: padded ", RestartSpec{}, false},
		{"signal:TERM", RestartSpec{}, false},
		{"SIGNAL", RestartSpec{}, false},
		{"launchd:com.sallyport", RestartSpec{}, false},
	}
	for _, tt := range tests {
		got, err := ParseRestartSpec(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseRestartSpec(%q) = %+v, %v; want %+v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil {
			if p, ok := problem.As(err); !ok || p.Code != "restart_spec" || !strings.Contains(err.Error(), "; use systemd:UNIT") {
				t.Errorf("ParseRestartSpec(%q): error %q is not the restart_spec sentence", tt.in, err)
			}
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("RestartSpec(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestRestartSignalIsTheCallers(t *testing.T) {
	if err := Restart(context.Background(), "signal"); !errors.Is(err, ErrRestartBySignal) {
		t.Errorf("Restart(signal) = %v, want ErrRestartBySignal", err)
	}
	if err := Restart(context.Background(), "nonsense"); err == nil || errors.Is(err, ErrRestartBySignal) {
		t.Errorf("Restart(nonsense) = %v, want a restart_spec problem", err)
	}
}

func TestRestartWindowsElsewhere(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("on Windows RestartWindows really restarts")
	}
	err := Restart(context.Background(), "windows:SallyportConnector")
	if p, ok := problem.As(err); !ok || p.Code != "restart_spec" || !strings.Contains(err.Error(), "only on Windows") {
		t.Errorf("Restart(windows:…) on %s = %v, want the restart_spec problem saying it is Windows only", runtime.GOOS, err)
	}
}

// RestartSystemd reports systemctl's own words when the restart fails. Here
// the unit does not exist (or systemd does not run), so systemctl fails
// whatever the machine.
func TestRestartSystemdFailure(t *testing.T) {
	if _, err := lookPath("systemctl"); err != nil {
		t.Skip("systemctl is not installed")
	}
	err := RestartSystemd(context.Background(), "sallyport-test-no-such-unit-4c1d.service")
	p, ok := problem.As(err)
	if !ok || p.Code != "service_restart" {
		t.Fatalf("RestartSystemd(no such unit) = %v, want a service_restart problem", err)
	}
	if !strings.HasPrefix(err.Error(), "Restarting the systemd unit sallyport-test-no-such-unit-4c1d.service failed (") ||
		!strings.Contains(err.Error(), "; look at 'systemctl status") {
		t.Errorf("error %q lacks what failed, systemctl's output or the next step", err)
	}
	t.Log(err)
}
