package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/sallyport/sallyport/internal/h2"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// controlCall makes one call on a control connection authenticated by
// st's certificate.
func controlCall(ctx context.Context, st *State, dial Dialer, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	body, _, err := controlDo(ctx, st, dial, method, path, in)
	if err != nil {
		return err
	}
	defer body.Close()
	raw, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return problem.Newf(502, "control_failed", "check the connector's network path to the cloud and retry",
			"The answer to %s %s from the cloud at %s was cut (%v)", method, path, st.Target.URL, err)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// ControlCall makes one JSON call to the cloud's control API (see
// tunnel.Control*), authenticated by the connector's certificate.
func ControlCall(ctx context.Context, st *State, dial Dialer, method, path string, in, out any) error {
	return controlCall(ctx, st, dial, method, path, in, out)
}

// ControlDownload GETs path from the cloud's control API and returns the
// body with its announced length (-1 when unknown). Closing the body
// closes the connection.
func ControlDownload(ctx context.Context, st *State, dial Dialer, path string) (io.ReadCloser, int64, error) {
	return controlDo(ctx, st, dial, http.MethodGet, path, nil)
}

// controlDo dials a control connection and sends one request; a non-200
// answer is returned as the problem the cloud sent.
func controlDo(ctx context.Context, st *State, dial Dialer, method, path string, in any) (io.ReadCloser, int64, error) {
	conn, err := dialCloud(ctx, st, dial, tunnel.ControlALPN)
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
	req, _ := http.NewRequestWithContext(ctx, method, st.Target.URL+path, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cc.RoundTrip(req)
	if err != nil {
		cc.Close()
		conn.Close()
		return nil, 0, problem.Newf(502, "control_failed", "check the connector's network path to the cloud and retry",
			"The call %s %s to the cloud at %s failed (%v)", method, path, st.Target.URL, err)
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
