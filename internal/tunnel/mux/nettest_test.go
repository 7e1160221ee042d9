package mux

import (
	"net"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/sallyport/sallyport/internal/testnet"
)

// TestStreamNetConn runs x/net's net.Conn conformance suite on the two ends
// of one stream over a session on loopback TCP: deadlines that unblock
// pending calls with os.ErrDeadlineExceeded, Close that unblocks them,
// concurrent use, and the bytes arriving whole and in order.
func TestStreamNetConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := testnet.Pair(t)
		o := NewSession(a, true, SessionConfig{})
		acc := NewSession(b, false, SessionConfig{})
		stop = func() {
			o.Close()
			acc.Close()
		}
		ost, err := o.Open([]byte("nettest"))
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		ast, err := acc.Accept()
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		return ost, ast, stop, nil
	})
}
