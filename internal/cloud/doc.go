// Package cloud is the running cloud service: the one TLS listener that
// serves connectors (by ALPN), the admin API and registration (on the
// cloud's own name) and applications (on their external hosts, through
// package edge), the control service, and the registry of live connector
// tunnels that the edge dispatches requests to. It opens its data
// directory through package datadir; what the operator does to that
// directory without the server running lives there.
package cloud
