package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testsslFinding is one line of testssl.sh's --jsonfile output.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// TestTestssl runs Debian's testssl.sh against a real 'cloud serve' on
// loopback: protocols, cipher categories, forward secrecy, server defaults
// (certificate), HTTP headers and the known vulnerabilities, for the
// cloud's own name (admin API). Any finding rated LOW or worse fails: none
// is accepted. (Revocation, testssl's cert_revocation: the cloud's server
// certificate names the cloud CA's CRL, served at /pki/cloud-ca.crl.)
//
// Only checks that would need the internet are off: DNS look-ups
// (--nodns none, --ip 127.0.0.1) and revocation fetching (testssl fetches
// CRLs and OCSP only with --phone-out, which is not given). The cloud CA is
// added as a trusted CA (--add-ca) so the chain of trust is checked.
func TestTestssl(t *testing.T) {
	if raceEnabled {
		t.Skip("the race run does not repeat the TLS scan (the plain run does)")
	}
	t.Parallel()
	bin := ""
	for _, name := range []string{"testssl.sh", "testssl"} { // Debian installs it as testssl
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("testssl.sh is not installed; .ci/run installs it (apt-get install testssl.sh)")
		}
		t.Skip("testssl.sh is not installed (apt-get install testssl.sh); the cloud's TLS profile is not scanned")
	}
	c := startCloud(t)
	// -p protocols, -s cipher categories, -f forward secrecy, -S server
	// defaults (certificate, session tickets), -h HTTP headers, -U
	// vulnerabilities. The cloud's own name only: an application's default
	// name gets the same TLS configuration (one branch of tlsConfigFor) and
	// the same wildcard certificate, and its headers are the application's;
	// a second scan would double a run that already takes over a minute.
	findings := runTestssl(t, bin, c, cloudName, []string{"-p", "-s", "-f", "-S", "-h", "-U"})
	bad := 0
	crlURL := "https://" + cloudName + ":" + c.port + "/pki/cloud-ca.crl"
	sawDP := false
	for _, f := range findings {
		switch f.ID {
		case "cert_crlDistributionPoints", "cert_revocation":
			t.Logf("%s: %s %q", f.ID, f.Severity, f.Finding)
			sawDP = sawDP || f.ID == "cert_crlDistributionPoints" && strings.Contains(f.Finding, crlURL)
		}
		switch f.Severity {
		case "LOW", "MEDIUM", "HIGH", "CRITICAL":
		default:
			continue
		}
		bad++
		t.Errorf("testssl.sh %s: %s %s: %s", cloudName, f.Severity, f.ID, f.Finding)
	}
	if !sawDP {
		t.Errorf("testssl.sh did not see the CRL distribution point %s in the server certificate", crlURL)
	}
	if len(findings) < 50 {
		t.Fatalf("testssl.sh reported only %d findings: it did not really scan:\n%+v", len(findings), findings)
	}
	t.Logf("%d findings, %d rated LOW or worse", len(findings), bad)
}

// runTestssl scans host on the cloud's port and returns testssl's findings.
func runTestssl(t *testing.T, bin string, c *cloud, host string, checks []string) []testsslFinding {
	t.Helper()
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "testssl.json")
	args := append([]string{"--quiet", "--color", "0", "--warnings", "off",
		"--ip", "127.0.0.1", "--nodns", "none", "--add-ca", c.caFile,
		"--connect-timeout", "10", "--openssl-timeout", "10",
		"--jsonfile", jsonFile}, checks...)
	args = append(args, host+":"+c.port)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("testssl.sh %s took %s", strings.Join(checks, " "), time.Since(start).Round(time.Second))
	if ctx.Err() != nil {
		t.Fatalf("testssl.sh did not finish within 8 minutes:\n%s", tail(string(out), 40))
	}
	// testssl's exit code counts findings; the JSON file is what is judged.
	data, rerr := os.ReadFile(jsonFile)
	if rerr != nil {
		t.Fatalf("testssl.sh wrote no JSON (%v; exit: %v):\n%s", rerr, err, tail(string(out), 40))
	}
	var findings []testsslFinding
	if err := json.Unmarshal(data, &findings); err != nil {
		t.Fatalf("testssl.sh's JSON does not parse (%v):\n%s", err, tail(string(data), 20))
	}
	for _, f := range findings {
		if f.ID == "scanProblem" || f.Severity == "FATAL" {
			t.Fatalf("testssl.sh could not scan %s: %s %s\n%s", host, f.Severity, f.Finding, tail(string(out), 40))
		}
	}
	return findings
}
