package mux

import (
	"errors"
	"fmt"
)

// Reset codes.
const (
	ResetCancel      = 0 // the sender closed the stream before its end
	ResetRefused     = 1 // the stream was not accepted (too many, unknown kind, draining)
	ResetProtocol    = 2 // the peer broke the protocol on this stream
	ResetUnsupported = 3 // the open message asks for something this end cannot do
)

// ErrSessionClosed is returned for operations on a closed session.
var ErrSessionClosed = errors.New("tunnel: session closed")

// ErrIDsExhausted is returned by Open once a session has opened all the
// stream ids it may (2³⁰): the session must be replaced by a new one.
var ErrIDsExhausted = errors.New("tunnel: stream ids exhausted on this session")

// StreamError is how a stream ended by a RESET from the peer.
type StreamError struct {
	Code    uint32
	Message string
}

func (e *StreamError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("tunnel: stream reset by the peer (code %d)", e.Code)
	}
	return "tunnel: stream reset by the peer: " + e.Message
}
