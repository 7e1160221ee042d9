// Package clouddoctor runs the cloud's own checks on the cloud's machine
// ('sallyport cloud doctor'): the data directory and store as 'cloud
// serve' reads them, the TLS and HTTP ports it listens on, the
// certificates it holds (the cloud CA's, --edge-cert, the applications'
// own, the ACME ones in the ACME storage) and the ACME account. Each step
// says what it checked, what it found and what to do, like the
// connector's doctor (internal/doctor, whose JSON shape it shares).
//
// It reads; it never orders a certificate, registers an account or
// writes to the store, except that opening the store applies its
// migrations as 'cloud serve' would. It is of the cloud side: it must not
// import the connector's packages (internal/doctor among them).
package clouddoctor
