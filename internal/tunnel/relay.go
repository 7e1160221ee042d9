package tunnel

import (
	"errors"
)

// ALPN2 is the TLS application protocol of tunnel version 2: a mux
// session whose stream 0 carries version 1's HTTP/2 connection and whose
// other streams carry proxied requests as HTTP/1.1 (docs/protocol.md §15).
// A connector offers both; a cloud that knows version 2 chooses it.
const ALPN2 = "sallyport-connector/2"

// RelayKindHTTP is the open message kind of a relay stream carrying
// HTTP/1.1 requests, one after another, for one application.
const RelayKindHTTP = "http/1.1"

// RelayKindUpgrade is the open message kind of a relay stream carrying one
// HTTP/1.1 upgrade request (a WebSocket); after a 101 answer the stream is
// the upgraded connection, otherwise it ends with the answer.
const RelayKindUpgrade = "http/1.1-upgrade"

// OpenMessage is the JSON message that opens a relay stream.
type OpenMessage struct {
	Kind string `json:"kind"`
	App  string `json:"app,omitempty"` // application id (informational: every request names its own)
	// Window is the cloud's receive window for the stream at its start
	// (0: the protocol's 4 MiB); the cloud sets it only for a connector
	// whose Hello says RelayWindow. The window grows with credit (WINDOW
	// frames) as usual.
	Window int `json:"window,omitempty"`
	// Dest is the destination of a raw stream (kinds "tcp" and "udp"),
	// HOST:PORT; User the signed-in user it is for (informational, for
	// the connector's log).
	Dest string `json:"dest,omitempty"`
	User string `json:"user,omitempty"`
}

// ErrNotSent marks a relay failure that happened before any byte of the
// request left this end: the request may go to another connector.
var ErrNotSent = errors.New("the request was not sent")
