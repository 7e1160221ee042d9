// Package mux is the session multiplexer of tunnel protocol version 2
// (docs/protocol.md §15): many ordered, flow-controlled byte streams over
// one connection, as hashicorp/yamux does, with the frames, windows and
// limits the tunnel needs.
//
// A Session runs on one connection; one end opens streams (the cloud),
// the other accepts them (the connector). Stream 0 exists from the start
// on both ends. Each Stream is a net.Conn: Read, Write, the deadlines and
// Close may be called from different goroutines at once (one Read and one
// Write at a time); Close ends both directions at once, CloseWrite only
// this end's.
//
// The package owns framing (frame.go), the session's read loop and
// keepalive (session.go), the streams' buffers and flow control
// (stream.go, window.go) and the errors a stream or session ends with
// (errors.go). It must not know what the streams carry (HTTP, the relay)
// and imports no package of this module.
package mux
