package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCloudDoctor: 'cloud doctor' on the cloud's machine passes against a
// running 'cloud serve' (and 'admin app show' says which certificate an
// application gets), and fails, exit non-zero, saying the cloud is not
// running, once it stopped.
func TestCloudDoctor(t *testing.T) {
	c := startCloud(t)
	c.publish(t, c.admin, "web", "http://127.0.0.1:1/")
	show := c.admin.ok(t, "", "admin", "app", "show", "web")
	mustContain(t, "app show", show.stdout, "Certificate:", "the cloud CA's", "Certificate expires:", "days left)")
	var detail struct {
		Certificate struct {
			Source   string `json:"source"`
			DaysLeft int    `json:"days_left"`
		} `json:"certificate"`
	}
	c.admin.okJSON(t, &detail, "admin", "app", "show", "web", "--json")
	if detail.Certificate.Source != "cloud-ca" || detail.Certificate.DaysLeft < 60 {
		t.Errorf("app show --json: certificate %+v, want the cloud CA's, at least 60 days left", detail.Certificate)
	}

	doctor := []string{"cloud", "doctor", "--config", "", "--data-dir", c.dataDir, "--listen", "127.0.0.1:" + c.port, "--json"}
	res := c.admin.ok(t, "", doctor...)
	var rep struct {
		Cloud   string `json:"cloud"`
		Verdict string `json:"verdict"`
		Steps   []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Found  string `json:"found"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("cloud doctor --json: %v\n%s", err, res)
	}
	if rep.Cloud != cloudName || rep.Verdict != "healthy" {
		t.Errorf("cloud %q, verdict %q, want %s healthy:\n%s", rep.Cloud, rep.Verdict, cloudName, res)
	}
	for _, id := range []string{"settings", "store", "tls-port", "cert cloud-ca"} {
		found := false
		for _, s := range rep.Steps {
			found = found || (s.ID == id && s.Status == "pass")
		}
		if !found {
			t.Errorf("step %s did not pass:\n%s", id, res)
		}
	}

	c.serve.stop()
	res = c.admin.run(t, "", doctor[:len(doctor)-1]...)
	if res.code == 0 {
		t.Fatalf("cloud doctor passes with the cloud stopped:\n%s", res)
	}
	mustContain(t, "cloud doctor, cloud stopped", res.stdout, "FAIL  tls-port", "not running", "PASS  store")
	if !strings.Contains(res.stderr, "tls-port") {
		t.Errorf("the failure's sentence does not name the step:\n%s", res)
	}
}
