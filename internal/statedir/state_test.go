package statedir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// writeTestState registers a connector by hand: a tenant CA signs a
// certificate for a locally made key.
func writeTestState(t *testing.T, dir string, notBefore, notAfter time.Time) {
	t.Helper()
	cloudCA, err := pki.NewCA("test cloud CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tenantCA, err := pki.NewCA("tenant CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("x")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	der, err := tenantCA.SignConnector(csr, pki.ConnectorIdentity{TenantID: "t_1", ConnectorID: "c_1"}, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := pki.ParseCertPEM(pki.EncodeCertPEM(der))
	tr := Trust{FormatVersion: 1, ConnectorID: "c_1", TenantID: "t_1", Tenant: "contoso.com", Group: "Default",
		CloudURL: "https://cloud.localhost:8443", Thumbprint: pki.Thumbprint(cert), Serial: pki.SerialHex(cert),
		CloudCAFile: CloudCAFile, IssuedAt: cert.NotBefore, ExpiresAt: cert.NotAfter, Source: "registration"}
	if err := Write(dir, &tr, keyPEM, pki.EncodeCertPEM(der), cloudCA.CertPEM, nil); err != nil {
		t.Fatal(err)
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string)
		code  string
	}{
		{"empty dir", func(string) {}, "not_registered"},
		{"key readable by others", func(dir string) { os.Chmod(filepath.Join(dir, keyFileIn(t, dir)), 0o644) }, "key_permissions"},
		{"thumbprint mismatch", func(dir string) {
			raw, _ := os.ReadFile(filepath.Join(dir, TrustFile))
			var tr Trust
			json.Unmarshal(raw, &tr)
			tr.Thumbprint = "00"
			js, _ := json.Marshal(tr)
			os.WriteFile(filepath.Join(dir, TrustFile), js, 0o644)
		}, "not_registered"},
		{"damaged trust file", func(dir string) { os.WriteFile(filepath.Join(dir, TrustFile), []byte("{"), 0o644) }, "not_registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.name != "empty dir" {
				writeTestState(t, dir, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
			}
			tt.setup(dir)
			_, err := Load(dir)
			p, ok := problem.As(err)
			if !ok || p.Code != tt.code {
				t.Fatalf("Load = %v, want code %s", err, tt.code)
			}
		})
	}
}

// TestCheckValidity: a clock far behind makes a valid certificate look
// not yet valid; an expired one is trust_expired.
func TestCheckValidity(t *testing.T) {
	dir := t.TempDir()
	writeTestState(t, dir, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	st, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		code string
	}{
		{time.Now(), ""},
		{time.Now().Add(-72 * time.Hour), "clock_skew"},
		{time.Now().Add(2 * time.Hour), "trust_expired"},
	} {
		err := st.CheckValidity(tt.at)
		if got := code(err); got != tt.code {
			t.Errorf("CheckValidity(%s) = %v, want code %q", tt.at, err, tt.code)
		}
	}
}

func code(err error) string {
	if p, ok := problem.As(err); ok {
		return p.Code
	}
	return ""
}

func keyFileIn(t *testing.T, dir string) string {
	t.Helper()
	raw, _ := os.ReadFile(filepath.Join(dir, TrustFile))
	var tr Trust
	json.Unmarshal(raw, &tr)
	name, ok := KeyFileOf(tr)
	if !ok {
		t.Fatalf("trust.json names no key file: %s", raw)
	}
	return name
}
