package cloudlink

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
)

// TestPinnedCAALPN: against a cloud that presents a publicly trusted
// certificate for its name unless the client offers pki.PinnedCAALPN (as
// one with ACME does), the API client and CA discovery offer it and get
// the cloud CA's certificate, still over HTTP/2; a client that does not
// offer it is shown the other certificate, which the pin refuses.
func TestPinnedCAALPN(t *testing.T) {
	cloudCA, _ := pki.NewCA("Sallyport cloud CA", time.Hour)
	publicCA, _ := pki.NewCA("Public CA", time.Hour)
	pinned, _ := cloudCA.IssueServer([]string{"cloud.localhost"}, time.Hour)
	public, _ := publicCA.IssueServer([]string{"cloud.localhost"}, time.Hour)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if slices.Contains(hello.SupportedProtos, pki.PinnedCAALPN) {
			return pinned, nil
		}
		return public, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	tg, err := ParseURL("https://cloud.localhost:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}

	hc := HTTPClient(tg, cloudCA.Cert)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(tg.URL + "/")
	if err != nil {
		t.Fatalf("the API client does not get the cloud CA's certificate: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("the API client speaks %s, want HTTP/2", resp.Proto)
	}
	if ca, err := DiscoverCA(context.Background(), tg, pki.Fingerprint(cloudCA.Cert)); err != nil || !ca.Equal(cloudCA.Cert) {
		t.Errorf("DiscoverCA = %v: the fingerprint's CA is not found", err)
	}
	if err := handshake(t, tg, TLSConfig(tg.Host, cloudCA.Cert, "h2", "http/1.1")); code(err) != "tls_inspection" {
		t.Errorf("a client pinning the cloud CA, shown the public certificate: %v, want it refused (tls_inspection)", err)
	}
}
