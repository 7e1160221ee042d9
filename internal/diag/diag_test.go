package diag

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	secretKey   = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
	secretToken = "spr_UJK5FJ7hEK5f2G5GDglyuul1fa185qNquAihihiEiQU"
	secretPW    = "hunter2-correct-horse"
)

func TestBundleHasNoSecret(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"trust.json":             `{"connector_id":"c_1","key_location":"file:connector-ab.key","cert_file":"connector-ab.crt"}`,
		"connector-ab.key":       secretKey,
		"connector-ab.crt":       "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"status.json":            `{"tunnels_up":2}`,
		"events.jsonl":           `{"id":1002,"message":"registration with token ` + secretToken + ` failed","fields":{"password":"` + secretPW + `"}}` + "\n",
		"register.log":           "time=x msg=\"registration started\" password=" + secretPW + " url=https://admin:" + secretPW + "@cloud.example/\n" + secretKey,
		"cloud-ca.pem":           "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n",
		"unrelated-secrets.conf": "token=" + secretToken,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			io.WriteString(w, "sallyport_connector_tunnels_up 2\n")
		case "/debug/goroutines":
			io.WriteString(w, "goroutine 1 [running]:\nAuthorization: Bearer "+secretToken+"\n")
		default:
			io.WriteString(w, "ready\n")
		}
	}))
	defer metrics.Close()
	var buf bytes.Buffer
	doctor := func(context.Context) ([]byte, error) { return []byte(`{"verdict":"healthy"}`), nil }
	names, err := Write(context.Background(), &buf, Options{Dir: dir, MetricsURL: metrics.URL, Doctor: doctor})
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		got[f.Name] = string(b)
	}
	for _, want := range []string{"version.txt", "state/trust.json", "state/status.json", "state/events.jsonl", "state/register.log",
		"state/cloud-ca.pem", "doctor.json", "metrics.txt", "goroutines.txt", "ready.txt", "MANIFEST.json"} {
		if _, ok := got[want]; !ok {
			t.Errorf("bundle lacks %s (has %v)", want, names)
		}
	}
	for name, content := range got {
		if strings.HasSuffix(name, ".key") || strings.Contains(name, "unrelated") {
			t.Errorf("bundle holds %s", name)
		}
		for _, secret := range []string{"PRIVATE KEY", secretToken, secretPW} {
			if strings.Contains(content, secret) {
				t.Errorf("%s contains a secret (%q)", name, secret)
			}
		}
	}
	if !strings.Contains(got["metrics.txt"], "sallyport_connector_tunnels_up 2") || !strings.Contains(got["doctor.json"], "healthy") {
		t.Errorf("metrics or doctor missing: %q %q", got["metrics.txt"], got["doctor.json"])
	}
}

func TestBundleWithoutRunningConnector(t *testing.T) {
	var buf bytes.Buffer
	_, err := Write(context.Background(), &buf, Options{Dir: t.TempDir(), MetricsURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	for _, f := range zr.File {
		if f.Name == "metrics.txt" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			if !strings.Contains(string(b), "not collected") {
				t.Errorf("metrics.txt = %q", b)
			}
		}
	}
}
