package cloudlink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/sallyport/sallyport/internal/h2"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// Identity is what a registered connector presents to the cloud: the
// cloud's address, the CA pinned at registration and the connector's
// client certificate (statedir.State.Identity).
type Identity struct {
	Target Target
	CA     *x509.Certificate
	Cert   tls.Certificate
}

// Identity returns id itself, so that an Identity is Identified.
func (id Identity) Identity() Identity { return id }

// Identified is what carries a connector's identity: a loaded state
// directory (statedir.State) or an Identity.
type Identified interface{ Identity() Identity }

// DialFunc dials TCP to the cloud (DialContext, a Dialer's through a
// proxy, or a test's).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DialIdentified opens a TLS connection to the cloud with id's client
// certificate, offering the given ALPN protocols (preferred first): the
// connector's tunnels and control calls.
func DialIdentified(ctx context.Context, who Identified, dial DialFunc, alpn ...string) (*tls.Conn, error) {
	id := who.Identity()
	t := id.Target
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	raw, err := dial(dctx, "tcp", t.Addr)
	if err != nil {
		return nil, Explain(err, t)
	}
	cfg := TLSConfig(t.Host, id.CA, alpn...)
	cfg.Certificates = []tls.Certificate{id.Cert}
	if slices.Contains(alpn, tunnel.ALPN) {
		raw = tunnel.NewBatchConn(raw) // tunnel.Serve batches its writes
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(dctx); err != nil {
		raw.Close()
		return nil, ExplainDial(ctx, err, t)
	}
	if !slices.Contains(alpn, conn.ConnectionState().NegotiatedProtocol) {
		conn.Close()
		return nil, problem.Newf(502, "not_sallyport",
			fmt.Sprintf("check that %s is the Sallyport cloud and that no proxy in between strips TLS ALPN", t.Addr),
			"The server at %s does not speak the Sallyport connector protocol", t.Addr)
	}
	return conn, nil
}

// ControlCall makes one JSON call to the cloud's control API (see
// tunnel.Control*) on a control connection authenticated by id.
func ControlCall(ctx context.Context, who Identified, dial DialFunc, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id := who.Identity()
	body, _, err := controlDo(ctx, id, dial, method, path, in)
	if err != nil {
		return err
	}
	defer body.Close()
	raw, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return problem.Newf(502, "control_failed", "check the connector's network path to the cloud and retry",
			"The answer to %s %s from the cloud at %s was cut (%v)", method, path, id.Target.URL, err)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// ControlDownload GETs path from the cloud's control API and returns the
// body with its announced length (-1 when unknown). Closing the body
// closes the connection.
func ControlDownload(ctx context.Context, who Identified, dial DialFunc, path string) (io.ReadCloser, int64, error) {
	return controlDo(ctx, who.Identity(), dial, http.MethodGet, path, nil)
}

// FetchStatus asks the cloud, over the authenticated control connection,
// what it knows of this connector: registration, group, status, its
// clock, and the group's applications.
func FetchStatus(ctx context.Context, who Identified, dial DialFunc) (tunnel.Status, error) {
	var s tunnel.Status
	err := ControlCall(ctx, who, dial, http.MethodGet, tunnel.ControlStatus, nil, &s)
	return s, err
}

// controlDo dials a control connection and sends one request; a non-200
// answer is returned as the problem the cloud sent.
func controlDo(ctx context.Context, id Identity, dial DialFunc, method, path string, in any) (io.ReadCloser, int64, error) {
	conn, err := DialIdentified(ctx, id, dial, tunnel.ControlALPN)
	if err != nil {
		return nil, 0, err
	}
	cc, err := h2.NewClientConn(conn, h2.ClientConfig{})
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	var body io.Reader = http.NoBody
	if in != nil {
		js, _ := json.Marshal(in)
		body = bytes.NewReader(js)
	}
	req, _ := http.NewRequestWithContext(ctx, method, id.Target.URL+path, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cc.RoundTrip(req)
	if err != nil {
		cc.Close()
		conn.Close()
		return nil, 0, problem.Newf(502, "control_failed", "check the connector's network path to the cloud and retry",
			"The call %s %s to the cloud at %s failed (%v)", method, path, id.Target.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cc.Close()
		conn.Close()
		var eb tunnel.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
			return nil, 0, &problem.Problem{Status: resp.StatusCode, Code: eb.Error.Code, Message: trimStep(eb.Error.Message, eb.Error.Step), Step: eb.Error.Step}
		}
		return nil, 0, problem.Newf(resp.StatusCode, "control_failed", "check that the cloud runs the same Sallyport version",
			"The cloud answered %s to %s %s", resp.Status, method, path)
	}
	return &closer{ReadCloser: resp.Body, close: func() { cc.Close(); conn.Close() }}, resp.ContentLength, nil
}

type closer struct {
	io.ReadCloser
	close func()
}

func (c *closer) Close() error {
	err := c.ReadCloser.Close()
	c.close()
	return err
}

// trimStep removes the step the API repeats at the end of a message.
func trimStep(msg, step string) string {
	if step != "" {
		if i := bytes.LastIndex([]byte(msg), []byte("; "+step)); i > 0 {
			return msg[:i]
		}
	}
	return msg
}
