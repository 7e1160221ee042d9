// Package doctor walks the connector troubleshooting steps automatically:
// what an administrator of the reference system does by hand with telnet,
// a browser, the certificate store and the event viewer, run from the
// connector's machine, one step after the other, each saying what it
// checked, what it found and what to do.
//
// The steps, in order: the state directory and trust certificate (state),
// name resolution of the cloud (dns), the TCP port test (tcp) and, when
// the connector uses an outbound proxy, the same through it (tcp-proxy),
// the TLS handshake with the pinned cloud CA (tls), registration at the cloud
// (registration), the clock against the cloud's (clock), the connector
// group and its applications (group), each application's internal URL
// from this machine ("app NAME") and the event log's errors of the last
// hour (events). docs/doctor.md documents each step and the JSON format of a Report.
//
// Every step has its own timeout (Options.StepTimeout) and a step that
// depends on one that failed is skipped with the reason, so a run finishes
// in seconds even when everything is down.
//
// Like the connector, it must not import the cloud's packages: it reaches
// the cloud only as a connector does (connector, cloudlink, tunnel).
package doctor
