// Package connector is the on-premises agent: it registers with the cloud
// (Register), and runs (Run): it keeps several outbound TLS tunnel
// connections to the cloud, reconnecting forever with jittered exponential
// backoff, and serves the cloud's requests on them by calling the internal
// URLs of the applications the cloud assigned to its group — and nothing
// else. Its files (trust, run status, lock) are package statedir's; its
// calls to the cloud's control API are cloudlink's.
//
// It must not import the cloud's packages: it shares only the wire
// protocol (tunnel, api) and small building blocks with them.
package connector
