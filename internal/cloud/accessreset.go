package cloud

import (
	"crypto/tls"
	"net"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// resetAccessConn ends a client's access connection with a TCP reset, not
// TLS's close_notify nor a FIN: its stream broke at the connector's side
// (the tunnel died, a reset). A FIN alone would not do: Go's TLS client
// (like many) takes an end of the connection at a record boundary for a
// clean end, and 'sallyport access' would not know that the stream was cut.
func resetAccessConn(c net.Conn) {
	nc := c
unwrap:
	for {
		switch x := nc.(type) {
		case *tls.Conn:
			nc = x.NetConn()
			continue
		case *tunnel.BatchConn:
			nc = x.Conn
			continue
		case *sourceConn:
			// Closed below through c, which gives its place back.
			nc = x.Conn
			continue
		case interface{ SetLinger(int) error }:
			x.SetLinger(0)
		}
		break unwrap
	}
	nc.Close()
	c.Close()
}
