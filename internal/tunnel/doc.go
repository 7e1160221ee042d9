// Package tunnel is Sallyport's wire protocol between a connector and the
// cloud service (docs/protocol.md): it knows neither side's business and
// imports no package of this module but its own sub-package mux.
//
// The connector dials the cloud over TLS and serves; the cloud is the
// client and sends the requests. Two versions exist, chosen by ALPN:
//
//   - Version 2 (ALPN2, what current ends speak): the connection carries a
//     mux session. Its stream 0 carries an HTTP/2 connection (control
//     messages, gRPC, and upgrades to connectors that predate upgrade
//     relays); proxied requests travel as HTTP/1.1 on relay streams the
//     cloud opens (relay_cloud.go) and the connector serves
//     (relay_connector.go, ServeSession).
//   - Version 1 (ALPN, spoken with an end that predates version 2; both
//     ends still offer it): the connection carries HTTP/2 alone (Serve,
//     NewClient), one stream per proxied request, upgraded connection or
//     control message.
//
// The package also holds what both ends share around that: the control
// messages and headers (messages.go, headers.go), upgrades carried on an
// HTTP/2 stream marked with HeaderUpgrade (upgrade.go), HTTP/1.1 on a byte stream (http1.go), limits on response
// heads (limits.go) and the batching of TLS writes (BatchConn).
package tunnel
