package cloud

import (
	"context"
	"net"
	"strconv"

	"github.com/sallyport/sallyport/internal/store"
)

// Stand-ins for the pieces of issue 19 that other branches bring (the
// segments lane: internal/segment and the application's type and internal
// addresses; the rawtunnel lane: tunnel.Client.OpenRaw). Each is replaced
// when its branch is merged, and this file deleted.

// defaultRawOpen is the raw stream opener until tunnel.Client has
// OpenRaw: every connector is "too old" (tests replace it before a
// server starts).
var defaultRawOpen = func(context.Context, *liveTunnel, string, string, string, string) (rawConn, error) {
	return nil, &rawRefusal{Code: "unsupported", Message: "the connector does not support raw streams"}
}

// coversDest reports whether a segment covers host:port. The stand-in
// knows exact HOST:PORT segments only.
func coversDest(segments []string, host string, port uint16) bool {
	dest := net.JoinHostPort(host, strconv.Itoa(int(port)))
	for _, s := range segments {
		if s == dest {
			return true
		}
	}
	return false
}

// networkOf is an application's network ("tcp", "udp"; "" for a web
// application) and its segments.
// (Tests replace it before a server starts.)
var networkOf = func(store.Application) (string, []string) { return "", nil }
