package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFileServes: 'cloud serve --config' and 'connector run --config'
// take their settings from TOML files (the cloud its data directory and
// port, the connector its state directory and one tunnel instead of two),
// the environment fills in what the files leave out, --print-config says
// where each setting came from without starting anything, and a bad file
// is refused with its line before anything starts.
func TestConfigFileServes(t *testing.T) {
	t.Parallel()
	c := initCloud(t)
	port := freePort(t)
	c.port, c.url = port, "https://"+cloudName+":"+port
	cloudToml := filepath.Join(c.admin.dir, "cloud.toml")
	writeFile(t, cloudToml, fmt.Sprintf("# test cloud\ndata-dir = %q\nlisten = \"127.0.0.1:%s\"\nshutdown-grace = \"2s\"\n", c.dataDir, port), 0o640)

	res := c.admin.ok(t, "", "cloud", "serve", "--config", cloudToml, "--print-config")
	mustContain(t, "cloud serve --print-config", res.stdout,
		"# cloud serve: configuration file "+cloudToml,
		fmt.Sprintf("data-dir = %q", c.dataDir), "# file "+cloudToml+":2",
		`listen = "127.0.0.1:`+port+`"`, "# file "+cloudToml+":3",
		`shutdown-grace = "2s"`, "# file "+cloudToml+":4",
		"max-conns-per-source = 1024", "# default")

	p := c.admin.start(t, "cloud serve", "cloud", "serve", "--config", cloudToml)
	if !c.waitServing(p) || p.exited() {
		t.Fatalf("cloud serve --config did not come up on port %s:\n%s", port, tail(p.out.String(), 40))
	}
	c.serve = p
	c.login(t, c.admin, contosoAdmin, contosoPW)

	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "state"), contosoAdmin, contosoPW)
	connToml := filepath.Join(site.dir, "connector.toml")
	writeFile(t, connToml, fmt.Sprintf("dir = %q\nconnections = 1\nmetrics-listen = \"\"\n", st.dir), 0o640)
	site.extra = append(site.extra, "SALLYPORT_DRAIN_TIMEOUT=1s")

	res = site.ok(t, "", "connector", "run", "--config", connToml, "--tunnel-version", "2", "--print-config")
	mustContain(t, "connector run --print-config", res.stdout,
		fmt.Sprintf("dir = %q", st.dir), "# file "+connToml+":1",
		"connections = 1", "# file "+connToml+":2",
		`drain-timeout = "1s"`, "# env SALLYPORT_DRAIN_TIMEOUT",
		"tunnel-version = 2", "# flag")
	if strings.Contains(res.stdout, "sallyport: ") || res.stderr != "" {
		t.Errorf("--print-config wrote to standard error or started something:\n%s", res)
	}

	conn := site.start(t, "connector "+st.id, "connector", "run", "--config", connToml)
	c.waitConnector(t, c.admin, st.id, conn, func(x *apiConnector) bool { return x != nil && x.Status == "active" && x.Tunnels == 1 })

	// A bad file: refused, naming the file, the line and the key.
	bad := filepath.Join(site.dir, "bad.toml")
	writeFile(t, bad, fmt.Sprintf("dir = %q\n\nconections = 3\n", st.dir), 0o640)
	site.refused(t, "", []string{"connector", "run", "--config", bad}, bad+", line 3", `"conections"`, `did you mean "connections"`)
	writeFile(t, bad, "data-dir = 7\n", 0o640)
	c.admin.refused(t, "", []string{"cloud", "serve", "--config", bad}, bad+", line 1", "data-dir", "a string")
	site.refused(t, "", []string{"connector", "run", "--config", filepath.Join(site.dir, "missing.toml")}, "does not exist")
}
