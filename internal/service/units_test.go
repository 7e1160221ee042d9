package service

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the packaged units in packaging/systemd from Units()")

// packagedUnits is where the .deb and .rpm take their units from.
const packagedUnits = "../../packaging/systemd"

// directives returns the KEY=VALUE lines of a unit, in order.
func directives(unit []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(unit), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "[") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestUnitsDirectives(t *testing.T) {
	units, err := Units(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		unit string
		want []string // whole lines
		not  []string // line prefixes that must be absent
	}{
		{ConnectorUnit, []string{
			"User=sallyport",
			"Group=sallyport",
			"ExecStart=/opt/sallyport/bin/sallyport connector run --config /etc/sallyport/connector.toml",
			"Restart=always",
			"RestartSec=2",
			"StartLimitIntervalSec=0",
			"KillSignal=SIGTERM",
			"TimeoutStopSec=45",
			"NoNewPrivileges=yes",
			"ProtectSystem=strict",
			"ReadWritePaths=/var/lib/sallyport/connector",
			"ProtectHome=yes",
			"PrivateTmp=yes",
			"PrivateDevices=yes",
			"ProtectKernelTunables=yes",
			"ProtectKernelModules=yes",
			"ProtectKernelLogs=yes",
			"ProtectControlGroups=yes",
			"RestrictSUIDSGID=yes",
			"LockPersonality=yes",
			"RestrictRealtime=yes",
			"RestrictNamespaces=yes",
			"SystemCallArchitectures=native",
			"CapabilityBoundingSet=",
			"AmbientCapabilities=",
			"UMask=0077",
			"After=network-online.target",
			"Wants=network-online.target",
			"WantedBy=multi-user.target",
			"Documentation=" + Documentation,
		}, nil},
		{UpdaterUnit, []string{
			"ExecStart=/opt/sallyport/bin/sallyport connector updater --dir /var/lib/sallyport/connector --updater-dir /var/lib/sallyport/connector-updater --binary /opt/sallyport/bin/sallyport --restart systemd:sallyport-connector.service",
			"Restart=always",
			"RestartSec=30",
			"NoNewPrivileges=yes",
			"ProtectSystem=strict",
			"ReadWritePaths=/opt/sallyport/bin /var/lib/sallyport/connector-updater",
			"ProtectHome=yes",
			"PrivateTmp=yes",
			"WantedBy=multi-user.target",
		}, []string{"User=", "Group=", "CapabilityBoundingSet="}}, // root, with its capabilities: it restarts units and replaces the binary
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			got := directives(units[tt.unit])
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("%s lacks %q; it has:\n%s", tt.unit, w, strings.Join(got, "\n"))
				}
			}
			for _, n := range tt.not {
				for _, l := range got {
					if strings.HasPrefix(l, n) {
						t.Errorf("%s has %q, which it must not", tt.unit, l)
					}
				}
			}
			seen := map[string]bool{}
			for _, l := range got {
				key, _, _ := strings.Cut(l, "=")
				if seen[key] && key != "Wants" && key != "After" {
					t.Errorf("%s sets %s twice", tt.unit, key)
				}
				seen[key] = true
			}
		})
	}
}

