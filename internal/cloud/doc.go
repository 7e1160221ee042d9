// Package cloud is the cloud service: it owns the data directory (Init,
// AddTenant), the one TLS listener that serves connectors (by ALPN), the
// admin API and registration (on the cloud's own name) and applications
// (on their external hosts, through package edge), and the registry of
// live connector tunnels that the edge dispatches requests to.
package cloud
