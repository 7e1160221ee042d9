package cloudlink

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// PinnedCA returns the cloud CA to trust: from caFile, or discovered by
// fingerprint. With neither, it refuses and shows the fingerprint the
// cloud presents (retry names the command to run again).
func PinnedCA(ctx context.Context, t Target, caFile, fingerprint, retry string) (*x509.Certificate, error) {
	switch {
	case caFile != "":
		raw, err := os.ReadFile(caFile)
		if err != nil {
			return nil, problem.Newf(400, "ca_file",
				"give the cloud-ca.pem file copied from the cloud's data directory",
				"The cloud CA file %s cannot be read (%v)", caFile, err)
		}
		ca, err := pki.ParseCertPEM(raw)
		if err != nil {
			return nil, problem.Newf(400, "ca_file",
				"give the cloud-ca.pem file copied from the cloud's data directory",
				"The cloud CA file %s holds no PEM certificate", caFile)
		}
		return ca, nil
	case fingerprint != "":
		return DiscoverCA(ctx, t, fingerprint)
	default:
		return nil, Untrusted(ctx, t, retry)
	}
}

// HTTPClient is an HTTPS client for the cloud's API that trusts only ca.
// It offers pki.PinnedCAALPN (besides h2 and http/1.1), so that a cloud
// with ACME presents its cloud-CA certificate, not its public one.
// Connections go through t.Proxy when it applies.
func HTTPClient(t Target, ca *x509.Certificate) *http.Client {
	p := t.Proxy
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&Dialer{Proxy: p}).DialContext,
			Proxy:               nil, // our dialer does CONNECT itself
			TLSClientConfig:     TLSConfig(t.Host, ca, "h2", "http/1.1", pki.PinnedCAALPN),
			TLSHandshakeTimeout: DialTimeout,
			ForceAttemptHTTP2:   true,
		},
	}
}

// PostJSON sends in as JSON and decodes the answer into out; an error
// answer becomes a Problem carrying the cloud's message.
func PostJSON(ctx context.Context, c *http.Client, t Target, path string, in, out any) error {
	return DoJSON(ctx, c, t, http.MethodPost, path, "", in, out)
}

// DoJSON performs one API call. token, when set, is sent as a bearer token.
func DoJSON(ctx context.Context, c *http.Client, t Target, method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		js, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.URL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return ExplainDial(ctx, err, t)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Explain(err, t)
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
			return &problem.Problem{Status: resp.StatusCode, Code: eb.Error.Code,
				Message: strings.TrimSuffix(strings.TrimSuffix(eb.Error.Message, "."), "; "+eb.Error.Step), Step: eb.Error.Step}
		}
		return problem.Newf(resp.StatusCode, "unexpected_answer",
			fmt.Sprintf("check that %s is a Sallyport cloud service and that it is up to date", t.URL),
			"The cloud at %s answered %s to %s %s", t.URL, resp.Status, method, path)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return problem.Newf(502, "unexpected_answer",
				fmt.Sprintf("check that %s is a Sallyport cloud service of a compatible version", t.URL),
				"The cloud at %s answered %s %s with a body that is not the expected JSON", t.URL, method, path)
		}
	}
	return nil
}