func TestUnitsOptions(t *testing.T) {
	units, err := Units(Options{User: "svc-connector", Group: "svc", StateDir: "/srv/connector", Binary: "/usr/local/bin/sallyport", NoUpdater: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := units[UpdaterUnit]; ok {
		t.Error("NoUpdater: the updater unit was generated anyway")
	}
	got := directives(units[ConnectorUnit])
	for _, w := range []string{"User=svc-connector", "Group=svc", "ExecStart=/usr/local/bin/sallyport connector run --config /etc/sallyport/connector.toml", "ReadWritePaths=/srv/connector"} {
		if !slices.Contains(got, w) {
			t.Errorf("connector unit lacks %q:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func TestUnitsQuoting(t *testing.T) {
	tests := []struct {
		name           string
		stateDir, bin  string
		exec, rwConn   string // expected ExecStart= and ReadWritePaths= of the connector unit
		rwUpdater      string
		updaterExecArg string // the --binary word in the updater's ExecStart
	}{
		{"plain", "/var/lib/sallyport/connector", "/opt/sallyport/bin/sallyport",
			"/opt/sallyport/bin/sallyport connector run --config /etc/sallyport/connector.toml", "/var/lib/sallyport/connector",
			"/opt/sallyport/bin /var/lib/sallyport/connector-updater", "--binary /opt/sallyport/bin/sallyport "},
		{"spaces", "/srv/my state", "/opt/Sally Port/sallyport",
			`"/opt/Sally Port/sallyport" connector run --config /etc/sallyport/connector.toml`, `"/srv/my state"`,
			`"/opt/Sally Port" "/srv/my state-updater"`, `--binary "/opt/Sally Port/sallyport" `},
		{"specifier and variable", "/srv/100%/$HOME", "/opt/sp/sallyport",
			`/opt/sp/sallyport connector run --config /etc/sallyport/connector.toml`, `/srv/100%%/$HOME`,
			`/opt/sp /srv/100%%/$HOME-updater`, "--binary /opt/sp/sallyport "},
		{"dollar in the binary", "/srv/s", "/opt/$x/sallyport", // expanded in arguments only
			`/opt/$x/sallyport connector run --config /etc/sallyport/connector.toml`, `/srv/s`,
			`/opt/$x /srv/s-updater`, "--binary /opt/$$x/sallyport "},
		{"quotes and backslash", `/srv/it's "x"\y`, "/opt/sp/sallyport",
			`/opt/sp/sallyport connector run --config /etc/sallyport/connector.toml`, `"/srv/it's \"x\"\\y"`,
			`/opt/sp "/srv/it's \"x\"\\y-updater"`, "--binary /opt/sp/sallyport "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			units, err := Units(Options{StateDir: tt.stateDir, Binary: tt.bin})
			if err != nil {
				t.Fatal(err)
			}
			conn, upd := directives(units[ConnectorUnit]), directives(units[UpdaterUnit])
			for _, w := range []string{"ExecStart=" + tt.exec, "ReadWritePaths=" + tt.rwConn} {
				if !slices.Contains(conn, w) {
					t.Errorf("connector unit lacks %q:\n%s", w, strings.Join(conn, "\n"))
				}
			}
			if !slices.Contains(upd, "ReadWritePaths="+tt.rwUpdater) {
				t.Errorf("updater unit lacks ReadWritePaths=%s:\n%s", tt.rwUpdater, strings.Join(upd, "\n"))
			}
			if !strings.Contains(string(units[UpdaterUnit]), tt.updaterExecArg) {
				t.Errorf("updater ExecStart lacks %q", tt.updaterExecArg)
			}
		})
	}
}

func TestUnitsRefuseBadOptions(t *testing.T) {
	tests := []Options{
		{StateDir: "relative/dir"},
		{StateDir: "/var/lib/../lib/sallyport"},
		{StateDir: "/"},
		{Binary: "/opt/sallyport/bin/sallyport\n"},
		{Binary: "/var/lib/sallyport/connector/sallyport"}, // writable by the connector's user
		{User: "no spaces"},
		{User: "-rf"},
		{User: "sallyport", Group: "a:b"},
	}
	for _, o := range tests {
		if _, err := Units(o); err == nil {
			t.Errorf("Units(%+v) accepted options it must refuse", o)
		} else if !strings.HasPrefix(err.Error(), "The service settings are not valid: ") || !strings.HasSuffix(err.Error(), ".") {
			t.Errorf("Units(%+v): error %q is not one sentence in the house style", o, err)
		}
	}
}

// TestUnitsVerify runs systemd-analyze verify on the units, for default
// options and for paths that need quoting. verify checks that ExecStart's
// binary exists and is executable, so the binary is a real executable at
// the quoted path: a quoting mistake shows as a missing binary. verify exits
// 0 on most warnings, so any line it prints about our units fails the test.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	for _, sub := range []string{"plain", "with spaces", "100% $dollar"} {
		t.Run(sub, func(t *testing.T) {
			tmp := filepath.Join(t.TempDir(), sub)
			o := Options{StateDir: filepath.Join(tmp, "state"), Binary: filepath.Join(tmp, "bin", "sallyport")}
			if err := os.MkdirAll(filepath.Dir(o.Binary), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(o.StateDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := copyFileAtomic("/bin/true", o.Binary, 0o755); err != nil {
				t.Fatal(err)
			}
			units, err := Units(o)
			if err != nil {
				t.Fatal(err)
			}
			unitDir := filepath.Join(t.TempDir(), "units")
			os.Mkdir(unitDir, 0o755)
			var paths []string
			for name, data := range units {
				p := filepath.Join(unitDir, name)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, p)
			}
			cmd := exec.Command(analyze, append([]string{"verify"}, paths...)...)
			cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
			out, err := cmd.CombinedOutput()
			var ours []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "sallyport") || strings.Contains(l, unitDir) {
					ours = append(ours, l)
				} else if strings.TrimSpace(l) != "" {
					t.Logf("systemd-analyze (not about our units): %s", l)
				}
			}
			if err != nil || len(ours) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(ours, "\n"))
			}
		})
	}
}

// packagedConfig is the connector's configuration file in the packages.
const packagedConfig = "../../packaging/etc/sallyport/connector.toml"

// TestPackagedConfig keeps the connector.toml shipped in the packages
// identical to ConnectorConfig() with the default options. Regenerate it
// with go test ./internal/service -run TestPackagedConfig -update.
func TestPackagedConfig(t *testing.T) {
	want := ConnectorConfig(Options{})
	if *update {
		if err := os.MkdirAll(filepath.Dir(packagedConfig), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(packagedConfig, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(packagedConfig)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s differs from ConnectorConfig() (%v); run go test ./internal/service -run TestPackagedConfig -update and commit it", packagedConfig, err)
	}
}

// TestPackagedUnits keeps the units shipped in the packages identical to
// Units() with the default options. Regenerate them with
// go test ./internal/service -run TestPackagedUnits -update.
func TestPackagedUnits(t *testing.T) {
	units, err := Units(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(packagedUnits, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range units {
			if err := os.WriteFile(filepath.Join(packagedUnits, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(packagedUnits, "*.service"))
	if len(files) != len(units) {
		t.Errorf("%s holds %d units, Units() makes %d; run go test ./internal/service -run TestPackagedUnits -update", packagedUnits, len(files), len(units))
	}
	for name, want := range units {
		got, err := os.ReadFile(filepath.Join(packagedUnits, name))
		if err != nil {
			t.Errorf("%v; run go test ./internal/service -run TestPackagedUnits -update", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from Units(); run go test ./internal/service -run TestPackagedUnits -update and commit it", packagedUnits, name)
		}
	}
}
