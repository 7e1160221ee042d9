package tunnel

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// HTTP/1.1 on a byte stream: what both relay ends and the connector's
// direct paths to a backend use to send a request and read its response.

// inlineBody is the largest request body (of known length) written
// before the response is read; larger ones are written while it is.
const inlineBody = 64 << 10

// WriteRequest writes req as HTTP/1.1 on bw and flushes it. A body of
// known length up to 64 KiB is written before it returns; a larger one, or
// one of unknown length, by a goroutine whose result comes on the returned
// channel (nil otherwise), while the caller reads the response — as a
// proxy must: the far end may answer before it has read the whole body.
// onFail, if set, runs in that goroutine when the write fails.
func WriteRequest(bw *bufio.Writer, req *http.Request, onFail func()) (<-chan error, error) {
	write := func() error {
		err := req.Write(bw)
		if err == nil {
			err = bw.Flush()
		}
		return err
	}
	if req.Body == nil || req.Body == http.NoBody || (req.ContentLength > 0 && req.ContentLength <= inlineBody) {
		return nil, write()
	}
	done := make(chan error, 1)
	go func() {
		err := write()
		if err != nil && onFail != nil {
			onFail()
		}
		done <- err
	}()
	return done, nil
}

// ReadFinalResponse reads the final response to req from br, skipping
// interim (1xx) ones. hl, if not nil, is the HeadLimiter br reads through:
// the heads read, interim ones included, may take at most l.WireBytes()
// off the wire; the final head must also hold to l. Beyond that the error
// wraps ErrResponseHeadersTooLarge (and br cannot be used further).
func ReadFinalResponse(br *bufio.Reader, hl *HeadLimiter, req *http.Request, l ResponseLimits) (*http.Response, error) {
	if hl != nil {
		hl.left = l.WireBytes()
		defer func() { hl.left = -1 }()
	}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			if errors.Is(err, errHeadBudget) || (hl != nil && hl.left == 0) {
				return nil, fmt.Errorf("%w: the response head is longer than %d bytes", ErrResponseHeadersTooLarge, l.WireBytes())
			}
			return nil, err
		}
		if err := CheckResponseHeader(resp.Header, l); err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}

// BodyWritten waits for the result of WriteRequest's body writer once
// the response has ended: the writer is usually just returning from its
// last write (net/http's Transport waits the same way before reusing a
// connection). ended is false if it has not finished within a short grace
// time: the connection cannot carry another request then.
func BodyWritten(done <-chan error) (err error, ended bool) {
	select {
	case err = <-done:
		return err, true
	default:
	}
	t := time.NewTimer(bodyWriteGrace)
	defer t.Stop()
	select {
	case err = <-done:
		return err, true
	case <-t.C:
		return nil, false
	}
}

// bodyWriteGrace bounds BodyWritten's wait.
const bodyWriteGrace = 50 * time.Millisecond
