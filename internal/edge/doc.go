// Package edge is the cloud's public HTTPS front for applications: it
// matches a request's host to an application, sends the request through a
// tunnel to a connector of the application's group (via a Dispatcher it is
// given), streams bodies both ways (full duplex), carries WebSocket
// upgrades, enforces the backend application timeout and answers every
// failure with a page that says what failed and what to do.
//
// It knows nothing of the store, the admin API or how tunnels are kept.
package edge
